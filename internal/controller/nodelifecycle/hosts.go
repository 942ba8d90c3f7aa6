package nodelifecycle

import (
	"context"
	"fmt"
	"sort"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/ssa"
)

// Classic hosts are judged by the same rules as nodes, from the evidence a
// host has (docs/classic-hosts.md):
//   - Ready: the agent's own AgentReady condition, its statement that it
//     can run instances (as a kubelet reports its node's Ready);
//   - Lease: the agent's heartbeat Lease in cafe-host-lease, stale after
//     the policy's leaseStaleSeconds;
//   - KubeletProbe: CAFE's probe of the agent's endpoint at the host's
//     address, the path its instances serve on (the host's Reachable
//     condition, False once the probes have failed for the unreachable
//     bound);
//   - ExternalReport: unexpired NodeHealthReports naming the host
//     (spec.hostName);
//   - NodeConditions has no host counterpart yet and is never bad for a
//     host.
//
// A Suspect or Failed host is cordoned (its Schedulable condition False:
// no instance is placed there); a Failed one's ClassicSet instances are
// asked to migrate, within the same zone guard and rate limits as pods.
// The host's Ready condition, which takes its instances out of traffic,
// stays the classichost controller's: it reacts within seconds, before any
// verdict.

// HostFieldOwner is the server-side-apply field manager of the Healthy and
// Schedulable conditions of classic hosts.
const HostFieldOwner = client.FieldOwner("cafe-nodelifecycle")

// hostEvidence is what was gathered about one classic host.
type hostEvidence struct {
	Host    *cafev1alpha1.ClassicHost
	Lease   *coordinationv1.Lease
	Reports []cafev1alpha1.NodeHealthReport
}

// hostSignals turns a host's evidence into one Signal per signal name.
func hostSignals(ev hostEvidence, p *cafev1alpha1.NodeLifecyclePolicySpec, now time.Time) []Signal {
	h := ev.Host
	return []Signal{
		hostConditionSignal(h, cafev1alpha1.SignalReady, cafev1alpha1.ClassicHostAgentReadyCondition, func(c *metav1.Condition) bool { return c == nil || c.Status != metav1.ConditionTrue }),
		leaseSignal(h.CreationTimestamp.Time, cafev1alpha1.ClassicHostLeaseNamespace, ev.Lease, p, now),
		{Name: cafev1alpha1.SignalNodeConditions},
		reportSignal(ev.Reports, now),
		hostConditionSignal(h, cafev1alpha1.SignalKubeletProbe, cafev1alpha1.ClassicHostReachableCondition, func(c *metav1.Condition) bool { return c != nil && c.Status == metav1.ConditionFalse }),
	}
}

// hostConditionSignal is the signal name, bad when bad(the host's condition
// typ) says so, since the condition's transition (the host's creation when
// it is missing).
func hostConditionSignal(h *cafev1alpha1.ClassicHost, name cafev1alpha1.NodeSignal, typ string, bad func(*metav1.Condition) bool) Signal {
	s := Signal{Name: name}
	c := meta.FindStatusCondition(h.Status.Conditions, typ)
	if !bad(c) {
		return s
	}
	s.Bad = true
	if c == nil {
		s.Since, s.Evidence = h.CreationTimestamp.Time, "no "+typ+" condition reported"
		return s
	}
	s.Since = c.LastTransitionTime.Time
	s.Evidence = fmt.Sprintf("%s=%s (%s) since %s", typ, c.Status, c.Reason, stamp(s.Since))
	return s
}

// hostKey keys a host in the reconciler's in-memory maps, apart from
// nodes of the same name.
func hostKey(name string) string { return "host/" + name }

// judgeHosts gathers every classic host's signals and decides its verdict,
// in host name order; a Failed host's ClassicSet instances are filled in.
func (r *Reconciler) judgeHosts(ctx context.Context, p *cafev1alpha1.NodeLifecyclePolicySpec, records []cafev1alpha1.HostVerdictRecord, reportsOf map[string][]cafev1alpha1.NodeHealthReport, now time.Time) ([]nodeState, time.Duration, error) {
	hosts := &cafev1alpha1.ClassicHostList{}
	if err := r.Client.List(ctx, hosts); err != nil {
		return nil, 0, fmt.Errorf("listing classic hosts: %w", err)
	}
	leases := &coordinationv1.LeaseList{}
	if len(hosts.Items) > 0 {
		if err := r.APIReader.List(ctx, leases, client.InNamespace(cafev1alpha1.ClassicHostLeaseNamespace), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}}); err != nil {
			return nil, 0, fmt.Errorf("listing classic host leases: %w", err)
		}
	}
	leaseOf := map[string]*coordinationv1.Lease{}
	for i := range leases.Items {
		leaseOf[leases.Items[i].Name] = &leases.Items[i]
	}
	recorded := map[string]cafev1alpha1.HostVerdictRecord{}
	for _, rec := range records {
		recorded[rec.Host] = rec
	}
	sort.Slice(hosts.Items, func(i, j int) bool { return hosts.Items[i].Name < hosts.Items[j].Name })

	var requeue time.Duration
	states := make([]nodeState, 0, len(hosts.Items))
	for i := range hosts.Items {
		h := &hosts.Items[i]
		ev := hostEvidence{Host: h, Lease: leaseOf[h.Name], Reports: reportsOf[h.Name]}
		signals := hostSignals(ev, p, now)
		prev, prevSince := recordedHostVerdict(h, recorded)
		d := judgeNode(verdictInput{Policy: p, Signals: signals, Previous: prev, CleanSince: r.cleanSince(hostKey(h.Name), signals, p, now), Now: now})
		st := nodeState{Host: h, Name: h.Name, Zone: h.Spec.Zone, Judgement: d, Previous: prev, VerdictSince: prevSince, LeaseFresh: leaseFresh(ev.Lease, p, now)}
		if prev != d.Verdict {
			st.VerdictSince = now
		}
		if unhealthy(d.Verdict) {
			st.UnhealthySince = st.VerdictSince
			if unhealthy(prev) && !prevSince.IsZero() {
				st.UnhealthySince = prevSince
			}
		}
		st.NoSchedule = meta.IsStatusConditionFalse(h.Status.Conditions, cafev1alpha1.ClassicHostSchedulableCondition)
		requeue = minPositive(requeue, d.RequeueAfter, leaseStaleIn(ev.Lease, p, now), reportExpiry(ev.Reports, now))
		if d.Verdict == cafev1alpha1.NodeVerdictFailed {
			if err := r.instancesOf(ctx, &st); err != nil {
				return nil, 0, err
			}
		}
		states = append(states, st)
	}
	return states, requeue, nil
}

// recordedHostVerdict is the host's previous verdict and since when: an
// unhealthy one only from the policy's status.unhealthyHosts (which only
// CAFE writes), a Healthy one from the host's Healthy condition.
func recordedHostVerdict(h *cafev1alpha1.ClassicHost, recorded map[string]cafev1alpha1.HostVerdictRecord) (cafev1alpha1.NodeVerdict, time.Time) {
	if rec, ok := recorded[h.Name]; ok {
		return rec.Verdict, rec.Since.Time
	}
	c := meta.FindStatusCondition(h.Status.Conditions, cafev1alpha1.ClassicHostHealthyCondition)
	switch {
	case c == nil:
		return "", time.Time{}
	case c.Reason == string(cafev1alpha1.NodeVerdictHealthy):
		return cafev1alpha1.NodeVerdictHealthy, c.LastTransitionTime.Time
	default:
		return cafev1alpha1.NodeVerdictHealthy, time.Time{} // an unhealthy verdict CAFE has not recorded
	}
}

// instancesOf fills the ClassicSet instances on a Failed host: those not
// yet asked to migrate (Movable) and those asked (Migrating). Instances
// no set controls stay: nothing would replace them.
func (r *Reconciler) instancesOf(ctx context.Context, st *nodeState) error {
	list := &cafev1alpha1.ClassicInstanceList{}
	if err := r.Client.List(ctx, list); err != nil {
		return fmt.Errorf("listing the classic instances of host %s: %w", st.Name, err)
	}
	var on []client.Object
	for i := range list.Items {
		if list.Items[i].Spec.HostName == st.Name {
			on = append(on, &list.Items[i])
		}
	}
	st.fileMovable(on, "ClassicSet")
	return nil
}

// writeHostConditions applies the host's Healthy condition (the verdict)
// and its Schedulable condition (False while cordoned) when either
// changes. Healthy's transition time is when the verdict last changed.
func (r *Reconciler) writeHostConditions(ctx context.Context, st *nodeState, a *nodeActions, message string) error {
	h := st.Host
	healthy := metav1.Condition{Type: cafev1alpha1.ClassicHostHealthyCondition, Status: metav1.ConditionFalse, Reason: string(st.Judgement.Verdict), Message: message, ObservedGeneration: h.Generation}
	if st.Judgement.Verdict == cafev1alpha1.NodeVerdictHealthy {
		healthy.Status = metav1.ConditionTrue
	}
	schedulable := metav1.Condition{Type: cafev1alpha1.ClassicHostSchedulableCondition, Status: metav1.ConditionTrue, Reason: cafev1alpha1.ClassicHostReasonSchedulable,
		Message: "CAFE's verdict does not cordon the host", ObservedGeneration: h.Generation}
	if a.NoSchedule {
		schedulable.Status, schedulable.Reason = metav1.ConditionFalse, cafev1alpha1.ClassicHostReasonCordoned
		schedulable.Message = "cordoned: the host is " + string(st.Judgement.Verdict) + "; no new instance is placed here"
	}
	if ssa.SameCondition(h.Status.Conditions, healthy) && ssa.SameCondition(h.Status.Conditions, schedulable) {
		return nil
	}
	body, err := ssa.ClassicHostConditions(h, r.Now(), healthy, schedulable)
	if err != nil {
		return err
	}
	if err := r.Client.Status().Apply(ctx, body, HostFieldOwner, client.ForceOwnership); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil // gone or replaced: judged again at the next pass
		}
		return fmt.Errorf("applying the verdict of host %s: %w", h.Name, err)
	}
	return nil
}
