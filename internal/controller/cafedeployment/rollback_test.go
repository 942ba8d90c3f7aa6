package cafedeployment_test

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/test/framework"
)

// templateDifferences are the ways two revisions' templates differ: each
// turns the base template (one container "app", image app:v1, port 80,
// one emptyDir volume) into the other revision's.
var templateDifferences = map[string]func(*corev1.PodTemplateSpec){
	"resources": func(t *corev1.PodTemplateSpec) {
		t.Spec.Containers[0].Resources = corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("1Gi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
		}
	},
	"env": func(t *corev1.PodTemplateSpec) {
		t.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MODE", Value: "green"}, {Name: "EXTRA", Value: "1"}}
	},
	"volumes": func(t *corev1.PodTemplateSpec) {
		t.Spec.Volumes[0].EmptyDir.Medium = corev1.StorageMediumMemory
		t.Spec.Volumes = append(t.Spec.Volumes, corev1.Volume{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		t.Spec.Containers[0].VolumeMounts = append(t.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "cache", MountPath: "/cache"})
	},
	"probes": func(t *corev1.PodTemplateSpec) {
		t.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(80)}}}
	},
	"ports": func(t *corev1.PodTemplateSpec) { t.Spec.Containers[0].Ports = nil },
	"init containers": func(t *corev1.PodTemplateSpec) {
		t.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "migrate:v1"}}
	},
	"annotations and labels": func(t *corev1.PodTemplateSpec) {
		t.Annotations = map[string]string{"example.com/note": "b"}
		t.Labels["track"] = "b"
	},
	"image": func(t *corev1.PodTemplateSpec) { t.Spec.Containers[0].Image = "app:v2" },
}

// rollbackDeployment is a CafeDeployment of one pod per zone, released in
// one group without confirmation, with the base template of
// templateDifferences.
func rollbackDeployment(ns, name string, podSetType cafev1alpha1.PodSetType) *cafev1alpha1.CafeDeployment {
	cd := newCafeDeployment(ns, name, "app:v1")
	cd.Spec.PodSetType = podSetType
	cd.Spec.Replicas = ptr.To[int32](3)
	cd.Spec.Strategy = cafev1alpha1.CafeDeploymentStrategy{UpgradeType: cafev1alpha1.UpgradeTypeBatch, BatchSize: ptr.To(intstr.FromInt32(3))}
	c := &cd.Spec.Template.Spec.Containers[0]
	c.Env = []corev1.EnvVar{{Name: "MODE", Value: "blue"}}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
	cd.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	return cd
}

// TestRollbackTemplateDifferences releases A→B and rolls back B→A (A→B→A)
// for every kind of template difference, in both directions (B adds what
// A lacks, and removes it again), with every pod-set driver: the pod sets
// must carry exactly the target template after each step, and the
// InPlaceSet pods run it. Before the pod sets were written whole, a
// rollback that emptied a field (resources) could never be written.
func TestRollbackTemplateDifferences(t *testing.T) {
	framework.RequireAPIServer(t)
	for _, podSetType := range []cafev1alpha1.PodSetType{cafev1alpha1.PodSetTypeInPlaceSet, cafev1alpha1.PodSetTypeReplicaSet, cafev1alpha1.PodSetTypeStatefulSet} {
		for diff, mutate := range templateDifferences {
			for _, direction := range []string{"added", "removed"} {
				name := strings.ToLower(string(podSetType)) + "-" + strings.ReplaceAll(diff, " ", "-") + "-" + direction
				t.Run(name, func(t *testing.T) {
					ctx, g, ns := suite.Setup(t)
					cd := rollbackDeployment(ns, "app", podSetType)
					a, b := cd.Spec.Template.DeepCopy(), cd.Spec.Template.DeepCopy()
					mutate(b)
					if direction == "removed" {
						a, b = b, a
					}
					cd.Spec.Template = *a
					createDeployment(ctx, t, g, cd)
					if podSetType == cafev1alpha1.PodSetTypeStatefulSet {
						t.Cleanup(func() {
							_ = suite.Client.DeleteAllOf(context.Background(), &appsv1.StatefulSet{}, client.InNamespace(ns))
						})
					}
					for step, target := range []*corev1.PodTemplateSpec{a, b, a} {
						if step > 0 {
							updateDeployment(ctx, g, cd, func(cd *cafev1alpha1.CafeDeployment) { cd.Spec.Template = *target.DeepCopy() })
						}
						expectReleased(ctx, g, cd, podSetType, step)
					}
				})
			}
		}
	}
}

// expectReleased waits until the pod sets of cd carry its template as
// stored, and, for InPlaceSets, every pod runs it and serves.
func expectReleased(ctx context.Context, g *WithT, cd *cafev1alpha1.CafeDeployment, podSetType cafev1alpha1.PodSetType, step int) {
	g.Eventually(func(g Gomega) {
		got := getDeployment(ctx, g, cd)
		rev := got.Status.UpdateRevision
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		want := got.Spec.Template
		for _, zone := range zones {
			switch podSetType {
			case cafev1alpha1.PodSetTypeInPlaceSet:
				set := podSet(ctx, g, cd, zone)
				g.Expect(equality.Semantic.DeepEqual(set.Spec.Template, want)).To(BeTrue(), "step %d, %s: InPlaceSet template\n%+v\nwant\n%+v", step, zone, set.Spec.Template, want)
			case cafev1alpha1.PodSetTypeReplicaSet:
				rs := &appsv1.ReplicaSet{}
				g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: cd.Name + "-" + zone + "-" + rev}, rs)).To(Succeed())
				expectNativeTemplate(g, rs.Spec.Template, want, step, zone)
			case cafev1alpha1.PodSetTypeStatefulSet:
				sts := &appsv1.StatefulSet{}
				g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: cd.Name + "-" + zone}, sts)).To(Succeed())
				g.Expect(sts.Spec.Template.Labels).To(HaveKeyWithValue(cafev1alpha1.RevisionHashLabel, rev))
				expectNativeTemplate(g, sts.Spec.Template, want, step, zone)
			}
		}
		if podSetType != cafev1alpha1.PodSetTypeInPlaceSet {
			return // no kube-controller-manager runs pods here (test/e2e does)
		}
		suite.Kubelet.CatchUp(ctx, g, cd.Namespace)
		var pods int
		for zone, list := range podsByUnit(ctx, g, cd.Namespace) {
			for _, p := range list {
				if p.DeletionTimestamp != nil {
					continue
				}
				pods++
				g.Expect(p.Labels).To(HaveKeyWithValue(cafev1alpha1.RevisionHashLabel, rev), "step %d: %s of %s", step, p.Name, zone)
				g.Expect(podShape(p.Spec)).To(Equal(podShape(want.Spec)), "step %d: %s", step, p.Name)
				g.Expect(framework.Serving(&p)).To(BeTrue(), "step %d: %s serves", step, p.Name)
			}
		}
		g.Expect(pods).To(Equal(3))
		g.Expect(got.Status.AvailableReplicas).To(HaveValue(BeEquivalentTo(3)))
	}, "90s").Should(Succeed())
}

// expectNativeTemplate checks what a native pod set's template carries of
// the CafeDeployment's: the API server defaults native templates, and CAFE
// adds its gate, labels and unit pinning, so the check compares shapes.
func expectNativeTemplate(g Gomega, got, want corev1.PodTemplateSpec, step int, zone string) {
	g.Expect(podShape(got.Spec)).To(Equal(podShape(want.Spec)), "step %d, %s", step, zone)
	for k, v := range want.Labels {
		g.Expect(got.Labels).To(HaveKeyWithValue(k, v), "step %d, %s", step, zone)
	}
	g.Expect(got.Labels).To(HaveLen(len(want.Labels)+3), "step %d, %s: the template's labels plus deployment, unit and revision", step, zone)
	g.Expect(got.Annotations).To(Equal(want.Annotations), "step %d, %s", step, zone)
}

// shape is what a pod spec says that the test's template differences
// change, free of what the API server defaults.
type shape struct {
	Containers, InitContainers []containerShape
	Volumes                    map[string]string
}

type containerShape struct {
	Name, Image  string
	Env          []corev1.EnvVar
	Ports        []int32
	Requests     string
	Limits       string
	Readiness    bool
	VolumeMounts []string
}

func podShape(spec corev1.PodSpec) shape {
	out := shape{Volumes: map[string]string{}}
	for _, v := range spec.Volumes {
		out.Volumes[v.Name] = "emptyDir:" + string(v.EmptyDir.Medium)
	}
	for _, c := range spec.Containers {
		out.Containers = append(out.Containers, shapeOf(c))
	}
	for _, c := range spec.InitContainers {
		out.InitContainers = append(out.InitContainers, shapeOf(c))
	}
	return out
}

func shapeOf(c corev1.Container) containerShape {
	s := containerShape{Name: c.Name, Image: c.Image, Env: c.Env, Readiness: c.ReadinessProbe != nil,
		Requests: resourceString(c.Resources.Requests), Limits: resourceString(c.Resources.Limits)}
	for _, p := range c.Ports {
		s.Ports = append(s.Ports, p.ContainerPort)
	}
	for _, m := range c.VolumeMounts {
		s.VolumeMounts = append(s.VolumeMounts, m.Name+":"+m.MountPath)
	}
	return s
}

func resourceString(l corev1.ResourceList) string {
	var parts []string
	for _, n := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := l[n]; ok {
			parts = append(parts, string(n)+"="+q.String())
		}
	}
	return strings.Join(parts, ",")
}
