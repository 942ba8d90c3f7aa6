// Package builders builds the API objects tests start from, so packages
// that test the same kind start from the same valid object.
package builders

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// CafeDeployment is a valid CafeDeployment ns/name of 6 pods over three
// zones (zone-a, zone-b, zone-c), selected by and labelled app=name, whose
// one container "app" runs image and serves port 80, released with
// strategy.
func CafeDeployment(ns, name, image string, strategy cafev1alpha1.CafeDeploymentStrategy) *cafev1alpha1.CafeDeployment {
	labels := map[string]string{"app": name}
	return &cafev1alpha1.CafeDeployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cafev1alpha1.CafeDeploymentSpec{
			Replicas: ptr.To[int32](6),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "app", Image: image, Ports: []corev1.ContainerPort{{ContainerPort: 80}}},
				}},
			},
			Topology: cafev1alpha1.Topology{Values: []string{"zone-a", "zone-b", "zone-c"}},
			Strategy: strategy,
		},
	}
}
