package lossless

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// SlowDrain is how long a drain may wait for the traffic systems before the
// workload's status says what holds it. A normal drain takes a second or
// two; reporting those would cost a status write per wave for nothing.
const SlowDrain = 5 * time.Second

// HeldDrain describes a drain that the traffic systems have held for at
// least SlowDrain: which pod, since when, and what still routes to it
// (TrafficHolders). It returns "" and how long until the drain would count
// as held (0 when it never will: the pod is not draining or nothing holds
// it).
func HeldDrain(pod *corev1.Pod, holders []string, now time.Time) (string, time.Duration) {
	g := Gate(pod)
	if g == nil || g.Status != corev1.ConditionFalse || DrainReason(pod) == "" || len(holders) == 0 {
		return "", 0
	}
	return HeldSince(pod, g.LastTransitionTime.Time, holders, now)
}

// HeldSince is HeldDrain for a drain that began at since, whatever
// recorded it (a pod set that writes its endpoints drops a pod from its
// EndpointSlices, and the gate stays open).
func HeldSince(pod *corev1.Pod, since time.Time, holders []string, now time.Time) (string, time.Duration) {
	if len(holders) == 0 {
		return "", 0
	}
	if wait := since.Add(SlowDrain).Sub(now); wait > 0 {
		return "", wait
	}
	return fmt.Sprintf("pod %s has been draining since %s and is still held by: %s",
		pod.Name, since.UTC().Format(time.RFC3339), strings.Join(holders, "; ")), 0
}
