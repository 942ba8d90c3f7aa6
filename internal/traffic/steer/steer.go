// Package steer computes the rules of an app's HTTPRoute during a traffic
// step of a release: a weight of its requests, or only the requests that
// match given headers, to the updated pods (the canary Service), the rest
// to the pods they replace (the stable Service). It is pure: the caller
// reads the route, keeps its original rules, and writes what Rules returns;
// plain Gateway API (v1), so any conformant gateway realises it.
package steer

import (
	"encoding/json"
	"errors"
	"fmt"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// OriginalRulesAnnotation holds, on an HTTPRoute a traffic step steers,
// the route's rules from before the step (JSON): what CAFE writes back
// after the step, also after a crash in between.
const OriginalRulesAnnotation = "cafe.io/original-rules"

// OriginalRules are the route's own rules: those saved in
// OriginalRulesAnnotation while a step steers it (steered true), its
// rules otherwise.
func OriginalRules(route *gatewayv1.HTTPRoute) (rules []gatewayv1.HTTPRouteRule, steered bool, err error) {
	saved, steered := route.Annotations[OriginalRulesAnnotation]
	if !steered {
		return route.Spec.Rules, false, nil
	}
	// Into a slice of its own: decoding into the route's rules would merge
	// the saved rules into the steered ones.
	if err := json.Unmarshal([]byte(saved), &rules); err != nil {
		return nil, true, fmt.Errorf("annotation %s: %w", OriginalRulesAnnotation, err)
	}
	return rules, true, nil
}

// Backends names the Services a step steers between: the app's, which the
// route's rules send to outside a step, and the canary and stable Services
// that select its updated and its other pods.
type Backends struct {
	App, Canary, Stable string
}

// Step is what a traffic step sends to the canary: Weight percent of the
// requests (0–100), or, when Headers is set, only the requests that carry
// every one of these headers.
type Step struct {
	Weight  int32
	Headers []gatewayv1.HTTPHeaderMatch
}

// maxRules is the most rules an HTTPRoute may hold (the CRD's maxItems).
const maxRules = 16

// Errors that keep a route from being steered; the caller reports them on
// the release and leaves the route as it is.
var (
	// ErrNoRuleToSteer: no rule of the route sends to the app's Service.
	ErrNoRuleToSteer = errors.New("no rule of the route sends to the app's Service")
	// ErrSharedRule: a rule sends to the app's Service and to other
	// backends; splitting only the app's share would change what the
	// others receive, so CAFE steers only rules that send to the app alone.
	ErrSharedRule = errors.New("a rule sends to the app's Service and to other backends")
	// ErrTooManyRules: a header step doubles the steered rules, beyond the
	// 16 rules a route may hold.
	ErrTooManyRules = errors.New("the header step needs more rules than a route may hold (16)")
)

// Rules returns the route's rules during the step, from the rules it had
// before any step (original, left unchanged). A weight step gives each rule
// that sends to the app two backends, canary at the step's weight and
// stable at the rest; a header step puts before each such rule a copy whose
// matches also require the headers, sent to the canary, and sends the rule
// itself to the stable pods. Other rules are kept as they are.
func Rules(original []gatewayv1.HTTPRouteRule, namespace string, b Backends, s Step) ([]gatewayv1.HTTPRouteRule, error) {
	var out []gatewayv1.HTTPRouteRule
	steered := 0
	for i := range original {
		rule := original[i].DeepCopy()
		app, err := appBackend(rule, namespace, b.App)
		if err != nil {
			return nil, fmt.Errorf("rule %d: %w", i, err)
		}
		if app == nil {
			out = append(out, *rule)
			continue
		}
		steered++
		if len(s.Headers) == 0 {
			rule.BackendRefs = []gatewayv1.HTTPBackendRef{withService(*app, b.Canary, s.Weight), withService(*app, b.Stable, 100-s.Weight)}
			out = append(out, *rule)
			continue
		}
		canary := rule.DeepCopy()
		canary.Name = suffixed(rule.Name, "-canary")
		canary.Matches = withHeaders(rule.Matches, s.Headers)
		canary.BackendRefs = []gatewayv1.HTTPBackendRef{withService(*app, b.Canary, 1)}
		rule.BackendRefs = []gatewayv1.HTTPBackendRef{withService(*app, b.Stable, 1)}
		out = append(out, *canary, *rule)
	}
	if steered == 0 {
		return nil, ErrNoRuleToSteer
	}
	if len(out) > maxRules {
		return nil, fmt.Errorf("%w: %d", ErrTooManyRules, len(out))
	}
	return out, nil
}

// appBackend is the rule's backendRef to the app's Service, nil when the
// rule does not send to it; ErrSharedRule when it sends to others as well.
func appBackend(rule *gatewayv1.HTTPRouteRule, namespace, app string) (*gatewayv1.HTTPBackendRef, error) {
	var found *gatewayv1.HTTPBackendRef
	for i := range rule.BackendRefs {
		if isService(rule.BackendRefs[i].BackendObjectReference, namespace, app) {
			found = &rule.BackendRefs[i]
		}
	}
	if found != nil && len(rule.BackendRefs) > 1 {
		return nil, ErrSharedRule
	}
	return found, nil
}

// isService: the reference names the Service of that name in the route's
// namespace (Gateway API's defaults: core group, kind Service, the route's
// namespace).
func isService(ref gatewayv1.BackendObjectReference, namespace, name string) bool {
	group := ""
	if ref.Group != nil {
		group = string(*ref.Group)
	}
	kind := "Service"
	if ref.Kind != nil {
		kind = string(*ref.Kind)
	}
	ns := namespace
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	return group == "" && kind == "Service" && ns == namespace && string(ref.Name) == name
}

// withService is ref sent to another Service of the route's namespace at
// weight, its port and filters kept.
func withService(ref gatewayv1.HTTPBackendRef, service string, weight int32) gatewayv1.HTTPBackendRef {
	out := *ref.DeepCopy()
	out.Name = gatewayv1.ObjectName(service)
	out.Namespace = nil
	out.Weight = &weight
	return out
}

// withHeaders adds the headers to every match (a rule without matches
// matches every request: one match of the headers alone).
func withHeaders(matches []gatewayv1.HTTPRouteMatch, headers []gatewayv1.HTTPHeaderMatch) []gatewayv1.HTTPRouteMatch {
	if len(matches) == 0 {
		return []gatewayv1.HTTPRouteMatch{{Headers: headers}}
	}
	out := make([]gatewayv1.HTTPRouteMatch, 0, len(matches))
	for _, m := range matches {
		c := *m.DeepCopy()
		c.Headers = append(c.Headers, headers...)
		out = append(out, c)
	}
	return out
}

// suffixed is a rule's name with suffix, nil for an unnamed rule (names
// must stay unique within the route).
func suffixed(name *gatewayv1.SectionName, suffix string) *gatewayv1.SectionName {
	if name == nil {
		return nil
	}
	n := *name + gatewayv1.SectionName(suffix)
	return &n
}
