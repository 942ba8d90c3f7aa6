package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// scaleTo writes replicas through the /scale subresource, as `kubectl
// scale` does.
func scaleTo(ctx context.Context, obj client.Object, replicas int32) error {
	scale := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: replicas}}
	return k8sClient.SubResource("scale").Update(ctx, obj, client.WithSubResourceBody(scale))
}

func validInPlaceSet(name string) *cafev1alpha1.InPlaceSet {
	labels := map[string]string{"app": "ips"}
	return &cafev1alpha1.InPlaceSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: cafev1alpha1.InPlaceSetSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:v1"}}},
			},
		},
	}
}

// Finding 1: `kubectl scale --replicas=80000000` by a namespace editor is
// refused by the API server itself, through the scale subresource, for both
// kinds that have one; so are creates.
func TestSecurityF1a_ScaleToHugeReplicasRefused(t *testing.T) {
	requireAPIServer(t)
	ctx := context.Background()
	for _, obj := range []client.Object{validCafeDeployment("f1a-scale"), validInPlaceSet("f1a-scale")} {
		t.Run(fmt.Sprintf("%T", obj), func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(k8sClient.Create(ctx, obj)).To(Succeed())
			t.Cleanup(func() { _ = k8sClient.Delete(ctx, obj) })

			expectInvalid(g, scaleTo(ctx, obj, 80000000), "spec.replicas")
			g.Expect(scaleTo(ctx, obj, cafev1alpha1.MaxReplicas)).To(Succeed(), "the bound itself is allowed")
		})
	}
	g := NewWithT(t)
	cd := validCafeDeployment("f1a-create")
	cd.Spec.Replicas = ptr.To[int32](cafev1alpha1.MaxReplicas + 1)
	expectInvalid(g, k8sClient.Create(ctx, cd), "spec.replicas")
	app := validApp("f1a-create")
	app.Spec.Workload.Replicas = ptr.To[int32](2000000000)
	expectInvalid(g, k8sClient.Create(ctx, app), "spec.workload.replicas")
	ips := validInPlaceSet("f1a-partition")
	ips.Spec.UpdateStrategy.Partition = ptr.To[int32](2000000000)
	expectInvalid(g, k8sClient.Create(ctx, ips), "spec.updateStrategy.partition")
}

// Finding 11: a spec that needs more release groups than
// status.release.groups holds (512) is refused, on create and through
// /scale, and the largest one that fits is admitted.
func TestSecurityF11b_TooManyReleaseGroupsRefused(t *testing.T) {
	requireAPIServer(t)
	ctx := context.Background()
	g := NewWithT(t)

	cd := validCafeDeployment("f11b-groups")
	cd.Spec.Strategy.BatchSize = ptr.To(intstr.FromInt32(1))
	cd.Spec.Replicas = ptr.To[int32](600)
	cd.Spec.Strategy.MinAvailable = nil
	expectInvalid(g, k8sClient.Create(ctx, cd), "spec.strategy.batchSize")

	// The beta group + 511 batches of one pod: exactly 512.
	cd.Spec.Replicas = ptr.To[int32](cafev1alpha1.MaxReleaseGroups)
	g.Expect(k8sClient.Create(ctx, cd)).To(Succeed())
	t.Cleanup(func() { _ = k8sClient.Delete(ctx, cd) })
	expectInvalid(g, scaleTo(ctx, cd, cafev1alpha1.MaxReleaseGroups+1), "spec.strategy.batchSize")

	// UnitByUnit may split a batch at each unit's end: one more per unit
	// after the first.
	ubu := validCafeDeployment("f11b-unitbyunit")
	ubu.Spec.Strategy.BatchSize = ptr.To(intstr.FromInt32(1))
	ubu.Spec.Strategy.GroupOrder = cafev1alpha1.GroupOrderUnitByUnit
	ubu.Spec.Replicas = ptr.To[int32](cafev1alpha1.MaxReleaseGroups - 1)
	expectInvalid(g, k8sClient.Create(ctx, ubu), "spec.strategy.batchSize")

	app := validApp("f11b-groups")
	app.Spec.Workload.Strategy.BatchSize = ptr.To(intstr.FromInt32(1))
	app.Spec.Workload.Replicas = ptr.To[int32](600)
	expectInvalid(g, k8sClient.Create(ctx, app), "spec.workload.strategy.batchSize")

	// A percentage never needs more than 100 batches.
	pct := validCafeDeployment("f11b-percent")
	pct.Spec.Strategy.BatchSize = ptr.To(intstr.FromString("1%"))
	pct.Spec.Replicas = ptr.To[int32](cafev1alpha1.MaxReplicas)
	g.Expect(k8sClient.Create(ctx, pct, client.DryRunAll)).To(Succeed())
}

// Finding 11: names and units that cannot become the label values and
// object names CAFE derives from them are refused when the object is
// created, naming the field, instead of failing on every reconcile.
func TestSecurityF11a_NamesThatCannotBecomeLabelsOrNamesRefused(t *testing.T) {
	requireAPIServer(t)
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name  string
		obj   func() client.Object
		field string
	}{
		{"a CafeDeployment name of 64 characters", func() client.Object { return validCafeDeployment(long(64)) }, "metadata.name"},
		{"a CafeDeployment name with a dot", func() client.Object { return validCafeDeployment("web.v2") }, "metadata.name"},
		{"an upper-case unit", func() client.Object {
			cd := validCafeDeployment("f11a-upper")
			cd.Spec.Topology.Values = []string{"Zone-A"}
			return cd
		}, "spec.topology.values"},
		{"a unit with an underscore", func() client.Object {
			cd := validCafeDeployment("f11a-underscore")
			cd.Spec.Topology.Values = []string{"zone_a"}
			return cd
		}, "spec.topology.values"},
		{"name and unit longer than a label value together", func() client.Object {
			cd := validCafeDeployment(long(40))
			cd.Spec.Topology.Values = []string{"zone-a", long(23)}
			return cd
		}, "spec.topology.values"},
		{"name and unit too long for a StatefulSet's revision label", func() client.Object {
			cd := validCafeDeployment(long(40))
			cd.Spec.PodSetType = cafev1alpha1.PodSetTypeStatefulSet
			cd.Spec.Topology.Values = []string{long(12)}
			return cd
		}, "spec.topology.values"},
		{"an app name and unit longer than a label value together", func() client.Object {
			app := validApp(long(40))
			app.Spec.Workload.Topology.Values = []string{long(23)}
			return app
		}, "spec.workload.topology.values"},
		{"an InPlaceSet name of 64 characters", func() client.Object { return validInPlaceSet(long(64)) }, "metadata.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			obj := tt.obj()
			err := tryCreate(obj)
			expectInvalid(g, err, tt.field)
		})
	}
	g := NewWithT(t)
	fits := validCafeDeployment(long(40))
	fits.Spec.Topology.Values = []string{long(22)}
	g.Expect(k8sClient.Create(context.Background(), fits, client.DryRunAll)).To(Succeed(), "<name>-<unit> of exactly 63 characters fits")
}

// Finding 8: a pod template may not carry CAFE's control annotations
// (cafe.io/migration-requested and the like): every pod would be born asking
// to be migrated, drained or force-deleted.
func TestSecurityF8a_ControlAnnotationsInPodTemplatesRefused(t *testing.T) {
	requireAPIServer(t)
	annotate := func(t *corev1.PodTemplateSpec) {
		t.Annotations = map[string]string{"example.com/ok": "x", cafev1alpha1.MigrationRequestedAnnotation: "node failed"}
	}
	cd := validCafeDeployment("f8a-template")
	annotate(&cd.Spec.Template)
	ips := validInPlaceSet("f8a-template")
	annotate(&ips.Spec.Template)
	app := validApp("f8a-template")
	annotate(&app.Spec.Template)
	for _, obj := range []client.Object{cd, ips, app} {
		g := NewWithT(t)
		err := tryCreate(obj)
		expectInvalid(g, err, "spec.template.metadata.annotations")
	}
}
