package e2e

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/test/framework"
	"github.com/cafe-io/cafe/test/framework/watchrec"
)

func TestNodesAreReadyAcrossThreeZones(t *testing.T) {
	g := NewWithT(t)
	nodes := &corev1.NodeList{}
	g.Expect(k8sClient.List(testContext(t), nodes)).To(Succeed())

	perZone := map[string]int{}
	for _, n := range nodes.Items {
		g.Expect(controlplane.NodeReady(&n)).To(BeTrue(), "node %s is not Ready", n.Name)
		perZone[n.Labels[controlplane.ZoneLabel]]++
	}
	g.Expect(nodes.Items).To(HaveLen(6))
	g.Expect(perZone).To(Equal(map[string]int{"zone-a": 2, "zone-b": 2, "zone-c": 2}))
}

func TestDeploymentPodsRunAndServeThroughEndpointSlice(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	ns := framework.CreateNamespace(t, k8sClient)
	labels := map[string]string{"app": "web"}

	g.Expect(k8sClient.Create(ctx, service(ns, "web", labels))).To(Succeed())
	g.Expect(k8sClient.Create(ctx, deployment(ns, "web", labels, 6, nil))).To(Succeed())

	g.Expect(waitForPods(ctx, ns, labels, func(pods []*corev1.Pod) bool {
		return len(pods) == 6 && all(pods, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning && podReady(p) })
	})).To(Succeed())
	g.Expect(waitForReadyEndpoints(ctx, ns, "web", 6)).To(Succeed())
}

// The kwok stage shipped in the repo recomputes Ready from every readiness
// gate, as a kubelet does: the EndpointSlice follows the gate both ways.
func TestReadinessGateDrivesEndpointSliceMembership(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	ns := framework.CreateNamespace(t, k8sClient)
	labels := map[string]string{"app": "gated"}
	gates := []corev1.PodReadinessGate{{ConditionType: cafev1alpha1.TrafficReadyCondition}, {ConditionType: "example.com/second-gate"}}

	rec := framework.Record(ctx, t, g, env.Admin, ns)

	g.Expect(k8sClient.Create(ctx, service(ns, "gated", labels))).To(Succeed())
	g.Expect(k8sClient.Create(ctx, deployment(ns, "gated", labels, 2, gates))).To(Succeed())

	// Running with containers ready, but not Ready: no gate condition is set.
	var pods []*corev1.Pod
	g.Expect(waitForPods(ctx, ns, labels, func(ps []*corev1.Pod) bool {
		pods = ps
		return len(ps) == 2 && all(ps, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning && !podReady(p) })
	})).To(Succeed())
	g.Expect(waitForReadyEndpoints(ctx, ns, "gated", 0)).To(Succeed())

	// One gate True is not enough; both gates True makes the pods Ready.
	for _, p := range pods {
		g.Expect(setPodCondition(ctx, p, cafev1alpha1.TrafficReadyCondition, corev1.ConditionTrue)).To(Succeed())
	}
	g.Expect(waitForPods(ctx, ns, labels, func(ps []*corev1.Pod) bool {
		return len(ps) == 2 && all(ps, hasCondition(cafev1alpha1.TrafficReadyCondition, corev1.ConditionTrue))
	})).To(Succeed())
	g.Expect(readyEndpoints(ctx, ns, "gated")).To(BeEmpty(), "a pod with one of two gates True must not be Ready")

	for _, p := range pods {
		g.Expect(setPodCondition(ctx, p, "example.com/second-gate", corev1.ConditionTrue)).To(Succeed())
	}
	g.Expect(waitForReadyEndpoints(ctx, ns, "gated", 2)).To(Succeed())

	// Gate False: the pod leaves the ready endpoints; True again: it returns.
	drained := pods[0]
	g.Expect(setPodCondition(ctx, drained, cafev1alpha1.TrafficReadyCondition, corev1.ConditionFalse)).To(Succeed())
	g.Expect(waitForEndpoints(ctx, ns, "gated", func(ready []string) bool {
		return len(ready) == 1 && ready[0] == pods[1].Name
	})).To(Succeed())
	g.Expect(setPodCondition(ctx, drained, cafev1alpha1.TrafficReadyCondition, corev1.ConditionTrue)).To(Succeed())
	g.Expect(waitForReadyEndpoints(ctx, ns, "gated", 2)).To(Succeed())

	// The watch stream shows the order: the pod turned not Ready and only then
	// left the slice, and it was ready in the slice again at the end.
	g.Expect(rec.WaitForSync(ctx)).To(Succeed())
	events := rec.Events()
	g.Expect(watchrec.Gaps(events)).To(BeEmpty())
	history := watchrec.PodHistory(events, drained.Name)
	g.Expect(history).NotTo(BeEmpty())
	notReadyAt := firstSeq(events, func(e watchrec.Event) bool {
		p := e.Pod
		return p != nil && p.Name == drained.Name && hasCondition(cafev1alpha1.TrafficReadyCondition, corev1.ConditionFalse)(p) && !podReady(p)
	})
	g.Expect(notReadyAt).To(BeNumerically(">", 0), "the pod never turned not Ready after its gate went False")
	leftSliceAt := firstSeqAfter(events, notReadyAt, func(e watchrec.Event) bool {
		s := e.EndpointSlice
		return s != nil && endpointReadiness(s, drained.Name) == "not-ready"
	})
	g.Expect(leftSliceAt).To(BeNumerically(">", notReadyAt), "no EndpointSlice showed the drained pod not ready after it turned not Ready")
}

// The kwok stage shipped in the repo restarts a container whose image is
// patched in place and reports the new image, like a kubelet; the pod keeps
// its identity and IP.
func TestInPlaceImagePatchReportsNewImageWithSameIP(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	ns := framework.CreateNamespace(t, k8sClient)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "inplace"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "example.com/app:v1"},
			{Name: "sidecar", Image: "example.com/sidecar:v1"},
		}},
	}
	g.Expect(k8sClient.Create(ctx, pod)).To(Succeed())
	before := waitForPod(ctx, g, pod, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" })

	patch := client.MergeFrom(before.DeepCopy())
	updated := before.DeepCopy()
	updated.Spec.Containers[0].Image = "example.com/app:v2"
	g.Expect(k8sClient.Patch(ctx, updated, patch)).To(Succeed())

	after := waitForPod(ctx, g, pod, func(p *corev1.Pod) bool {
		s := containerStatus(p, "app")
		return s != nil && s.Image == "example.com/app:v2"
	})
	app, sidecar := containerStatus(after, "app"), containerStatus(after, "sidecar")
	g.Expect(app.RestartCount).To(Equal(int32(1)))
	g.Expect(app.ImageID).To(Equal("kwok://example.com/app:v2"))
	g.Expect(app.Ready).To(BeTrue())
	g.Expect(sidecar.Image).To(Equal("example.com/sidecar:v1"), "an unchanged container keeps its status")
	g.Expect(sidecar.RestartCount).To(Equal(int32(0)))
	g.Expect(after.UID).To(Equal(before.UID))
	g.Expect(after.Spec.NodeName).To(Equal(before.Spec.NodeName))
	g.Expect(after.Status.PodIP).To(Equal(before.Status.PodIP))
	g.Expect(podReady(after)).To(BeTrue())
}

// kwok's volume stages provision a PersistentVolume for each claim of the
// control plane's default StorageClass: a StatefulSet with volumeClaimTemplates
// runs, and a re-created pod gets its old claim (same UID), still Bound.
func TestStatefulSetPodKeepsItsClaimAcrossRecreation(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	ns := framework.CreateNamespace(t, k8sClient)
	labels := map[string]string{"app": "db"}

	headless := service(ns, "db", labels)
	headless.Spec.ClusterIP = corev1.ClusterIPNone
	g.Expect(k8sClient.Create(ctx, headless)).To(Succeed())
	g.Expect(k8sClient.Create(ctx, statefulSet(ns, "db", labels, 2))).To(Succeed())

	g.Expect(waitForPods(ctx, ns, labels, func(pods []*corev1.Pod) bool {
		return len(pods) == 2 && all(pods, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning && podReady(p) })
	})).To(Succeed())
	// The claims carry no class: the default-class admission gave them ours.
	claims := waitForBoundClaims(ctx, g, ns, "data-db-0", "data-db-1")
	for _, c := range claims {
		g.Expect(c.Spec.StorageClassName).To(HaveValue(Equal(controlplane.StorageClassName)))
	}

	pod0 := &corev1.Pod{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "db-0"}, pod0)).To(Succeed())
	g.Expect(k8sClient.Delete(ctx, pod0)).To(Succeed())
	recreated := waitForPod(ctx, g, pod0, func(p *corev1.Pod) bool {
		return p.UID != pod0.UID && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && podReady(p)
	})
	g.Expect(claimNames(recreated)).To(ConsistOf("data-db-0"))

	after := waitForBoundClaims(ctx, g, ns, "data-db-0", "data-db-1")
	for name, c := range claims {
		g.Expect(after[name].UID).To(Equal(c.UID), "claim %s was replaced", name)
		g.Expect(after[name].Spec.VolumeName).To(Equal(c.Spec.VolumeName), "claim %s changed volume", name)
	}
}

// --- builders and waits -----------------------------------------------------

func service(ns, name string, selector map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Selector: selector,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80}},
		},
	}
}

// appTemplate is the pod template every e2e workload runs: one container
// "app" at image v1 serving port 80.
func appTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "example.com/app:v1", Ports: []corev1.ContainerPort{{ContainerPort: 80}}},
		}},
	}
}

func deployment(ns, name string, labels map[string]string, replicas int32, gates []corev1.PodReadinessGate) *appsv1.Deployment {
	template := appTemplate(labels)
	template.Spec.ReadinessGates = gates
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: template,
		},
	}
}

// statefulSet runs appTemplate with one volumeClaimTemplate "data" (no class:
// the default applies) mounted at /data; its pods' claims are data-<name>-<i>.
func statefulSet(ns, name string, labels map[string]string, replicas int32) *appsv1.StatefulSet {
	template := appTemplate(labels)
	template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To(replicas),
			ServiceName: name,
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template:    template,
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}},
		},
	}
}

// waitForBoundClaims waits until exactly the named claims exist in ns, each
// Bound to a volume that is Bound back to it (claimRef UID), and returns them
// by name.
func waitForBoundClaims(ctx context.Context, g Gomega, ns string, names ...string) map[string]*corev1.PersistentVolumeClaim {
	claims := map[string]*corev1.PersistentVolumeClaim{}
	err := framework.WaitForList(ctx, k8sClient, &corev1.PersistentVolumeClaimList{}, func(items []runtime.Object) bool {
		clear(claims)
		for _, o := range items {
			c := o.(*corev1.PersistentVolumeClaim)
			claims[c.Name] = c
		}
		if len(claims) != len(names) {
			return false
		}
		for _, n := range names {
			c, ok := claims[n]
			if !ok || c.Status.Phase != corev1.ClaimBound || c.Spec.VolumeName == "" {
				return false
			}
		}
		return true
	}, client.InNamespace(ns))
	g.Expect(err).NotTo(HaveOccurred(), "claims in %s: last seen %v", ns, claims)

	volumes := map[string]*corev1.PersistentVolume{}
	err = framework.WaitForList(ctx, k8sClient, &corev1.PersistentVolumeList{}, func(items []runtime.Object) bool {
		clear(volumes)
		for _, o := range items {
			v := o.(*corev1.PersistentVolume)
			volumes[v.Name] = v
		}
		for _, c := range claims {
			v, ok := volumes[c.Spec.VolumeName]
			if !ok || v.Status.Phase != corev1.VolumeBound || v.Spec.ClaimRef == nil || v.Spec.ClaimRef.UID != c.UID {
				return false
			}
		}
		return true
	})
	g.Expect(err).NotTo(HaveOccurred(), "volumes of the claims in %s were not Bound to them", ns)
	return claims
}

func claimNames(p *corev1.Pod) []string {
	var names []string
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			names = append(names, v.PersistentVolumeClaim.ClaimName)
		}
	}
	return names
}

func waitForPods(ctx context.Context, ns string, labels map[string]string, cond func([]*corev1.Pod) bool) error {
	return framework.WaitForList(ctx, k8sClient, &corev1.PodList{}, func(items []runtime.Object) bool {
		pods := make([]*corev1.Pod, 0, len(items))
		for _, o := range items {
			pods = append(pods, o.(*corev1.Pod))
		}
		return cond(pods)
	}, client.InNamespace(ns), client.MatchingLabels(labels))
}

func waitForPod(ctx context.Context, g Gomega, pod *corev1.Pod, cond func(*corev1.Pod) bool) *corev1.Pod {
	seen, err := framework.WaitForObject(ctx, k8sClient, &corev1.PodList{}, pod.Namespace, pod.Name, cond)
	g.Expect(err).NotTo(HaveOccurred(), "pod %s: last seen %+v", pod.Name, seen)
	return seen
}

// waitForEndpoints waits until cond holds for the names of the pods listed
// ready in the Service's EndpointSlices.
func waitForEndpoints(ctx context.Context, ns, svc string, cond func(ready []string) bool) error {
	return framework.WaitForList(ctx, k8sClient, &discoveryv1.EndpointSliceList{}, func(items []runtime.Object) bool {
		return cond(readyPodNames(items))
	}, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: svc})
}

func waitForReadyEndpoints(ctx context.Context, ns, svc string, n int) error {
	return waitForEndpoints(ctx, ns, svc, func(ready []string) bool { return len(ready) == n })
}

func readyEndpoints(ctx context.Context, ns, svc string) ([]string, error) {
	slices := &discoveryv1.EndpointSliceList{}
	if err := k8sClient.List(ctx, slices, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: svc}); err != nil {
		return nil, err
	}
	items := make([]runtime.Object, 0, len(slices.Items))
	for i := range slices.Items {
		items = append(items, &slices.Items[i])
	}
	return readyPodNames(items), nil
}

func readyPodNames(slices []runtime.Object) []string {
	var names []string
	for _, o := range slices {
		for _, ep := range o.(*discoveryv1.EndpointSlice).Endpoints {
			if ep.TargetRef != nil && ep.Conditions.Ready != nil && *ep.Conditions.Ready {
				names = append(names, ep.TargetRef.Name)
			}
		}
	}
	return names
}

// endpointReadiness says how a slice lists a pod: "ready", "not-ready" or "absent".
func endpointReadiness(s *discoveryv1.EndpointSlice, pod string) string {
	for _, ep := range s.Endpoints {
		if ep.TargetRef != nil && ep.TargetRef.Name == pod {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				return "ready"
			}
			return "not-ready"
		}
	}
	return "absent"
}

func setPodCondition(ctx context.Context, pod *corev1.Pod, t corev1.PodConditionType, status corev1.ConditionStatus) error {
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":%q,"status":%q,"lastTransitionTime":%q}]}}`, t, status, metav1.Now().UTC().Format("2006-01-02T15:04:05Z"))
	return k8sClient.Status().Patch(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name}},
		client.RawPatch(types.StrategicMergePatchType, []byte(patch)))
}

func podReady(p *corev1.Pod) bool {
	return hasCondition(corev1.PodReady, corev1.ConditionTrue)(p)
}

func hasCondition(t corev1.PodConditionType, status corev1.ConditionStatus) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool {
		for _, c := range p.Status.Conditions {
			if c.Type == t {
				return c.Status == status
			}
		}
		return false
	}
}

func containerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == name {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

func all[T any](items []T, pred func(T) bool) bool {
	for _, it := range items {
		if !pred(it) {
			return false
		}
	}
	return true
}

func firstSeq(events []watchrec.Event, pred func(watchrec.Event) bool) uint64 {
	return firstSeqAfter(events, 0, pred)
}

// firstSeqAfter returns the resource version of the first event after rv
// matching pred, or 0.
func firstSeqAfter(events []watchrec.Event, rv uint64, pred func(watchrec.Event) bool) uint64 {
	for _, e := range events {
		if e.ResourceVersion > rv && pred(e) {
			return e.ResourceVersion
		}
	}
	return 0
}

// update re-reads obj and applies mutate until the update does not conflict
// (controllers write status concurrently, which moves the resourceVersion).
func update[T client.Object](ctx context.Context, obj T, mutate func(T)) error {
	return framework.Update(ctx, k8sClient, obj, mutate)
}
