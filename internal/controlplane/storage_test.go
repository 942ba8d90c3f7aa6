package controlplane

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestStorageClassIsTheDefaultClassKwokProvisionsFor(t *testing.T) {
	g := NewWithT(t)
	sc := StorageClass()
	g.Expect(sc.Name).To(Equal(StorageClassName))
	g.Expect(sc.Annotations).To(HaveKeyWithValue("storageclass.kubernetes.io/is-default-class", "true"))
	g.Expect(sc.Provisioner).To(Equal(StorageProvisioner))
	g.Expect(*sc.ReclaimPolicy).To(Equal(corev1.PersistentVolumeReclaimDelete))
	g.Expect(*sc.VolumeBindingMode).To(Equal(storagev1.VolumeBindingImmediate))
}

func TestEnsureStorageClassIsIdempotent(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	cs := fake.NewClientset()
	g.Expect(EnsureStorageClass(ctx, cs)).To(Succeed())
	g.Expect(EnsureStorageClass(ctx, cs)).To(Succeed(), "a reused state directory already has the class")
	list, err := cs.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(list.Items).To(HaveLen(1))
}
