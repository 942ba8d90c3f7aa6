package deploy

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func TestDecideConfirm(t *testing.T) {
	waitingAt1 := func() *cdBuilder {
		return newCD().phase(cafev1alpha1.ReleasePhaseWaitingForConfirm, 1, 4).group(cafev1alpha1.ReleaseGroupStatus{Index: 1, StartTime: &t0})
	}
	tests := []struct {
		name     string
		cd       *cafev1alpha1.CafeDeployment
		explicit *int32
		want     confirmDecision
		wantErr  string
	}{
		{
			name: "a release waiting for confirmation gets its current group confirmed",
			cd:   waitingAt1().build(),
			want: confirmDecision{Group: 1},
		},
		{
			name: "a release verifying its group with a traffic step gets the group confirmed (which ends the step)",
			cd:   newCD().phase(cafev1alpha1.ReleasePhaseVerifying, 0, 4).group(cafev1alpha1.ReleaseGroupStatus{Index: 0, StartTime: &t0}).build(),
			want: confirmDecision{Group: 0},
		},
		{
			name:    "a release still progressing is refused without --group",
			cd:      newCD().phase(cafev1alpha1.ReleasePhaseProgressing, 1, 4).build(),
			wantErr: "CafeDeployment shop/web is not waiting for a confirmation (phase Progressing, group 1 of 4): nothing to confirm",
		},
		{
			name:    "a CafeDeployment without a release is refused without --group",
			cd:      newCD().build(),
			wantErr: "is not waiting for a confirmation (phase -)",
		},
		{
			name:     "an explicit group is confirmed even while the release progresses, with a warning",
			cd:       newCD().phase(cafev1alpha1.ReleasePhaseProgressing, 1, 4).build(),
			explicit: ptr.To[int32](2),
			want: confirmDecision{Group: 2, Warning: "CafeDeployment shop/web is not waiting for a confirmation of group 2 (phase Progressing, group 1 of 4): " +
				"the controller only acts on a confirmation of the group it waits on"},
		},
		{
			name:     "an explicit group equal to the awaited one gives no warning",
			cd:       waitingAt1().build(),
			explicit: ptr.To[int32](1),
			want:     confirmDecision{Group: 1},
		},
		{
			name:     "a negative group is refused",
			cd:       waitingAt1().build(),
			explicit: ptr.To[int32](-1),
			wantErr:  "--group -1: a group index is 0 or more",
		},
		{
			name: "a group the status records as confirmed is reported, not confirmed again",
			cd: newCD().phase(cafev1alpha1.ReleasePhaseWaitingForConfirm, 1, 4).
				group(cafev1alpha1.ReleaseGroupStatus{Index: 1, ConfirmedBy: "alice", ConfirmedAt: &t0}).build(),
			want: confirmDecision{Group: 1, AlreadyBy: "alice"},
		},
		{
			name: "an annotation already naming the group with a stamped user is reported, not set again",
			cd: waitingAt1().annotation(cafev1alpha1.ConfirmGroupAnnotation, "1").
				annotation(cafev1alpha1.ConfirmedByAnnotation, "alice").build(),
			want: confirmDecision{Group: 1, AlreadyBy: "alice"},
		},
		{
			name:    "an annotation already naming the group without a stamped user is refused with what to do",
			cd:      waitingAt1().annotation(cafev1alpha1.ConfirmGroupAnnotation, "1").build(),
			wantErr: "already has cafe.io/confirm-group=1 but no cafe.io/confirmed-by",
		},
		{
			name: "an annotation naming an earlier group does not stop confirming the current one",
			cd: waitingAt1().annotation(cafev1alpha1.ConfirmGroupAnnotation, "0").
				annotation(cafev1alpha1.ConfirmedByAnnotation, "alice").build(),
			want: confirmDecision{Group: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := decideConfirm(tt.cd, tt.explicit)
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestStampedBy(t *testing.T) {
	const by, at = cafev1alpha1.ConfirmedByAnnotation, cafev1alpha1.ConfirmedAtAnnotation
	tests := []struct {
		name          string
		before, after *cafev1alpha1.CafeDeployment
		want          string
		wantOK        bool
	}{
		{
			name:   "a user stamped by this write is reported",
			before: newCD().build(),
			after:  newCD().annotation(by, "alice").annotation(at, "2026-08-01T10:00:00Z").build(),
			want:   "alice", wantOK: true,
		},
		{
			name:   "the same user stamped again at a new time is reported",
			before: newCD().annotation(by, "alice").annotation(at, "2026-08-01T10:00:00Z").build(),
			after:  newCD().annotation(by, "alice").annotation(at, "2026-08-01T10:05:00Z").build(),
			want:   "alice", wantOK: true,
		},
		{
			name:   "a stamp left from an earlier action is not reported as this one",
			before: newCD().annotation(by, "alice").annotation(at, "2026-08-01T10:00:00Z").build(),
			after:  newCD().annotation(by, "alice").annotation(at, "2026-08-01T10:00:00Z").build(),
		},
		{
			name:   "no stamp at all is not reported",
			before: newCD().build(),
			after:  newCD().build(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, ok := stampedBy(tt.before, tt.after, by, at)
			g.Expect(ok).To(Equal(tt.wantOK))
			g.Expect(got).To(Equal(tt.want))
		})
	}
}
