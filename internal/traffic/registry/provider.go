// Package registry is the traffic provider for east-west traffic through
// CAFE's service registry (provider name "registry", finalizer
// traffic.cafe.io/registry). Key layout and protocol: package
// internal/registry.
//
// Serves: a pod or a classic instance may be called through the registry
// while a Service of its namespace labelled registry.cafe.io/publish: "true"
// selects it (CAFE's registrar registers it there while it is ready). It
// errs towards true: the Service's ports are not matched.
//
// Routes asks the registry itself, in one consistent read of the
// namespace's services and their consumers: the object is routed while a
// registration of any service of its namespace lists one of its addresses
// (a pod: any of its IPs, any port; an instance: its address and port, as
// hosts share IPs), or while some live consumer of a service of its
// namespace has acknowledged a revision below that service's revision key
// (it may not have applied the deregistration yet). A consumer that died
// stops counting when its lease expires. Every service of the namespace
// counts, not only those selecting the object now: a Service unpublished
// or deleted may have listed it, and its consumers catch up in
// milliseconds.
package registry

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/registry"
	"github.com/cafe-io/cafe/internal/traffic"
)

// Name is the provider's name: it holds traffic.cafe.io/registry.
const Name = "registry"

// Provider is the registry traffic provider (a traffic.Provider,
// traffic.Watcher, traffic.InstanceProvider and traffic.InstanceWatcher).
type Provider struct {
	reader   client.Reader
	registry *clientv3.Client
	// endpoints names the registry in answers.
	endpoints string
}

var (
	_ traffic.Provider         = &Provider{}
	_ traffic.Watcher          = &Provider{}
	_ traffic.InstanceProvider = &Provider{}
	_ traffic.InstanceWatcher  = &Provider{}
)

// New builds the provider: reader is the manager's cache (Services, and
// classic hosts for instances' addresses), reg a client of the registry.
func New(reader client.Reader, reg *clientv3.Client) (*Provider, error) {
	if reader == nil || reg == nil {
		return nil, errors.New("registry provider: a reader and a registry client are required")
	}
	return &Provider{reader: reader, registry: reg, endpoints: strings.Join(reg.Endpoints(), ",")}, nil
}

// Name implements traffic.Provider.
func (p *Provider) Name() string { return Name }

// Serves implements traffic.Provider.
func (p *Provider) Serves(ctx context.Context, pod *corev1.Pod) (bool, error) {
	return p.servesLabels(ctx, pod.Namespace, pod.Labels)
}

// ServesInstance implements traffic.InstanceProvider.
func (p *Provider) ServesInstance(ctx context.Context, inst *cafev1alpha1.ClassicInstance) (bool, error) {
	return p.servesLabels(ctx, inst.Namespace, inst.Labels)
}

// servesLabels: some published Service of ns selects the labels.
func (p *Provider) servesLabels(ctx context.Context, ns string, objLabels map[string]string) (bool, error) {
	services := &corev1.ServiceList{}
	if err := p.reader.List(ctx, services, client.InNamespace(ns),
		client.MatchingLabels{cafev1alpha1.RegistryPublishLabel: "true"}, client.UnsafeDisableDeepCopy); err != nil {
		return false, fmt.Errorf("listing the published Services of %s: %w", ns, err)
	}
	for i := range services.Items {
		if traffic.Selects(&services.Items[i], ns, objLabels) {
			return true, nil
		}
	}
	return false, nil
}

// Routes implements traffic.Provider: a registration lists one of the
// pod's IPs, or a consumer has not applied the latest change yet.
func (p *Provider) Routes(ctx context.Context, pod *corev1.Pod) (bool, string, error) {
	ips := traffic.PodIPs(pod)
	return p.routes(ctx, pod.Namespace, func(ap netip.AddrPort) bool { return slices.Contains(ips, ap.Addr()) }, fmt.Sprint(ips))
}

// RoutesInstance implements traffic.InstanceProvider: a registration lists
// the instance's address and port, or a consumer has not applied the
// latest change yet.
func (p *Provider) RoutesInstance(ctx context.Context, inst *cafev1alpha1.ClassicInstance) (bool, string, error) {
	addrs, err := traffic.InstanceAddrs(ctx, p.reader, inst)
	if err != nil {
		return false, "", err
	}
	return p.routes(ctx, inst.Namespace, func(ap netip.AddrPort) bool { return slices.Contains(addrs, ap) }, fmt.Sprint(addrs))
}

// routes reads the namespace's services and consumers at one revision and
// decides (View.Routes).
func (p *Provider) routes(ctx context.Context, ns string, isObject func(netip.AddrPort) bool, what string) (bool, string, error) {
	view, err := p.read(ctx, ns)
	if err != nil {
		return false, "", err
	}
	routed, why := view.Routes(isObject)
	return routed, fmt.Sprintf("the registry at %s (revision %d): %s %s", p.endpoints, view.Revision, what, why), nil
}

// read takes one consistent read of a namespace's registrations, revision
// keys and consumer acknowledgements.
func (p *Provider) read(ctx context.Context, ns string) (*View, error) {
	services, err := p.registry.Get(ctx, registry.ServicesPrefix(ns), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("reading the registry's services of %s: %w", ns, err)
	}
	rev := services.Header.Revision
	consumers, err := p.registry.Get(ctx, registry.ConsumersOfNamespace(ns), clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return nil, fmt.Errorf("reading the registry's consumers of %s: %w", ns, err)
	}
	return NewView(rev, services.Kvs, consumers.Kvs)
}

// Watches implements traffic.Watcher: a Service's change wakes the gated
// pods it selects (before and after the change).
func (p *Provider) Watches() []traffic.Watch {
	return []traffic.Watch{{Object: &corev1.Service{}, Handler: handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		return traffic.GatedPodsOf(ctx, p.reader, o.(*corev1.Service))
	})}}
}

// InstanceWatches implements traffic.InstanceWatcher: a Service's change
// wakes the instances it selects.
func (p *Provider) InstanceWatches() []traffic.Watch {
	return []traffic.Watch{{Object: &corev1.Service{}, Handler: handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		return traffic.InstancesOf(ctx, p.reader, o.(*corev1.Service))
	})}}
}
