package deploy

import (
	"bytes"
	"regexp"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func TestPrintStatus(t *testing.T) {
	waiting := newCD().revisions("aaa111", "bbb222").phase(cafev1alpha1.ReleasePhaseWaitingForConfirm, 1, 3).
		group(cafev1alpha1.ReleaseGroupStatus{Index: 1, StartTime: &t0, FinishTime: &t0}).
		group(cafev1alpha1.ReleaseGroupStatus{Index: 0, StartTime: &t0, FinishTime: &t0, ConfirmedBy: "alice@example.com", ConfirmedAt: &t0}).
		build()
	waiting.Status.ReadyReplicas, waiting.Status.AvailableReplicas, waiting.Status.UpdatedReplicas = ptr.To[int32](6), ptr.To[int32](5), ptr.To[int32](2)
	waiting.Status.Units = []cafev1alpha1.UnitStatus{
		{Name: "zone-a", DesiredReplicas: ptr.To[int32](3), ReadyReplicas: ptr.To[int32](3), AvailableReplicas: ptr.To[int32](3), UpdatedReplicas: ptr.To[int32](1)},
		{Name: "zone-b", DesiredReplicas: ptr.To[int32](3)},
	}
	waiting.Status.Conditions = []metav1.Condition{{Type: "WaitingForConfirm", Status: metav1.ConditionTrue, Reason: "WaitingForConfirm", Message: "group 1 of 3 finished"}}

	paused := newCD().annotation(cafev1alpha1.PausedByAnnotation, "bob").build()
	paused.Spec.Strategy.Pause = true

	tests := []struct {
		name string
		cd   *cafev1alpha1.CafeDeployment
		want []string // regular expressions, each matching one line
		not  []string
	}{
		{
			name: "a release waiting for confirmation shows its revisions, phase, group and the next command",
			cd:   waiting,
			want: []string{
				`^Revision:\s+current aaa111, update bbb222$`,
				`^Phase:\s+WaitingForConfirm, group 1 of 3$`,
				`^Replicas:\s+6 desired, 6 ready, 5 available, 2 updated$`,
				`^Next:\s+cafe deploy confirm web -n shop$`,
			},
		},
		{
			name: "the group table lists groups by index with who confirmed them and when",
			cd:   waiting,
			want: []string{
				`^  INDEX\s+START\s+FINISH\s+CONFIRMED BY\s+CONFIRMED AT$`,
				`^  0\s+2026-08-01T10:00:00Z\s+2026-08-01T10:00:00Z\s+alice@example.com\s+2026-08-01T10:00:00Z$`,
				`^  1\s+2026-08-01T10:00:00Z\s+2026-08-01T10:00:00Z\s+-\s+-$`,
			},
		},
		{
			name: "the unit table shows counts, with a dash for counts not reported",
			cd:   waiting,
			want: []string{
				`^  NAME\s+DESIRED\s+READY\s+AVAILABLE\s+UPDATED$`,
				`^  zone-a\s+3\s+3\s+3\s+1$`,
				`^  zone-b\s+3\s+-\s+-\s+-$`,
			},
		},
		{
			name: "the conditions table shows type, status, reason and message",
			cd:   waiting,
			want: []string{`^  WaitingForConfirm\s+True\s+WaitingForConfirm\s+group 1 of 3 finished$`},
		},
		{
			name: "a CafeDeployment the controller never reported on shows dashes and empty sections",
			cd:   newCD().build(),
			want: []string{`^Revision:\s+current -, update -$`, `^Phase:\s+-$`, `^  <none started>$`, `^  <none reported>$`},
			not:  []string{`^Next:`, `INDEX`},
		},
		{
			name: "a paused CafeDeployment says who paused it",
			cd:   paused,
			want: []string{`^Paused:\s+yes, by bob$`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			var out bytes.Buffer
			g.Expect(printStatus(&out, tt.cd)).To(Succeed())
			for _, re := range tt.want {
				g.Expect(regexp.MustCompile("(?m)"+re).MatchString(out.String())).To(BeTrue(), "want a line matching %q in:\n%s", re, out.String())
			}
			for _, re := range tt.not {
				g.Expect(regexp.MustCompile("(?m)"+re).MatchString(out.String())).To(BeFalse(), "want no line matching %q in:\n%s", re, out.String())
			}
		})
	}
}

func TestGenerationWarning(t *testing.T) {
	tests := []struct {
		name string
		cd   *cafev1alpha1.CafeDeployment
		want string
	}{
		{name: "a status computed from the latest spec gives no warning", cd: newCD().generations(3, 3).build(), want: ""},
		{
			name: "a status older than the spec says the controller has not seen it",
			cd:   newCD().generations(4, 3).build(),
			want: "CafeDeployment shop/web: the controller has not seen the latest spec yet (status.observedGeneration 3 < metadata.generation 4); the status below may describe the previous spec",
		},
		{name: "a status never written counts as older than the spec", cd: newCD().generations(1, 0).build(), want: "CafeDeployment shop/web: the controller has not seen the latest spec yet (status.observedGeneration 0 < metadata.generation 1); the status below may describe the previous spec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(generationWarning(tt.cd)).To(Equal(tt.want))
		})
	}
}

func TestStatusOutputValidation(t *testing.T) {
	tests := []struct {
		name    string
		output  string
		wantErr bool
	}{
		{name: "no output format means the readable report", output: ""},
		{name: "json is accepted", output: "json"},
		{name: "yaml is accepted", output: "yaml"},
		{name: "any other format is refused before the server is asked", output: "wide", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&statusOptions{Output: tt.output}).validate()
			if tt.wantErr {
				NewWithT(t).Expect(err).To(MatchError(ContainSubstring(`--output "wide"`)))
			} else {
				NewWithT(t).Expect(err).NotTo(HaveOccurred())
			}
		})
	}
}
