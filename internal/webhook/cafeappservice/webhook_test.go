package cafeappservice

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func app() *cafev1alpha1.CafeAppService {
	return &cafev1alpha1.CafeAppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "pay", UID: "app-uid"},
		Spec: cafev1alpha1.CafeAppServiceSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "pay:v1"}}}},
			Config:   cafev1alpha1.AppConfig{Env: map[string]string{"MODE": "prod"}, Files: map[string]string{"a.yaml": "x"}},
			Workload: cafev1alpha1.AppWorkload{Replicas: ptr.To[int32](6), Topology: cafev1alpha1.Topology{Values: []string{"zone-a", "zone-b"}}},
		},
	}
}

func revisionOf(owner *cafev1alpha1.CafeAppService, name string) *cafev1alpha1.AppRevision {
	rev := &cafev1alpha1.AppRevision{
		ObjectMeta: metav1.ObjectMeta{Namespace: owner.Namespace, Name: name, OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "cafe.io/v1alpha1", Kind: "CafeAppService", Name: owner.Name, UID: owner.UID, Controller: ptr.To(true)},
		}},
		Spec: cafev1alpha1.AppRevisionSpec{App: owner.Name, Template: owner.Spec.Template, Config: owner.Spec.Config},
	}
	rev.Spec.Number, _ = cafev1alpha1.ParseAppRevisionName(owner.Name, name)
	rev.Spec.Hash = owner.ContentHash()
	return rev
}

// swapped is a revision of app recorded with app's hash whose template was
// replaced: what a forger with create rights on AppRevisions would write.
func swapped(name string) *cafev1alpha1.AppRevision {
	rev := revisionOf(app(), name)
	rev.Spec.Template.Spec.Containers[0].Image = "evil:v1"
	return rev
}

func TestStamp(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	t.Run("a publish is stamped with the authenticated user", func(t *testing.T) {
		g := NewWithT(t)
		old, cur := app(), app()
		cur.Spec.PublishedRevision = "pay-r2"
		stamped, err := stamp(old, cur, "alice", now)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(stamped).To(BeTrue())
		g.Expect(cur.Annotations).To(Equal(map[string]string{cafev1alpha1.PublishedByAnnotation: "alice", cafev1alpha1.PublishedAtAnnotation: "2026-03-04T05:06:07Z"}))
	})
	t.Run("an edit that publishes nothing is not stamped", func(t *testing.T) {
		g := NewWithT(t)
		old, cur := app(), app()
		old.Spec.PublishedRevision, cur.Spec.PublishedRevision = "pay-r2", "pay-r2"
		cur.Spec.Template.Spec.Containers[0].Image = "pay:v2"
		stamped, err := stamp(old, cur, "alice", now)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(stamped).To(BeFalse())
		g.Expect(cur.Annotations).To(BeEmpty())
	})
	t.Run("a client cannot write the stamp itself", func(t *testing.T) {
		g := NewWithT(t)
		old, cur := app(), app()
		cur.Spec.PublishedRevision = "pay-r2"
		cur.Annotations = map[string]string{cafev1alpha1.PublishedByAnnotation: "bob"}
		_, err := stamp(old, cur, "alice", now)
		g.Expect(err).To(MatchError(ContainSubstring(cafev1alpha1.PublishedByAnnotation)))
	})
}

func TestIdentityStamperAnswersAPublishWithThePatchOfItsStamp(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	h := &IdentityStamper{Now: func() time.Time { return now }}
	update := func(old, cur *cafev1alpha1.CafeAppService) admission.Request {
		oldRaw, err := json.Marshal(old)
		if err != nil {
			t.Fatal(err)
		}
		curRaw, err := json.Marshal(cur)
		if err != nil {
			t.Fatal(err)
		}
		return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			Operation: admissionv1.Update, UserInfo: authenticationv1.UserInfo{Username: "alice"},
			Object: runtime.RawExtension{Raw: curRaw}, OldObject: runtime.RawExtension{Raw: oldRaw},
		}}
	}
	g := NewWithT(t)
	old, cur := app(), app()
	cur.Spec.PublishedRevision = "pay-r2"
	resp := h.Handle(context.Background(), update(old, cur))
	g.Expect(resp.Allowed).To(BeTrue())
	g.Expect(resp.Patches).To(HaveLen(1))
	g.Expect(resp.Patches[0].Path).To(Equal("/metadata/annotations"))
	g.Expect(resp.Patches[0].Value).To(Equal(map[string]any{cafev1alpha1.PublishedByAnnotation: "alice", cafev1alpha1.PublishedAtAnnotation: "2026-03-04T05:06:07Z"}))

	resp = h.Handle(context.Background(), update(old, old))
	g.Expect(resp.Allowed).To(BeTrue())
	g.Expect(resp.Patches).To(BeEmpty())
	g.Expect(resp.Result.Message).To(Equal("no publication"))
}

func TestValidatePublish(t *testing.T) {
	other := app()
	other.Name, other.UID = "other", "other-uid"
	tests := []struct {
		name      string
		published string
		rev       *cafev1alpha1.AppRevision
		create    bool
		want      string
	}{
		{"the app's own revision may be published", "pay-r2", revisionOf(app(), "pay-r2"), false, ""},
		{"a missing revision is refused", "pay-r9", nil, false, "AppRevision shop/pay-r9 does not exist"},
		{"another app's revision is refused", "pay-r1", revisionOf(other, "pay-r1"), false, "belongs to another app"},
		{"a name of another app is refused", "other-r1", revisionOf(other, "other-r1"), false, "not a revision of pay"},
		{"nothing can be published at creation", "pay-r1", nil, true, "cannot be published when the app is created"},
		{"a revision whose content is not its hash is refused", "pay-r2", swapped("pay-r2"), false, "is not the hash of its template, service and config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			a := app()
			a.Spec.PublishedRevision = tt.published
			if tt.create {
				a.UID = ""
			}
			err := ValidatePublish(a, tt.rev)
			if tt.want == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
			g.Expect(err).To(MatchError(ContainSubstring("spec.publishedRevision")))
		})
	}
}

func TestValidateSpec(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*cafev1alpha1.CafeAppService)
		want   string
	}{
		{"a valid app passes", func(*cafev1alpha1.CafeAppService) {}, ""},
		{"a config env name the template sets too", func(a *cafev1alpha1.CafeAppService) {
			a.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MODE", Value: "dev"}}
		}, "spec.config.env[MODE]"},
		{"a template mounting at the config mount path", func(a *cafev1alpha1.CafeAppService) {
			a.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "x", MountPath: cafev1alpha1.DefaultConfigMountPath + "/"}}
		}, "spec.config.mountPath"},
		{"a template volume with CAFE's name", func(a *cafev1alpha1.CafeAppService) {
			a.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "cafe-config"}}
		}, "spec.template.spec.volumes[cafe-config]"},
		{"a template label CAFE sets", func(a *cafev1alpha1.CafeAppService) {
			a.Spec.Template.Labels = map[string]string{cafev1alpha1.AppRevisionLabel: "x"}
		}, "spec.template.metadata.labels[cafe.io/app-revision]"},
		{"groups not covering every replica", func(a *cafev1alpha1.CafeAppService) {
			a.Spec.Workload.Strategy.Groups = []cafev1alpha1.ReleaseGroup{{Replicas: intstr.FromInt32(2)}}
		}, "spec.workload.strategy.groups"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			a := app()
			tt.mutate(a)
			err := ValidateSpec(a)
			if tt.want == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
		})
	}
}

func TestMayDeleteRevision(t *testing.T) {
	g := NewWithT(t)
	a := app()
	a.Spec.PublishedRevision = "pay-r2"
	a.Status.PublishedRevision = "pay-r1"
	g.Expect(MayDeleteRevision(a, revisionOf(a, "pay-r2"))).To(ContainSubstring("is published"), "the revision to publish")
	g.Expect(MayDeleteRevision(a, revisionOf(a, "pay-r1"))).To(ContainSubstring("is published"), "the revision the pods still run")
	g.Expect(MayDeleteRevision(a, revisionOf(a, "pay-r3"))).To(BeEmpty())
	deleting := a.DeepCopy()
	deleting.DeletionTimestamp = ptr.To(metav1.Now())
	g.Expect(MayDeleteRevision(deleting, revisionOf(a, "pay-r2"))).To(BeEmpty(), "the app takes its revisions along")
}
