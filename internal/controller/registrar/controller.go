package registrar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controllerqueue"
	"github.com/cafe-io/cafe/internal/registry"
	"github.com/cafe-io/cafe/internal/traffic"
)

// +kubebuilder:rbac:groups="",resources=services;pods;nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch

// ManagedBy is the managed-by label of the EndpointSlices of classic
// instances the registrar reads (CAFE's own, package classicendpoints).
const ManagedBy = cafev1alpha1.EndpointSliceManagedBy

// conflictRetry: a transaction refused because the service changed in the
// registry since it was read is recomputed this soon (the registry's watch
// wakes the Service too).
const conflictRetry = 100 * time.Millisecond

// Reconciler keeps the registry's registrations of each Service equal to
// Registrations of what the cache holds.
type Reconciler struct {
	// Client reads Services, pods, nodes and CAFE's EndpointSlices from
	// the manager's cache.
	Client client.Client
	// Registry is a client of the registry's etcd.
	Registry *clientv3.Client

	// registryChanges feeds the Services the registry's watch names.
	registryChanges chan event.TypedGenericEvent[*corev1.Service]
}

// SetupWithManager registers the controller (named registrar) and the
// registry watch that feeds it (leader-elected, with the controller).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Client == nil || r.Registry == nil {
		return errors.New("registrar: Client and Registry are required")
	}
	r.registryChanges = make(chan event.TypedGenericEvent[*corev1.Service], 1024)
	if err := mgr.Add(&registryWatch{registry: r.Registry, out: r.registryChanges}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		WithOptions(controllerqueue.Options(controller.Options{})).
		Named("registrar").
		For(&corev1.Service{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.servicesSelecting)).
		Watches(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(serviceOfSlice)).
		WatchesRawSource(source.Channel(r.registryChanges, &handler.TypedEnqueueRequestForObject[*corev1.Service]{})).
		Complete(r)
}

// Reconcile makes the registry hold exactly the Service's registrations
// (none when it is gone or not published).
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	want, err := r.desired(ctx, req.NamespacedName)
	if err != nil {
		return ctrl.Result{}, err
	}
	svc := registry.Service{Namespace: req.Namespace, Name: req.Name}
	have, markerRev, err := r.registered(ctx, svc)
	if err != nil {
		return ctrl.Result{}, err
	}
	ops, added, removed := diff(svc, want, have)
	if len(ops) == 0 {
		return ctrl.Result{}, nil
	}
	ops = append(ops, clientv3.OpPut(registry.RevisionKey(svc), "registrar"))
	resp, err := r.Registry.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(registry.RevisionKey(svc)), "=", markerRev)).
		Then(ops...).Commit()
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("writing the registrations of %s: %w", svc, err)
	}
	if !resp.Succeeded {
		log.V(1).Info("The service changed in the registry since it was read; recomputing", "service", svc.String())
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	}
	registrationsWritten.WithLabelValues(svc.Namespace, svc.Name).Add(float64(len(added) + len(removed)))
	registrationsHeld.WithLabelValues(svc.Namespace, svc.Name).Set(float64(len(want)))
	log.Info("Registry updated", "service", svc.String(), "revision", resp.Header.Revision,
		"registered", added, "deregistered", removed, "instances", len(want))
	return ctrl.Result{}, nil
}

// desired reads the Service and what it selects from the cache.
func (r *Reconciler) desired(ctx context.Context, key types.NamespacedName) (map[string]registry.Registration, error) {
	svc := &corev1.Service{}
	if err := r.Client.Get(ctx, key, svc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading Service %s: %w", key, err)
	}
	if !published(svc) || len(svc.Spec.Selector) == 0 {
		return nil, nil
	}
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.InNamespace(key.Namespace), client.MatchingLabels(svc.Spec.Selector)); err != nil {
		return nil, fmt.Errorf("listing the pods of Service %s: %w", key, err)
	}
	cafeSlices := &discoveryv1.EndpointSliceList{}
	if err := r.Client.List(ctx, cafeSlices, client.InNamespace(key.Namespace), client.MatchingLabels{
		discoveryv1.LabelServiceName: key.Name, discoveryv1.LabelManagedBy: ManagedBy,
	}); err != nil {
		return nil, fmt.Errorf("listing CAFE's EndpointSlices of Service %s: %w", key, err)
	}
	return Registrations(svc, pods.Items, cafeSlices.Items, r.zoneOf(ctx)), nil
}

// zoneOf reads nodes' zones from the cache, once per node per reconcile.
func (r *Reconciler) zoneOf(ctx context.Context) func(string) string {
	zones := map[string]string{}
	return func(node string) string {
		if node == "" {
			return ""
		}
		if z, ok := zones[node]; ok {
			return z
		}
		n := &corev1.Node{}
		if err := r.Client.Get(ctx, types.NamespacedName{Name: node}, n); err == nil {
			zones[node] = n.Labels[corev1.LabelTopologyZone]
		}
		return zones[node]
	}
}

// registered reads the service's registrations and its revision key's
// mod_revision (0 when it has none) in one read.
func (r *Reconciler) registered(ctx context.Context, svc registry.Service) (map[string][]byte, int64, error) {
	resp, err := r.Registry.Get(ctx, registry.ServicePrefix(svc), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("reading the registrations of %s: %w", svc, err)
	}
	have := map[string][]byte{}
	var markerRev int64
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		switch {
		case key == registry.RevisionKey(svc):
			markerRev = kv.ModRevision
		default:
			have[key] = kv.Value
		}
	}
	return have, markerRev, nil
}

// diff returns the operations that turn have into want, and the addresses
// added (or changed) and removed. Keys under the service that are not
// registrations CAFE would write are removed too.
func diff(svc registry.Service, want map[string]registry.Registration, have map[string][]byte) (ops []clientv3.Op, added, removed []string) {
	wantValues := make(map[string][]byte, len(want))
	for addr, reg := range want {
		b, err := json.Marshal(reg)
		if err != nil {
			continue // a struct of strings always marshals
		}
		wantValues[registry.InstancesPrefix(svc)+addr] = b
	}
	for _, key := range slices.Sorted(maps.Keys(wantValues)) {
		if v, ok := have[key]; !ok || string(v) != string(wantValues[key]) {
			ops = append(ops, clientv3.OpPut(key, string(wantValues[key])))
			added = append(added, strings.TrimPrefix(key, registry.InstancesPrefix(svc)))
		}
	}
	for _, key := range slices.Sorted(maps.Keys(have)) {
		if _, ok := wantValues[key]; !ok {
			ops = append(ops, clientv3.OpDelete(key))
			removed = append(removed, strings.TrimPrefix(key, registry.InstancesPrefix(svc)))
		}
	}
	return ops, added, removed
}

func published(svc *corev1.Service) bool {
	return svc.DeletionTimestamp.IsZero() && svc.Labels[cafev1alpha1.RegistryPublishLabel] == "true"
}

// servicesSelecting maps a pod to the published Services of its namespace
// that select it.
func (r *Reconciler) servicesSelecting(ctx context.Context, o client.Object) []reconcile.Request {
	services := &corev1.ServiceList{}
	if err := r.Client.List(ctx, services, client.InNamespace(o.GetNamespace()),
		client.MatchingLabels{cafev1alpha1.RegistryPublishLabel: "true"}, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range services.Items {
		if traffic.Selects(&services.Items[i], o.GetNamespace(), o.GetLabels()) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&services.Items[i])})
		}
	}
	return reqs
}

// serviceOfSlice maps an EndpointSlice to its Service.
func serviceOfSlice(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[discoveryv1.LabelServiceName]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// registryWatch sends the controller every Service the registry holds
// keys of, then every Service whose keys change: a change nobody made
// through CAFE (a key deleted by hand, a Service deleted while CAFE was
// down) is corrected like any other.
type registryWatch struct {
	registry *clientv3.Client
	out      chan<- event.TypedGenericEvent[*corev1.Service]
}

// Start implements manager.Runnable: it reads, then watches, until ctx
// ends, starting again with a read after any watch failure.
func (w *registryWatch) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("registrar-watch")
	prefix := registry.Prefix + "services/"
	for ctx.Err() == nil {
		if err := w.readAndWatch(ctx, prefix); err != nil && ctx.Err() == nil {
			log.Error(err, "Watching the registry; starting again")
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

func (w *registryWatch) readAndWatch(ctx context.Context, prefix string) error {
	resp, err := w.registry.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return fmt.Errorf("reading the registry's services: %w", err)
	}
	for _, kv := range resp.Kvs {
		w.send(ctx, string(kv.Key))
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wr := range w.registry.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
		if err := wr.Err(); err != nil {
			return fmt.Errorf("watching the registry's services: %w", err)
		}
		for _, ev := range wr.Events {
			w.send(ctx, string(ev.Kv.Key))
		}
	}
	return ctx.Err()
}

func (w *registryWatch) send(ctx context.Context, key string) {
	svc, _, ok := registry.ServiceOfKey(key)
	if !ok {
		return
	}
	obj := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name}}
	select {
	case w.out <- event.TypedGenericEvent[*corev1.Service]{Object: obj}:
	case <-ctx.Done():
	}
}
