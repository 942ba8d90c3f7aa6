package traffic

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
)

// What providers share: which objects a Service selects, and the addresses
// a traffic system knows a pod or an instance by.

// Selects reports whether the Service's selector picks an object (a pod
// or a classic instance) of namespace ns with the labels. A Service
// without a selector gets its endpoints by hand and selects nothing.
func Selects(svc *corev1.Service, ns string, objLabels map[string]string) bool {
	return svc.Namespace == ns && len(svc.Spec.Selector) > 0 &&
		labels.SelectorFromValidatedSet(svc.Spec.Selector).Matches(labels.Set(objLabels))
}

// GatedPodsOf lists the pods a Service selects that carry CAFE's gate
// (the pods a provider's Reconciler guards), as reconcile requests.
func GatedPodsOf(ctx context.Context, reader client.Reader, svc *corev1.Service) []reconcile.Request {
	if len(svc.Spec.Selector) == 0 {
		return nil
	}
	pods := &corev1.PodList{}
	if err := reader.List(ctx, pods, client.InNamespace(svc.Namespace), client.MatchingLabels(svc.Spec.Selector), client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range pods.Items {
		if lossless.HasGate(&pods.Items[i].Spec) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&pods.Items[i])})
		}
	}
	return reqs
}

// InstancesOf lists the ClassicInstances a Service selects (every
// instance has a traffic gate: all are in the lossless protocol), as
// reconcile requests.
func InstancesOf(ctx context.Context, reader client.Reader, svc *corev1.Service) []reconcile.Request {
	if len(svc.Spec.Selector) == 0 {
		return nil
	}
	instances := &cafev1alpha1.ClassicInstanceList{}
	if err := reader.List(ctx, instances, client.InNamespace(svc.Namespace), client.MatchingLabels(svc.Spec.Selector), client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(instances.Items))
	for i := range instances.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&instances.Items[i])})
	}
	return reqs
}

// PodIPs parses the pod's IPs (status.podIPs, else status.podIP).
func PodIPs(pod *corev1.Pod) []netip.Addr {
	raw := []string{pod.Status.PodIP}
	if len(pod.Status.PodIPs) > 0 {
		raw = raw[:0]
		for _, ip := range pod.Status.PodIPs {
			raw = append(raw, ip.IP)
		}
	}
	var ips []netip.Addr
	for _, s := range raw {
		if ip, err := netip.ParseAddr(s); err == nil {
			ips = append(ips, ip.Unmap())
		}
	}
	return ips
}

// InstanceAddrs are the addresses a traffic system may know an instance
// by: status.address, which the host's agent reports, and the host's
// spec.address with spec.artifact.port, which CAFE's EndpointSlices list.
// They differ only until the agent has reported a change (of the host's
// address or the instance's port); asking about both errs towards
// "routed". None when the instance has neither.
func InstanceAddrs(ctx context.Context, reader client.Reader, inst *cafev1alpha1.ClassicInstance) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	add := func(ip netip.Addr, port uint16) {
		if ap := netip.AddrPortFrom(ip.Unmap(), port); !slices.Contains(out, ap) {
			out = append(out, ap)
		}
	}
	if ap, err := netip.ParseAddrPort(inst.Status.Address); err == nil {
		add(ap.Addr(), ap.Port())
	}
	port := inst.Spec.Artifact.Port
	if inst.Spec.HostName == "" || port < 1 || port > 65535 {
		return out, nil
	}
	host := &cafev1alpha1.ClassicHost{}
	if err := reader.Get(ctx, types.NamespacedName{Name: inst.Spec.HostName}, host, client.UnsafeDisableDeepCopy); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return nil, fmt.Errorf("reading classic host %s: %w", inst.Spec.HostName, err)
		}
		return out, nil
	}
	if ip, err := netip.ParseAddr(host.Spec.Address); err == nil {
		add(ip, uint16(port))
	}
	return out, nil
}

// Dedup removes repeated requests, keeping the first of each.
func Dedup(reqs []reconcile.Request) []reconcile.Request {
	seen := make(map[reconcile.Request]bool, len(reqs))
	out := reqs[:0]
	for _, r := range reqs {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}
