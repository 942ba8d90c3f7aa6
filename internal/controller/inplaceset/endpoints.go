package inplaceset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/endpointslices"
	"github.com/cafe-io/cafe/internal/podutil"
)

// maxEndpointsPerSlice is the most endpoints one of the set's slices
// holds, the EndpointSlice controller's default.
const maxEndpointsPerSlice = 100

// endpoints is what a reconcile knows of the EndpointSlices the set writes
// for spec.endpoints.service (docs/cafedeployment.md, "Endpoints CAFE
// writes"). The slices are the state of a drain by slice: a pod the set's
// slices carry not ready, on the old revision, is being updated; one they
// list ready serves; one they do not carry has never been listed.
type endpoints struct {
	// service is the Service the set publishes, nil when it does not
	// (spec.endpoints unset, the Service missing or selecting pods).
	service *corev1.Service
	// condition is the EndpointsPublished condition (nil: spec.endpoints
	// is unset).
	condition *metav1.Condition
	// slices are the newest versions known of the set's slices: the
	// cache's, or the set's own writes the cache does not show yet.
	slices []*discoveryv1.EndpointSlice
	// ready says, for each pod the slices carry (by UID), whether they
	// list it ready.
	ready map[types.UID]bool
	// portsHash is the hash of the Service's ports (servicePortsHash).
	portsHash string
}

// carries reports whether the set's slices hold the pod, and whether ready.
func (e *endpoints) carries(uid types.UID) (present, ready bool) {
	ready, present = e.ready[uid]
	return present, ready
}

// publishedService reads spec.endpoints.service and says whether the set
// may write its endpoints: the Service exists, has no selector (the
// EndpointSlice controller would publish its endpoints too) and is not of
// type ExternalName (no endpoints at all).
func (r *Reconciler) publishedService(ctx context.Context, set *cafev1alpha1.InPlaceSet) (*corev1.Service, *metav1.Condition, error) {
	if set.Spec.Endpoints == nil {
		return nil, nil, nil
	}
	name := set.Spec.Endpoints.Service
	c := &metav1.Condition{Type: cafev1alpha1.InPlaceSetEndpointsPublishedCondition, ObservedGeneration: set.Generation, Status: metav1.ConditionFalse}
	svc := &corev1.Service{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: set.Namespace, Name: name}, svc)
	switch {
	case apierrors.IsNotFound(err):
		c.Reason = cafev1alpha1.InPlaceSetServiceNotFoundReason
		c.Message = fmt.Sprintf("spec.endpoints.service: Service %s not found; pods drain through the readiness gate until it exists", name)
		return nil, c, nil
	case err != nil:
		return nil, nil, fmt.Errorf("reading Service %s (spec.endpoints.service): %w", name, err)
	case len(svc.Spec.Selector) > 0 || svc.Spec.Type == corev1.ServiceTypeExternalName:
		c.Reason = cafev1alpha1.InPlaceSetServiceSelectsPodsReason
		c.Message = fmt.Sprintf("spec.endpoints.service: Service %s has a selector (or is of type ExternalName), so its endpoints are the EndpointSlice controller's; remove the selector for CAFE to write them. Pods drain through the readiness gate meanwhile", name)
		return nil, c, nil
	}
	c.Status, c.Reason = metav1.ConditionTrue, cafev1alpha1.InPlaceSetEndpointsPublishedReason
	c.Message = fmt.Sprintf("CAFE writes the EndpointSlices of Service %s for the set's pods", name)
	return svc, c, nil
}

// gatherEndpoints reads the set's slices, newest version first.
func (r *Reconciler) gatherEndpoints(ctx context.Context, set *cafev1alpha1.InPlaceSet) (*endpoints, error) {
	svc, cond, err := r.publishedService(ctx, set)
	if err != nil {
		return nil, err
	}
	e := &endpoints{service: svc, condition: cond, ready: map[types.UID]bool{}}
	if svc != nil {
		e.portsHash = servicePortsHash(svc)
	}
	if cond == nil && meta.FindStatusCondition(set.Status.Conditions, cafev1alpha1.InPlaceSetEndpointsPublishedCondition) == nil {
		// Never asked to publish (the usual set): it has no slices.
		return e, nil
	}
	cached, err := r.Slices.ControlledBy(ctx, set)
	if err != nil {
		return nil, err
	}
	e.slices = r.sliceWrites.newest(set, cached)
	for _, s := range e.slices {
		for _, ep := range s.Endpoints {
			if ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" {
				e.ready[ep.TargetRef.UID] = ptr.Deref(ep.Conditions.Ready, true)
			}
		}
	}
	return e, nil
}

// current reports whether the set's slices already say what publish would
// write, so that most reconciles skip rebuilding every endpoint of the set:
// the plan lists and drops nobody, every pod the slices carry is still the
// set's and not being deleted, none is listed ready without being Ready,
// and the Service's ports are those the slices were written for.
func (e *endpoints) current(pods []podState, p planResult) bool {
	if len(p.List) > 0 || len(p.Unlist) > 0 {
		return false
	}
	for _, s := range e.slices {
		if s.Annotations[servicePortsAnnotation] != e.portsHash {
			return false
		}
	}
	carried := 0
	for _, ps := range pods {
		ready, ok := e.ready[ps.Pod.UID]
		if !ok {
			continue
		}
		if ps.Terminating || ready && !ps.Ready {
			return false
		}
		carried++
	}
	return carried == len(e.ready)
}

// servicePortsAnnotation records, on each of the set's slices, the hash of
// the Service's ports it was written for.
const servicePortsAnnotation = "cafe.io/service-ports"

func servicePortsHash(svc *corev1.Service) string {
	raw, _ := json.Marshal(svc.Spec.Ports)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

// publish writes the set's slices: the pods they carried, with the plan's
// listings and drops applied, each listed ready only while its pod is
// Ready. Slices that list more pods ready than before are written first,
// then those that list fewer, one after the other, so that the pods the
// Service lists ready never dip below what the plan allowed between two
// writes. Without a Service to publish, the set's slices are deleted.
func (r *Reconciler) publish(ctx context.Context, set *cafev1alpha1.InPlaceSet, s *scope, p planResult) error {
	e := s.endpoints
	if e.service == nil {
		for _, stale := range e.slices {
			if err := r.deleteSlice(ctx, set, stale); err != nil {
				return err
			}
		}
		return nil
	}
	if e.current(s.input.Pods, p) {
		return nil
	}
	want, err := desiredSlices(set, e, s.input.Pods, p, r.Scheme)
	if err != nil {
		return err
	}
	existing := map[string]*discoveryv1.EndpointSlice{}
	for _, cur := range e.slices {
		existing[cur.Name] = cur
	}
	type write struct {
		want, cur *discoveryv1.EndpointSlice
		gain      int
	}
	var writes []write
	for _, w := range want {
		cur := existing[w.Name]
		delete(existing, w.Name)
		if cur != nil && endpointslices.Same(cur, w) {
			continue
		}
		writes = append(writes, write{want: w, cur: cur, gain: readyCount(w) - readyCount(cur)})
	}
	slices.SortStableFunc(writes, func(a, b write) int { return b.gain - a.gain })
	for _, w := range writes {
		if err := r.writeSlice(ctx, set, w.want, w.cur); err != nil {
			return err
		}
	}
	for _, stale := range existing {
		if err := r.deleteSlice(ctx, set, stale); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reconciler) writeSlice(ctx context.Context, set *cafev1alpha1.InPlaceSet, want, cur *discoveryv1.EndpointSlice) error {
	if cur == nil {
		if err := r.Client.Create(ctx, want); err != nil {
			return fmt.Errorf("creating EndpointSlice %s/%s: %w", want.Namespace, want.Name, err)
		}
	} else {
		want.ResourceVersion = cur.ResourceVersion
		if err := r.Client.Update(ctx, want); err != nil {
			return fmt.Errorf("updating EndpointSlice %s/%s: %w", want.Namespace, want.Name, err)
		}
	}
	r.sliceWrites.wrote(set, want)
	return nil
}

func (r *Reconciler) deleteSlice(ctx context.Context, set *cafev1alpha1.InPlaceSet, slice *discoveryv1.EndpointSlice) error {
	err := r.Client.Delete(ctx, slice, client.Preconditions{UID: &slice.UID, ResourceVersion: &slice.ResourceVersion})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting EndpointSlice %s/%s: %w", slice.Namespace, slice.Name, err)
	}
	r.sliceWrites.deleted(set, slice)
	return nil
}

// desiredSlices are the set's slices after the plan: every pod the slices
// carried or the plan lists or drops, that has an address and is not being
// deleted, ready when listed and Ready. A pod stays in the slice it is in
// (a pod moved between two slices would be listed twice, or not at all,
// between the two writes); pods new to the slices fill the emptiest slice
// of their port group first, or a new one.
func desiredSlices(set *cafev1alpha1.InPlaceSet, e *endpoints, pods []podState, p planResult, scheme *runtime.Scheme) ([]*discoveryv1.EndpointSlice, error) {
	listed := map[types.UID]bool{}
	for uid, ready := range e.ready {
		listed[uid] = ready
	}
	for _, pod := range p.Unlist {
		listed[pod.UID] = false
	}
	for _, pod := range p.List {
		listed[pod.UID] = true
	}
	// Where each carried pod is now.
	home := map[types.UID]string{}
	bySlice := map[string]*discoveryv1.EndpointSlice{}
	for _, s := range e.slices {
		bySlice[s.Name] = s
		for _, ep := range s.Endpoints {
			if ep.TargetRef != nil {
				home[ep.TargetRef.UID] = s.Name
			}
		}
	}
	groups := map[string]*sliceGroup{}
	for _, ps := range pods {
		wasListed, carried := listed[ps.Pod.UID]
		if !carried || ps.Terminating {
			continue
		}
		family, address, ok := podAddress(ps.Pod)
		if !ok {
			continue
		}
		ports := resolvePorts(e.service, ps.Pod)
		key := endpointslices.GroupKey(family, ports)
		g := groups[key]
		if g == nil {
			g = &sliceGroup{family: family, ports: ports, slices: map[string][]discoveryv1.Endpoint{}}
			groups[key] = g
		}
		ep := podEndpoint(set, ps.Pod, address, wasListed && ps.Ready)
		if name := home[ps.Pod.UID]; name != "" && bySlice[name] != nil && sliceKey(bySlice[name]) == key {
			g.slices[name] = append(g.slices[name], ep)
		} else {
			g.homeless = append(g.homeless, ep)
		}
	}
	var out []*discoveryv1.EndpointSlice
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, s := range groups[k].pack(set, k, e.portsHash) {
			if err := controllerutil.SetControllerReference(set, s, scheme); err != nil {
				return nil, fmt.Errorf("owning EndpointSlice %s: %w", s.Name, err)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// sliceGroup is the endpoints of one address family and port resolution.
type sliceGroup struct {
	family   discoveryv1.AddressType
	ports    []discoveryv1.EndpointPort
	slices   map[string][]discoveryv1.Endpoint
	homeless []discoveryv1.Endpoint
}

// pack places the homeless endpoints in the group's slices with room, the
// emptiest first, then in new slices, and builds the slices.
func (g *sliceGroup) pack(set *cafev1alpha1.InPlaceSet, key, ports string) []*discoveryv1.EndpointSlice {
	slices.SortFunc(g.homeless, byTargetName)
	for _, ep := range g.homeless {
		name := ""
		for n, eps := range g.slices {
			if len(eps) < maxEndpointsPerSlice && (name == "" || len(eps) < len(g.slices[name]) || len(eps) == len(g.slices[name]) && n < name) {
				name = n
			}
		}
		if name == "" {
			name = freeSliceName(set, key, g.slices)
		}
		g.slices[name] = append(g.slices[name], ep)
	}
	names := make([]string, 0, len(g.slices))
	for n := range g.slices {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]*discoveryv1.EndpointSlice, 0, len(names))
	for _, n := range names {
		eps := g.slices[n]
		slices.SortFunc(eps, byTargetName)
		out = append(out, &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: set.Namespace,
				Name:      n,
				Labels: map[string]string{
					discoveryv1.LabelServiceName: set.Spec.Endpoints.Service,
					discoveryv1.LabelManagedBy:   cafev1alpha1.EndpointSliceManagedByInPlaceSet,
					setNameLabel:                 set.Name,
				},
				Annotations: map[string]string{sliceGroupAnnotation: key, servicePortsAnnotation: ports},
			},
			AddressType: g.family,
			Endpoints:   eps,
			Ports:       g.ports,
		})
	}
	return out
}

// sliceGroupAnnotation records a slice's port group, so that a pod whose
// ports resolve differently (a template change) moves to another slice.
const sliceGroupAnnotation = "cafe.io/endpoint-group"

func sliceKey(s *discoveryv1.EndpointSlice) string { return s.Annotations[sliceGroupAnnotation] }

// freeSliceName is <set>-<hash of the group>-<n> for the lowest n unused.
func freeSliceName(set *cafev1alpha1.InPlaceSet, key string, used map[string][]discoveryv1.Endpoint) string {
	sum := sha256.Sum256([]byte(key))
	prefix := fmt.Sprintf("%s-%s-", set.Name[:min(len(set.Name), 200)], hex.EncodeToString(sum[:])[:8])
	for n := 0; ; n++ {
		if _, taken := used[prefix+strconv.Itoa(n)]; !taken {
			return prefix + strconv.Itoa(n)
		}
	}
}

func byTargetName(a, b discoveryv1.Endpoint) int {
	return strings.Compare(a.TargetRef.Name, b.TargetRef.Name)
}

// podEndpoint is the pod's endpoint: ready and serving when listed,
// neither when dropped (the slice keeps the pod, which records the drain).
func podEndpoint(set *cafev1alpha1.InPlaceSet, pod *corev1.Pod, address string, ready bool) discoveryv1.Endpoint {
	ep := discoveryv1.Endpoint{
		Addresses: []string{address},
		Conditions: discoveryv1.EndpointConditions{
			Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(false),
		},
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
	}
	if pod.Spec.NodeName != "" {
		ep.NodeName = ptr.To(pod.Spec.NodeName)
	}
	if u := set.Spec.Unit; u != nil && u.Key == corev1.LabelTopologyZone {
		ep.Zone = ptr.To(u.Value)
	}
	return ep
}

// podAddress is the pod's first IP and its family.
func podAddress(pod *corev1.Pod) (discoveryv1.AddressType, string, bool) {
	ip := pod.Status.PodIP
	if ip == "" && len(pod.Status.PodIPs) > 0 {
		ip = pod.Status.PodIPs[0].IP
	}
	addr, err := netip.ParseAddr(ip)
	switch {
	case err != nil:
		return "", "", false
	case addr.Is4():
		return discoveryv1.AddressTypeIPv4, addr.String(), true
	default:
		return discoveryv1.AddressTypeIPv6, addr.String(), true
	}
}

// resolvePorts are the Service's ports as they reach the pod: a numeric
// targetPort (the port itself when unset), or a named one looked up among
// the pod's container ports (left out when none has that name), as the
// EndpointSlice controller resolves them.
func resolvePorts(svc *corev1.Service, pod *corev1.Pod) []discoveryv1.EndpointPort {
	var out []discoveryv1.EndpointPort
	for _, sp := range svc.Spec.Ports {
		protocol := endpointslices.Protocol(sp)
		port := sp.TargetPort.IntVal
		if sp.TargetPort.StrVal != "" {
			port = namedPort(pod, sp.TargetPort.StrVal, protocol)
		} else if port == 0 {
			port = sp.Port
		}
		if port == 0 {
			continue
		}
		out = append(out, discoveryv1.EndpointPort{Name: ptr.To(sp.Name), Protocol: ptr.To(protocol), Port: ptr.To(port), AppProtocol: sp.AppProtocol})
	}
	return out
}

func namedPort(pod *corev1.Pod, name string, protocol corev1.Protocol) int32 {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name && (p.Protocol == protocol || p.Protocol == "" && protocol == corev1.ProtocolTCP) {
				return p.ContainerPort
			}
		}
	}
	return 0
}

func readyCount(s *discoveryv1.EndpointSlice) int {
	if s == nil {
		return 0
	}
	n := 0
	for _, ep := range s.Endpoints {
		if ptr.Deref(ep.Conditions.Ready, true) {
			n++
		}
	}
	return n
}

// slicesHolding are the EndpointSlices that carry the pod: the newest
// versions of the set's own, and the others (another Service selecting
// the pod) from the slice cache.
func (r *Reconciler) slicesHolding(ctx context.Context, pod *corev1.Pod, e *endpoints) ([]discoveryv1.EndpointSlice, error) {
	cached, err := r.Slices.ForPod(ctx, pod)
	if err != nil {
		return nil, err
	}
	if len(e.slices) == 0 {
		return cached, nil
	}
	own := map[string]bool{}
	var out []discoveryv1.EndpointSlice
	for _, s := range e.slices {
		own[s.Name] = true
		for _, ep := range s.Endpoints {
			if ep.TargetRef != nil && ep.TargetRef.UID == pod.UID {
				out = append(out, *s)
				break
			}
		}
	}
	for _, s := range cached {
		if !own[s.Name] {
			out = append(out, s)
		}
	}
	return out, nil
}

// endpointsServiceField indexes InPlaceSets by spec.endpoints.service.
const endpointsServiceField = "spec.endpoints.service"

func indexByEndpointsService(obj client.Object) []string {
	set, ok := obj.(*cafev1alpha1.InPlaceSet)
	if !ok || set.Spec.Endpoints == nil {
		return nil
	}
	return []string{set.Spec.Endpoints.Service}
}

// setsPublishing maps a Service to the sets that write its endpoints.
func (r *Reconciler) setsPublishing(ctx context.Context, svc client.Object) []reconcile.Request {
	sets := &cafev1alpha1.InPlaceSetList{}
	if err := r.Client.List(ctx, sets, client.InNamespace(svc.GetNamespace()), client.MatchingFields{endpointsServiceField: svc.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing the InPlaceSets that publish a Service", "service", klog.KObj(svc))
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(sets.Items))
	for i := range sets.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&sets.Items[i])})
	}
	return reqs
}

// publishLeaving keeps a deleted set's slices following its pods while
// they leave through their gates: a pod whose gate closed is no longer
// Ready, and its endpoint must say so before the drain can end.
func (r *Reconciler) publishLeaving(ctx context.Context, set *cafev1alpha1.InPlaceSet, pods []*corev1.Pod) error {
	e, err := r.gatherEndpoints(ctx, set)
	if err != nil || (e.service == nil && len(e.slices) == 0) {
		return err
	}
	s := &scope{endpoints: e, input: planInput{Pods: make([]podState, 0, len(pods))}}
	for _, pod := range pods {
		s.input.Pods = append(s.input.Pods, podState{Pod: pod, Ready: podutil.Ready(pod), Terminating: !pod.DeletionTimestamp.IsZero()})
	}
	return r.publish(ctx, set, s, planResult{})
}
