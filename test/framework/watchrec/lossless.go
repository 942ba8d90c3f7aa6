package watchrec

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// TrafficFinalizerPrefix starts the finalizer of every traffic provider
// (traffic.cafe.io/<provider>). While one is on a pod, the provider may still send it
// traffic.
const TrafficFinalizerPrefix = "traffic.cafe.io/"

// CheckLossless returns a violation for every pod operation in the log that the lossless
// pod-operation protocol forbids: a spec change, or the start of a deletion, of a pod
// that at that point of the stream
//
//   - is listed by an EndpointSlice as ready or serving, or
//   - carries a finalizer with the prefix [TrafficFinalizerPrefix].
//
// The events are evaluated in resource-version order (see the package documentation);
// EndpointSlice events replace (Added, Modified) or remove (Deleted) that slice's
// endpoints. An operation is judged against the state just before it: the slices as of
// the previous event, and the finalizers of the pod's previous version, so an update
// that removes a provider's finalizer and changes the spec at once is a violation.
//
// Events from a list (Synthetic) build state but are not judged. Every Gap is a
// violation, because the events it lost cannot be checked.
func CheckLossless(events []Event) []Violation {
	var out []Violation
	pods := map[string]*corev1.Pod{}
	endpointSlices := map[string]*discoveryv1.EndpointSlice{}
	for _, ev := range sorted(events) {
		switch {
		case ev.Type == Gap:
			out = append(out, gapViolation(CheckNameLossless, ev))

		case ev.EndpointSlice != nil:
			key := objectKey(ev.EndpointSlice.Namespace, ev.EndpointSlice.Name)
			if ev.Type == Deleted || ev.LeftFilter {
				delete(endpointSlices, key)
			} else {
				endpointSlices[key] = ev.EndpointSlice
			}

		case ev.Pod != nil:
			cur := ev.Pod
			key := objectKey(cur.Namespace, cur.Name)
			prev := pods[key]
			if prev != nil && !sameIncarnation(prev, cur) {
				prev = nil
			}
			if prev != nil && !ev.Synthetic {
				if ops := podOperations(ev.Type, prev, cur); len(ops) > 0 {
					if guards := trafficGuards(prev, cur, endpointSlices); len(guards) > 0 {
						out = append(out, Violation{
							Check:           CheckNameLossless,
							Pod:             cur.Name,
							Seq:             ev.Seq,
							ResourceVersion: ev.ResourceVersion,
							Reason:          strings.Join(ops, " and ") + " while " + strings.Join(guards, "; and "),
						})
					}
				}
			}
			if ev.Type == Deleted || ev.LeftFilter {
				delete(pods, key)
			} else {
				pods[key] = cur
			}
		}
	}
	return out
}

// podOperations describes the operations that turn version prev of a pod into the
// event's version cur: a spec change and/or the start of its deletion.
func podOperations(t EventType, prev, cur *corev1.Pod) []string {
	var ops []string
	if t != Deleted {
		if change := specChange(prev, cur); change != "" {
			ops = append(ops, "spec changed ("+change+")")
		}
	}
	if prev.DeletionTimestamp == nil {
		switch {
		case t == Deleted:
			ops = append(ops, "pod deleted without graceful deletion")
		case cur.DeletionTimestamp != nil:
			ops = append(ops, "deletion started (deletionTimestamp set)")
		}
	}
	return ops
}

// trafficGuards lists what still sends the pod traffic: the EndpointSlices that list it
// ready or serving, and its traffic provider finalizers as of version prev.
func trafficGuards(prev, cur *corev1.Pod, endpointSlices map[string]*discoveryv1.EndpointSlice) []string {
	var guards []string
	for _, key := range slices.Sorted(maps.Keys(endpointSlices)) {
		es := endpointSlices[key]
		if es.Namespace != cur.Namespace {
			continue
		}
		for _, ep := range es.Endpoints {
			if !refersTo(ep, cur) {
				continue
			}
			ready, serving := endpointReady(ep), endpointServing(ep)
			if ready || serving {
				guards = append(guards, fmt.Sprintf("EndpointSlice %q (rv %s) lists it ready=%s serving=%s",
					es.Name, es.ResourceVersion, condition(ep.Conditions.Ready), condition(ep.Conditions.Serving)))
				break
			}
		}
	}
	for _, f := range prev.Finalizers {
		if strings.HasPrefix(f, TrafficFinalizerPrefix) {
			guards = append(guards, fmt.Sprintf("it carries the traffic finalizer %q", f))
		}
	}
	return guards
}

// refersTo reports whether the endpoint is the pod: its targetRef names the pod, and
// matches its UID when the targetRef has one (so an endpoint left over from an earlier
// pod of the same name does not count).
func refersTo(ep discoveryv1.Endpoint, pod *corev1.Pod) bool {
	ref := ep.TargetRef
	if ref == nil || ref.Kind != "Pod" || ref.Name != pod.Name {
		return false
	}
	if ref.Namespace != "" && ref.Namespace != pod.Namespace {
		return false
	}
	return ref.UID == "" || pod.UID == "" || ref.UID == pod.UID
}

// endpointReady follows the EndpointSlice API: a nil ready means true.
func endpointReady(ep discoveryv1.Endpoint) bool {
	return ep.Conditions.Ready == nil || *ep.Conditions.Ready
}

// endpointServing follows the EndpointSlice API: a nil serving means true. kube-proxy
// reads it the same way (pkg/proxy/endpointslicecache.go). The endpointslice controller
// always sets it, so nil only comes from other writers.
func endpointServing(ep discoveryv1.Endpoint) bool {
	return ep.Conditions.Serving == nil || *ep.Conditions.Serving
}

func condition(b *bool) string {
	if b == nil {
		return "<unset>"
	}
	return fmt.Sprint(*b)
}
