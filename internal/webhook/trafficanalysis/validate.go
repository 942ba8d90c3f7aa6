// Package trafficanalysis holds the admission webhook that asks Prometheus
// to parse the queries of a TrafficAnalysis: a query Prometheus cannot
// parse would leave every release that uses it waiting on inconclusive
// measurements, so it is refused when written, naming the metric. The rest
// (names, thresholds as numbers, limits) is checked by the CRD itself.
package trafficanalysis

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/admit"
	"github.com/cafe-io/cafe/internal/analysis"
)

// ValidatePath is where the Validator is served.
const ValidatePath = "/validate-cafe-io-v1alpha1-trafficanalysis"

// sampleVars stand in for the placeholders while a query is parsed: the
// placeholders live in label values, so any names parse alike.
var sampleVars = analysis.Vars{Namespace: "namespace", Canary: "canary", Stable: "stable"}

// Validator refuses TrafficAnalyses whose queries Prometheus refuses.
type Validator struct {
	// Prometheus parses the queries; nil (CAFE runs without a Prometheus)
	// admits them with a warning that they were not checked.
	Prometheus *analysis.Prometheus
}

// Handle implements admission.Handler.
func (v Validator) Handle(ctx context.Context, req admission.Request) admission.Response {
	a := &cafev1alpha1.TrafficAnalysis{}
	if err := admit.Decode(req.Object, a, "TrafficAnalysis"); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if v.Prometheus == nil {
		return admission.Allowed("").WithWarnings("the queries were not parsed: CAFE runs without a Prometheus (cafe manager --prometheus-url)")
	}
	var errs field.ErrorList
	var unchecked []string
	for i, m := range a.Spec.Metrics {
		err := v.Prometheus.CheckSyntax(ctx, analysis.Render(m.Query, sampleVars))
		switch {
		case err == nil:
		case errors.Is(err, analysis.ErrBadQuery):
			errs = append(errs, field.Invalid(field.NewPath("spec", "metrics").Index(i).Child("query"), m.Query, err.Error()))
		default:
			unchecked = append(unchecked, m.Name)
		}
	}
	if len(errs) > 0 {
		return admission.Denied(errs.ToAggregate().Error())
	}
	if len(unchecked) > 0 {
		// Prometheus down must not stop people from writing analyses: a bad
		// query then shows as inconclusive measurements, never as a pass.
		return admission.Allowed("").WithWarnings(fmt.Sprintf("the queries of %s were not parsed: Prometheus at %s did not answer", strings.Join(unchecked, ", "), v.Prometheus.URL))
	}
	return admission.Allowed("")
}
