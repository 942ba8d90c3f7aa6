// Package scrapetargets keeps a Prometheus file_sd target file of every
// instance CAFE runs, pods and classic instances alike, so a monitoring
// system that scrapes by address (the classic way, before Kubernetes
// service discovery) keeps its list right through releases: in-place pods
// keep their IPs and classic instances their hosts' addresses, so a release
// changes only the labels (version) of a target, and scaling adds or
// removes targets.
//
// The file is a JSON list of target groups, one per instance:
//
//	[{"targets": ["198.18.0.7:8080"],
//	  "labels": {"cafe_kind": "pod", "namespace": "shop", "cafe_name": "web-x7k2p",
//	             "app": "web", "unit": "zone-a", "zone": "zone-a", "version": "web-r2"}}]
//
// written atomically (a temporary file renamed over it) and only when its
// content changes; Prometheus re-reads it on change (file_sd_configs).
package scrapetargets

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Group is one file_sd target group.
type Group struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// Target kinds, the cafe_kind label.
const (
	KindPod     = "pod"
	KindClassic = "classic"
)

// podGroup is the target of a running pod with an IP: its IP and first
// container port; ok is false for a pod that cannot be scraped (no IP, no
// port, not running, being deleted).
func podGroup(pod *corev1.Pod, zoneOfNode map[string]string) (Group, bool) {
	if pod.Status.PodIP == "" || pod.Status.Phase != corev1.PodRunning || !pod.DeletionTimestamp.IsZero() {
		return Group{}, false
	}
	port, ok := firstPort(pod)
	if !ok {
		return Group{}, false
	}
	labels := common(KindPod, pod.Namespace, pod.Name, pod.Labels)
	set(labels, "zone", zoneOfNode[pod.Spec.NodeName])
	return Group{Targets: []string{net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(port)))}, Labels: labels}, true
}

func firstPort(pod *corev1.Pod) (int32, bool) {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
				return p.ContainerPort, true
			}
		}
	}
	return 0, false
}

// instanceGroup is the target of a classic instance with an address.
func instanceGroup(inst *cafev1alpha1.ClassicInstance, zoneOfHost map[string]string) (Group, bool) {
	if inst.Status.Address == "" || !inst.DeletionTimestamp.IsZero() {
		return Group{}, false
	}
	labels := common(KindClassic, inst.Namespace, inst.Name, inst.Labels)
	set(labels, "host", inst.Spec.HostName)
	set(labels, "zone", zoneOfHost[inst.Spec.HostName])
	return Group{Targets: []string{inst.Status.Address}, Labels: labels}, true
}

// common are the labels of every target: kind, namespace, name, and from
// the object's labels its app, unit and version (the app revision when
// it has one, else the revision hash).
func common(kind, namespace, name string, objLabels map[string]string) map[string]string {
	labels := map[string]string{"cafe_kind": kind, "namespace": namespace, "cafe_name": name}
	set(labels, "app", objLabels[cafev1alpha1.AppLabel])
	set(labels, "unit", objLabels[cafev1alpha1.UnitLabel])
	set(labels, "version", cmp.Or(objLabels[cafev1alpha1.AppRevisionLabel], objLabels[cafev1alpha1.RevisionHashLabel]))
	return labels
}

func set(labels map[string]string, key, value string) {
	if value != "" {
		labels[key] = value
	}
}

// Render is the file's content for the given pods and instances, in a
// stable order (by namespace, kind, name) so an unchanged set renders to
// the same bytes.
func Render(pods []corev1.Pod, instances []cafev1alpha1.ClassicInstance, zoneOfNode, zoneOfHost map[string]string) ([]byte, error) {
	groups := []Group{}
	for i := range pods {
		if g, ok := podGroup(&pods[i], zoneOfNode); ok {
			groups = append(groups, g)
		}
	}
	for i := range instances {
		if g, ok := instanceGroup(&instances[i], zoneOfHost); ok {
			groups = append(groups, g)
		}
	}
	slices.SortFunc(groups, func(a, b Group) int {
		return cmp.Or(cmp.Compare(a.Labels["namespace"], b.Labels["namespace"]), cmp.Compare(a.Labels["cafe_kind"], b.Labels["cafe_kind"]), cmp.Compare(a.Labels["cafe_name"], b.Labels["cafe_name"]))
	})
	out, err := json.MarshalIndent(groups, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the scrape targets: %w", err)
	}
	return append(out, '\n'), nil
}
