// Package routecheck decides, at admission, whether an app's HTTPRoute can
// carry the traffic steps of a release (the CafeDeployment's and the
// CafeAppService's webhooks share it): it reads the route and asks
// package steer to steer it.
package routecheck

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/traffic/steer"
)

// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch

// Check refuses traffic steps the app's route cannot carry: the
// HTTPRoute does not exist, no rule of it sends to the app's Service alone,
// or a header step would need more rules than a route may hold. field is
// where the traffic strategy sits (spec.strategy.traffic of a
// CafeDeployment). A route deleted after admission is reported by the
// controller, which holds the release.
func Check(ctx context.Context, r client.Reader, ns string, t *cafev1alpha1.TrafficStrategy, field string) error {
	route := &gatewayv1.HTTPRoute{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: t.Route}, route); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("%s.route: HTTPRoute %s/%s does not exist: traffic steps steer the app's HTTPRoute; create it first", field, ns, t.Route)
		}
		return fmt.Errorf("%s.route: reading HTTPRoute %s/%s: %w", field, ns, t.Route, err)
	}
	rules, _, err := steer.OriginalRules(route)
	if err != nil {
		return fmt.Errorf("%s.route: HTTPRoute %s/%s: %w", field, ns, t.Route, err)
	}
	backends := steer.Backends{App: t.Service, Canary: t.CanaryService(), Stable: t.StableService()}
	for i, step := range t.Steps {
		s := steer.Step{Weight: 0}
		if len(step.Headers) > 0 {
			// Only the number of rules matters here, not which headers.
			s.Headers = []gatewayv1.HTTPHeaderMatch{{Name: gatewayv1.HTTPHeaderName(step.Headers[0].Name), Value: step.Headers[0].Value}}
		}
		if _, err := steer.Rules(rules, ns, backends, s); err != nil {
			return fmt.Errorf("%s.route: HTTPRoute %s/%s cannot carry steps[%d] to Service %s: %w", field, ns, t.Route, i, t.Service, err)
		}
	}
	return nil
}
