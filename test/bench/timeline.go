package main

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/cafe-io/cafe/test/framework/watchrec"
)

// timelineLength is how many events before a lossless violation its
// timeline shows.
const timelineLength = 14

// losslessTimeline is what the watch stream shows of the violating pod up
// to and including the violation: each write to the pod (writer and what
// changed) and each EndpointSlice event that lists it (ready, serving), in
// stream order. It tells whether the slice listed the pod ready before or
// after the drain decision's last read of the pod, i.e. whose view lagged.
func losslessTimeline(events []watchrec.Event, v watchrec.Violation) []string {
	var lines []string
	var prev *corev1.Pod
	for _, ev := range sortedEvents(events) {
		if ev.ResourceVersion > v.ResourceVersion {
			break
		}
		switch {
		case ev.Pod != nil && ev.Pod.Name == v.Pod:
			if prev != nil && prev.UID == ev.Pod.UID {
				lines = append(lines, fmt.Sprintf("rv=%d pod %s by %s: %s", ev.ResourceVersion, strings.ToLower(string(ev.Type)),
					strings.Join(changedManagers(prev, ev.Pod), "; "), strings.Join(podChanges(prev, ev.Pod), ", ")))
			}
			prev = ev.Pod
		case ev.EndpointSlice != nil:
			if state, ok := sliceListing(ev.EndpointSlice, v.Pod); ok {
				lines = append(lines, fmt.Sprintf("rv=%d EndpointSlice %s %s: %s", ev.ResourceVersion, ev.EndpointSlice.Name, strings.ToLower(string(ev.Type)), state))
			}
		}
	}
	return lines[max(0, len(lines)-timelineLength):]
}

// sortedEvents is the stream in resource-version order (the checkers'
// order), without changing the caller's slice.
func sortedEvents(events []watchrec.Event) []watchrec.Event {
	out := append([]watchrec.Event(nil), events...)
	watchrec.SortEvents(out)
	return out
}

// sliceListing describes how the slice lists the pod, if it does.
func sliceListing(slice *discoveryv1.EndpointSlice, pod string) (string, bool) {
	for _, ep := range slice.Endpoints {
		if ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" && ep.TargetRef.Name == pod {
			return fmt.Sprintf("lists it ready=%s serving=%s", optionalBool(ep.Conditions.Ready), optionalBool(ep.Conditions.Serving)), true
		}
	}
	return "", false
}

func optionalBool(b *bool) string {
	if b == nil {
		return "unset"
	}
	return fmt.Sprint(*b)
}
