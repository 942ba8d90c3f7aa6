package cafedeployment

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controller/cafedeployment/podset"
	"github.com/cafe-io/cafe/internal/release/plan"
)

// revisionChange is what advanceRelease found about the update revision.
type revisionChange struct {
	// isNew: the template is not the one the recorded release is about (or
	// none is recorded): its revision goes into the history.
	isNew bool
	// outgoing is the revision the status names as current once the new
	// release starts (the one it replaces): the history keeps it.
	outgoing string
}

// advanceRelease records the update revision in the status and steps the
// release record from the pod sets' reports. The current revision becomes
// the update revision once its release completes.
func advanceRelease(cd *cafev1alpha1.CafeDeployment, p plan.Plan, reports map[string]podset.UnitReport, updateRevision string, fast bool, now metav1.Time) revisionChange {
	st := &cd.Status
	firstRevision := st.UpdateRevision == ""
	change := revisionChange{isNew: st.UpdateRevision != updateRevision}
	rejected := ""
	if change.isNew && failedTrafficStep(cd) && updateRevision == st.CurrentRevision {
		rejected = st.UpdateRevision
	}
	if change.isNew && !firstRevision {
		st.CurrentRevision = st.UpdateRevision
	}
	change.outgoing = st.CurrentRevision
	st.UpdateRevision = updateRevision
	if st.CurrentRevision == "" {
		st.CurrentRevision = updateRevision
	}
	st.Release = stepRelease(releaseInput{
		Plan:           p,
		Release:        st.Release,
		NewRelease:     change.isNew,
		Progress:       progressOf(reports),
		WaitForConfirm: cd.Spec.Strategy.WaitsForConfirm() && !fast,
		Traffic:        cd.Spec.Strategy.Traffic,
		Paused:         cd.Spec.Strategy.Pause,
		Confirmation:   confirmationOf(cd),
		Now:            now,
	})
	if rejected != "" {
		st.Release.RejectedRevision = rejected
	}
	if firstRevision {
		// Creating the first pods is not a release of a change: nothing to
		// compare, confirm or roll back to, so every group is released.
		st.Release.Phase = cafev1alpha1.ReleasePhaseCompleted
		st.Release.CurrentGroup = st.Release.TotalGroups
	}
	if st.Release.Phase == cafev1alpha1.ReleasePhaseCompleted {
		st.CurrentRevision = updateRevision
	}
	return change
}

func progressOf(reports map[string]podset.UnitReport) map[string]unitProgress {
	out := map[string]unitProgress{}
	for unit, v := range reports {
		out[unit] = unitProgress{UpdatedAvailable: v.UpdatedAvailable, Observed: v.Observed}
	}
	return out
}

// confirmationOf reads the webhook-stamped confirmation, ignoring one
// without an authenticated user or with one CAFE's webhook cannot have
// stamped (too long to record).
func confirmationOf(cd *cafev1alpha1.CafeDeployment) *confirmation {
	c, _ := stampedGroupAction(cd.Annotations, cafev1alpha1.ConfirmGroupAnnotation, cafev1alpha1.ConfirmedByAnnotation, cafev1alpha1.ConfirmedAtAnnotation)
	return c
}

// stampedGroupAction reads a person's action on a group from annotations:
// the group a client named (groupKey) and the user and time CAFE's webhook
// stamped (byKey, atKey). It is nil without a stamped user (or with one the
// webhook cannot have stamped); timed reports whether the time parsed.
func stampedGroupAction(a map[string]string, groupKey, byKey, atKey string) (c *confirmation, timed bool) {
	group, err := strconv.Atoi(a[groupKey])
	if by := a[byKey]; err != nil || by == "" || len(by) > cafev1alpha1.MaxRecordedUserLength {
		return nil, false
	}
	at, err := time.Parse(time.RFC3339, a[atKey])
	return &confirmation{Group: int32(group), User: a[byKey], At: metav1.NewTime(at)}, err == nil
}

// unitProgress is what a unit's pod set reports about the update revision.
type unitProgress struct {
	// UpdatedAvailable counts pods on the update revision that serve again
	// (their gate reopened after minReadySeconds).
	UpdatedAvailable int32
	// Observed is false while the pod set has not yet seen its latest spec,
	// so its counts cannot be trusted.
	Observed bool
}

// releaseInput is everything stepRelease decides from.
type releaseInput struct {
	Plan    plan.Plan
	Release cafev1alpha1.ReleaseStatus
	// NewRelease is true when the update revision differs from the one the
	// recorded release is about.
	NewRelease     bool
	Progress       map[string]unitProgress
	WaitForConfirm bool
	// Traffic holds the release's traffic steps (nil: none).
	Traffic *cafev1alpha1.TrafficStrategy
	Paused  bool
	// Confirmation is a group confirmation recorded on the object (by the
	// admission webhook, with the authenticated user), if any.
	Confirmation *confirmation
	Now          metav1.Time
}

// confirmation says that User confirmed group Group at At.
type confirmation struct {
	Group int32
	User  string
	At    metav1.Time
}

// stepRelease advances the release record as far as the pod sets allow:
//
//	Progressing(k) --group k done--> Progressing(k+1)            (no confirm;
//	                                   group k+1 started with k where it flows)
//	               --group k done--> WaitingForConfirm(k) --confirmed(k)--> Progressing(k+1)
//	               --group k done, k has a traffic step--> Verifying(k)
//	                   --duration elapsed, or confirmed(k) without one--> (as above)
//	               --last group done--> Completed
//
// Paused shows as the phase while set (the pod sets stop operating), and the
// group index never moves backwards within one release.
func stepRelease(in releaseInput) cafev1alpha1.ReleaseStatus {
	r := *in.Release.DeepCopy()
	total := int32(len(in.Plan.Groups))
	if in.NewRelease {
		unfinished := in.Release.TotalGroups != nil && in.Release.Phase != cafev1alpha1.ReleasePhaseCompleted
		r = cafev1alpha1.ReleaseStatus{Phase: cafev1alpha1.ReleasePhaseProgressing, CurrentGroup: ptr.To[int32](0), TotalGroups: ptr.To(total), TrafficStepsSkipped: unfinished && in.Traffic != nil}
		if total > 0 {
			r.Groups = []cafev1alpha1.ReleaseGroupStatus{{Index: 0, StartTime: ptr.To(in.Now)}}
		}
	}
	r.TotalGroups = ptr.To(total)
	if r.CurrentGroup == nil {
		r.CurrentGroup = ptr.To[int32](0)
	}
	recordConfirmation(&r, in.Confirmation)

	for {
		k := *r.CurrentGroup
		if k >= total {
			r.Phase = cafev1alpha1.ReleasePhaseCompleted
			break
		}
		g := groupStatus(&r, k, in.Now)
		if !groupDone(in.Plan.Groups[k], in.Progress, g.FinishTime != nil) {
			r.Phase = cafev1alpha1.ReleasePhaseProgressing
			break
		}
		if g.FinishTime == nil {
			g.FinishTime = ptr.To(in.Now)
		}
		if k == total-1 {
			// Completed reads "group N of N": every group is done.
			r.CurrentGroup = ptr.To(total)
			r.Phase = cafev1alpha1.ReleasePhaseCompleted
			break
		}
		if step := stepAfter(in.Traffic, &r, k); step != nil && !trafficStepOver(g, step, in.Now) {
			beginTrafficStep(g, in.Traffic, step)
			r.Phase = cafev1alpha1.ReleasePhaseVerifying
			break
		}
		if g.Traffic != nil && g.Traffic.Verdict == cafev1alpha1.AnalysisFailed {
			// The analysis judged the step's version bad: nothing more is
			// released; a person or the release order's failure policy acts.
			r.Phase = cafev1alpha1.ReleasePhaseFailed
			break
		}
		if in.WaitForConfirm && g.ConfirmedBy == "" {
			r.Phase = cafev1alpha1.ReleasePhaseWaitingForConfirm
			break
		}
		r.CurrentGroup = ptr.To(k + 1)
		groupStatus(&r, k+1, in.Now)
	}
	if k := *r.CurrentGroup; r.Phase == cafev1alpha1.ReleasePhaseProgressing {
		// The groups after the current one start with it, up to the next
		// barrier: their pods may be operated on from now, as the budget
		// allows.
		held := func(j int32) bool { return in.WaitForConfirm || stepAfter(in.Traffic, &r, j) != nil }
		for j := k + 1; j <= operatedThrough(in.Plan, k, held); j++ {
			groupStatus(&r, j, in.Now)
		}
	}
	if in.Paused && r.Phase != cafev1alpha1.ReleasePhaseCompleted {
		r.Phase = cafev1alpha1.ReleasePhasePaused
	}
	return r
}

// operatedThrough is the last group whose pods the pod sets operate on
// while group k is the current one: the release flows past every boundary
// up to the next barrier (one of the plan's, Plan.FlowsPast, or a group
// held after it: a confirmation or a traffic step), so that the pods of
// the groups after k start draining as soon as the budget allows (the
// units' maxUnavailable, a group's worth of pods in flight, minAvailable),
// as a Deployment rolls, instead of when the last pod of a group is back.
// A group boundary is a barrier only where a person or a check looks.
func operatedThrough(p plan.Plan, k int32, heldAfter func(group int32) bool) int32 {
	for !heldAfter(k) && p.FlowsPast(int(k)) {
		k++
	}
	return k
}

// groupDone: every unit runs at least the group's cumulative number of
// updated, serving pods, as reported by pod sets that saw their latest spec.
// A group that already finished stays done while a pod set has not yet seen
// a spec changed since (finishing a group takes its budget share away, which
// is such a change): only fewer serving pods undo it. Otherwise every
// finished group would read as in progress for one reconcile, and a traffic
// step or a wait for confirmation would flicker off and on.
func groupDone(g plan.Group, progress map[string]unitProgress, finished bool) bool {
	for unit, want := range g.Cumulative {
		p, ok := progress[unit]
		if want > 0 && (!ok || (!p.Observed && !finished) || p.UpdatedAvailable < want) {
			return false
		}
	}
	return true
}

// groupStatus returns the record of group k, creating it (started now).
func groupStatus(r *cafev1alpha1.ReleaseStatus, k int32, now metav1.Time) *cafev1alpha1.ReleaseGroupStatus {
	for i := range r.Groups {
		if r.Groups[i].Index == k {
			return &r.Groups[i]
		}
	}
	r.Groups = append(r.Groups, cafev1alpha1.ReleaseGroupStatus{Index: k, StartTime: ptr.To(now)})
	return &r.Groups[len(r.Groups)-1]
}

// recordConfirmation copies a confirmation of the group the release waits
// on into its record. A confirmation of another group, or one given before
// the group finished, is ignored: confirming is always about the group just
// finished, seen by a person.
func recordConfirmation(r *cafev1alpha1.ReleaseStatus, c *confirmation) {
	waiting := r.Phase == cafev1alpha1.ReleasePhaseWaitingForConfirm || r.Phase == cafev1alpha1.ReleasePhaseVerifying
	if c == nil || r.CurrentGroup == nil || c.Group != *r.CurrentGroup || !waiting {
		return
	}
	for i := range r.Groups {
		g := &r.Groups[i]
		// A confirmation stamped before the group finished was given
		// without seeing it: it stays on the object but does not count.
		if g.Index == c.Group && g.ConfirmedBy == "" && g.FinishTime != nil && !c.At.Before(g.FinishTime) {
			g.ConfirmedBy = c.User
			g.ConfirmedAt = ptr.To(c.At)
		}
	}
}

// stepAfter is the traffic step of group k of the release r, nil when
// none (or when the release skips its steps).
func stepAfter(t *cafev1alpha1.TrafficStrategy, r *cafev1alpha1.ReleaseStatus, k int32) *cafev1alpha1.TrafficStep {
	if t == nil || r.TrafficStepsSkipped {
		return nil
	}
	return cafev1alpha1.CafeDeploymentStrategy{Traffic: t}.TrafficStepAfter(k)
}

// trafficStep is group k's step in cd's current release.
func trafficStep(cd *cafev1alpha1.CafeDeployment, k int32) *cafev1alpha1.TrafficStep {
	return stepAfter(cd.Spec.Strategy.Traffic, &cd.Status.Release, k)
}

// beginTrafficStep records the step on its group (what it sends where);
// its start time is set once the route was steered (trafficStarted).
func beginTrafficStep(g *cafev1alpha1.ReleaseGroupStatus, t *cafev1alpha1.TrafficStrategy, step *cafev1alpha1.TrafficStep) {
	if g.Traffic == nil {
		g.Traffic = &cafev1alpha1.TrafficStepStatus{Split: describeSplit(t, step)}
	}
}

// trafficStepOver: the step ended before, or ends now, recording its end:
// its analysis failed; or it ran its duration (counted from when the route
// was steered) and its analysis passed, for each of the two it has; or,
// having neither, its group was confirmed.
func trafficStepOver(g *cafev1alpha1.ReleaseGroupStatus, step *cafev1alpha1.TrafficStep, now metav1.Time) bool {
	st := g.Traffic
	if st != nil && st.EndTime != nil {
		return true
	}
	steered := st != nil && st.StartTime != nil
	var over bool
	switch {
	case step.Analysis == nil && step.DurationSeconds == nil:
		over = g.ConfirmedBy != ""
	case !steered:
	case st.Verdict == cafev1alpha1.AnalysisFailed:
		over = true
	default:
		ran := step.DurationSeconds == nil || !now.Time.Before(trafficStepEnd(st, step))
		judged := step.Analysis == nil || st.Verdict == cafev1alpha1.AnalysisPassed
		over = ran && judged
	}
	if over && st != nil {
		st.EndTime = ptr.To(now)
	}
	return over
}

// trafficStepEnd is when a step with a duration ends.
func trafficStepEnd(st *cafev1alpha1.TrafficStepStatus, step *cafev1alpha1.TrafficStep) time.Time {
	return st.StartTime.Add(time.Duration(*step.DurationSeconds) * time.Second)
}

// describeSplit says what a step sends to the updated pods.
func describeSplit(t *cafev1alpha1.TrafficStrategy, step *cafev1alpha1.TrafficStep) string {
	if step.Weight != nil {
		return fmt.Sprintf("%d%% to %s", *step.Weight, t.CanaryService())
	}
	var hs []string
	for _, h := range step.Headers {
		hs = append(hs, h.Name+": "+h.Value)
	}
	return fmt.Sprintf("requests with %s to %s", strings.Join(hs, ", "), t.CanaryService())
}
