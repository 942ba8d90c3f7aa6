package revision

import (
	"encoding/json"
	"fmt"
	"hash/fnv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// TemplateHash names a revision: a short stable hash of the pod template.
func TemplateHash(template *corev1.PodTemplateSpec) string {
	return ObjectHash(template)
}

// ObjectHash is a short stable hash of v's JSON encoding, for any template
// (a pod template, a classic instance template) that names a revision.
func ObjectHash(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encoding a template cannot fail: %v", err))
	}
	h := fnv.New32a()
	h.Write(data)
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// DeploymentData is what a CafeDeployment's revision holds (the data of its
// ControllerRevision): the pod template, inlined so that a reader of pod
// templates reads it as one, and the classic units' artifact when it has
// classic units.
type DeploymentData struct {
	corev1.PodTemplateSpec `json:",inline"`
	// ClassicArtifact is spec.classic.artifact.
	ClassicArtifact *cafev1alpha1.ClassicArtifact `json:"classicArtifact,omitempty"`
}

// DeploymentDataOf is the revision data of cd's spec.
func DeploymentDataOf(cd *cafev1alpha1.CafeDeployment) DeploymentData {
	d := DeploymentData{PodTemplateSpec: cd.Spec.Template}
	if cd.Spec.Classic != nil {
		d.ClassicArtifact = &cd.Spec.Classic.Artifact
	}
	return d
}

// DeploymentHash names a CafeDeployment's revision: the pod template's
// hash when it runs only pods (so pods keep their revision label), else
// the hash of the template and the classic artifact together.
func DeploymentHash(cd *cafev1alpha1.CafeDeployment) string {
	if cd.Spec.Classic == nil {
		return TemplateHash(&cd.Spec.Template)
	}
	return ObjectHash(DeploymentDataOf(cd))
}
