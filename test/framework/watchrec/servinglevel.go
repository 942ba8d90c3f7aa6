package watchrec

import (
	"fmt"
	"slices"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
)

// CheckNameServingLevel names the violations of [CheckServingLevel].
const CheckNameServingLevel = "serving-level"

// CheckServingLevel returns a violation each time the number of pods the
// EndpointSlices list ready falls below minServing: the water level as the
// traffic sees it. [CheckWaterLevel] counts Ready pods, which is the same thing
// while the EndpointSlice controller publishes the endpoints from pod readiness;
// a releaser that writes the endpoints itself takes a pod out of them while the
// pod is still Ready, and only this check sees that.
//
// A pod counts when it exists, its deletion has not begun, and an EndpointSlice
// lists an endpoint that refers to it (its targetRef, by UID when the targetRef
// has one) as ready. A pod listed by two slices counts once. Warm-up, dips and
// Gaps are as in [CheckWaterLevel].
func CheckServingLevel(events []Event, minServing int) []Violation {
	var out []Violation
	level := servingCount{listed: map[string]map[string]map[string]bool{}, slices: map[string][]podRef{}, alive: map[string]string{}}
	for _, ev := range sorted(events) {
		if ev.Type == Gap {
			out = append(out, gapViolation(CheckNameServingLevel, ev))
			continue
		}
		before := level.serving()
		what := level.apply(ev)
		if after := level.serving(); before >= minServing && after < minServing {
			out = append(out, Violation{
				Check:           CheckNameServingLevel,
				Pod:             what.pod,
				Seq:             ev.Seq,
				ResourceVersion: ev.ResourceVersion,
				Reason:          fmt.Sprintf("pods listed ready by the EndpointSlices fell to %d, below the serving level %d, when %s", after, minServing, what.why),
			})
		}
	}
	return out
}

// servingCount is the state CheckServingLevel keeps: which slices list which
// pod (by namespace/name, then UID) ready, and the live pods' UIDs.
type servingCount struct {
	// listed[podKey][uid] is the set of slices listing that pod ready; the
	// UID is "" for an endpoint whose targetRef has none.
	listed map[string]map[string]map[string]bool
	// slices remembers each slice's ready pods, to undo them on its next
	// event.
	slices map[string][]podRef
	// alive maps a live pod (deletion not begun) to its UID.
	alive map[string]string
}

type podRef struct{ key, uid string }

// change names the pod an event changed and how, for a violation's reason.
type change struct{ pod, why string }

// serving counts the live pods some slice lists ready.
func (s *servingCount) serving() int {
	n := 0
	for key, uid := range s.alive {
		if len(s.listed[key][uid]) > 0 || len(s.listed[key][""]) > 0 {
			n++
		}
	}
	return n
}

func (s *servingCount) apply(ev Event) change {
	switch {
	case ev.EndpointSlice != nil:
		es := ev.EndpointSlice
		sliceKey := objectKey(es.Namespace, es.Name)
		old := s.slices[sliceKey]
		for _, ref := range old {
			delete(s.listed[ref.key][ref.uid], sliceKey)
		}
		var refs []podRef
		if ev.Type != Deleted && !ev.LeftFilter {
			refs = readyPods(es)
		}
		what := change{why: fmt.Sprintf("EndpointSlice %q changed", es.Name)}
		if dropped := without(old, refs); len(dropped) > 0 {
			name := dropped[0].key[strings.LastIndex(dropped[0].key, "/")+1:]
			what = change{pod: name, why: fmt.Sprintf("EndpointSlice %q stopped listing %q ready", es.Name, name)}
		}
		s.slices[sliceKey] = refs
		for _, ref := range refs {
			if s.listed[ref.key] == nil {
				s.listed[ref.key] = map[string]map[string]bool{}
			}
			if s.listed[ref.key][ref.uid] == nil {
				s.listed[ref.key][ref.uid] = map[string]bool{}
			}
			s.listed[ref.key][ref.uid][sliceKey] = true
		}
		return what
	case ev.Pod != nil:
		pod := ev.Pod
		key := objectKey(pod.Namespace, pod.Name)
		switch {
		case ev.Type == Deleted:
			delete(s.alive, key)
			return change{pod: pod.Name, why: fmt.Sprintf("%q was deleted", pod.Name)}
		case ev.LeftFilter:
			delete(s.alive, key)
			return change{pod: pod.Name, why: fmt.Sprintf("%q left the recorder's label selector", pod.Name)}
		case pod.DeletionTimestamp != nil:
			delete(s.alive, key)
			return change{pod: pod.Name, why: fmt.Sprintf("%q began deletion", pod.Name)}
		default:
			s.alive[key] = string(pod.UID)
			return change{pod: pod.Name, why: fmt.Sprintf("%q changed", pod.Name)}
		}
	}
	return change{}
}

// readyPods are the pods a slice lists ready.
func readyPods(es *discoveryv1.EndpointSlice) []podRef {
	var out []podRef
	for _, ep := range es.Endpoints {
		ref := ep.TargetRef
		if ref == nil || ref.Kind != "Pod" || !endpointReady(ep) {
			continue
		}
		ns := ref.Namespace
		if ns == "" {
			ns = es.Namespace
		}
		out = append(out, podRef{key: objectKey(ns, ref.Name), uid: string(ref.UID)})
	}
	return out
}

// without is the refs of a that b does not hold.
func without(a, b []podRef) []podRef {
	var out []podRef
	for _, ref := range a {
		if !slices.Contains(b, ref) {
			out = append(out, ref)
		}
	}
	return out
}
