package framework

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func podRunning(specImage string, reported *corev1.ContainerStatus, conditions ...corev1.PodCondition) *corev1.Pod {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: specImage}}}}
	if reported != nil {
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{*reported}
	}
	pod.Status.Conditions = conditions
	return pod
}

func TestTheFakeKubeletStartsNewPodsAndRestartsPodsUpdatedInPlace(t *testing.T) {
	since := metav1.NewTime(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	earlier := metav1.NewTime(since.Add(-time.Hour))
	readyEarlier := corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: earlier}
	tests := []struct {
		name         string
		pod          *corev1.Pod
		wantRestarts int32
		wantReadyAt  *metav1.Time // nil: ContainersReady is left as it is
	}{
		{name: "a new pod starts with no restart, ready since since", pod: podRunning("app:v1", nil), wantRestarts: 0, wantReadyAt: &since},
		{
			name:         "a pod updated in place restarts its container and stays ready since before",
			pod:          podRunning("app:v2", &corev1.ContainerStatus{Name: "app", Image: "app:v1", RestartCount: 2}, readyEarlier),
			wantRestarts: 3,
		},
		{
			name:         "a pod whose containers are not ready becomes ready since since",
			pod:          podRunning("app:v2", &corev1.ContainerStatus{Name: "app", Image: "app:v1"}, corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionFalse, LastTransitionTime: earlier}),
			wantRestarts: 1, wantReadyAt: &since,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			status := runningStatus(tt.pod, since)
			g.Expect(status).To(HaveKeyWithValue("phase", corev1.PodRunning))
			statuses := status["containerStatuses"].([]corev1.ContainerStatus)
			g.Expect(statuses).To(HaveLen(1))
			s := statuses[0]
			g.Expect(s.Name).To(Equal("app"))
			g.Expect(s.Image).To(Equal(tt.pod.Spec.Containers[0].Image), "the image the spec names")
			g.Expect(s.ImageID).To(Equal(ImageID(s.Image)))
			g.Expect(s.Ready).To(BeTrue())
			g.Expect(s.Started).To(HaveValue(BeTrue()))
			g.Expect(s.RestartCount).To(Equal(tt.wantRestarts))
			g.Expect(s.State.Running).NotTo(BeNil())
			g.Expect(s.State.Running.StartedAt).To(Equal(since))
			if tt.wantReadyAt == nil {
				g.Expect(status).NotTo(HaveKey("conditions"))
				return
			}
			g.Expect(status).To(HaveKeyWithValue("conditions", []corev1.PodCondition{{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: *tt.wantReadyAt}}))
		})
	}
}

func TestAPodRunsItsSpecImagesOnceEveryContainerReportsThem(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{name: "nothing reported yet", pod: podRunning("app:v1", nil), want: false},
		{name: "the old image reported", pod: podRunning("app:v2", &corev1.ContainerStatus{Name: "app", Image: "app:v1"}), want: false},
		{name: "the spec image reported", pod: podRunning("app:v2", &corev1.ContainerStatus{Name: "app", Image: "app:v2"}), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(RunsSpecImages(tt.pod)).To(Equal(tt.want))
		})
	}
}

func TestImageIDsDifferByImage(t *testing.T) {
	g := NewWithT(t)
	g.Expect(ImageID("app:v1")).To(HavePrefix("sha256:"))
	g.Expect(ImageID("app:v1")).NotTo(Equal(ImageID("app:v2")))
}
