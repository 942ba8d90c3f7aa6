package controlplane

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// The StorageClass kwok provisions volumes for: the pvc-provision, pv-bind and
// pv-delete stages in kwokstages select on its name, which is kwok's own so
// the stages stay comparable with upstream's. It is the cluster's default
// class, so a PersistentVolumeClaim without a class (e.g. one from a
// StatefulSet's volumeClaimTemplates) gets it.
const (
	StorageClassName   = "kwok-volume"
	StorageProvisioner = "kwok.x-k8s.io/volume"

	defaultStorageClassAnnotation = "storageclass.kubernetes.io/is-default-class"
)

// StorageClass is the default StorageClass of the local control plane. Binding
// is Immediate: the simulated volumes have no topology, so there is nothing to
// wait for the scheduler about.
func StorageClass() *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        StorageClassName,
			Annotations: map[string]string{defaultStorageClassAnnotation: "true"},
		},
		Provisioner:       StorageProvisioner,
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate),
	}
}

// EnsureStorageClass creates the default StorageClass unless it exists (a
// state directory reused with --keep-state already has it).
func EnsureStorageClass(ctx context.Context, cs kubernetes.Interface) error {
	if _, err := cs.StorageV1().StorageClasses().Create(ctx, StorageClass(), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating StorageClass %s: %w", StorageClassName, err)
	}
	return nil
}
