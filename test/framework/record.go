package framework

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"

	"github.com/cafe-io/cafe/test/framework/watchrec"
)

// Record starts recording the pods and EndpointSlices of namespace ns
// (watchrec.Start) until the test ends.
func Record(ctx context.Context, t testing.TB, g Gomega, cfg *rest.Config, ns string, opts ...watchrec.Option) *watchrec.Recorder {
	rec, err := watchrec.Start(ctx, cfg, ns, opts...)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(rec.Stop)
	return rec
}

// ExpectLossless waits until rec has caught up with the API server, checks
// that no pod's spec changed and no pod's deletion began while an
// EndpointSlice listed it ready or serving or a traffic provider's
// finalizer was on it, and returns the events it checked.
func ExpectLossless(ctx context.Context, g Gomega, rec *watchrec.Recorder) []watchrec.Event {
	g.Expect(rec.WaitForSync(ctx)).To(Succeed())
	events := rec.Events()
	g.Expect(watchrec.Report(watchrec.CheckLossless(events))).To(BeEmpty())
	return events
}
