package nodehealthreport

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/admit"
)

// MutatePath is where the Stamper is served.
const MutatePath = "/mutate-cafe-io-v1alpha1-nodehealthreport"

// Stamper stamps every write of a NodeHealthReport with what the
// controller must not take from the reporter: who wrote it (the user the
// API server authenticated), since when its state holds (a report flipped
// to Unhealthy counts from the flip, not from its creation), and an expiry
// at most NodeHealthReportMaxLifetime away.
type Stamper struct {
	// Clock is the time; nil means the time of day.
	Clock func() time.Time
}

// Handle implements admission.Handler.
func (s Stamper) Handle(_ context.Context, req admission.Request) admission.Response {
	return admit.Stamp(req, "NodeHealthReport", "", s.Clock, stampReport)
}

func stampReport(old, r *cafev1alpha1.NodeHealthReport, user string, now time.Time) (bool, error) {
	r.Spec.ReportedBy = user
	r.Spec.StateSince = old.Spec.StateSince
	if (old.Spec.NodeName == "" && old.Spec.HostName == "") || stateOf(old) != stateOf(r) || r.Spec.StateSince == nil {
		r.Spec.StateSince = &metav1.Time{Time: now.Truncate(time.Second)}
	}
	latest := metav1.NewTime(now.Add(cafev1alpha1.NodeHealthReportMaxLifetime).Truncate(time.Second))
	if r.Spec.Until == nil || latest.Before(r.Spec.Until) {
		r.Spec.Until = &latest
	}
	return true, nil
}

// stateOf is the report's state with the schema's default applied.
func stateOf(r *cafev1alpha1.NodeHealthReport) cafev1alpha1.NodeHealthReportState {
	if r.Spec.State == "" {
		return cafev1alpha1.NodeReportUnhealthy
	}
	return r.Spec.State
}
