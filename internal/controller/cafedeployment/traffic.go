package cafedeployment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/traffic/steer"
)

// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch

// OriginalRulesAnnotation holds, on an HTTPRoute a traffic step steers,
// the route's rules from before the step.
const OriginalRulesAnnotation = steer.OriginalRulesAnnotation

// syncTraffic realises the release's traffic steps: the canary and stable
// Services beside the app's, and the route's rules — steered while the
// current group's step runs, its own rules otherwise. The step's start is
// recorded once the route was steered; the returned duration is when the
// step ends (0: nothing to wait for).
func (r *Reconciler) syncTraffic(ctx context.Context, cd *cafev1alpha1.CafeDeployment) (time.Duration, error) {
	t := cd.Spec.Strategy.Traffic
	if t == nil {
		return 0, nil
	}
	app := &corev1.Service{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: t.Service}, app); err != nil {
		return 0, fmt.Errorf("spec.strategy.traffic.service: reading Service %s: %w", t.Service, err)
	}
	r.applyOverride(cd)
	group, step := runningTrafficStep(cd)
	steered := stepOf(step)
	if failedTrafficStep(cd) || stepAhead(cd) || rollingBackRejected(cd) {
		// None of the route's requests go to the updated pods: the
		// analysis judged them bad (until a new release), or they roll out
		// for a step that has not begun, which alone decides what share of
		// the requests they get; or the release rolls back pods whose
		// analysis failed, and the stable Service selects the pods it
		// returns to.
		steered = &steer.Step{Weight: 0}
	}
	// The route never points at a Service whose selector is about to move:
	// a plain route is written before the Services change, a steered one
	// after.
	if steered == nil {
		if err := r.syncRoute(ctx, cd, t, nil); err != nil {
			return 0, err
		}
	}
	if err := r.ensureSplitServices(ctx, cd, t, app); err != nil {
		return 0, err
	}
	if steered != nil {
		if err := r.syncRoute(ctx, cd, t, steered); err != nil {
			return 0, err
		}
	}
	if step == nil {
		return 0, nil
	}
	if group.Traffic.StartTime == nil {
		group.Traffic.StartTime = ptr.To(metav1.NewTime(r.Now()))
	}
	var wake time.Duration
	if step.DurationSeconds != nil {
		wake = max(trafficStepEnd(group.Traffic, step).Sub(r.Now()), time.Second)
	}
	if step.Analysis != nil {
		next, err := r.analyse(ctx, cd, group.Traffic, step)
		if err != nil {
			return wake, err
		}
		wake = soonest(wake, next)
	}
	return wake, nil
}

// stepAhead: the release works on a group whose traffic step has not
// begun yet (the group's pods are being updated).
func stepAhead(cd *cafev1alpha1.CafeDeployment) bool {
	rel := cd.Status.Release
	switch rel.Phase {
	case cafev1alpha1.ReleasePhaseProgressing, cafev1alpha1.ReleasePhasePaused:
	default:
		return false
	}
	if rel.CurrentGroup == nil || trafficStep(cd, *rel.CurrentGroup) == nil {
		return false
	}
	for _, g := range rel.Groups {
		if g.Index == *rel.CurrentGroup && g.Traffic != nil {
			return false
		}
	}
	return true
}

// stableRevision is the revision the stable Service selects: the current
// one, or, while a rollback after a failed analysis runs, the revision it
// returns to (the current revision then names the rejected pods).
func stableRevision(cd *cafev1alpha1.CafeDeployment) string {
	if rollingBackRejected(cd) {
		return cd.Status.UpdateRevision
	}
	return cd.Status.CurrentRevision
}

// rollingBackRejected: the release rolls back a revision whose analysis
// failed and has not completed.
func rollingBackRejected(cd *cafev1alpha1.CafeDeployment) bool {
	rel := cd.Status.Release
	return rel.RejectedRevision != "" && rel.Phase != cafev1alpha1.ReleasePhaseCompleted
}

// failedTrafficStep: the release failed on the current group's analysis.
func failedTrafficStep(cd *cafev1alpha1.CafeDeployment) bool {
	rel := cd.Status.Release
	if rel.Phase != cafev1alpha1.ReleasePhaseFailed || rel.CurrentGroup == nil {
		return false
	}
	for _, g := range rel.Groups {
		if g.Index == *rel.CurrentGroup {
			return g.Traffic != nil && g.Traffic.Verdict == cafev1alpha1.AnalysisFailed
		}
	}
	return false
}

// runningTrafficStep is the current group's record and step while the
// release is Verifying it, or is paused during it (a pause stops pod
// operations, not the step), or is progressing again on its group after the
// step began (a pod of the group stopped serving: the step goes on, the
// route keeps its split); nil, nil otherwise.
func runningTrafficStep(cd *cafev1alpha1.CafeDeployment) (*cafev1alpha1.ReleaseGroupStatus, *cafev1alpha1.TrafficStep) {
	rel := &cd.Status.Release
	switch rel.Phase {
	case cafev1alpha1.ReleasePhaseVerifying, cafev1alpha1.ReleasePhasePaused, cafev1alpha1.ReleasePhaseProgressing:
	default:
		return nil, nil
	}
	if rel.CurrentGroup == nil {
		return nil, nil
	}
	step := trafficStep(cd, *rel.CurrentGroup)
	for i := range rel.Groups {
		g := &rel.Groups[i]
		if g.Index == *rel.CurrentGroup && step != nil && g.Traffic != nil && g.Traffic.EndTime == nil {
			return g, step
		}
	}
	return nil, nil
}

// ensureSplitServices keeps <service>-canary and <service>-stable: the
// app's Service's selector and ports, narrowed to the pods of the update
// and of the current revision.
func (r *Reconciler) ensureSplitServices(ctx context.Context, cd *cafev1alpha1.CafeDeployment, t *cafev1alpha1.TrafficStrategy, app *corev1.Service) error {
	for name, rev := range map[string]string{t.CanaryService(): cd.Status.UpdateRevision, t.StableService(): stableRevision(cd)} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: cd.Namespace, Name: name}}
		_, err := controllerutil.CreateOrUpdate(ctx, r.Client, svc, func() error {
			if !svc.CreationTimestamp.IsZero() && !metav1.IsControlledBy(svc, cd) {
				return fmt.Errorf("spec.strategy.traffic.service: Service %s exists and is not this CafeDeployment's", name)
			}
			svc.Labels = map[string]string{cafev1alpha1.DeploymentLabel: cd.Name}
			selector := maps.Clone(app.Spec.Selector)
			if selector == nil {
				selector = map[string]string{}
			}
			selector[cafev1alpha1.RevisionHashLabel] = rev
			svc.Spec.Selector = selector
			svc.Spec.Ports = splitPorts(app.Spec.Ports)
			return controllerutil.SetControllerReference(cd, svc, r.Scheme)
		})
		if err != nil {
			return fmt.Errorf("keeping Service %s: %w", name, err)
		}
	}
	return nil
}

// splitPorts are the app Service's ports without what the API server
// assigns (node ports).
func splitPorts(ports []corev1.ServicePort) []corev1.ServicePort {
	out := make([]corev1.ServicePort, 0, len(ports))
	for _, p := range ports {
		out = append(out, corev1.ServicePort{Name: p.Name, Protocol: p.Protocol, AppProtocol: p.AppProtocol, Port: p.Port, TargetPort: p.TargetPort})
	}
	return out
}

// syncRoute writes the route's rules for the step (nil: its own rules,
// read back from OriginalRulesAnnotation if a step steered it).
func (r *Reconciler) syncRoute(ctx context.Context, cd *cafev1alpha1.CafeDeployment, t *cafev1alpha1.TrafficStrategy, step *steer.Step) error {
	route := &gatewayv1.HTTPRoute{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: t.Route}, route); err != nil {
		return fmt.Errorf("spec.strategy.traffic.route: reading HTTPRoute %s: %w", t.Route, err)
	}
	original, steered, err := steer.OriginalRules(route)
	if err != nil {
		return fmt.Errorf("HTTPRoute %s: %w", t.Route, err)
	}
	want := original
	if step != nil {
		rules, err := steer.Rules(original, cd.Namespace, steer.Backends{App: t.Service, Canary: t.CanaryService(), Stable: t.StableService()}, *step)
		if err != nil {
			return fmt.Errorf("spec.strategy.traffic.route: HTTPRoute %s: %w", t.Route, err)
		}
		want = rules
	}
	if steered == (step != nil) && equality.Semantic.DeepEqual(route.Spec.Rules, want) {
		return nil
	}
	if step != nil && !steered {
		raw, err := json.Marshal(original)
		if err != nil {
			return err
		}
		metav1.SetMetaDataAnnotation(&route.ObjectMeta, OriginalRulesAnnotation, string(raw))
	}
	if step == nil {
		delete(route.Annotations, OriginalRulesAnnotation)
	}
	route.Spec.Rules = want
	// On the version read: a route changed meanwhile is decided again.
	if err := r.Client.Update(ctx, route); err != nil {
		if apierrors.IsConflict(err) {
			return errors.Join(errTrafficConflict, err)
		}
		return fmt.Errorf("writing HTTPRoute %s: %w", t.Route, err)
	}
	return nil
}

// errTrafficConflict: the route changed under the write; retried.
var errTrafficConflict = errors.New("the HTTPRoute changed while CAFE wrote it")

// stepOf is a step of the API in steer's terms (nil for nil).
func stepOf(step *cafev1alpha1.TrafficStep) *steer.Step {
	switch {
	case step == nil:
		return nil
	case step.Weight != nil:
		return &steer.Step{Weight: *step.Weight}
	}
	var headers []gatewayv1.HTTPHeaderMatch
	for _, h := range step.Headers {
		headers = append(headers, gatewayv1.HTTPHeaderMatch{Type: ptr.To(gatewayv1.HeaderMatchExact), Name: gatewayv1.HTTPHeaderName(h.Name), Value: h.Value})
	}
	return &steer.Step{Headers: headers}
}

// setTrafficCondition reports the traffic step: steering (what, until
// when or what), a failed analysis, not steering, or why the route could
// not be brought where the release needs it.
func setTrafficCondition(cd *cafev1alpha1.CafeDeployment, trafficErr error) {
	t := cd.Spec.Strategy.Traffic
	if t == nil {
		return
	}
	group, step := runningTrafficStep(cd)
	summarizeTraffic(&cd.Status.Release, group)
	switch {
	case trafficErr != nil:
		setCondition(cd, cafev1alpha1.CafeDeploymentTrafficStepCondition, metav1.ConditionFalse, cafev1alpha1.CafeDeploymentTrafficErrorReason, trafficErr.Error())
	case failedTrafficStep(cd):
		k := *cd.Status.Release.CurrentGroup
		setCondition(cd, cafev1alpha1.CafeDeploymentTrafficStepCondition, metav1.ConditionFalse, cafev1alpha1.CafeDeploymentAnalysisFailedReason,
			fmt.Sprintf("group %d: TrafficAnalysis %s failed: %s; HTTPRoute %s sends nothing to %s", k, cd.Spec.Strategy.TrafficStepAfter(k).Analysis.Name, failedReason(cd, k), t.Route, t.CanaryService()))
	case rollingBackRejected(cd):
		setCondition(cd, cafev1alpha1.CafeDeploymentTrafficStepCondition, metav1.ConditionTrue, cafev1alpha1.CafeDeploymentRollingBackRejectedReason,
			fmt.Sprintf("rolling back %s, whose analysis failed: HTTPRoute %s sends every request to %s (the pods of %s) until the rollback completes", cd.Status.Release.RejectedRevision, t.Route, t.StableService(), cd.Status.UpdateRevision))
	case step == nil || group.Traffic.StartTime == nil:
		msg := "HTTPRoute " + t.Route + " sends to " + t.Service
		if cd.Status.Release.TrafficStepsSkipped && cd.Status.Release.Phase != cafev1alpha1.ReleasePhaseCompleted {
			msg = "the release replaces one that had not finished (its pods run several revisions, none of them stable): it runs without traffic steps; " + msg
		}
		setCondition(cd, cafev1alpha1.CafeDeploymentTrafficStepCondition, metav1.ConditionFalse, cafev1alpha1.CafeDeploymentNotSteeringReason, msg)
	default:
		setCondition(cd, cafev1alpha1.CafeDeploymentTrafficStepCondition, metav1.ConditionTrue, cafev1alpha1.CafeDeploymentSteeringReason,
			fmt.Sprintf("group %d: %s, %s", group.Index, group.Traffic.Split, stepUntil(cd, group, step)))
	}
}

// summarizeTraffic writes the release's step and verdict columns: the
// running step (group, nil when none runs) and the verdict on the latest
// step that has one.
func summarizeTraffic(rel *cafev1alpha1.ReleaseStatus, running *cafev1alpha1.ReleaseGroupStatus) {
	rel.TrafficStep, rel.Verdict = "", ""
	if running != nil {
		rel.TrafficStep = fmt.Sprintf("group %d: %s", running.Index, running.Traffic.Split)
	}
	for _, g := range rel.Groups {
		if g.Traffic != nil && g.Traffic.Verdict != "" {
			rel.Verdict = g.Traffic.Verdict
		}
	}
}

// stepUntil says what ends a running step.
func stepUntil(cd *cafev1alpha1.CafeDeployment, group *cafev1alpha1.ReleaseGroupStatus, step *cafev1alpha1.TrafficStep) string {
	var parts []string
	if step.DurationSeconds != nil {
		parts = append(parts, "until "+trafficStepEnd(group.Traffic, step).UTC().Format(time.RFC3339))
	}
	if step.Analysis != nil {
		parts = append(parts, fmt.Sprintf("until TrafficAnalysis %s passes (%s)", step.Analysis.Name, group.Traffic.VerdictReason))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("until group %d is confirmed (cafe deploy confirm %s)", group.Index, cd.Name)
	}
	return strings.Join(parts, " and ")
}

// failedReason is the recorded reason of group k's failed analysis.
func failedReason(cd *cafev1alpha1.CafeDeployment, k int32) string {
	for _, g := range cd.Status.Release.Groups {
		if g.Index == k && g.Traffic != nil {
			return g.Traffic.VerdictReason
		}
	}
	return ""
}
