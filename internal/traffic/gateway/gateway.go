package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/traffic"
)

// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes;gateways;gatewayclasses,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=cafe.io,resources=classicinstances;classichosts,verbs=get;list;watch

// Name is the provider's name: it holds traffic.cafe.io/gateway.
const Name = "gateway"

// DefaultControllerName is Traefik's Gateway API controller name.
const DefaultControllerName = "traefik.io/gateway-controller"

// Options configure the gateway provider.
type Options struct {
	// ControllerName: Gateways whose GatewayClass has this
	// spec.controllerName are the ones Observer reads. Required.
	ControllerName string
	// Observer reads the gateway's backends (NewTraefik, or another
	// implementation's). Required.
	Observer Observer
	// MinReadInterval is the least time between the starts of two reads
	// of the gateway; default DefaultMinReadInterval.
	MinReadInterval time.Duration
}

// Provider is the gateway traffic provider (a traffic.Provider and a
// traffic.Watcher, and for ClassicInstances a traffic.InstanceProvider and
// a traffic.InstanceWatcher).
type Provider struct {
	reader         client.Reader
	controllerName gatewayv1.GatewayController
	reads          *reads
}

var (
	_ traffic.Provider         = &Provider{}
	_ traffic.Watcher          = &Provider{}
	_ traffic.InstanceProvider = &Provider{}
	_ traffic.InstanceWatcher  = &Provider{}
)

// Cache indexes the provider reads through.
const (
	// routeBackendIndex indexes HTTPRoutes by the Services ("ns/name")
	// they send requests to.
	routeBackendIndex = "cafe.io/httproute-backend-services"
	// routeParentIndex indexes HTTPRoutes by their parent Gateways
	// ("ns/name").
	routeParentIndex = "cafe.io/httproute-parent-gateways"
	// gatewayClassIndex indexes Gateways by spec.gatewayClassName.
	gatewayClassIndex = "cafe.io/gateway-class"
)

// New builds the provider on the manager's cache and registers the cache
// indexes it reads through. Call it only when the provider is on: the
// indexes start informers for the Gateway API kinds, whose CRDs a cluster
// without a gateway lacks.
func New(ctx context.Context, mgr ctrl.Manager, opts Options) (*Provider, error) {
	if opts.ControllerName == "" || opts.Observer == nil {
		return nil, errors.New("gateway provider: ControllerName and Observer are required")
	}
	if opts.MinReadInterval == 0 {
		opts.MinReadInterval = DefaultMinReadInterval
	}
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &gatewayv1.HTTPRoute{}, routeBackendIndex, func(o client.Object) []string {
		return routeBackendServices(o.(*gatewayv1.HTTPRoute))
	}); err != nil {
		return nil, fmt.Errorf("indexing HTTPRoutes by backend Service: %w", err)
	}
	if err := idx.IndexField(ctx, &gatewayv1.HTTPRoute{}, routeParentIndex, func(o client.Object) []string {
		return routeParentGateways(o.(*gatewayv1.HTTPRoute))
	}); err != nil {
		return nil, fmt.Errorf("indexing HTTPRoutes by parent Gateway: %w", err)
	}
	if err := idx.IndexField(ctx, &gatewayv1.Gateway{}, gatewayClassIndex, func(o client.Object) []string {
		return []string{string(o.(*gatewayv1.Gateway).Spec.GatewayClassName)}
	}); err != nil {
		return nil, fmt.Errorf("indexing Gateways by class: %w", err)
	}
	return &Provider{
		reader:         mgr.GetClient(),
		controllerName: gatewayv1.GatewayController(opts.ControllerName),
		reads:          &reads{observer: opts.Observer, minInterval: opts.MinReadInterval},
	}, nil
}

// Name implements traffic.Provider.
func (p *Provider) Name() string { return Name }

// Serves implements traffic.Provider: some HTTPRoute of a Gateway of the
// configured controller sends requests to a Service that selects the pod.
func (p *Provider) Serves(ctx context.Context, pod *corev1.Pod) (bool, error) {
	return p.servesLabels(ctx, pod.Namespace, pod.Labels)
}

// ServesInstance implements traffic.InstanceProvider: some HTTPRoute of a
// Gateway of the configured controller sends requests to a Service that
// selects the instance (CAFE's EndpointSlices list it behind the Service
// as the EndpointSlice controller lists a pod).
func (p *Provider) ServesInstance(ctx context.Context, inst *cafev1alpha1.ClassicInstance) (bool, error) {
	return p.servesLabels(ctx, inst.Namespace, inst.Labels)
}

// servesLabels reports whether some HTTPRoute of a Gateway of the
// configured controller sends requests to a Service of namespace ns whose
// selector matches the labels (of a pod or an instance of ns). It errs
// towards true: the Service's ports are not matched against the
// backend's.
func (p *Provider) servesLabels(ctx context.Context, ns string, objLabels map[string]string) (bool, error) {
	services := &corev1.ServiceList{}
	if err := p.reader.List(ctx, services, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
		return false, fmt.Errorf("listing Services: %w", err)
	}
	for i := range services.Items {
		svc := &services.Items[i]
		if !traffic.Selects(svc, ns, objLabels) {
			continue
		}
		routes, err := p.routesTo(ctx, key(svc.Namespace, svc.Name))
		if err != nil {
			return false, err
		}
		for j := range routes {
			ours, err := p.hasOurGateway(ctx, &routes[j])
			if err != nil || ours {
				return ours, err
			}
		}
	}
	return false, nil
}

// Routes implements traffic.Provider: the gateway lists one of the pod's
// IPs among its backends, in a read begun after the call.
func (p *Provider) Routes(ctx context.Context, pod *corev1.Pod) (bool, string, error) {
	ips := traffic.PodIPs(pod)
	if len(ips) == 0 {
		// The gateway learns backends from EndpointSlices, which list
		// the pod's IP: a pod that never had one cannot be sent to.
		return false, "the pod has no IP", nil
	}
	backends, err := p.reads.get(ctx)
	if err != nil {
		return false, "", err
	}
	for _, ip := range ips {
		if ports := backends[ip]; len(ports) > 0 {
			return true, fmt.Sprintf("%s sends to %s on port(s) %v", p.reads.observer, ip, ports), nil
		}
	}
	return false, fmt.Sprintf("%s lists none of %v among its %d backend IPs", p.reads.observer, ips, len(backends)), nil
}

// RoutesInstance implements traffic.InstanceProvider: the gateway lists
// the instance's address and port among its backends, in a read begun
// after the call. The port matters: the instances of other apps on the
// same host share its IP.
func (p *Provider) RoutesInstance(ctx context.Context, inst *cafev1alpha1.ClassicInstance) (bool, string, error) {
	addrs, err := traffic.InstanceAddrs(ctx, p.reader, inst)
	if err != nil {
		return false, "", err
	}
	if len(addrs) == 0 {
		// CAFE's EndpointSlices list an instance at its host's address:
		// one on no known host, never reported at an address, cannot
		// be sent to.
		return false, "the instance has no address (no status.address, no host address)", nil
	}
	backends, err := p.reads.get(ctx)
	if err != nil {
		return false, "", err
	}
	if ap, ok := backends.routesOne(addrs); ok {
		return true, fmt.Sprintf("%s sends to %s", p.reads.observer, ap), nil
	}
	var others []string
	for _, ap := range addrs {
		if ports := backends[ap.Addr()]; len(ports) > 0 {
			others = append(others, fmt.Sprintf("%s on port(s) %v", ap.Addr(), ports))
		}
	}
	where := fmt.Sprintf("%s lists none of %v among its backends", p.reads.observer, addrs)
	if len(others) > 0 {
		where += fmt.Sprintf(" (it sends to %s: other instances of the host)", strings.Join(others, ", "))
	}
	return false, where, nil
}

// Watches implements traffic.Watcher: every object Serves reads maps to
// the gated pods its change may concern. An update maps both its old and
// its new object, so a backend or selector removed wakes the pods it
// concerned.
func (p *Provider) Watches() []traffic.Watch {
	return p.watches(func(ctx context.Context, svc *corev1.Service) []reconcile.Request {
		return traffic.GatedPodsOf(ctx, p.reader, svc)
	})
}

// InstanceWatches implements traffic.InstanceWatcher: the same watches as
// Watches, mapping to the ClassicInstances a Service selects.
func (p *Provider) InstanceWatches() []traffic.Watch {
	return p.watches(func(ctx context.Context, svc *corev1.Service) []reconcile.Request {
		return traffic.InstancesOf(ctx, p.reader, svc)
	})
}

// selected maps a Service to the objects it selects that the controller
// guards (gated pods, or instances).
type selected func(ctx context.Context, svc *corev1.Service) []reconcile.Request

// watches are the watches of every object Serves reads, each mapping to
// the objects of the Services it concerns that of lists.
func (p *Provider) watches(of selected) []traffic.Watch {
	return []traffic.Watch{
		// A route added, changed or removed: the objects of its backends.
		{Object: &gatewayv1.HTTPRoute{}, Handler: handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return p.ofRoutes(ctx, []gatewayv1.HTTPRoute{*o.(*gatewayv1.HTTPRoute)}, of)
		})},
		// A Service's selector decides its objects; only Services some
		// route sends to matter.
		{Object: &corev1.Service{}, Handler: handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return p.ofService(ctx, o.(*corev1.Service), of)
		})},
		// A Gateway's class decides whether its routes are ours.
		{Object: &gatewayv1.Gateway{}, Handler: handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return p.ofGateways(ctx, []gatewayv1.Gateway{*o.(*gatewayv1.Gateway)}, of)
		})},
		// A class created or deleted decides whether its Gateways are ours.
		{Object: &gatewayv1.GatewayClass{}, Handler: handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return p.ofClass(ctx, o.GetName(), of)
		})},
	}
}

// routesTo lists the HTTPRoutes that send requests to the Service.
func (p *Provider) routesTo(ctx context.Context, service string) ([]gatewayv1.HTTPRoute, error) {
	routes := &gatewayv1.HTTPRouteList{}
	if err := p.reader.List(ctx, routes, client.MatchingFields{routeBackendIndex: service}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing HTTPRoutes of Service %s: %w", service, err)
	}
	return routes.Items, nil
}

// hasOurGateway reports whether a parent of the route is a Gateway whose
// class names the configured controller.
func (p *Provider) hasOurGateway(ctx context.Context, route *gatewayv1.HTTPRoute) (bool, error) {
	for _, gw := range routeParentGateways(route) {
		ns, name, _ := strings.Cut(gw, "/")
		gateway := &gatewayv1.Gateway{}
		if err := p.reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, gateway, client.UnsafeDisableDeepCopy); err != nil {
			if client.IgnoreNotFound(err) != nil {
				return false, fmt.Errorf("reading Gateway %s: %w", gw, err)
			}
			continue
		}
		ours, err := p.ourClass(ctx, string(gateway.Spec.GatewayClassName))
		if err != nil || ours {
			return ours, err
		}
	}
	return false, nil
}

// ourClass reports whether the GatewayClass names the configured
// controller.
func (p *Provider) ourClass(ctx context.Context, name string) (bool, error) {
	class := &gatewayv1.GatewayClass{}
	if err := p.reader.Get(ctx, types.NamespacedName{Name: name}, class, client.UnsafeDisableDeepCopy); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return false, fmt.Errorf("reading GatewayClass %s: %w", name, err)
		}
		return false, nil
	}
	return class.Spec.ControllerName == p.controllerName, nil
}

// ofRoutes maps routes to the objects their backend Services select.
func (p *Provider) ofRoutes(ctx context.Context, routes []gatewayv1.HTTPRoute, of selected) []reconcile.Request {
	var reqs []reconcile.Request
	for i := range routes {
		for _, svcKey := range routeBackendServices(&routes[i]) {
			ns, name, _ := strings.Cut(svcKey, "/")
			svc := &corev1.Service{}
			if err := p.reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, svc, client.UnsafeDisableDeepCopy); err != nil {
				// Gone: its deletion maps its objects (ofService).
				continue
			}
			reqs = append(reqs, of(ctx, svc)...)
		}
	}
	return traffic.Dedup(reqs)
}

// ofService maps a Service some route sends to to the objects it selects.
func (p *Provider) ofService(ctx context.Context, svc *corev1.Service, of selected) []reconcile.Request {
	routes, err := p.routesTo(ctx, key(svc.Namespace, svc.Name))
	if err != nil || len(routes) == 0 {
		return nil
	}
	return of(ctx, svc)
}

// ofGateways maps Gateways to the objects of their routes.
func (p *Provider) ofGateways(ctx context.Context, gateways []gatewayv1.Gateway, of selected) []reconcile.Request {
	var reqs []reconcile.Request
	for i := range gateways {
		routes := &gatewayv1.HTTPRouteList{}
		if err := p.reader.List(ctx, routes, client.MatchingFields{routeParentIndex: key(gateways[i].Namespace, gateways[i].Name)}); err != nil {
			continue
		}
		reqs = append(reqs, p.ofRoutes(ctx, routes.Items, of)...)
	}
	return traffic.Dedup(reqs)
}

// ofClass maps a GatewayClass to the objects of its Gateways' routes.
func (p *Provider) ofClass(ctx context.Context, class string, of selected) []reconcile.Request {
	gateways := &gatewayv1.GatewayList{}
	if err := p.reader.List(ctx, gateways, client.MatchingFields{gatewayClassIndex: class}); err != nil {
		return nil
	}
	return p.ofGateways(ctx, gateways.Items, of)
}

// routeBackendServices lists the Services ("ns/name") a route sends
// requests to: its rules' backendRefs, and the backends of requestMirror
// and externalAuth filters, on rules and on backendRefs.
func routeBackendServices(route *gatewayv1.HTTPRoute) []string {
	var out []string
	add := func(ref gatewayv1.BackendObjectReference) {
		if ref.Name == "" || (ref.Group != nil && *ref.Group != "" && *ref.Group != "core") || (ref.Kind != nil && *ref.Kind != "Service") {
			return
		}
		ns := route.Namespace
		if ref.Namespace != nil && *ref.Namespace != "" {
			ns = string(*ref.Namespace)
		}
		out = append(out, key(ns, string(ref.Name)))
	}
	addFilters := func(filters []gatewayv1.HTTPRouteFilter) {
		for _, f := range filters {
			if f.RequestMirror != nil {
				add(f.RequestMirror.BackendRef)
			}
			if f.ExternalAuth != nil {
				add(f.ExternalAuth.BackendRef)
			}
		}
	}
	for _, rule := range route.Spec.Rules {
		addFilters(rule.Filters)
		for _, b := range rule.BackendRefs {
			add(b.BackendObjectReference)
			addFilters(b.Filters)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// routeParentGateways lists the Gateways ("ns/name") among a route's
// parents.
func routeParentGateways(route *gatewayv1.HTTPRoute) []string {
	var out []string
	for _, ref := range route.Spec.ParentRefs {
		if (ref.Group != nil && *ref.Group != gatewayv1.GroupName) || (ref.Kind != nil && *ref.Kind != "Gateway") {
			continue
		}
		ns := route.Namespace
		if ref.Namespace != nil && *ref.Namespace != "" {
			ns = string(*ref.Namespace)
		}
		out = append(out, key(ns, string(ref.Name)))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func key(ns, name string) string { return ns + "/" + name }
