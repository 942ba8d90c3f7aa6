package classicset

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// hostLoad is what runs on one host already: the instances of every set
// (against its capacity), their ports, and whether one is the set's own.
type hostLoad struct {
	Instances int32
	Ports     map[int32]bool
	OfSet     bool
}

// placement is the outcome of choosing hosts for new instances: the hosts,
// emptiest first, and when fewer than wanted, why the others could not go.
type placement struct {
	Hosts   []string
	Missing string
	// cacheBehind: the set has an instance the cache has not seen yet.
	cacheBehind bool
}

// place chooses up to want hosts for new instances of set among hosts,
// given what each already runs (by host name): a host must be in the
// set's zone and cell, Ready, schedulable (neither cordoned by its
// administrator nor by CAFE's verdict on it), run no instance of the set, have
// room under its capacity and the artifact's port free (neither another
// instance's nor one the host's agent listens on).
func place(set *cafev1alpha1.ClassicSet, hosts []cafev1alpha1.ClassicHost, load map[string]hostLoad, want int) placement {
	if want <= 0 {
		return placement{}
	}
	port := set.Spec.Template.Artifact.Port
	var fit []*cafev1alpha1.ClassicHost
	var inScope, notReady, cordoned, taken, full, portBusy int
	for i := range hosts {
		h := &hosts[i]
		if !inPlacement(set.Spec.Placement, h) {
			continue
		}
		inScope++
		l := load[h.Name]
		switch {
		case !meta.IsStatusConditionTrue(h.Status.Conditions, cafev1alpha1.ClassicHostReadyCondition):
			notReady++
		case h.Spec.Unschedulable || meta.IsStatusConditionFalse(h.Status.Conditions, cafev1alpha1.ClassicHostSchedulableCondition):
			cordoned++
		case l.OfSet:
			taken++
		case l.Instances >= h.Spec.Capacity.Instances:
			full++
		case l.Ports[port] || slices.Contains(h.Status.ReservedPorts, port) || (h.Status.AgentEndpoint != nil && h.Status.AgentEndpoint.Port == port):
			portBusy++
		default:
			fit = append(fit, h)
		}
	}
	slices.SortFunc(fit, func(a, b *cafev1alpha1.ClassicHost) int {
		if c := cmp.Compare(load[a.Name].Instances, load[b.Name].Instances); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	out := placement{}
	for _, h := range fit[:min(want, len(fit))] {
		out.Hosts = append(out.Hosts, h.Name)
	}
	if len(out.Hosts) < want {
		var why []string
		for _, c := range []struct {
			n    int
			what string
		}{{notReady, "not Ready"}, {cordoned, "unschedulable"}, {taken, "already run one of this set"}, {full, "at capacity"}, {portBusy, fmt.Sprintf("have port %d taken", port)}} {
			if c.n > 0 {
				why = append(why, fmt.Sprintf("%d %s", c.n, c.what))
			}
		}
		out.Missing = fmt.Sprintf("%d of the instances wanted have no host: %d classic hosts in %s", want-len(out.Hosts), inScope, scopeOf(set.Spec.Placement))
		if len(why) > 0 {
			out.Missing += " (" + strings.Join(why, ", ") + ")"
		}
	}
	return out
}

func inPlacement(p cafev1alpha1.ClassicPlacement, h *cafev1alpha1.ClassicHost) bool {
	return (p.Zone == "" || h.Spec.Zone == p.Zone) && (p.Cell == "" || h.Spec.Cell == p.Cell)
}

func scopeOf(p cafev1alpha1.ClassicPlacement) string {
	switch {
	case p.Zone != "" && p.Cell != "":
		return "zone " + p.Zone + ", cell " + p.Cell
	case p.Cell != "":
		return "cell " + p.Cell
	default:
		return "zone " + p.Zone
	}
}
