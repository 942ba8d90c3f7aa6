package nodelifecycle

import (
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// zoneMember is one node (or classic host) as the zone guard sees it.
type zoneMember struct {
	Zone    string
	Host    bool
	Verdict cafev1alpha1.NodeVerdict
	// UnhealthySince is when the node last turned Suspect or Failed (the
	// node's cafe.io/unhealthy-since annotation); zero while Healthy.
	UnhealthySince time.Time
}

func unhealthy(v cafev1alpha1.NodeVerdict) bool {
	return v == cafev1alpha1.NodeVerdictSuspect || v == cafev1alpha1.NodeVerdictFailed
}

// zoneHealth counts the nodes (and classic hosts, which count alike) of
// every zone and says which zones the guard holds. Many nodes of one zone bad at once is more likely a partition
// between CAFE and the zone, or a monitoring fault, than that many machines
// dying; acting on it would move a zone's worth of pods on doubtful
// evidence. So the guard holds a zone while more than maxUnhealthyPercent
// of its nodes are Suspect or Failed, however long ago each turned so:
// counting only the nodes that turned bad within a window let reports turn
// a zone bad a few nodes per window (review finding 7). recentlyUnhealthy
// (within windowSeconds) is reported, not counted. Sorted by zone name.
func zoneHealth(members []zoneMember, guard cafev1alpha1.ZoneGuardSpec, now time.Time) []cafev1alpha1.ZoneHealth {
	byZone := map[string]*cafev1alpha1.ZoneHealth{}
	recentFrom := now.Add(-seconds(guard.WindowSeconds))
	for _, m := range members {
		z := byZone[m.Zone]
		if z == nil {
			z = &cafev1alpha1.ZoneHealth{Name: m.Zone}
			byZone[m.Zone] = z
		}
		if m.Host {
			z.Hosts++
		} else {
			z.Nodes++
		}
		if unhealthy(m.Verdict) {
			z.Unhealthy++
			if !m.UnhealthySince.IsZero() && !m.UnhealthySince.Before(recentFrom) {
				z.RecentlyUnhealthy++
			}
		}
	}
	above := func(n, of int32) bool {
		return n > 0 && int64(n)*100 > int64(guard.MaxUnhealthyPercent)*int64(of)
	}
	out := make([]cafev1alpha1.ZoneHealth, 0, len(byZone))
	for _, z := range byZone {
		z.Guarded = above(z.Unhealthy, z.Nodes+z.Hosts)
		out = append(out, *z)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// rateWindow is the global migration rate limit: at most limit migrations
// start in any window. Its grants live in the policy's status
// (status.recentMigrations), so a restarted controller honours them.
type rateWindow struct {
	window time.Duration
	grants []cafev1alpha1.MigrationGrant
}

// current are the grants still inside the window at now, oldest first.
func (w rateWindow) current(now time.Time) []cafev1alpha1.MigrationGrant {
	out := make([]cafev1alpha1.MigrationGrant, 0, len(w.grants))
	for _, g := range w.grants {
		if g.Time.Add(w.window).After(now) {
			out = append(out, g)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(&out[j].Time) })
	return out
}

// available is how many migrations may start now, and when the next one
// could if none may.
func (w rateWindow) available(now time.Time, limit int) (int, time.Duration) {
	cur := w.current(now)
	used := 0
	for _, g := range cur {
		used += int(g.Pods)
	}
	if n := limit - used; n > 0 {
		return n, 0
	}
	for _, g := range cur {
		used -= int(g.Pods)
		if used < limit {
			return 0, g.Time.Add(w.window).Sub(now)
		}
	}
	return 0, w.window
}

// take returns the grants of the window at now plus n migrations started
// at now: what to record before the migrations start.
func (w rateWindow) take(now time.Time, n int) []cafev1alpha1.MigrationGrant {
	cur := w.current(now)
	if n > 0 {
		cur = append(cur, cafev1alpha1.MigrationGrant{Time: metav1.NewMicroTime(now), Pods: int32(n)})
	}
	return cur
}

// members says how many machines a zone has, in words: "4 nodes", or
// "5 nodes and classic hosts" when it has hosts.
func members(z cafev1alpha1.ZoneHealth) string {
	if z.Hosts > 0 {
		return fmt.Sprintf("%d nodes and classic hosts", z.Nodes+z.Hosts)
	}
	return fmt.Sprintf("%d nodes", z.Nodes)
}
