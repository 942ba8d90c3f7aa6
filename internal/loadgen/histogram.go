package loadgen

import (
	"math"
	"math/bits"
	"slices"
	"time"
)

// histogram counts latencies in log-linear buckets of microseconds: exact
// below 128 µs, then 64 buckets per power of two, so a percentile is off by
// at most 1/64 (1.6 %). It is sparse (a few dozen buckets per second of a
// run) and merges, so a window's percentiles come from its seconds' and
// memory stays small for an hour at MaxRate.
type histogram struct {
	counts map[int32]int64
	n      int64
	max    time.Duration
}

const subBits = 6 // 64 sub-buckets per power of two

func bucketOf(d time.Duration) int32 {
	v := uint64(max(d.Microseconds(), 0))
	if v < 2<<subBits {
		return int32(v)
	}
	shift := bits.Len64(v) - subBits - 1 // v>>shift is in [64, 127]
	return int32(shift<<subBits) + int32(v>>shift)
}

// upperBound is the largest latency counted in bucket b.
func upperBound(b int32) time.Duration {
	if b < 2<<subBits {
		return time.Duration(b) * time.Microsecond
	}
	shift := int(b>>subBits) - 1
	mantissa := int64(b) - int64(shift<<subBits)
	return time.Duration(((mantissa+1)<<shift)-1) * time.Microsecond
}

func (h *histogram) add(d time.Duration) {
	if h.counts == nil {
		h.counts = map[int32]int64{}
	}
	h.counts[bucketOf(d)]++
	h.n++
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = map[int32]int64{}
	}
	for b, c := range o.counts {
		h.counts[b] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile is the latency at or below which a fraction q of the samples
// fall (the bucket's upper bound, never above the largest sample).
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	keys := make([]int32, 0, len(h.counts))
	for b := range h.counts {
		keys = append(keys, b)
	}
	slices.Sort(keys)
	var seen int64
	for _, b := range keys {
		seen += h.counts[b]
		if seen >= rank {
			return min(upperBound(b), h.max)
		}
	}
	return h.max
}

func (h *histogram) latency() Latency {
	return Latency{
		Count: h.n,
		P50:   h.quantile(0.50),
		P90:   h.quantile(0.90),
		P99:   h.quantile(0.99),
		Max:   h.max,
	}
}
