package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func validApp(name string) *cafev1alpha1.CafeAppService {
	return &cafev1alpha1.CafeAppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: cafev1alpha1.CafeAppServiceSpec{
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"tier": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:v1"}}},
			},
			Service: cafev1alpha1.AppServiceSpec{Ports: []cafev1alpha1.AppServicePort{{Port: 80}}},
			Config:  cafev1alpha1.AppConfig{Env: map[string]string{"MODE": "prod"}, Files: map[string]string{"app.yaml": "a: 1\n"}},
			Workload: cafev1alpha1.AppWorkload{
				Replicas: ptr.To[int32](6),
				Topology: cafev1alpha1.Topology{Values: []string{"zone-a", "zone-b", "zone-c"}},
			},
		},
	}
}

func TestCafeAppServiceDefaultsAreAppliedByTheAPIServer(t *testing.T) {
	requireAPIServer(t)
	g := NewWithT(t)
	app := validApp("app-defaults")
	create(t, g, app)

	local := validApp("app-defaults")
	local.Default()
	g.Expect(app.Spec.RevisionHistoryLimit).To(HaveValue(Equal(cafev1alpha1.DefaultAppRevisionHistoryLimit)))
	g.Expect(app.Spec.Config.MountPath).To(Equal(cafev1alpha1.DefaultConfigMountPath))
	g.Expect(app.Spec.Service.Type).To(Equal(corev1.ServiceTypeClusterIP))
	g.Expect(app.Spec.Service.Ports[0].Protocol).To(Equal(corev1.ProtocolTCP))
	g.Expect(app.Spec.Workload.PodSetType).To(Equal(cafev1alpha1.PodSetTypeInPlaceSet))
	g.Expect(app.Spec.Workload.Endpoints).To(Equal(cafev1alpha1.AppEndpointsSelector))
	g.Expect(app.Spec.Workload.Strategy.UpgradeType).To(Equal(cafev1alpha1.UpgradeTypeBeta))
	// The Go defaults agree with the CRD's.
	g.Expect(local.Spec.RevisionHistoryLimit).To(Equal(app.Spec.RevisionHistoryLimit))
	g.Expect(local.Spec.Config).To(Equal(app.Spec.Config))
	g.Expect(local.Spec.Service).To(Equal(app.Spec.Service))
	g.Expect(local.Spec.Workload).To(Equal(app.Spec.Workload))
	g.Expect(app.Spec.Template.Labels).To(HaveKeyWithValue("tier", "web"), "template metadata must survive pruning")
}

func TestCafeAppServiceInvalidSpecsAreRefusedNamingTheField(t *testing.T) {
	requireAPIServer(t)
	tests := []struct {
		name   string
		mutate func(*cafev1alpha1.CafeAppService)
		field  string
	}{
		{"a name too long for its revisions", func(a *cafev1alpha1.CafeAppService) { a.Name = "a-very-long-application-name-of-more-than-40" }, "metadata.name"},
		{"a name that is no DNS-1035 label", func(a *cafev1alpha1.CafeAppService) { a.Name = "1pay" }, "metadata.name"},
		{"an env name that is no identifier", func(a *cafev1alpha1.CafeAppService) { a.Spec.Config.Env = map[string]string{"1BAD": "x"} }, "spec.config.env"},
		{"a file name with a slash", func(a *cafev1alpha1.CafeAppService) { a.Spec.Config.Files = map[string]string{"etc/app.yaml": "x"} }, "spec.config.files"},
		{"the same key in env and files", func(a *cafev1alpha1.CafeAppService) {
			a.Spec.Config.Env = map[string]string{"MODE": "x"}
			a.Spec.Config.Files = map[string]string{"MODE": "y"}
		}, "spec.config"},
		{"a relative mount path", func(a *cafev1alpha1.CafeAppService) { a.Spec.Config.MountPath = "etc/config" }, "spec.config.mountPath"},
		{"an unknown service type", func(a *cafev1alpha1.CafeAppService) { a.Spec.Service.Type = "ExternalName" }, "spec.service.type"},
		{"a port out of range", func(a *cafev1alpha1.CafeAppService) { a.Spec.Service.Ports[0].Port = 70000 }, "spec.service.ports[0].port"},
		{"two unnamed ports", func(a *cafev1alpha1.CafeAppService) {
			a.Spec.Service.Ports = []cafev1alpha1.AppServicePort{{Port: 80}, {Port: 81}}
		}, "spec.service.ports"},
		{"a node port on a ClusterIP service", func(a *cafev1alpha1.CafeAppService) { a.Spec.Service.Ports[0].NodePort = 30080 }, "spec.service.ports"},
		{"source ranges without a load balancer", func(a *cafev1alpha1.CafeAppService) {
			a.Spec.Service.LoadBalancerSourceRanges = []string{"10.0.0.0/8"}
		}, "spec.service.loadBalancerSourceRanges"},
		{"an unknown session affinity", func(a *cafev1alpha1.CafeAppService) { a.Spec.Service.SessionAffinity = "Cookie" }, "spec.service.sessionAffinity"},
		{"a published revision of the wrong form", func(a *cafev1alpha1.CafeAppService) { a.Spec.PublishedRevision = "latest" }, "spec.publishedRevision"},
		{"a history limit of zero", func(a *cafev1alpha1.CafeAppService) { a.Spec.RevisionHistoryLimit = ptr.To[int32](0) }, "spec.revisionHistoryLimit"},
		{"no topology", func(a *cafev1alpha1.CafeAppService) { a.Spec.Workload.Topology.Values = nil }, "spec.workload.topology"},
		{"minAvailable above replicas", func(a *cafev1alpha1.CafeAppService) {
			a.Spec.Workload.Strategy.MinAvailable = ptr.To(intstr.FromInt32(7))
		}, "spec.workload.strategy.minAvailable"},
		{"unitReplicas exceeding replicas", func(a *cafev1alpha1.CafeAppService) {
			a.Spec.Workload.Topology.UnitReplicas = map[string]intstr.IntOrString{"zone-a": intstr.FromInt32(4), "zone-b": intstr.FromInt32(4)}
		}, "spec.workload.topology.unitReplicas"},
		{"a group naming an unknown unit", func(a *cafev1alpha1.CafeAppService) {
			a.Spec.Workload.Strategy.Groups = []cafev1alpha1.ReleaseGroup{{Replicas: intstr.FromInt32(6), Units: []string{"zone-x"}}}
		}, "spec.workload.strategy.groups"},
		{"an unknown podSetType", func(a *cafev1alpha1.CafeAppService) { a.Spec.Workload.PodSetType = "DaemonSet" }, "spec.workload.podSetType"},
		{"an unknown endpoints writer", func(a *cafev1alpha1.CafeAppService) { a.Spec.Workload.Endpoints = "Gateway" }, "spec.workload.endpoints"},
		{"endpoints CAFE in ReplicaSet mode", func(a *cafev1alpha1.CafeAppService) {
			a.Spec.Workload.Endpoints, a.Spec.Workload.PodSetType = cafev1alpha1.AppEndpointsCAFE, cafev1alpha1.PodSetTypeReplicaSet
		}, "spec.workload.endpoints"},
		{"endpoints CAFE with classic units", func(a *cafev1alpha1.CafeAppService) {
			a.Spec.Workload.Endpoints, a.Spec.Workload.ClassicUnits = cafev1alpha1.AppEndpointsCAFE, []string{"zone-c"}
			a.Spec.ClassicArtifact = &cafev1alpha1.ClassicArtifact{URL: "http://127.0.0.1:5000/app.tar.gz", SHA256: strings.Repeat("a", 64), Command: []string{"bin/app"}}
		}, "spec.workload.endpoints"},
		{"endpoints CAFE with traffic steps", func(a *cafev1alpha1.CafeAppService) {
			a.Spec.Workload.Endpoints = cafev1alpha1.AppEndpointsCAFE
			a.Spec.Workload.Strategy.Traffic = trafficWith(cafev1alpha1.TrafficStep{Weight: ptr.To[int32](10)})
		}, "spec.workload.endpoints"},
		{"endpoints CAFE without a Service", func(a *cafev1alpha1.CafeAppService) {
			a.Spec.Workload.Endpoints, a.Spec.Service.Ports = cafev1alpha1.AppEndpointsCAFE, nil
		}, "spec.workload.endpoints"},
		{"endpoints CAFE published in the registry", func(a *cafev1alpha1.CafeAppService) {
			a.Spec.Workload.Endpoints, a.Spec.Service.PublishInRegistry = cafev1alpha1.AppEndpointsCAFE, true
		}, "spec.workload.endpoints"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			app := validApp("invalid")
			tt.mutate(app)
			err := tryCreate(app)
			expectInvalid(g, err, tt.field)
		})
	}
}

// An app whose endpoints CAFE writes is accepted, and who writes them is
// fixed: switching a live Service between a selector and CAFE's slices
// would leave it without endpoints for a moment.
func TestCafeAppServiceEndpointsWriterIsFixed(t *testing.T) {
	requireAPIServer(t)
	ctx := context.Background()
	g := NewWithT(t)
	app := validApp("app-endpoints")
	app.Spec.Workload.Endpoints = cafev1alpha1.AppEndpointsCAFE
	create(t, g, app)

	app.Spec.Workload.Endpoints = cafev1alpha1.AppEndpointsSelector
	err := k8sClient.Update(ctx, app)
	expectInvalid(g, err, "spec.workload.endpoints")
	g.Expect(err.Error()).To(ContainSubstring("spec.workload.endpoints is immutable"))
}

func validRevision(app string, n int64) *cafev1alpha1.AppRevision {
	return &cafev1alpha1.AppRevision{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: cafev1alpha1.AppRevisionName(app, n)},
		Spec: cafev1alpha1.AppRevisionSpec{
			App: app, Number: n, Hash: "h1",
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:v1"}}}},
			Config:   cafev1alpha1.AppConfig{Env: map[string]string{"MODE": "prod"}},
		},
	}
}

// The API server itself keeps a revision a snapshot: its spec cannot
// change, whoever writes it; its status can.
func TestAppRevisionSpecIsImmutable(t *testing.T) {
	requireAPIServer(t)
	ctx := context.Background()
	g := NewWithT(t)
	rev := validRevision("immut", 1)
	g.Expect(k8sClient.Create(ctx, rev)).To(Succeed())
	t.Cleanup(func() { _ = k8sClient.Delete(ctx, rev) })

	for name, mutate := range map[string]func(*cafev1alpha1.AppRevision){
		"image":  func(r *cafev1alpha1.AppRevision) { r.Spec.Template.Spec.Containers[0].Image = "example.com/app:v2" },
		"config": func(r *cafev1alpha1.AppRevision) { r.Spec.Config.Env["MODE"] = "dev" },
		"hash":   func(r *cafev1alpha1.AppRevision) { r.Spec.Hash = "h2" },
	} {
		changed := rev.DeepCopy()
		mutate(changed)
		err := k8sClient.Update(ctx, changed)
		g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%s: want Invalid, got %v", name, err)
		g.Expect(err.Error()).To(ContainSubstring("spec is immutable"), name)
	}

	rev.Status.Outcome = cafev1alpha1.ReleaseOutcomeSucceeded
	g.Expect(k8sClient.Status().Update(ctx, rev)).To(Succeed(), "the status records releases")
}

func TestAppRevisionNameMustMatchAppAndNumber(t *testing.T) {
	requireAPIServer(t)
	g := NewWithT(t)
	rev := validRevision("named", 3)
	rev.Name = "other-r3"
	err := k8sClient.Create(context.Background(), rev)
	expectInvalid(g, err, "metadata.name must be <spec.app>-r<N>")
}

// A revision number beyond MaxRevisionNumber is refused: no revision can
// push the next one past what a number and a name hold.
func TestAppRevisionNumberIsBounded(t *testing.T) {
	requireAPIServer(t)
	g := NewWithT(t)
	g.Expect(tryCreate(validRevision("bounded", cafev1alpha1.MaxRevisionNumber))).To(Succeed(), "the bound itself is allowed")
	expectInvalid(g, tryCreate(validRevision("bounded", cafev1alpha1.MaxRevisionNumber+1)), "spec.number")
}
