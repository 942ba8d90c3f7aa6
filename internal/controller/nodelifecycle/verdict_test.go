package nodelifecycle

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

var now = time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC)

func ago(d time.Duration) time.Time { return now.Add(-d) }

func bad(name cafev1alpha1.NodeSignal, since time.Duration) Signal {
	return Signal{Name: name, Bad: true, Since: ago(since), Evidence: "seen"}
}

func good(name cafev1alpha1.NodeSignal) Signal { return Signal{Name: name} }

const (
	ready  = cafev1alpha1.SignalReady
	lease  = cafev1alpha1.SignalLease
	conds  = cafev1alpha1.SignalNodeConditions
	report = cafev1alpha1.SignalExternalReport
	probe  = cafev1alpha1.SignalKubeletProbe
)

const (
	healthy = cafev1alpha1.NodeVerdictHealthy
	suspect = cafev1alpha1.NodeVerdictSuspect
	failed  = cafev1alpha1.NodeVerdictFailed
)

func defaults() *cafev1alpha1.NodeLifecyclePolicySpec {
	p := cafev1alpha1.DefaultNodeLifecyclePolicySpec()
	return &p
}

// The verdict for combinations of signals under the default policy
// (Suspect: 1 signal for 10 s; Failed: 2 signals for 10 s; recovery 60 s)
// and a few others.
func TestJudgeNode(t *testing.T) {
	onlyTwoSignals := defaults()
	onlyTwoSignals.Signals = []cafev1alpha1.NodeSignal{report, probe}
	strict := defaults()
	strict.Failed = cafev1alpha1.VerdictThreshold{MinSignals: 3, ForSeconds: 0}

	tests := []struct {
		name       string
		policy     *cafev1alpha1.NodeLifecyclePolicySpec
		signals    []Signal
		previous   cafev1alpha1.NodeVerdict
		cleanSince time.Time
		want       cafev1alpha1.NodeVerdict
		requeue    time.Duration
	}{
		{name: "no bad signal is healthy", signals: []Signal{good(ready), good(lease), good(conds), good(report), good(probe)}, want: healthy},
		{name: "one bad signal for less than suspect.forSeconds is still healthy", signals: []Signal{bad(lease, 4*time.Second)}, want: healthy, requeue: 6 * time.Second},
		{name: "one bad signal for suspect.forSeconds is suspect", signals: []Signal{bad(lease, 10*time.Second)}, want: suspect},
		{name: "one bad signal alone never fails a node, however long", signals: []Signal{bad(probe, time.Hour)}, want: suspect},
		{name: "a heartbeat that stopped: stale Lease then NotReady, agreeing for 10 s, is failed", signals: []Signal{bad(lease, 40*time.Second), bad(ready, 10*time.Second), good(probe)}, want: failed},
		{name: "two signals agreeing for less than failed.forSeconds are suspect, waking when they will have agreed long enough", signals: []Signal{bad(lease, 40*time.Second), bad(ready, 3*time.Second)}, want: suspect, requeue: 7 * time.Second},
		{name: "agreement counts from the second signal to turn bad, not the first", signals: []Signal{bad(report, time.Hour), bad(probe, 9*time.Second)}, want: suspect, requeue: time.Second},
		{name: "an external report and a failing probe on a heartbeating node agree: failed", signals: []Signal{good(ready), good(lease), bad(report, 20*time.Second), bad(probe, 15*time.Second)}, want: failed},
		{name: "a node condition and an external report: failed", signals: []Signal{bad(conds, 30*time.Second), bad(report, 30*time.Second)}, want: failed},
		{name: "a signal the policy does not enable does not count", policy: onlyTwoSignals, signals: []Signal{bad(lease, time.Hour), bad(ready, time.Hour), bad(probe, time.Hour)}, want: suspect},
		{name: "a stricter policy needs three signals", policy: strict, signals: []Signal{bad(lease, time.Hour), bad(ready, time.Hour)}, want: suspect},
		{name: "three agreeing signals satisfy the stricter policy at once", policy: strict, signals: []Signal{bad(lease, time.Hour), bad(ready, time.Hour), bad(probe, time.Second)}, want: failed},
		{name: "a failed node stays failed while one signal is still bad", previous: failed, signals: []Signal{bad(probe, time.Hour)}, want: failed},
		{name: "a failed node stays failed during the recovery time", previous: failed, cleanSince: ago(30 * time.Second), want: failed, requeue: 30 * time.Second},
		{name: "a failed node with no bad signal for recoverySeconds is healthy", previous: failed, cleanSince: ago(60 * time.Second), want: healthy},
		{name: "a suspect node stays suspect while its signal is bad but too recent", previous: suspect, signals: []Signal{bad(lease, time.Second)}, want: suspect},
		{name: "a suspect node recovers after recoverySeconds clean", previous: suspect, cleanSince: ago(2 * time.Minute), want: healthy},
		{name: "a restarted controller (clean since unknown) waits the whole recovery time", previous: suspect, want: suspect, requeue: 60 * time.Second},
		{name: "a suspect node whose signals now agree is failed", previous: suspect, signals: []Signal{bad(lease, time.Minute), bad(ready, time.Minute)}, want: failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			p := tt.policy
			if p == nil {
				p = defaults()
			}
			d := judgeNode(verdictInput{Policy: p, Signals: tt.signals, Previous: tt.previous, CleanSince: tt.cleanSince, Now: now})
			g.Expect(d.Verdict).To(Equal(tt.want))
			g.Expect(d.RequeueAfter).To(Equal(tt.requeue))
		})
	}
}

func TestJudgementMessageListsTheEvidenceEarliestFirst(t *testing.T) {
	g := NewWithT(t)
	d := judgeNode(verdictInput{Policy: defaults(), Now: now, Signals: []Signal{
		{Name: probe, Bad: true, Since: ago(time.Second), Evidence: "endpoint 127.0.0.1:1 not answering"},
		{Name: report, Bad: true, Since: ago(time.Minute), Evidence: "zabbix/DiskLatency"},
	}})
	g.Expect(d.Message).To(Equal("2 bad signals: ExternalReport: zabbix/DiskLatency; KubeletProbe: endpoint 127.0.0.1:1 not answering"))
	g.Expect(d.FirstBad).To(Equal(ago(time.Minute)))
	g.Expect(strings.Contains(judgeNode(verdictInput{Policy: defaults(), Now: now}).Message, "no bad signal")).To(BeTrue())
}
