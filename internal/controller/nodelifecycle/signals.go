package nodelifecycle

import (
	"sort"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// ProbeResult is the prober's record of one node's kubelet endpoint.
type ProbeResult struct {
	// Endpoint probed ("" when the node publishes none: not probed).
	Endpoint string
	// ConsecutiveFailures and FailingSince describe the current run of
	// failures (zero after a success).
	ConsecutiveFailures int
	FailingSince        time.Time
	// LastError is the last failure, in words.
	LastError string
}

// nodeEvidence is what was gathered about one node.
type nodeEvidence struct {
	Node    *corev1.Node
	Lease   *coordinationv1.Lease
	Reports []cafev1alpha1.NodeHealthReport
	Probe   *ProbeResult
}

// signalsOf turns the gathered objects into one Signal per signal name. A
// signal with nothing to say (no probe endpoint, no report) is not bad.
func signalsOf(ev nodeEvidence, p *cafev1alpha1.NodeLifecyclePolicySpec, now time.Time) []Signal {
	return []Signal{
		readySignal(ev.Node),
		leaseSignal(ev.Node.CreationTimestamp.Time, corev1.NamespaceNodeLease, ev.Lease, p, now),
		conditionsSignal(ev.Node, p),
		reportSignal(ev.Reports, now),
		probeSignal(ev.Probe, p),
	}
}

func readySignal(node *corev1.Node) Signal {
	s := Signal{Name: cafev1alpha1.SignalReady}
	for _, c := range node.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		if c.Status != corev1.ConditionTrue {
			s.Bad, s.Since = true, c.LastTransitionTime.Time
			s.Evidence = "Ready=" + string(c.Status) + " (" + c.Reason + ") since " + stamp(c.LastTransitionTime.Time)
		}
		return s
	}
	s.Bad, s.Since, s.Evidence = true, node.CreationTimestamp.Time, "no Ready condition reported"
	return s
}

// leaseFresh reports whether the node's Lease was renewed within
// leaseStaleSeconds.
func leaseFresh(lease *coordinationv1.Lease, p *cafev1alpha1.NodeLifecyclePolicySpec, now time.Time) bool {
	return lease != nil && lease.Spec.RenewTime != nil && now.Before(lease.Spec.RenewTime.Add(seconds(p.LeaseStaleSeconds)))
}

// leaseSignal judges a heartbeat Lease of namespace, of an object created
// at created (the time a missing Lease counts as bad from).
func leaseSignal(created time.Time, namespace string, lease *coordinationv1.Lease, p *cafev1alpha1.NodeLifecyclePolicySpec, now time.Time) Signal {
	s := Signal{Name: cafev1alpha1.SignalLease}
	switch {
	case lease == nil || lease.Spec.RenewTime == nil:
		s.Bad, s.Since, s.Evidence = true, created, "no Lease in "+namespace
	case !leaseFresh(lease, p, now):
		s.Bad, s.Since = true, lease.Spec.RenewTime.Add(seconds(p.LeaseStaleSeconds))
		s.Evidence = "Lease last renewed " + stamp(lease.Spec.RenewTime.Time) + " (stale after " + strconv.Itoa(int(p.LeaseStaleSeconds)) + "s)"
	}
	return s
}

func conditionsSignal(node *corev1.Node, p *cafev1alpha1.NodeLifecyclePolicySpec) Signal {
	s := Signal{Name: cafev1alpha1.SignalNodeConditions}
	bad := map[string]string{}
	for _, b := range p.NodeConditions {
		bad[b.Type] = b.Status
	}
	var seen []string
	for _, c := range node.Status.Conditions {
		want, ok := bad[string(c.Type)]
		if !ok || string(c.Status) != want {
			continue
		}
		if !s.Bad || c.LastTransitionTime.Time.Before(s.Since) {
			s.Since = c.LastTransitionTime.Time
		}
		s.Bad = true
		seen = append(seen, string(c.Type)+"="+string(c.Status)+" ("+c.Reason+")")
	}
	sort.Strings(seen)
	s.Evidence = strings.Join(seen, ", ")
	return s
}

func reportSignal(reports []cafev1alpha1.NodeHealthReport, now time.Time) Signal {
	s := Signal{Name: cafev1alpha1.SignalExternalReport}
	var seen []string
	for i := range reports {
		r := &reports[i]
		if !r.ActiveAt(metav1.NewTime(now)) {
			continue
		}
		// Since the report's state last changed: a report flipped to
		// Unhealthy has not been bad since its creation.
		if since := r.UnhealthySince(); !s.Bad || since.Before(s.Since) {
			s.Since = since
		}
		s.Bad = true
		e := r.Spec.Source + "/" + r.Spec.Reason
		if r.Spec.ReportedBy != "" {
			e += " by " + r.Spec.ReportedBy
		}
		if r.Spec.Message != "" {
			e += " (" + r.Spec.Message + ")"
		}
		e += " until " + stamp(r.ExpiresAt())
		seen = append(seen, e)
	}
	sort.Strings(seen)
	s.Evidence = strings.Join(seen, ", ")
	return s
}

func probeSignal(r *ProbeResult, p *cafev1alpha1.NodeLifecyclePolicySpec) Signal {
	s := Signal{Name: cafev1alpha1.SignalKubeletProbe}
	if r == nil || r.Endpoint == "" || r.ConsecutiveFailures < int(p.Probe.FailureThreshold) {
		return s
	}
	s.Bad, s.Since = true, r.FailingSince
	s.Evidence = "kubelet endpoint " + r.Endpoint + " not answering since " + stamp(r.FailingSince)
	return s
}

// reportExpiry is the earliest future expiry of an active report (zero if
// none): the verdict must be reconsidered then.
func reportExpiry(reports []cafev1alpha1.NodeHealthReport, now time.Time) time.Duration {
	var next time.Duration
	for i := range reports {
		if !reports[i].ActiveAt(metav1.NewTime(now)) {
			continue
		}
		if d := reports[i].ExpiresAt().Sub(now); d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	return next
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func itoa(n int) string { return strconv.Itoa(n) }
