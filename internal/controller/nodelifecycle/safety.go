package nodelifecycle

import (
	"sort"
	"time"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// zoneMember is one node as the zone guard sees it.
type zoneMember struct {
	Zone    string
	Verdict cafev1alpha1.NodeVerdict
}

// ZoneHealth counts the nodes of every zone and says which zones the guard
// holds: those where more than maxUnhealthyPercent of the nodes are Suspect
// or Failed. Many nodes of one zone turning bad together is more likely a
// partition between CAFE and the zone, or a monitoring fault, than that
// many machines dying at once; acting on it would move a zone's worth of
// pods on doubtful evidence. Sorted by zone name.
func ZoneHealth(members []zoneMember, maxUnhealthyPercent int32) []cafev1alpha1.ZoneHealth {
	byZone := map[string]*cafev1alpha1.ZoneHealth{}
	for _, m := range members {
		z := byZone[m.Zone]
		if z == nil {
			z = &cafev1alpha1.ZoneHealth{Name: m.Zone}
			byZone[m.Zone] = z
		}
		z.Nodes++
		if m.Verdict == cafev1alpha1.NodeVerdictSuspect || m.Verdict == cafev1alpha1.NodeVerdictFailed {
			z.Unhealthy++
		}
	}
	out := make([]cafev1alpha1.ZoneHealth, 0, len(byZone))
	for _, z := range byZone {
		z.Guarded = z.Unhealthy > 0 && int64(z.Unhealthy)*100 > int64(maxUnhealthyPercent)*int64(z.Nodes)
		out = append(out, *z)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// rateWindow is the global migration rate limit: at most limit migrations
// start in any window. It remembers the start times it granted.
type rateWindow struct {
	window time.Duration
	starts []time.Time
}

// available is how many migrations may start now, and when the next one
// could if none may.
func (w *rateWindow) available(now time.Time, limit int) (int, time.Duration) {
	w.forget(now)
	n := limit - len(w.starts)
	if n > 0 {
		return n, 0
	}
	if len(w.starts) == 0 {
		return 0, w.window
	}
	return 0, w.starts[len(w.starts)-limit].Add(w.window).Sub(now)
}

// take records n migrations started at now.
func (w *rateWindow) take(now time.Time, n int) {
	for range n {
		w.starts = append(w.starts, now)
	}
}

func (w *rateWindow) forget(now time.Time) {
	i := 0
	for i < len(w.starts) && !w.starts[i].Add(w.window).After(now) {
		i++
	}
	w.starts = w.starts[i:]
}
