package cafeappservice_test

import (
	"context"
	"sort"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/test/framework"
)

var zones = []string{"zone-a", "zone-b", "zone-c"}

// newApp is an app of 3 pods over three zones running image, with one env
// value and one file, released in groups of one pod (Batch), never below
// 2 available pods.
func newApp(ns, name, image string) *cafev1alpha1.CafeAppService {
	return &cafev1alpha1.CafeAppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cafev1alpha1.CafeAppServiceSpec{
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"tier": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "app", Image: image, Ports: []corev1.ContainerPort{{ContainerPort: 8080}}},
				}},
			},
			Service: cafev1alpha1.AppServiceSpec{Ports: []cafev1alpha1.AppServicePort{{Name: "http", Port: 80, TargetPort: 8080}}},
			Config: cafev1alpha1.AppConfig{
				Env:   map[string]string{"GREETING": "hello"},
				Files: map[string]string{"app.yaml": "limit: 10\n"},
			},
			Workload: cafev1alpha1.AppWorkload{
				Replicas: ptr.To[int32](3),
				Topology: cafev1alpha1.Topology{Values: zones},
				Strategy: cafev1alpha1.CafeDeploymentStrategy{
					UpgradeType:  cafev1alpha1.UpgradeTypeBatch,
					BatchSize:    ptr.To(intstr.FromInt32(1)),
					MinAvailable: ptr.To(intstr.FromInt32(2)),
				},
			},
		},
	}
}

// createApp creates app and deletes what it owns when the test ends: no
// garbage collector runs here.
func createApp(ctx context.Context, t testing.TB, g *WithT, app *cafev1alpha1.CafeAppService) {
	g.Expect(suite.Client.Create(ctx, app)).To(Succeed())
	t.Cleanup(func() {
		bg := context.Background()
		_ = suite.Client.Delete(bg, app)
		_ = suite.Client.DeleteAllOf(bg, &cafev1alpha1.CafeDeployment{}, client.InNamespace(app.Namespace))
		_ = suite.Client.DeleteAllOf(bg, &cafev1alpha1.InPlaceSet{}, client.InNamespace(app.Namespace))
		_ = suite.Client.DeleteAllOf(bg, &cafev1alpha1.AppRevision{}, client.InNamespace(app.Namespace))
	})
}

func getApp(ctx context.Context, g Gomega, app *cafev1alpha1.CafeAppService) *cafev1alpha1.CafeAppService {
	return framework.Get(ctx, g, suite.Client, app)
}

// updateApp changes app, retrying on conflicts with the controller's status
// writes.
func updateApp(ctx context.Context, g Gomega, app *cafev1alpha1.CafeAppService, mutate func(*cafev1alpha1.CafeAppService)) {
	g.Expect(framework.Update(ctx, suite.Client, app.DeepCopy(), mutate)).To(Succeed())
}

// waitForLatest waits until the app's status names a latest revision for
// its current generation, and returns that revision.
func waitForLatest(ctx context.Context, g *WithT, app *cafev1alpha1.CafeAppService) *cafev1alpha1.AppRevision {
	var latest string
	g.Eventually(func(g Gomega) {
		a := getApp(ctx, g, app)
		g.Expect(a.Status.ObservedGeneration).To(Equal(a.Generation))
		g.Expect(a.Status.LatestRevision).NotTo(BeEmpty())
		latest = a.Status.LatestRevision
	}).Should(Succeed())
	return getRevision(ctx, g, app.Namespace, latest)
}

func getRevision(ctx context.Context, g Gomega, ns, name string) *cafev1alpha1.AppRevision {
	rev := &cafev1alpha1.AppRevision{}
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, rev)).To(Succeed())
	return rev
}

// revisionNames lists the app's revisions by name, oldest first.
func revisionNames(ctx context.Context, g Gomega, ns string) []string {
	list := &cafev1alpha1.AppRevisionList{}
	g.Expect(suite.Client.List(ctx, list, client.InNamespace(ns))).To(Succeed())
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Spec.Number < list.Items[j].Spec.Number })
	var out []string
	for _, r := range list.Items {
		if r.DeletionTimestamp.IsZero() {
			out = append(out, r.Name)
		}
	}
	return out
}

func publish(ctx context.Context, g Gomega, app *cafev1alpha1.CafeAppService, rev string) {
	updateApp(ctx, g, app, func(a *cafev1alpha1.CafeAppService) { a.Spec.PublishedRevision = rev })
}

func listPods(ctx context.Context, g Gomega, ns string) []corev1.Pod {
	list := &corev1.PodList{}
	g.Expect(suite.Client.List(ctx, list, client.InNamespace(ns))).To(Succeed())
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items
}

// waitForOutcome plays kubelet until the revision reaches outcome.
func waitForOutcome(ctx context.Context, g *WithT, ns, rev string, outcome cafev1alpha1.ReleaseOutcome) *cafev1alpha1.AppRevision {
	var got *cafev1alpha1.AppRevision
	g.Eventually(func(g Gomega) {
		suite.Kubelet.CatchUp(ctx, g, ns)
		got = getRevision(ctx, g, ns, rev)
		g.Expect(got.Status.Outcome).To(Equal(outcome))
	}).Should(Succeed())
	return got
}
