package cafeappservice_test

import (
	"context"
	"fmt"
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
	g.Expect(k8sClient.Create(ctx, app)).To(Succeed())
	t.Cleanup(func() {
		bg := context.Background()
		_ = k8sClient.Delete(bg, app)
		_ = k8sClient.DeleteAllOf(bg, &cafev1alpha1.CafeDeployment{}, client.InNamespace(app.Namespace))
		_ = k8sClient.DeleteAllOf(bg, &cafev1alpha1.InPlaceSet{}, client.InNamespace(app.Namespace))
		_ = k8sClient.DeleteAllOf(bg, &cafev1alpha1.AppRevision{}, client.InNamespace(app.Namespace))
	})
}

func getApp(ctx context.Context, g Gomega, app *cafev1alpha1.CafeAppService) *cafev1alpha1.CafeAppService {
	out := &cafev1alpha1.CafeAppService{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(app), out)).To(Succeed())
	return out
}

// updateApp changes app, retrying on conflicts with the controller's status
// writes.
func updateApp(ctx context.Context, g Gomega, app *cafev1alpha1.CafeAppService, mutate func(*cafev1alpha1.CafeAppService)) {
	g.Expect(framework.Update(ctx, k8sClient, app.DeepCopy(), mutate)).To(Succeed())
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
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, rev)).To(Succeed())
	return rev
}

// revisionNames lists the app's revisions by name, oldest first.
func revisionNames(ctx context.Context, g Gomega, ns string) []string {
	list := &cafev1alpha1.AppRevisionList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
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
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items
}

// imageID is what the fake container runtime reports for an image.
func imageID(image string) string { return "sha256:" + fmt.Sprintf("%x", image) }

// playKubelet runs the containers of every pod of the namespace that does
// not yet report the images of its spec: new pods, and pods updated in
// place. Call it inside Eventually, so it catches up with the controllers.
func playKubelet(ctx context.Context, g Gomega, ns string) {
	for _, pod := range listPods(ctx, g, ns) {
		if runsSpecImages(&pod) || !pod.DeletionTimestamp.IsZero() {
			continue
		}
		now := metav1.Now()
		restarts := map[string]int32{}
		for _, s := range pod.Status.ContainerStatuses {
			restarts[s.Name] = s.RestartCount + 1
		}
		var statuses []corev1.ContainerStatus
		for _, c := range pod.Spec.Containers {
			statuses = append(statuses, corev1.ContainerStatus{
				Name: c.Name, Image: c.Image, ImageID: imageID(c.Image), Ready: true, Started: ptr.To(true), RestartCount: restarts[c.Name],
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
			})
		}
		status := map[string]any{"phase": corev1.PodRunning, "containerStatuses": statuses}
		if c := framework.PodCondition(&pod, corev1.ContainersReady); c == nil || c.Status != corev1.ConditionTrue {
			status["conditions"] = []corev1.PodCondition{{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
		}
		g.Expect(client.IgnoreNotFound(framework.PatchPodStatus(ctx, k8sClient, &pod, status))).To(Succeed())
	}
}

func runsSpecImages(pod *corev1.Pod) bool {
	reported := map[string]string{}
	for _, s := range pod.Status.ContainerStatuses {
		reported[s.Name] = s.Image
	}
	for _, c := range pod.Spec.Containers {
		if reported[c.Name] != c.Image {
			return false
		}
	}
	return true
}

// waitForOutcome plays kubelet until the revision reaches outcome.
func waitForOutcome(ctx context.Context, g *WithT, ns, rev string, outcome cafev1alpha1.ReleaseOutcome) *cafev1alpha1.AppRevision {
	var got *cafev1alpha1.AppRevision
	g.Eventually(func(g Gomega) {
		playKubelet(ctx, g, ns)
		got = getRevision(ctx, g, ns, rev)
		g.Expect(got.Status.Outcome).To(Equal(outcome))
	}).Should(Succeed())
	return got
}
