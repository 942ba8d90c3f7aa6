package cafedeployment

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/admit"
	"github.com/cafe-io/cafe/internal/release/plan"
	"github.com/cafe-io/cafe/internal/traffic/routecheck"
)

// ValidatePath is where the Validator is served.
const ValidatePath = "/validate-cafe-io-v1alpha1-cafedeployment"

// +kubebuilder:webhook:path=/validate-cafe-io-v1alpha1-cafedeployment,mutating=false,failurePolicy=fail,sideEffects=None,groups=cafe.io,resources=cafedeployments,verbs=create;update,versions=v1alpha1,name=validate.cafedeployments.cafe.io,admissionReviewVersions=v1

// Validator rejects CafeDeployment specs the schema's CEL rules cannot
// judge: a selector that does not select the template, release groups
// that cannot be planned (custom groups not covering every replica,
// percentages of unitReplicas adding up past replicas, …), and traffic
// steps the app's route cannot carry (checked when they are set or
// changed).
type Validator struct {
	// Reader reads the app's HTTPRoute from the API server.
	Reader client.Reader
}

// Handle implements admission.Handler.
func (v Validator) Handle(ctx context.Context, req admission.Request) admission.Response {
	cd, old := &cafev1alpha1.CafeDeployment{}, &cafev1alpha1.CafeDeployment{}
	if err := admit.DecodeChange(req, "CafeDeployment", cd, old); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if err := validate(cd); err != nil {
		return admission.Denied(err.Error())
	}
	t := cd.Spec.Strategy.Traffic
	if t == nil || equality.Semantic.DeepEqual(t, old.Spec.Strategy.Traffic) {
		return admission.Allowed("")
	}
	return admit.Verdict(routecheck.Check(ctx, v.Reader, cd.Namespace, t, "spec.strategy.traffic"))
}

func validate(cd *cafev1alpha1.CafeDeployment) error {
	sel, err := metav1.LabelSelectorAsSelector(cd.Spec.Selector)
	if err != nil {
		return fmt.Errorf("spec.selector: %w", err)
	}
	if sel.Empty() {
		return errors.New("spec.selector: must not be empty")
	}
	if !sel.Matches(labels.Set(cd.Spec.Template.Labels)) {
		return fmt.Errorf("spec.template.metadata.labels: %v do not match spec.selector %q", cd.Spec.Template.Labels, sel.String())
	}
	p, err := plan.New(cd.Spec)
	if err != nil {
		return err
	}
	return validateTrafficSteps(cd.Spec.Strategy.Traffic, len(p.Groups))
}

// validateTrafficSteps: every step follows a group that exists and is not
// the last (after the last group no pod of the current revision is left to
// compare with).
func validateTrafficSteps(t *cafev1alpha1.TrafficStrategy, groups int) error {
	if t == nil {
		return nil
	}
	for i, s := range t.Steps {
		if int(s.Group) >= groups-1 {
			return fmt.Errorf("spec.strategy.traffic.steps[%d].group: Invalid value: %d: the release has %d groups (0 to %d); a step must follow a group before the last", i, s.Group, groups, groups-1)
		}
	}
	return nil
}
