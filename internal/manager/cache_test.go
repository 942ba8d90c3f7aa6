package manager_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/manager"
	"github.com/cafe-io/cafe/test/framework"
)

// The manager caches only the pods and pod sets CAFE manages: another
// controller's pods and ReplicaSets (a Deployment's, a CloneSet's) never
// reach it, so their releases cost
// CAFE nothing (issue 14).
func TestManagerCachesOnlyThePodsAndPodSetsCAFEManages(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Another test of the package runs a manager in this process too.
	mgr, err := manager.New(cfg, manager.Options{SkipControllerNameValidation: true})
	g.Expect(err).NotTo(HaveOccurred())
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	defer func() { stop(); <-done }()

	c := mustClient(t)
	ns := framework.CreateNamespace(t, c)
	pod := func(name string, labels map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:v1"}}}}
	}
	ours := pod("ours", map[string]string{cafev1alpha1.RevisionHashLabel: "abc"})
	theirs := pod("theirs", map[string]string{"app": "someone-else"})
	g.Expect(c.Create(ctx, theirs)).To(Succeed())
	g.Expect(c.Create(ctx, ours)).To(Succeed())

	g.Eventually(func(g Gomega) {
		g.Expect(mgr.GetClient().Get(ctx, client.ObjectKeyFromObject(ours), &corev1.Pod{})).To(Succeed())
	}, "30s").Should(Succeed())
	// The cache saw the later write, so it would have seen the earlier one.
	err = mgr.GetClient().Get(ctx, client.ObjectKeyFromObject(theirs), &corev1.Pod{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a pod CAFE does not manage is not cached: %v", err)
	list := &corev1.PodList{}
	g.Expect(mgr.GetClient().List(ctx, list, client.InNamespace(ns))).To(Succeed())
	g.Expect(list.Items).To(HaveLen(1))
	g.Expect(list.Items[0].Name).To(Equal("ours"))

	// The same for the pod sets: a CafeDeployment's ReplicaSets and
	// StatefulSets are cached, another controller's (a Deployment's
	// ReplicaSets) are not.
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}
	template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}}, Spec: pod("t", nil).Spec}
	ownedLabels := map[string]string{cafev1alpha1.DeploymentLabel: "web"}
	for _, tc := range []struct {
		kind         string
		ours, theirs client.Object
		list         client.ObjectList
	}{
		{
			kind:   "ReplicaSet",
			ours:   &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ours", Labels: ownedLabels}, Spec: appsv1.ReplicaSetSpec{Selector: selector, Template: template}},
			theirs: &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "theirs"}, Spec: appsv1.ReplicaSetSpec{Selector: selector, Template: template}},
			list:   &appsv1.ReplicaSetList{},
		},
		{
			kind:   "StatefulSet",
			ours:   &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ours", Labels: ownedLabels}, Spec: appsv1.StatefulSetSpec{Selector: selector, Template: template}},
			theirs: &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "theirs"}, Spec: appsv1.StatefulSetSpec{Selector: selector, Template: template}},
			list:   &appsv1.StatefulSetList{},
		},
	} {
		g.Expect(c.Create(ctx, tc.theirs)).To(Succeed(), tc.kind)
		g.Expect(c.Create(ctx, tc.ours)).To(Succeed(), tc.kind)
		g.Eventually(func(g Gomega) {
			g.Expect(mgr.GetClient().Get(ctx, client.ObjectKeyFromObject(tc.ours), tc.ours.DeepCopyObject().(client.Object))).To(Succeed())
		}, "30s").Should(Succeed(), tc.kind)
		err := mgr.GetClient().Get(ctx, client.ObjectKeyFromObject(tc.theirs), tc.theirs.DeepCopyObject().(client.Object))
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a %s no CafeDeployment made is not cached: %v", tc.kind, err)
		g.Expect(mgr.GetClient().List(ctx, tc.list, client.InNamespace(ns))).To(Succeed(), tc.kind)
		g.Expect(names(g, tc.list)).To(Equal([]string{"ours"}), tc.kind)
	}
}

// CAFE's client does not ask for gzip unless told to: on the way from a
// near API server, compressing every watch event costs both ends CPU and
// saves nothing (issue 14).
func TestManagerClientAsksForCompressionOnlyWhenTold(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	for _, compress := range []bool{false, true} {
		mgr, err := manager.New(cfg, manager.Options{SkipControllerNameValidation: true, ClientCompression: compress})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(mgr.GetConfig().DisableCompression).To(Equal(!compress), "ClientCompression=%v", compress)
	}
	g.Expect(cfg.DisableCompression).To(BeFalse(), "the caller's config is not changed")
}

// names are the names of a list's items.
func names(g Gomega, list client.ObjectList) []string {
	items, err := meta.ExtractList(list)
	g.Expect(err).NotTo(HaveOccurred())
	out := make([]string, 0, len(items))
	for _, item := range items {
		obj, err := meta.Accessor(item)
		g.Expect(err).NotTo(HaveOccurred())
		out = append(out, obj.GetName())
	}
	return out
}
