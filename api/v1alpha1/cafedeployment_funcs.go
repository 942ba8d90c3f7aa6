package v1alpha1

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// percentPattern is the percentage form accepted everywhere in this API. It
// is the same pattern the CRD's CEL rules enforce, so that an object the API
// server admitted never fails here.
var percentPattern = regexp.MustCompile(`^(100|[1-9]?[0-9])%$`)

// UnitLabelKey returns the node label whose values name the units: the zone
// label for Zone (and when unitType is unset, as the API defaults it), the
// cell label for Cell, and "" for an unknown type.
func (t Topology) UnitLabelKey() string {
	switch t.UnitType {
	case UnitTypeZone, "":
		return ZoneNodeLabel
	case UnitTypeCell:
		return CellNodeLabel
	default:
		return ""
	}
}

// ResolveIntOrPercent returns v as a number of pods: an integer as is, a
// percentage of total rounded down, or up when roundUp is set. It rejects
// what the API rejects: negative integers and anything but 0% to 100%.
func ResolveIntOrPercent(v intstr.IntOrString, total int32, roundUp bool) (int32, error) {
	if v.Type == intstr.Int {
		if v.IntVal < 0 {
			return 0, fmt.Errorf("%d is negative", v.IntVal)
		}
		return v.IntVal, nil
	}
	if !percentPattern.MatchString(v.StrVal) {
		return 0, fmt.Errorf("%q is neither an integer nor a percentage from 0%% to 100%%", v.StrVal)
	}
	p, err := strconv.ParseInt(strings.TrimSuffix(v.StrVal, "%"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", v.StrVal, err)
	}
	scaled := int64(total) * p
	if roundUp {
		scaled += 99
	}
	return int32(scaled / 100), nil
}

// SplitReplicas returns the number of pods of each unit of topology, for
// replicas pods in all, with an entry for every unit in topology.values.
//
// Units with an entry in topology.unitReplicas get that number (a percentage
// of replicas rounded down). The units without an entry share the rest
// evenly; the remainder of that division goes one pod each to the first of
// them in topology.values order. When every unit has an entry, the pods that
// rounding percentages down left over are shared the same way among the
// units with a percentage entry, and integer-only entries must add up to
// replicas exactly.
//
// The result depends only on its arguments (never on map iteration order).
// It fails when the entries ask for more pods than replicas, name a unit not
// in topology.values, or are malformed; the API's validation rejects all of
// these except percentages that overshoot together with the integers.
func SplitReplicas(replicas int32, topology Topology) (map[string]int32, error) {
	if replicas < 0 {
		return nil, fmt.Errorf("replicas %d is negative", replicas)
	}
	if len(topology.Values) == 0 {
		return nil, fmt.Errorf("topology.values is empty")
	}
	for i, u := range topology.Values {
		if slices.Contains(topology.Values[:i], u) {
			return nil, fmt.Errorf("topology.values: unit %q is listed twice", u)
		}
	}
	var unknown []string
	for u := range topology.UnitReplicas {
		if !slices.Contains(topology.Values, u) {
			unknown = append(unknown, u)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf("topology.unitReplicas: unknown units %s, not in topology.values", strings.Join(unknown, ", "))
	}

	split := make(map[string]int32, len(topology.Values))
	var pinned int64
	var free, percent []string
	for _, u := range topology.Values {
		v, ok := topology.UnitReplicas[u]
		if !ok {
			free = append(free, u)
			continue
		}
		n, err := ResolveIntOrPercent(v, replicas, false)
		if err != nil {
			return nil, fmt.Errorf("topology.unitReplicas[%s]: %w", u, err)
		}
		split[u] = n
		pinned += int64(n)
		if v.Type == intstr.String {
			percent = append(percent, u)
		}
	}
	if pinned > int64(replicas) {
		return nil, fmt.Errorf("topology.unitReplicas asks for %d pods, more than the %d replicas", pinned, replicas)
	}

	rest := replicas - int32(pinned)
	switch {
	case len(free) > 0:
		spread(rest, free, split)
	case rest == 0:
	case len(percent) > 0:
		spread(rest, percent, split)
	default:
		return nil, fmt.Errorf("topology.unitReplicas gives every unit an integer, adding up to %d, not the %d replicas", pinned, replicas)
	}
	return split, nil
}

// spread adds n pods over units evenly, the first units taking the
// remainder.
func spread(n int32, units []string, split map[string]int32) {
	count := int32(len(units))
	for i, u := range units {
		split[u] += n / count
		if int32(i) < n%count {
			split[u]++
		}
	}
}

// WaitsForConfirm reports whether each next group waits for a person to
// confirm the previous one. Unset means no.
func (s CafeDeploymentStrategy) WaitsForConfirm() bool {
	return s.NeedWaitingForConfirm != nil && *s.NeedWaitingForConfirm
}

// TrafficStepAfter returns the traffic step of group k, nil when none.
func (s CafeDeploymentStrategy) TrafficStepAfter(k int32) *TrafficStep {
	if s.Traffic == nil {
		return nil
	}
	for i := range s.Traffic.Steps {
		if s.Traffic.Steps[i].Group == k {
			return &s.Traffic.Steps[i]
		}
	}
	return nil
}

// CanaryService and StableService name the Services CAFE keeps beside the
// app's during traffic steps: its pods of the update and of the current
// revision.
func (t TrafficStrategy) CanaryService() string { return t.Service + "-canary" }

// StableService: see CanaryService.
func (t TrafficStrategy) StableService() string { return t.Service + "-stable" }

// ChangedBesidesPause reports whether the strategy differs from old in
// anything but pause (a change of pause is a pause or a resume; any other
// change moves the water level or the confirmations of a release).
func (s CafeDeploymentStrategy) ChangedBesidesPause(old CafeDeploymentStrategy) bool {
	s.Pause, old.Pause = false, false
	return !equality.Semantic.DeepEqual(s, old)
}

// FastReleaseRequested reports whether the CafeDeployment's
// FastReleaseAnnotation asks for the template in spec to be released fast:
// the annotation names either the template's revision hash (`cafe deploy
// rollback --fast`) or the app revision the template renders (its
// AppRevisionLabel, set by the CafeAppService controller). A request left
// from an earlier release names another revision and is ignored.
func (c *CafeDeployment) FastReleaseRequested(templateHash string) bool {
	want := c.Annotations[FastReleaseAnnotation]
	if want == "" {
		return false
	}
	return want == templateHash || want == c.Spec.Template.Labels[AppRevisionLabel]
}

// GetConditions returns the conditions of the CafeDeployment.
func (c *CafeDeployment) GetConditions() []metav1.Condition {
	return c.Status.Conditions
}

// SetConditions replaces the conditions of the CafeDeployment.
func (c *CafeDeployment) SetConditions(conditions []metav1.Condition) {
	c.Status.Conditions = conditions
}
