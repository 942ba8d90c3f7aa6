package inplaceset

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/internal/lossless/losslesstest"
)

func leaving(name string, mutate ...func(*leavingPod)) leavingPod {
	p := leavingPod{Pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}}, Serving: true}
	for _, m := range mutate {
		m(&p)
	}
	return p
}

func draining(drained bool) func(*leavingPod) {
	return func(p *leavingPod) {
		p.Serving, p.DrainReason, p.Drained = false, lossless.ReasonDrainForDelete, drained
	}
}

func idle(p *leavingPod)        { p.Serving = false }
func terminating(p *leavingPod) { p.Terminating, p.Serving = true, false }

func TestPlanLeavingDrainsServingPodsWithinMaxUnavailableAndDeletesOnlyDrainedOnes(t *testing.T) {
	tests := []struct {
		name           string
		pods           []leavingPod
		maxUnavailable int
		wantClose      []string
		wantDelete     []string
		wantDone       bool
	}{
		{"one serving pod drains at a time", []leavingPod{leaving("a"), leaving("b"), leaving("c")}, 1, []string{"a"}, nil, false},
		{"maxUnavailable 0 still makes progress", []leavingPod{leaving("a"), leaving("b")}, 0, []string{"a"}, nil, false},
		{"a drain under way uses the budget", []leavingPod{leaving("a", draining(false)), leaving("b")}, 1, nil, nil, false},
		{"a drained pod is deleted and frees the budget", []leavingPod{leaving("a", draining(true)), leaving("b")}, 1, []string{"b"}, []string{"a"}, false},
		{"pods that serve nobody drain at once", []leavingPod{leaving("a", idle), leaving("b", idle), leaving("c")}, 1, []string{"a", "b", "c"}, nil, false},
		{"done once every deletion began", []leavingPod{leaving("a", terminating)}, 1, nil, nil, true},
		{"done with no pods", nil, 1, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			closeGates, deletes, done := planLeaving(tt.pods, tt.maxUnavailable)
			g.Expect(losslesstest.PodNames(closeGates)).To(Equal(orEmpty(tt.wantClose)))
			g.Expect(losslesstest.PodNames(deletes)).To(Equal(orEmpty(tt.wantDelete)))
			g.Expect(done).To(Equal(tt.wantDone))
		})
	}
}
