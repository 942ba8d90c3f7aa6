// Package classicendpoints lists classic instances in the EndpointSlices
// of the Services that select them, as the EndpointSlice controller lists
// pods: a Service whose selector matches an instance's labels, with a port
// whose targetPort is the instance's port (number or name), gets CAFE's own
// EndpointSlices (managed-by cafe.io) holding the instance's host address,
// so a gateway, kube-proxy or anything else that reads EndpointSlices sends
// traffic to VMs and pods alike.
package classicendpoints

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controllerqueue"
	"github.com/cafe-io/cafe/internal/endpointslices"
)

// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=cafe.io,resources=classicinstances,verbs=get;list;watch
// +kubebuilder:rbac:groups=cafe.io,resources=classichosts,verbs=get;list;watch

// Reconciler keeps each Service's CAFE-managed EndpointSlices.
type Reconciler struct {
	Client client.Client
	Scheme *runtime.Scheme
}

// SetupWithManager registers the controller: a Service is reconciled when
// it changes, when an instance it may select (before or after the change)
// or that instance's host changes, and when one of its CAFE slices does.
// The manager must cache only CAFE's EndpointSlices (ManagedBy label) and
// index instances by cafev1alpha1.ClassicInstanceHostField, to find the
// Services of a host's instances when its address or zone changes.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Client == nil || r.Scheme == nil {
		return errors.New("classicendpoints: Client and Scheme are required")
	}
	return ctrl.NewControllerManagedBy(mgr).
		WithOptions(controllerqueue.Options(controller.Options{})).
		Named("classicendpoints").
		For(&corev1.Service{}).
		Owns(&discoveryv1.EndpointSlice{}).
		Watches(&cafev1alpha1.ClassicInstance{}, handler.EnqueueRequestsFromMapFunc(r.servicesOfInstance)).
		Watches(&cafev1alpha1.ClassicHost{}, handler.EnqueueRequestsFromMapFunc(r.servicesOfHost)).
		Complete(r)
}

// Reconcile makes the Service's CAFE slices the desired ones: creates the
// missing, updates the changed, deletes the rest.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	svc := &corev1.Service{}
	if err := r.Client.Get(ctx, req.NamespacedName, svc); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		svc = nil // its slices go with it (owner references); none to write
	}
	var want []discoveryv1.EndpointSlice
	if svc != nil && svc.DeletionTimestamp.IsZero() {
		var err error
		if want, err = r.desired(ctx, svc); err != nil {
			return ctrl.Result{}, err
		}
	}
	have := &discoveryv1.EndpointSliceList{}
	if err := r.Client.List(ctx, have, client.InNamespace(req.Namespace), client.MatchingLabels{
		discoveryv1.LabelServiceName: req.Name, discoveryv1.LabelManagedBy: ManagedBy,
	}); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the EndpointSlices of service %s: %w", req.NamespacedName, err)
	}
	return ctrl.Result{}, r.converge(ctx, svc, want, have.Items)
}

// desired reads the Service's instances and their hosts.
func (r *Reconciler) desired(ctx context.Context, svc *corev1.Service) ([]discoveryv1.EndpointSlice, error) {
	if len(svc.Spec.Selector) == 0 || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, nil // nobody's endpoints are derived for these
	}
	instances := &cafev1alpha1.ClassicInstanceList{}
	if err := r.Client.List(ctx, instances, client.InNamespace(svc.Namespace), client.MatchingLabels(svc.Spec.Selector)); err != nil {
		return nil, fmt.Errorf("listing the classic instances of service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	if len(instances.Items) == 0 {
		return nil, nil
	}
	hosts := map[string]*cafev1alpha1.ClassicHost{}
	for _, inst := range instances.Items {
		name := inst.Spec.HostName
		if _, seen := hosts[name]; seen {
			continue
		}
		h := &cafev1alpha1.ClassicHost{}
		if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, h); err != nil {
			if !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("reading classic host %s: %w", name, err)
			}
			h = nil // an instance on an unknown host has no address
		}
		hosts[name] = h
	}
	return desiredSlices(svc, instances.Items, hosts), nil
}

// converge writes the difference between want and have.
func (r *Reconciler) converge(ctx context.Context, svc *corev1.Service, want, have []discoveryv1.EndpointSlice) error {
	existing := map[string]*discoveryv1.EndpointSlice{}
	for i := range have {
		existing[have[i].Name] = &have[i]
	}
	logger := log.FromContext(ctx)
	for i := range want {
		slice := &want[i]
		if err := controllerutil.SetControllerReference(svc, slice, r.Scheme); err != nil {
			return fmt.Errorf("owning slice %s: %w", slice.Name, err)
		}
		cur := existing[slice.Name]
		delete(existing, slice.Name)
		switch {
		case cur == nil:
			if err := r.Client.Create(ctx, slice); err != nil {
				return fmt.Errorf("creating EndpointSlice %s/%s: %w", slice.Namespace, slice.Name, err)
			}
			logger.Info("created EndpointSlice", "slice", slice.Name, "endpoints", len(slice.Endpoints))
		case !endpointslices.Same(cur, slice):
			cur.Labels, cur.Annotations, cur.OwnerReferences = slice.Labels, slice.Annotations, slice.OwnerReferences
			cur.AddressType, cur.Endpoints, cur.Ports = slice.AddressType, slice.Endpoints, slice.Ports
			if err := r.Client.Update(ctx, cur); err != nil {
				return fmt.Errorf("updating EndpointSlice %s/%s: %w", cur.Namespace, cur.Name, err)
			}
		}
	}
	for _, stale := range existing {
		if err := client.IgnoreNotFound(r.Client.Delete(ctx, stale, client.Preconditions{UID: &stale.UID})); err != nil {
			return fmt.Errorf("deleting EndpointSlice %s/%s: %w", stale.Namespace, stale.Name, err)
		}
		logger.Info("deleted EndpointSlice", "slice", stale.Name)
	}
	return nil
}

// servicesOfInstance maps an instance to the Services of its namespace
// that select it or list it.
func (r *Reconciler) servicesOfInstance(ctx context.Context, o client.Object) []ctrl.Request {
	return r.servicesOf(ctx, o.GetNamespace(), []client.Object{o})
}

// servicesOfHost maps a host to the Services of the instances on it,
// reading each namespace's Services and slices once.
func (r *Reconciler) servicesOfHost(ctx context.Context, o client.Object) []ctrl.Request {
	instances := &cafev1alpha1.ClassicInstanceList{}
	if err := r.Client.List(ctx, instances, client.MatchingFields{cafev1alpha1.ClassicInstanceHostField: o.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "listing the instances of a classic host", "host", o.GetName())
		return nil
	}
	byNamespace := map[string][]client.Object{}
	for i := range instances.Items {
		inst := &instances.Items[i]
		byNamespace[inst.Namespace] = append(byNamespace[inst.Namespace], inst)
	}
	var reqs []ctrl.Request
	for ns, objs := range byNamespace {
		reqs = append(reqs, r.servicesOf(ctx, ns, objs)...)
	}
	return reqs
}

// servicesOf are the Services of namespace ns whose selector matches one of
// the instances' labels, and those whose CAFE slices list one of them (a
// relabelled instance's old Services).
func (r *Reconciler) servicesOf(ctx context.Context, ns string, instances []client.Object) []ctrl.Request {
	services := &corev1.ServiceList{}
	if err := r.Client.List(ctx, services, client.InNamespace(ns)); err != nil {
		log.FromContext(ctx).Error(err, "listing services for classic instances", "namespace", ns)
		return nil
	}
	seen := map[string]bool{}
	var reqs []ctrl.Request
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: name}})
		}
	}
	instanceNames := map[string]bool{}
	for _, o := range instances {
		instanceNames[o.GetName()] = true
		for _, svc := range services.Items {
			if len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(o.GetLabels())) {
				add(svc.Name)
			}
		}
	}
	slices := &discoveryv1.EndpointSliceList{}
	if err := r.Client.List(ctx, slices, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelManagedBy: ManagedBy}); err == nil {
		for _, s := range slices.Items {
			for _, ep := range s.Endpoints {
				if ep.TargetRef != nil && ep.TargetRef.Kind == "ClassicInstance" && instanceNames[ep.TargetRef.Name] {
					add(s.Labels[discoveryv1.LabelServiceName])
				}
			}
		}
	}
	return reqs
}
