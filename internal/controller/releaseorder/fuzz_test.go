package releaseorder

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/audit"
	"github.com/cafe-io/cafe/internal/seal"
	"github.com/cafe-io/cafe/test/framework/crdcheck"
)

// fuzzActors are who the fuzzed actions act as: the requester, approvers,
// nobody (no stamp) and CAFE's own identity.
var fuzzActors = []string{"alice", "bob", "carol", "dave", "erin", "frank", "", cafev1alpha1.ControllerIdentity}

// fuzzActionTypes are the actions, in the order fuzzedAction picks them.
var fuzzActionTypes = []cafev1alpha1.ReleaseActionType{cafev1alpha1.ActionApprove, cafev1alpha1.ActionReject, cafev1alpha1.ActionStart,
	cafev1alpha1.ActionPause, cafev1alpha1.ActionResume, cafev1alpha1.ActionConfirm, cafev1alpha1.ActionCancel, cafev1alpha1.ActionRollback}

// FuzzDecideOnAdmittedOrders builds a ReleaseOrder (apps with
// dependencies and strategies, approvals, a window, a failure policy) and
// a burst of up to 320 ReleaseActions (past the 256 audited one by one)
// from the fuzzer's values, keeps what the CRDs admit (crdcheck: the API
// server's schema and CEL validation, in-process), and runs decide round
// after round the way the reconciler does — the actions visible so far,
// the audit head sealed, the effects played on the apps, the apps'
// releases moved by fuzzed events: never a panic; no more app statuses
// than spec.apps, each once; valid phases; at most keptActionRecords
// action records; the audit trail append-only, with at most
// MaxAuditedActions entries for actions (and the Cancel that ends the
// order); and the status it writes
// admitted by the CRD, at each phase change and at the end (the CRD bounds
// the trail at 2048 entries, the approvals at 16, every message). Seeds
// are in testdata/fuzz/FuzzDecideOnAdmittedOrders.
func FuzzDecideOnAdmittedOrders(f *testing.F) {
	orderV := crdcheck.MustFor(f, "ReleaseOrder")
	actionV := crdcheck.MustFor(f, "ReleaseAction")
	// A chain a <- b, approved twice, started, released, one failure.
	f.Add([]byte{0, 0, 1, 1, 0, 2}, uint8(2), uint8(2), uint8(0), "alice", []byte{0x08, 0x10, 0x12, 0x18}, uint16(1), uint8(4), []byte{0x00, 0x20, 0x01, 0x21, 0x42, 0x60})
	// A burst of approvals and pauses past the audited actions.
	f.Add([]byte{0, 0}, uint8(0), uint8(1), uint8(0), "alice", []byte{0x08, 0x10, 0x1b, 0x23, 0x1c}, uint16(150), uint8(32), []byte{})
	// A window, RollbackAll, a cancel and a rollback.
	f.Add([]byte{0, 0x05, 1, 0x02, 3, 0x08}, uint8(3), uint8(1), uint8(0x62), "alice", []byte{0x08, 0x12, 0x16, 0x17, 0x0e}, uint16(2), uint8(1), []byte{0x60, 0x01, 0x42, 0x60, 0x60})
	// No requester, unsealed and CAFE-stamped actions.
	f.Add([]byte{0, 0}, uint8(1), uint8(10), uint8(0), "", []byte{0x48, 0x38, 0x30, 0x0a}, uint16(3), uint8(0), []byte{0xff})
	// A burst of Cancels that are refused (unsealed, no actor).
	f.Add([]byte{0, 0}, uint8(0), uint8(1), uint8(0), "alice", []byte{0x46, 0x36}, uint16(160), uint8(32), []byte{})
	f.Fuzz(func(t *testing.T, apps []byte, policy, required, window uint8, requester string, actions []byte, repeat uint16, burst uint8, events []byte) {
		ctx := context.Background()
		start := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
		seals := seal.NewKey([]byte("0123456789abcdef0123456789abcdef"))
		signer := audit.Signer{Key: ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))}
		o, refused, err := crdcheck.Admitted(ctx, orderV, fuzzedOrder(apps, policy, required, window, requester, start))
		if err != nil {
			t.Fatal(err)
		}
		if refused != nil {
			return
		}
		if o.Spec.RequestedBy != "" {
			o.Spec.Seal = seals.Order(o.Namespace, o.Spec)
		}
		var acts []cafev1alpha1.ReleaseAction
		for i := 0; len(actions) > 0 && i < len(actions)*max(int(repeat), 1) && i < 320; i++ {
			a, refused, err := crdcheck.Admitted(ctx, actionV, fuzzedAction(o, actions[i%len(actions)], i, start))
			if err != nil {
				t.Fatal(err)
			}
			if refused != nil {
				continue
			}
			if actions[i%len(actions)]&0x40 == 0 {
				a.Spec.Seal = seals.Action(a.Namespace, a.Spec)
			}
			acts = append(acts, *a)
		}

		w := newWorld()
		for _, a := range o.Spec.Apps {
			w.apps[a.Name] = appObservation{Exists: true, Published: a.Name + "-r1", StatusPublished: a.Name + "-r1", Generation: 1, ObservedGeneration: 1, Ready: true,
				Outcomes: map[string]cafev1alpha1.ReleaseOutcome{a.Name + "-r1": cafev1alpha1.ReleaseOutcomeSucceeded}}
		}
		burstSize := max(int(burst), 1)
		rounds := min(len(events)+(len(acts)+burstSize-1)/burstSize+len(acts)/actionsPerReconcile+2, 200)
		now := start
		processed := 0
		for round := range rounds {
			now = now.Add(10 * time.Second)
			if round < len(events) {
				now = playEvent(w, o, events[round], now)
			}
			visible := acts[:min(len(acts), (round+1)*burstSize)]
			before := o.DeepCopy()
			dec := decide(o, visible, w.apps, now, func(tr []cafev1alpha1.AuditEntry, e cafev1alpha1.AuditEntry) []cafev1alpha1.AuditEntry {
				return signer.Append(audit.SubjectOf(o), tr, e)
			}, orderRules{Identity: seals})
			sealAudit(o, before, signer)
			// Admitting the status costs most: once per phase, and last.
			admit := round == rounds-1 || o.Status.Phase != before.Status.Phase
			checkOrder(t, orderV, before, o, dec, len(visible), &processed, admit)
			w.effects(o)
		}
	})
}

// checkOrder checks the order decide left against the one it was given.
func checkOrder(t *testing.T, v *crdcheck.Validator, before, o *cafev1alpha1.ReleaseOrder, dec orderDecision, visible int, processed *int, admit bool) {
	st := &o.Status
	if !slices.Contains([]cafev1alpha1.ReleaseOrderPhase{cafev1alpha1.OrderPendingApproval, cafev1alpha1.OrderApproved, cafev1alpha1.OrderScheduled,
		cafev1alpha1.OrderRunning, cafev1alpha1.OrderPaused, cafev1alpha1.OrderRollingBack, cafev1alpha1.OrderSucceeded, cafev1alpha1.OrderFailed,
		cafev1alpha1.OrderRolledBack, cafev1alpha1.OrderCancelled}, st.Phase) {
		t.Fatalf("phase %q", st.Phase)
	}
	if len(st.Apps) > len(o.Spec.Apps) {
		t.Fatalf("%d app statuses for %d apps", len(st.Apps), len(o.Spec.Apps))
	}
	seen := map[string]bool{}
	for _, a := range st.Apps {
		if seen[a.Name] || !slices.ContainsFunc(o.Spec.Apps, func(s cafev1alpha1.ReleaseOrderApp) bool { return s.Name == a.Name }) {
			t.Fatalf("app status %s: twice %v, or not in spec.apps", a.Name, seen[a.Name])
		}
		seen[a.Name] = true
		if !slices.Contains([]cafev1alpha1.ReleaseOrderAppPhase{cafev1alpha1.AppPending, cafev1alpha1.AppPublishing, cafev1alpha1.AppReleasing,
			cafev1alpha1.AppSucceeded, cafev1alpha1.AppFailed, cafev1alpha1.AppWaitingForRollback, cafev1alpha1.AppRollingBack, cafev1alpha1.AppRolledBack}, a.Phase) {
			t.Fatalf("app %s: phase %q", a.Name, a.Phase)
		}
	}
	if len(st.Actions) > keptActionRecords {
		t.Fatalf("%d action records", len(st.Actions))
	}
	if n := st.ActionsProcessed(); n < *processed || n > visible {
		t.Fatalf("%d actions processed, %d before, %d visible", n, *processed, visible)
	}
	*processed = st.ActionsProcessed()
	if len(st.Audit) < len(before.Status.Audit) {
		t.Fatalf("the audit trail shrank from %d to %d", len(before.Status.Audit), len(st.Audit))
	}
	for i, e := range before.Status.Audit {
		if st.Audit[i].Hash != e.Hash {
			t.Fatalf("audit entry %d rewritten", i)
		}
	}
	// Actions get entries of their own up to MaxAuditedActions; past it
	// only the Cancel that ends the order does.
	actionEntries := 0
	for _, e := range st.Audit {
		if slices.Contains(fuzzActionTypes, cafev1alpha1.ReleaseActionType(e.Action)) {
			actionEntries++
		}
	}
	if actionEntries > cafev1alpha1.MaxAuditedActions+1 {
		t.Fatalf("%d audit entries for actions (%d processed), at most %d", actionEntries, st.ActionsProcessed(), cafev1alpha1.MaxAuditedActions+1)
	}
	if dec.RequeueAfter < 0 {
		t.Fatalf("requeue after %s", dec.RequeueAfter)
	}
	if !admit {
		return
	}
	if _, refused, err := crdcheck.Admitted(context.Background(), v, o); err != nil || refused != nil {
		t.Fatalf("the status written (phase %s, %d audit entries, %d approvals) is refused: %v %v", st.Phase, len(st.Audit), len(st.Approvals), err, refused)
	}
}

// fuzzedOrder is an order of one app per pair of bytes of apps (at most
// 32): the first a bitmask of the earlier apps it depends on (of the 8
// before it), the second its strategy (0x01 a batch size, 0x02 pause,
// 0x04 confirm each group, 0x08 custom groups); policy picks the failure
// policy, required the approvals, window a release window around now.
func fuzzedOrder(apps []byte, policy, required, window uint8, requester string, now time.Time) *cafev1alpha1.ReleaseOrder {
	o := &cafev1alpha1.ReleaseOrder{
		TypeMeta:   metav1.TypeMeta{APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "ReleaseOrder"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "weekly", Generation: 1, CreationTimestamp: metav1.NewTime(now)},
		Spec: cafev1alpha1.ReleaseOrderSpec{
			Title: "weekly", RequestedBy: requester, ProgressDeadlineSeconds: ptr.To[int32](600),
			FailurePolicy: []cafev1alpha1.FailurePolicy{"", cafev1alpha1.FailurePause, cafev1alpha1.FailureRollbackFailed, cafev1alpha1.FailureRollbackAll}[policy%4],
		},
	}
	if required > 0 {
		o.Spec.Approval.Required = ptr.To(int32(required))
	}
	for i := 0; i+1 < len(apps) && i < 2*32; i += 2 {
		name := fmt.Sprintf("a%d", i/2)
		app := cafev1alpha1.ReleaseOrderApp{Name: name, Revision: name + "-r2"}
		for j := range 8 {
			if apps[i]&(1<<j) != 0 && j < i/2 {
				app.DependsOn = append(app.DependsOn, fmt.Sprintf("a%d", i/2-1-j))
			}
		}
		if s := apps[i+1]; s != 0 {
			app.Strategy = &cafev1alpha1.ReleaseOrderAppStrategy{}
			if s&0x01 != 0 {
				app.Strategy.BatchSize = ptr.To(intstr.FromInt32(int32(s >> 4)))
			}
			if s&0x02 != 0 {
				app.Strategy.Pause = ptr.To(true)
			}
			if s&0x04 != 0 {
				app.Strategy.NeedWaitingForConfirm = ptr.To(true)
			}
			if s&0x08 != 0 {
				app.Strategy.Groups = []cafev1alpha1.ReleaseGroup{{Replicas: intstr.FromInt32(1)}, {Replicas: intstr.FromString("100%")}}
			}
		}
		o.Spec.Apps = append(o.Spec.Apps, app)
	}
	if window != 0 {
		at := func(b uint8) *metav1.Time {
			return ptr.To(metav1.NewTime(now.Add(time.Duration(int(b&0x0f)-4) * 10 * time.Minute)))
		}
		o.Spec.Window = &cafev1alpha1.ReleaseWindow{Start: at(window), End: at(window >> 4)}
		if window&0x0f == 0x0f {
			o.Spec.Window.Start = nil
		}
	}
	return o
}

// fuzzedAction is the i-th action on o from b: bits 0-2 the action, bits
// 3-5 the actor, 0x40 unsealed (the seal is added after admission unless
// set), 0x80 naming an app.
func fuzzedAction(o *cafev1alpha1.ReleaseOrder, b byte, i int, now time.Time) *cafev1alpha1.ReleaseAction {
	a := &cafev1alpha1.ReleaseAction{
		TypeMeta:   metav1.TypeMeta{APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "ReleaseAction"},
		ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: fmt.Sprintf("act-%d", i), CreationTimestamp: metav1.NewTime(now.Add(time.Duration(i) * time.Second))},
		Spec: cafev1alpha1.ReleaseActionSpec{
			Order: o.Name, Action: fuzzActionTypes[b&0x07], Actor: fuzzActors[(b>>3)&0x07], Comment: fmt.Sprintf("action %d", i),
			AdmittedAt: ptr.To(metav1.NewMicroTime(now.Add(time.Duration(i) * time.Second))),
		},
	}
	if b&0x80 != 0 && len(o.Spec.Apps) > 0 {
		a.Spec.App = o.Spec.Apps[i%len(o.Spec.Apps)].Name
	}
	return a
}

// playEvent moves the world one step from b: the app b&0x1f names (of
// the order's apps) is observed, finishes, fails, stalls past the
// deadline, is deleted, waits for a confirmation or is changed by a
// person; it returns the time after the event.
func playEvent(w *world, o *cafev1alpha1.ReleaseOrder, b byte, now time.Time) time.Time {
	if len(o.Spec.Apps) == 0 {
		return now
	}
	name := o.Spec.Apps[int(b&0x1f)%len(o.Spec.Apps)].Name
	switch b >> 5 {
	case 0:
		w.observe(name)
	case 1:
		w.finish(name, cafev1alpha1.ReleaseOutcomeSucceeded)
	case 2:
		w.finish(name, cafev1alpha1.ReleaseOutcomeFailed)
	case 3:
		return now.Add(11 * time.Minute)
	case 4:
		v := w.apps[name]
		v.Exists = false
		w.apps[name] = v
	case 5:
		v := w.apps[name]
		v.WaitingGroup, v.ReleasePhase = ptr.To[int32](1), cafev1alpha1.ReleasePhaseWaitingForConfirm
		w.apps[name] = v
	case 6:
		v := w.apps[name]
		v.OutsideChanges = append(v.OutsideChanges, outsideChange{What: "spec.publishedRevision", By: "mallory", At: now})
		v.Published = name + "-r9"
		w.apps[name] = v
	case 7:
		return now.Add(2 * time.Hour)
	}
	return now
}
