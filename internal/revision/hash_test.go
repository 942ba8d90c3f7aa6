package revision_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cafe-io/cafe/internal/revision"
)

func TestTemplateHashIsStableAndChangesWithTheTemplate(t *testing.T) {
	a := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:v1"}}},
	}
	b := *a.DeepCopy()
	if revision.TemplateHash(&a) != revision.TemplateHash(&b) {
		t.Fatal("equal templates must name one revision")
	}
	b.Spec.Containers[0].Image = "app:v2"
	if revision.TemplateHash(&a) == revision.TemplateHash(&b) {
		t.Fatal("a new image must be a new revision")
	}
	b = *a.DeepCopy()
	b.Labels["cafe.io/app-revision"] = "web-2"
	if revision.TemplateHash(&a) == revision.TemplateHash(&b) {
		t.Fatal("a new template label must be a new revision")
	}
}
