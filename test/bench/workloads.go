package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/release/plan"
)

// Every scenario runs the same app: one container, images v1 then v2,
// behind a Service selecting app=bench.
const (
	appLabel      = "app"
	appName       = "bench"
	containerName = "app"
	imageV1       = "example.com/bench:v1"
	imageV2       = "example.com/bench:v2"
	hostnameKey   = "kubernetes.io/hostname"
)

// shape is what every workload of a run has in common.
type shape struct {
	Replicas int32
	Zones    []string
	// BatchSize is the CafeDeployment's release group size.
	BatchSize int32
	// MaxUnavailable is the Deployment's maxUnavailable over all replicas.
	MaxUnavailable int32
}

// workload is one kind of object that runs the app's pods.
type workload interface {
	// Kind names the object in the report.
	Kind() string
	// Create creates it with image.
	Create(ctx context.Context, c client.Client, ns, image string) error
	// SetImage changes its pod template's image: the release.
	SetImage(ctx context.Context, c client.Client, ns, image string) error
	// WaitDone waits until its controller reports every replica updated
	// and available.
	WaitDone(ctx context.Context, c client.WithWatch, ns string) error
	// Describe summarises its status and that of what it owns, for a
	// report on a release that did not finish.
	Describe(ctx context.Context, c client.Client, ns string) string
	// Settings lists the release settings used, for the report.
	Settings() []string
	// WaterLevel is the fewest Ready pods its settings promise during the
	// release, which the watch stream is checked against.
	WaterLevel() int
}

// groupedRelease is a workload that releases in groups and records them.
type groupedRelease interface {
	GroupDurations(ctx context.Context, c client.Client, ns string) ([]time.Duration, error)
}

func appLabels() map[string]string { return map[string]string{appLabel: appName} }

// podTemplate is the app's pod template, identical for every workload.
func podTemplate(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: appLabels()},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  containerName,
			Image: image,
			Ports: []corev1.ContainerPort{{ContainerPort: 80}},
		}}},
	}
}

// service selects the app's pods; its EndpointSlices are where the
// lossless protocol (and the benchmark) see traffic.
func service(ns string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: appName},
		Spec: corev1.ServiceSpec{
			Selector: appLabels(),
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(80)}},
		},
	}
}

// setImage replaces the object's template containers with those of the
// app's template at image. It is a JSON merge patch (CRDs take no strategic
// merge patch), which replaces the list whole: hence the whole container.
func setImage(ctx context.Context, c client.Client, obj client.Object, image string) error {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"containers": podTemplate(image).Spec.Containers,
	}}}})
	if err != nil {
		return fmt.Errorf("encoding the image patch: %w", err)
	}
	if err := c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("setting the image of %s to %s: %w", client.ObjectKeyFromObject(obj), image, err)
	}
	return nil
}

// cafeDeployment is a CafeDeployment in one podSetType: InPlaceSet
// (scenario a) or ReplicaSet (scenario c).
type cafeDeployment struct {
	shape shape
	mode  cafev1alpha1.PodSetType
	// ownEndpoints: spec.endpoints names the app's Service, which has no
	// selector; CAFE writes its EndpointSlices (scenario
	// inplaceset-endpoints).
	ownEndpoints bool
}

// inPlaceEndpointsKey is the scenario of an InPlaceSet release whose
// Service's endpoints CAFE writes.
const inPlaceEndpointsKey = "inplaceset-endpoints"

func (w cafeDeployment) Kind() string {
	if w.ownEndpoints {
		return fmt.Sprintf("CafeDeployment (podSetType %s, spec.endpoints)", w.mode)
	}
	return fmt.Sprintf("CafeDeployment (podSetType %s)", w.mode)
}

// Service is the app's Service, without its selector when CAFE writes its
// endpoints.
func (w cafeDeployment) Service(ns string) *corev1.Service {
	svc := service(ns)
	if w.ownEndpoints {
		svc.Spec.Selector = nil
	}
	return svc
}

func (w cafeDeployment) object(ns, image string) *cafev1alpha1.CafeDeployment {
	cd := w.spec(ns, image)
	if w.ownEndpoints {
		cd.Spec.Endpoints = &cafev1alpha1.PodSetEndpoints{Service: appName}
	}
	return cd
}

func (w cafeDeployment) spec(ns, image string) *cafev1alpha1.CafeDeployment {
	return &cafev1alpha1.CafeDeployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: appName},
		Spec: cafev1alpha1.CafeDeploymentSpec{
			Replicas:   ptr.To(w.shape.Replicas),
			Selector:   &metav1.LabelSelector{MatchLabels: appLabels()},
			Template:   podTemplate(image),
			PodSetType: w.mode,
			Topology:   cafev1alpha1.Topology{UnitType: cafev1alpha1.UnitTypeZone, Values: w.shape.Zones},
			Strategy: cafev1alpha1.CafeDeploymentStrategy{
				UpgradeType:           cafev1alpha1.UpgradeTypeBatch,
				BatchSize:             ptr.To(intstr.FromInt32(w.shape.BatchSize)),
				GroupOrder:            cafev1alpha1.GroupOrderInterleaved,
				NeedWaitingForConfirm: ptr.To(false),
				MaxUnavailable:        ptr.To(intstr.FromInt32(w.maxUnavailablePerUnit())),
			},
		},
	}
}

// maxUnavailablePerUnit is the largest number of pods one release group
// takes from one unit (34 for 1,000 replicas in groups of 100 over 3
// zones: the plan splits each group 34/33/33). With it every unit drains
// its whole share of a group at once, and since a release holds at most a
// group's worth of pods in operation, at most batchSize (100) pods are
// unavailable at any time: the Deployment's maxUnavailable.
func (w cafeDeployment) maxUnavailablePerUnit() int32 {
	p, err := w.plan()
	if err != nil {
		return 1
	}
	var most int32 = 1
	prev := map[string]int32{}
	for _, g := range p.Groups {
		for u, n := range g.Cumulative {
			most = max(most, n-prev[u])
			prev[u] = n
		}
	}
	return most
}

// firstGroupSplit renders how many pods the first group takes from each
// unit, e.g. "34/33/33".
func (w cafeDeployment) firstGroupSplit() string {
	p, err := w.plan()
	if err != nil || len(p.Groups) == 0 {
		return "no groups"
	}
	parts := make([]string, 0, len(p.Units))
	for _, u := range p.Units {
		parts = append(parts, strconv.Itoa(int(p.Groups[0].Cumulative[u])))
	}
	return strings.Join(parts, "/")
}

// plan is the release plan CAFE computes for the spec.
func (w cafeDeployment) plan() (plan.Plan, error) {
	spec := cafev1alpha1.CafeDeploymentSpec{
		Replicas: ptr.To(w.shape.Replicas),
		Topology: cafev1alpha1.Topology{UnitType: cafev1alpha1.UnitTypeZone, Values: w.shape.Zones},
		Strategy: cafev1alpha1.CafeDeploymentStrategy{
			UpgradeType: cafev1alpha1.UpgradeTypeBatch,
			BatchSize:   ptr.To(intstr.FromInt32(w.shape.BatchSize)),
			GroupOrder:  cafev1alpha1.GroupOrderInterleaved,
		},
	}
	p, err := plan.New(spec)
	if err != nil {
		return p, fmt.Errorf("planning the release: %w", err)
	}
	return p, nil
}

func (w cafeDeployment) Settings() []string {
	groups := "?"
	if p, err := w.plan(); err == nil {
		groups = fmt.Sprintf("%d groups: %s", len(p.Groups), p.String())
	}
	return []string{
		fmt.Sprintf("podSetType %s, topology Zone %s, %d replicas", w.mode, strings.Join(w.shape.Zones, "/"), w.shape.Replicas),
		fmt.Sprintf("strategy: upgradeType Batch, batchSize %d, groupOrder Interleaved, needWaitingForConfirm false, maxUnavailable %d per unit, no minAvailable", w.shape.BatchSize, w.maxUnavailablePerUnit()),
		"release plan (" + groups + ")",
		w.protocol(),
	}
}

// protocol says what the lossless protocol does to a pod in this mode.
func (w cafeDeployment) protocol() string {
	if w.ownEndpoints {
		return "lossless protocol on, endpoints written by CAFE (spec.endpoints, a Service without a selector): the pod dropped from the unit's EndpointSlice, image patched in place, the pod listed again once ready (no gate write)"
	}
	if w.mode == cafev1alpha1.PodSetTypeReplicaSet {
		return "lossless protocol on (always, for every pod CAFE manages): readiness gate cafe.io/traffic-ready closed, EndpointSlices drop the pod, pod marked with the lowest pod-deletion-cost, old ReplicaSet scaled down (it deletes that pod), new ReplicaSet scaled up (maxSurgeSizeInGroup 0), the new pod's gate opened once ready"
	}
	return "lossless protocol on (always, for every pod CAFE manages): readiness gate cafe.io/traffic-ready closed, EndpointSlices drop the pod, image patched in place, gate reopened"
}

// WaterLevel: with no minAvailable, at most a group's worth of pods is in
// operation at once.
func (w cafeDeployment) WaterLevel() int { return int(w.shape.Replicas - w.shape.BatchSize) }

func (w cafeDeployment) Create(ctx context.Context, c client.Client, ns, image string) error {
	return create(ctx, c, "the CafeDeployment", w.object(ns, image))
}

func (w cafeDeployment) SetImage(ctx context.Context, c client.Client, ns, image string) error {
	return setImage(ctx, c, &cafev1alpha1.CafeDeployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: appName}}, image)
}

func (w cafeDeployment) WaitDone(ctx context.Context, c client.WithWatch, ns string) error {
	n := w.shape.Replicas
	err := waitForObject(ctx, c, &cafev1alpha1.CafeDeploymentList{}, ns, appName, func(cd *cafev1alpha1.CafeDeployment) bool {
		st := cd.Status
		return st.ObservedGeneration == cd.Generation && st.Release.Phase == cafev1alpha1.ReleasePhaseCompleted &&
			st.CurrentRevision == st.UpdateRevision && ptr.Deref(st.UpdatedReplicas, 0) == n && ptr.Deref(st.AvailableReplicas, 0) == n
	})
	if err != nil {
		return fmt.Errorf("waiting for the CafeDeployment to report the release Completed: %w", err)
	}
	return nil
}

func (w cafeDeployment) Describe(ctx context.Context, c client.Client, ns string) string {
	var b strings.Builder
	cd := &cafev1alpha1.CafeDeployment{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: appName}, cd); err != nil {
		return fmt.Sprintf("reading the CafeDeployment: %v", err)
	}
	st := cd.Status
	fmt.Fprintf(&b, "CafeDeployment: generation %d, observedGeneration %d, release phase %s, group %d of %d, replicas %d, ready %d, available %d, updated %d\n",
		cd.Generation, st.ObservedGeneration, st.Release.Phase, ptr.Deref(st.Release.CurrentGroup, -1), ptr.Deref(st.Release.TotalGroups, -1),
		ptr.Deref(st.Replicas, 0), ptr.Deref(st.ReadyReplicas, 0), ptr.Deref(st.AvailableReplicas, 0), ptr.Deref(st.UpdatedReplicas, 0))
	writeConditions(&b, "  ", st.Conditions)
	sets := &cafev1alpha1.InPlaceSetList{}
	if err := c.List(ctx, sets, client.InNamespace(ns)); err != nil {
		fmt.Fprintf(&b, "listing InPlaceSets: %v\n", err)
		return b.String()
	}
	for _, s := range sets.Items {
		ss := s.Status
		fmt.Fprintf(&b, "InPlaceSet %s: partition %d, maxUnavailable %s, generation %d, observedGeneration %d, replicas %d, ready %d, available %d, updated %d, updatedReady %d\n",
			s.Name, ptr.Deref(s.Spec.UpdateStrategy.Partition, 0), s.Spec.UpdateStrategy.MaxUnavailable, s.Generation, ss.ObservedGeneration,
			ptr.Deref(ss.Replicas, 0), ptr.Deref(ss.ReadyReplicas, 0), ptr.Deref(ss.AvailableReplicas, 0), ptr.Deref(ss.UpdatedReplicas, 0), ptr.Deref(ss.UpdatedReadyReplicas, 0))
		writeConditions(&b, "  ", ss.Conditions)
	}
	return b.String()
}

// GroupDurations reads how long each release group took, from the
// CafeDeployment's status.release.groups (start and finish times, to the
// second).
func (w cafeDeployment) GroupDurations(ctx context.Context, c client.Client, ns string) ([]time.Duration, error) {
	cd := &cafev1alpha1.CafeDeployment{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: appName}, cd); err != nil {
		return nil, fmt.Errorf("reading the CafeDeployment's release record: %w", err)
	}
	var out []time.Duration
	for _, g := range cd.Status.Release.Groups {
		if g.StartTime != nil && g.FinishTime != nil {
			out = append(out, g.FinishTime.Sub(g.StartTime.Time))
		}
	}
	return out, nil
}

func writeConditions(b *strings.Builder, indent string, conditions []metav1.Condition) {
	for _, c := range conditions {
		fmt.Fprintf(b, "%s%s=%s (%s): %s\n", indent, c.Type, c.Status, c.Reason, c.Message)
	}
}

// deployment is scenario (b): a native apps/v1 Deployment.
type deployment struct{ shape shape }

func (deployment) Kind() string { return "Deployment (apps/v1)" }

func (w deployment) object(ns, image string) *appsv1.Deployment {
	template := podTemplate(image)
	// As CAFE does per unit: spread over the zones (hard) and over the
	// nodes (soft).
	template.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{
		{MaxSkew: 1, TopologyKey: corev1.LabelTopologyZone, WhenUnsatisfiable: corev1.DoNotSchedule, LabelSelector: &metav1.LabelSelector{MatchLabels: appLabels()}},
		{MaxSkew: 1, TopologyKey: hostnameKey, WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: &metav1.LabelSelector{MatchLabels: appLabels()}},
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: appName},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(w.shape.Replicas),
			Selector: &metav1.LabelSelector{MatchLabels: appLabels()},
			Template: template,
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					// Integers: the string "0" fails validation for maxSurge.
					MaxUnavailable: ptr.To(intstr.FromInt32(w.shape.MaxUnavailable)),
					MaxSurge:       ptr.To(intstr.FromInt32(0)),
				},
			},
		},
	}
}

func (w deployment) Settings() []string {
	return []string{
		fmt.Sprintf("%d replicas, topologySpreadConstraints: zone maxSkew 1 DoNotSchedule, hostname maxSkew 1 ScheduleAnyway", w.shape.Replicas),
		fmt.Sprintf("strategy: RollingUpdate, maxUnavailable %d, maxSurge 0 (integers)", w.shape.MaxUnavailable),
	}
}

func (w deployment) WaterLevel() int { return int(w.shape.Replicas - w.shape.MaxUnavailable) }

func (w deployment) Create(ctx context.Context, c client.Client, ns, image string) error {
	return create(ctx, c, "the Deployment", w.object(ns, image))
}

func (w deployment) SetImage(ctx context.Context, c client.Client, ns, image string) error {
	return setImage(ctx, c, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: appName}}, image)
}

func (w deployment) WaitDone(ctx context.Context, c client.WithWatch, ns string) error {
	n := w.shape.Replicas
	err := waitForObject(ctx, c, &appsv1.DeploymentList{}, ns, appName, func(d *appsv1.Deployment) bool {
		st := d.Status
		return st.ObservedGeneration == d.Generation && st.Replicas == n && st.UpdatedReplicas == n && st.AvailableReplicas == n && st.UnavailableReplicas == 0
	})
	if err != nil {
		return fmt.Errorf("waiting for the Deployment to report every replica updated and available: %w", err)
	}
	return nil
}

func (w deployment) Describe(ctx context.Context, c client.Client, ns string) string {
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: appName}, d); err != nil {
		return fmt.Sprintf("reading the Deployment: %v", err)
	}
	st := d.Status
	return fmt.Sprintf("Deployment: generation %d, observedGeneration %d, replicas %d, updated %d, ready %d, available %d, unavailable %d\n",
		d.Generation, st.ObservedGeneration, st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas, st.UnavailableReplicas)
}
