package deploy

import (
	"encoding/json"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// t0 is the fixed time the unit tests' objects are stamped with.
var t0 = metav1.NewTime(time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC))

// cdBuilder builds CafeDeployments for the unit tests.
type cdBuilder struct{ cd cafev1alpha1.CafeDeployment }

func newCD() *cdBuilder {
	return &cdBuilder{cd: cafev1alpha1.CafeDeployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: types.UID("uid-web"), Generation: 1},
		Spec:       cafev1alpha1.CafeDeploymentSpec{Replicas: ptr.To[int32](6)},
		Status:     cafev1alpha1.CafeDeploymentStatus{ObservedGeneration: 1},
	}}
}

func (b *cdBuilder) phase(p cafev1alpha1.ReleasePhase, current, total int32) *cdBuilder {
	b.cd.Status.Release.Phase = p
	b.cd.Status.Release.CurrentGroup = ptr.To(current)
	b.cd.Status.Release.TotalGroups = ptr.To(total)
	return b
}

func (b *cdBuilder) group(g cafev1alpha1.ReleaseGroupStatus) *cdBuilder {
	b.cd.Status.Release.Groups = append(b.cd.Status.Release.Groups, g)
	return b
}

func (b *cdBuilder) revisions(current, update string) *cdBuilder {
	b.cd.Status.CurrentRevision, b.cd.Status.UpdateRevision = current, update
	return b
}

func (b *cdBuilder) annotation(key, value string) *cdBuilder {
	metav1.SetMetaDataAnnotation(&b.cd.ObjectMeta, key, value)
	return b
}

func (b *cdBuilder) generations(generation, observed int64) *cdBuilder {
	b.cd.Generation, b.cd.Status.ObservedGeneration = generation, observed
	return b
}

func (b *cdBuilder) build() *cafev1alpha1.CafeDeployment { return b.cd.DeepCopy() }

// controllerRevision builds a revision of the CafeDeployment "web" whose
// template runs image.
func controllerRevision(number int64, hash, image string) appsv1.ControllerRevision {
	t := corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}}
	raw, err := json.Marshal(t)
	if err != nil {
		panic(err)
	}
	return appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "shop", Name: "web-" + hash, CreationTimestamp: t0,
			Labels: map[string]string{cafev1alpha1.DeploymentLabel: "web", cafev1alpha1.RevisionHashLabel: hash},
		},
		Revision: number,
		Data:     runtime.RawExtension{Raw: raw},
	}
}
