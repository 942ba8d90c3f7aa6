package main

import (
	"context"
	"fmt"

	klabels "k8s.io/apimachinery/pkg/labels"

	"github.com/cafe-io/cafe/test/framework/watchrec"
)

// invariants are what the API server's watch stream of one release shows
// about the guarantees every workload is judged by, with the e2e tests'
// checkers (test/framework/watchrec): the lossless protocol (no pod deleted
// or changed while an EndpointSlice lists it ready or serving) and the
// workload's own water level, counted twice: Ready pods, and pods the
// EndpointSlices list ready (what the traffic sees).
type invariants struct {
	// Checked is false when no stream was recorded (a release that did not
	// start).
	Checked bool
	// MinReady is the water level checked: the fewest Ready pods the
	// workload's settings promise during the release.
	MinReady int
	// Lossless, WaterLevel (Ready pods) and ServingLevel (pods listed
	// ready) are the violations found, one line each.
	Lossless, WaterLevel, ServingLevel []string
	// LosslessTimeline is the stream's story of the first lossless
	// violation's pod (losslessTimeline).
	LosslessTimeline []string `json:",omitempty"`
	// ServingJudged: the workload writes its Service's endpoints itself,
	// so it orders its slice writes and answers for the serving level.
	ServingJudged bool `json:",omitempty"`
}

// invariantRecording records a release's pod and EndpointSlice events from
// before the image changes until the pods are settled.
type invariantRecording struct {
	rec           *watchrec.Recorder
	minReady      int
	servingJudged bool
}

// recordInvariants starts recording ns and returns once the recorder has
// the namespace's current state, so every event of the release is in it.
func (r *runner) recordInvariants(ctx context.Context, ns string, minReady int, servingJudged bool) (*invariantRecording, error) {
	rec, err := watchrec.Start(ctx, r.cluster.admin, ns, watchrec.WithPodSelector(klabels.SelectorFromSet(appLabels())))
	if err != nil {
		return nil, fmt.Errorf("starting the watch recorder of %s: %w", ns, err)
	}
	if err := rec.WaitForSync(ctx); err != nil {
		rec.Stop()
		return nil, fmt.Errorf("waiting for the watch recorder of %s: %w", ns, err)
	}
	return &invariantRecording{rec: rec, minReady: minReady, servingJudged: servingJudged}, nil
}

// check stops the recording and checks what it saw; the sequence of
// writes to one released pod (to image) comes with it.
func (ir *invariantRecording) check(image string) (invariants, podSequence) {
	ir.rec.Stop()
	events := ir.rec.Events()
	var seq podSequence
	seq.Pod, seq.Writes = releasedPodSequence(events, image)
	lossless := watchrec.CheckLossless(events)
	inv := invariants{
		Checked:    true,
		MinReady:   ir.minReady,
		Lossless:   violations(lossless),
		WaterLevel: violations(watchrec.CheckWaterLevel(events, klabels.SelectorFromSet(appLabels()), ir.minReady)),
		// The slices of the app's Service only: the recorder watches the
		// namespace, which holds no other Service.
		ServingLevel:  violations(watchrec.CheckServingLevel(events, ir.minReady)),
		ServingJudged: ir.servingJudged,
	}
	if len(lossless) > 0 {
		inv.LosslessTimeline = losslessTimeline(events, lossless[0])
	}
	return inv, seq
}

// held says whether both invariants held.
func (inv invariants) held() bool {
	return inv.Checked && inv.count() == 0
}

// summary is one line for the console and the report's table.
func (inv invariants) summary() string {
	if !inv.Checked {
		return "not checked"
	}
	return fmt.Sprintf("%d lossless, %d water-level (≥ %d Ready), %d serving-level (≥ %d listed ready) violations", len(inv.Lossless), len(inv.WaterLevel), inv.MinReady, len(inv.ServingLevel), inv.MinReady)
}

// worseThan orders runs for the report's worst run: more judged violations,
// then more serving-level dips.
func (inv invariants) worseThan(other invariants) bool {
	if inv.count() != other.count() {
		return inv.count() > other.count()
	}
	return len(inv.ServingLevel) > len(other.ServingLevel)
}

// count is every violation of the invariants a release is judged by: the
// lossless protocol and the water level of Ready pods, and the serving
// level when the workload writes its Service's endpoints itself. Otherwise
// the serving level is reported beside them, not judged: the EndpointSlice
// controller writes a Service's slices one after another, so a pod listed
// again and another dropped in one pass can dip the count by one for the
// moment between two slice writes, whatever the releaser does (a releaser
// that writes the slices itself orders its writes).
func (inv invariants) count() int {
	n := len(inv.Lossless) + len(inv.WaterLevel)
	if inv.ServingJudged {
		n += len(inv.ServingLevel)
	}
	return n
}
