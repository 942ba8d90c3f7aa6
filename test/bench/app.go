package main

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// appRollback is the scenario "rollback": a CafeAppService whose pods run
// the image it is created with (its second revision), rolled back with
// `cafe app rollback --fast` to its first revision, which runs the image
// the benchmark releases. The measured wall time is thus from the
// rollback command to every pod back on the old revision.
//
// Create publishes r1 (the release image) and then r2 (the create image),
// both complete, so a rollback target exists. With the gate protocol the
// benchmark's Service selects the pods (the app declares no port of its
// own, so it keeps no Service that would collide with it); with
// ownEndpoints the app declares the benchmark's port and owns the Service
// (spec.workload.endpoints CAFE: no selector, CAFE writes its
// EndpointSlices), so it is named like the benchmark's Service.
type appRollback struct {
	shape        shape
	ownEndpoints bool
}

// appServiceName is the gated app's name; its CafeDeployment has the same
// name.
const appServiceName = appName + "-app"

// appRollbackEndpointsKey is the rollback scenario of an app whose
// Service's endpoints CAFE writes.
const appRollbackEndpointsKey = "app-rollback-endpoints"

// name is the app's (and its CafeDeployment's) name: the benchmark's
// Service name when the app owns that Service.
func (w appRollback) name() string {
	if w.ownEndpoints {
		return appName
	}
	return appServiceName
}

func (w appRollback) Kind() string {
	if w.ownEndpoints {
		return "CafeAppService rollback --fast (CafeDeployment podSetType InPlaceSet, spec.workload.endpoints CAFE)"
	}
	return "CafeAppService rollback --fast (CafeDeployment podSetType InPlaceSet)"
}

func (w appRollback) cd() cafeDeployment {
	return cafeDeployment{shape: w.shape, mode: cafev1alpha1.PodSetTypeInPlaceSet, ownEndpoints: w.ownEndpoints}
}

// Service is the Service in front of the app's pods: the app's own, as it
// writes it, when CAFE writes its endpoints (CreatesService).
func (w appRollback) Service(ns string) *corev1.Service {
	return w.cd().Service(ns)
}

// CreatesService: the app owns the Service when CAFE writes its endpoints.
func (w appRollback) CreatesService() bool { return w.ownEndpoints }

func (w appRollback) object(ns, image string) *cafev1alpha1.CafeAppService {
	cd := w.cd().object(ns, image)
	// Issue 14's fast rollback: the water level is its only bound.
	cd.Spec.Strategy.MinAvailable = ptr.To(intstr.FromString(appMinAvailable))
	app := &cafev1alpha1.CafeAppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: w.name()},
		Spec: cafev1alpha1.CafeAppServiceSpec{
			Template: cd.Spec.Template,
			Config:   cafev1alpha1.AppConfig{Env: map[string]string{"MODE": "bench"}},
			Workload: cafev1alpha1.AppWorkload{
				Replicas:   cd.Spec.Replicas,
				PodSetType: cafev1alpha1.PodSetTypeInPlaceSet,
				Topology:   cd.Spec.Topology,
				Strategy:   cd.Spec.Strategy,
			},
		},
	}
	if w.ownEndpoints {
		app.Spec.Workload.Endpoints = cafev1alpha1.AppEndpointsCAFE
		for _, p := range service(ns).Spec.Ports {
			app.Spec.Service.Ports = append(app.Spec.Service.Ports, cafev1alpha1.AppServicePort{Name: p.Name, Port: p.Port, TargetPort: p.TargetPort.IntVal})
		}
	}
	return app
}

// appMinAvailable is the rollback app's water level.
const appMinAvailable = "50%"

func (w appRollback) Settings() []string {
	s := w.cd().Settings()
	owner := "CafeAppService " + w.name() + " owning CafeDeployment " + w.name() + ": "
	if w.ownEndpoints {
		owner = "CafeAppService " + w.name() + " (spec.workload.endpoints CAFE: it owns Service " + w.name() + ", without a selector) owning CafeDeployment " + w.name() + " (spec.endpoints): "
	}
	s[0] = owner + s[0]
	s[1] = strings.Replace(s[1], "no minAvailable", "minAvailable "+appMinAvailable, 1)
	return append(s,
		"set-up: r1 at "+imageV2+" published and complete, then r2 at "+imageV1+" published and complete (same config, so both revisions' pods read one ConfigMap and the rollback is in place)",
		"release: `cafe app rollback --fast` (spec.publishedRevision r1 and cafe.io/fast-release r1: one group, bound by the water level alone: up to "+appMinAvailable+" of the pods in operation at once)")
}

// WaterLevel is minAvailable (appMinAvailable) of the replicas.
func (w appRollback) WaterLevel() int {
	n, err := intstr.GetScaledValueFromIntOrPercent(ptr.To(intstr.FromString(appMinAvailable)), int(w.shape.Replicas), true)
	if err != nil {
		return int(w.shape.Replicas)
	}
	return n
}

// Create runs the set-up releases: r1 at imageV2, then r2 at image.
func (w appRollback) Create(ctx context.Context, c client.Client, ns, image string) error {
	if err := create(ctx, c, "the CafeAppService", w.object(ns, imageV2)); err != nil {
		return err
	}
	wc, ok := c.(client.WithWatch)
	if !ok {
		return fmt.Errorf("the benchmark's client cannot watch")
	}
	if err := w.publishWhenRecorded(ctx, wc, ns, cafev1alpha1.AppRevisionName(w.name(), 1), false); err != nil {
		return err
	}
	if err := w.WaitDone(ctx, wc, ns); err != nil {
		return err
	}
	if err := w.edit(ctx, c, ns, func(a *cafev1alpha1.CafeAppService) { a.Spec.Template = w.object(ns, image).Spec.Template }); err != nil {
		return err
	}
	return w.publishWhenRecorded(ctx, wc, ns, cafev1alpha1.AppRevisionName(w.name(), 2), false)
}

// SetImage is the rollback: r1 runs imageV2, the image the benchmark
// releases.
func (w appRollback) SetImage(ctx context.Context, c client.Client, ns, image string) error {
	if image != imageV2 {
		return fmt.Errorf("the rollback scenario releases %s (its first revision), not %s", imageV2, image)
	}
	return w.edit(ctx, c, ns, func(a *cafev1alpha1.CafeAppService) {
		a.Spec.PublishedRevision = cafev1alpha1.AppRevisionName(w.name(), 1)
		metav1.SetMetaDataAnnotation(&a.ObjectMeta, cafev1alpha1.FastReleaseAnnotation, a.Spec.PublishedRevision)
	})
}

// publishWhenRecorded waits until the app records rev, then publishes it.
func (w appRollback) publishWhenRecorded(ctx context.Context, c client.WithWatch, ns, rev string, fast bool) error {
	err := waitForObject(ctx, c, &cafev1alpha1.CafeAppServiceList{}, ns, w.name(), func(a *cafev1alpha1.CafeAppService) bool {
		return a.Status.LatestRevision == rev
	})
	if err != nil {
		return fmt.Errorf("waiting for the app to record %s: %w", rev, err)
	}
	return w.edit(ctx, c, ns, func(a *cafev1alpha1.CafeAppService) {
		a.Spec.PublishedRevision = rev
		if fast {
			metav1.SetMetaDataAnnotation(&a.ObjectMeta, cafev1alpha1.FastReleaseAnnotation, rev)
		}
	})
}

func (w appRollback) edit(ctx context.Context, c client.Client, ns string, mutate func(*cafev1alpha1.CafeAppService)) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		a := &cafev1alpha1.CafeAppService{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: w.name()}, a); err != nil {
			return err
		}
		mutate(a)
		return c.Update(ctx, a)
	})
	if err != nil {
		return fmt.Errorf("updating the CafeAppService: %w", err)
	}
	return nil
}

// WaitDone waits until the published revision succeeded: every pod runs it
// and is available.
func (w appRollback) WaitDone(ctx context.Context, c client.WithWatch, ns string) error {
	err := waitForObject(ctx, c, &cafev1alpha1.CafeAppServiceList{}, ns, w.name(), func(a *cafev1alpha1.CafeAppService) bool {
		return a.Spec.PublishedRevision != "" && a.Status.ObservedGeneration == a.Generation && a.Status.PublishedRevision == a.Spec.PublishedRevision &&
			a.Status.LastSuccessfulRevision == a.Spec.PublishedRevision && meta.IsStatusConditionTrue(a.Status.Conditions, cafev1alpha1.AppReadyCondition)
	})
	if err != nil {
		return fmt.Errorf("waiting for the app to report its published revision released: %w", err)
	}
	return nil
}

func (w appRollback) Describe(ctx context.Context, c client.Client, ns string) string {
	var b strings.Builder
	a := &cafev1alpha1.CafeAppService{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: w.name()}, a); err != nil {
		return fmt.Sprintf("reading the CafeAppService: %v", err)
	}
	fmt.Fprintf(&b, "CafeAppService: generation %d, observedGeneration %d, published %s (acted on: %s), latest %s, last successful %s\n",
		a.Generation, a.Status.ObservedGeneration, a.Spec.PublishedRevision, a.Status.PublishedRevision, a.Status.LatestRevision, a.Status.LastSuccessfulRevision)
	writeConditions(&b, "  ", a.Status.Conditions)
	for _, r := range a.Status.Revisions {
		fmt.Fprintf(&b, "  revision %s: outcome %s\n", r.Name, orNone(string(r.Outcome)))
	}
	cd := &cafev1alpha1.CafeDeployment{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: w.name()}, cd); err != nil {
		fmt.Fprintf(&b, "reading the app's CafeDeployment: %v\n", err)
		return b.String()
	}
	st := cd.Status
	fmt.Fprintf(&b, "CafeDeployment %s: generation %d, observedGeneration %d, release phase %s, group %d of %d, updated %d, available %d\n",
		cd.Name, cd.Generation, st.ObservedGeneration, st.Release.Phase, deref(st.Release.CurrentGroup), deref(st.Release.TotalGroups), deref(st.UpdatedReplicas), deref(st.AvailableReplicas))
	writeConditions(&b, "  ", st.Conditions)
	return b.String()
}

func deref(p *int32) int32 {
	if p == nil {
		return -1
	}
	return *p
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
