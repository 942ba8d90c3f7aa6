package watchrec

import (
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// EventType is the kind of notification an [Event] records.
type EventType string

const (
	// Added is an object the watch (or a list) reported as new.
	Added EventType = "ADDED"
	// Modified is a new version of an object already seen.
	Modified EventType = "MODIFIED"
	// Deleted is the removal of an object; its Pod or EndpointSlice is the last version.
	Deleted EventType = "DELETED"
	// Gap marks that a watch expired and the recorder re-listed: the events of that
	// resource between the gap's resource version and the re-list are unknown. Every
	// checker reports a gap as a violation.
	Gap EventType = "GAP"
)

// Kind names the resource an [Event] is about.
type Kind string

const (
	// KindPod is a core/v1 Pod.
	KindPod Kind = "Pod"
	// KindEndpointSlice is a discovery.k8s.io/v1 EndpointSlice.
	KindEndpointSlice Kind = "EndpointSlice"
)

// Event is one entry of the recorded log.
//
// Exactly one of Pod and EndpointSlice is set, except for [Gap] events, which have
// neither. The objects are deep copies owned by whoever holds the Event.
type Event struct {
	// Seq is the local arrival order in the recorder, starting at 1. It breaks ties
	// between events with the same ResourceVersion (only Gap and synthetic events share one).
	Seq uint64
	// ResourceVersion is the object's metadata.resourceVersion as an integer (the etcd
	// revision of the write; see the package documentation). For a Gap it is the last
	// resource version the lost watch had reached.
	ResourceVersion uint64
	// Type is the notification type.
	Type EventType
	// Pod is set for Pod events.
	Pod *corev1.Pod
	// EndpointSlice is set for EndpointSlice events.
	EndpointSlice *discoveryv1.EndpointSlice
	// Synthetic is true when the event is part of a state rather than a change the
	// recorder saw happen: an object of the initial lists or of a re-list after a Gap,
	// or a watch event at or before the later of the two initial lists (until then the
	// other kind's history is unknown). Checkers use synthetic events to build state
	// but do not judge them.
	Synthetic bool
	// LeftFilter is true when the watch reported the object as deleted because it
	// stopped matching the recorder's label selector: it was modified, not deleted, and
	// no further events arrive for it until it matches again (as a new Added).
	LeftFilter bool
	// Message explains a Gap.
	Message string
}

// Kind returns the resource the event is about, or "" for a Gap.
func (e Event) Kind() Kind {
	switch {
	case e.Pod != nil:
		return KindPod
	case e.EndpointSlice != nil:
		return KindEndpointSlice
	default:
		return ""
	}
}

// Name returns the name of the event's object, or "" for a Gap.
func (e Event) Name() string {
	switch {
	case e.Pod != nil:
		return e.Pod.Name
	case e.EndpointSlice != nil:
		return e.EndpointSlice.Name
	default:
		return ""
	}
}

// String renders the event for logs and failure messages.
func (e Event) String() string {
	if e.Type == Gap {
		return fmt.Sprintf("#%d rv=%d %s: %s", e.Seq, e.ResourceVersion, e.Type, e.Message)
	}
	s := fmt.Sprintf("#%d rv=%d %s %s/%s", e.Seq, e.ResourceVersion, e.Type, e.Kind(), e.Name())
	if e.Synthetic {
		s += " (from list)"
	}
	if e.LeftFilter {
		s += " (left the label selector)"
	}
	return s
}

// DeepCopy returns a copy of e that shares no objects with it.
func (e Event) DeepCopy() Event {
	out := e
	if e.Pod != nil {
		out.Pod = e.Pod.DeepCopy()
	}
	if e.EndpointSlice != nil {
		out.EndpointSlice = e.EndpointSlice.DeepCopy()
	}
	return out
}

// SortEvents sorts events in place by ResourceVersion, then by Seq, which is the order
// the checkers evaluate them in. Events equal on both keep their relative order.
func SortEvents(events []Event) {
	slices.SortStableFunc(events, func(a, b Event) int {
		if a.ResourceVersion != b.ResourceVersion {
			if a.ResourceVersion < b.ResourceVersion {
				return -1
			}
			return 1
		}
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
}

// sorted returns a sorted copy of events, leaving the caller's slice alone.
func sorted(events []Event) []Event {
	out := slices.Clone(events)
	SortEvents(out)
	return out
}

// Gaps returns the Gap events of the log, in order.
func Gaps(events []Event) []Event {
	var out []Event
	for _, ev := range sorted(events) {
		if ev.Type == Gap {
			out = append(out, ev)
		}
	}
	return out
}

// parseResourceVersion reads a resource version as an etcd revision.
func parseResourceVersion(rv string) (uint64, error) {
	n, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("resourceVersion %q is not an etcd revision (watchrec needs an etcd-backed API server): %w", rv, err)
	}
	return n, nil
}

// newEvent builds an Event holding a deep copy of obj.
func newEvent(t EventType, obj runtime.Object) (Event, error) {
	ev := Event{Type: t}
	switch o := obj.(type) {
	case *corev1.Pod:
		ev.Pod = o.DeepCopy()
	case *discoveryv1.EndpointSlice:
		ev.EndpointSlice = o.DeepCopy()
	default:
		return Event{}, fmt.Errorf("unexpected object %T in the watch stream", obj)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return Event{}, err
	}
	ev.ResourceVersion, err = parseResourceVersion(m.GetResourceVersion())
	if err != nil {
		return Event{}, err
	}
	return ev, nil
}
