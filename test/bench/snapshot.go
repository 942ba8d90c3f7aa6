package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// snapshot is every counter the benchmark reads, at one moment.
type snapshot struct {
	At time.Time
	// API is the apiserver's count of writes since it started.
	API apiWrites
	// CPU is CPU seconds used so far, by process.
	CPU counts[string]
	// Clients are the components' own client counters, for those that
	// export them; Missing says why the others are absent.
	Clients map[string]clientStats
	Missing map[string]string
}

// takeSnapshot reads the counters. The CPU times are read last when
// cpuFirst is false and first otherwise, so that the scrapes themselves
// (tens of MB of metrics text) fall outside the window between a "before"
// (cpuFirst false) and an "after" (cpuFirst true) snapshot.
func (c *cluster) takeSnapshot(ctx context.Context, cpuFirst bool) (snapshot, error) {
	s := snapshot{Clients: map[string]clientStats{}, Missing: map[string]string{}}
	readCPU := func() error {
		var err error
		s.CPU, err = c.cpuSeconds()
		s.At = time.Now()
		return err
	}
	if cpuFirst {
		if err := readCPU(); err != nil {
			return s, err
		}
	}
	families, err := scrape(ctx, c.apiHTTP, strings.TrimSuffix(c.admin.Host, "/")+"/metrics")
	if err != nil {
		return s, fmt.Errorf("reading the apiserver's metrics: %w", err)
	}
	if s.API, err = writesFromFamilies(families); err != nil {
		return s, err
	}
	for name, url := range c.componentMetricsURLs() {
		families, err := scrape(ctx, c.componentHTTP, url)
		if err != nil {
			s.Missing[name] = err.Error()
			continue
		}
		stats, ok := clientStatsFromFamilies(families)
		if !ok {
			s.Missing[name] = "its /metrics has no rest_client_requests_total"
			continue
		}
		s.Clients[name] = stats
	}
	if !cpuFirst {
		if err := readCPU(); err != nil {
			return s, err
		}
	}
	return s, nil
}

// delta is what happened between two snapshots.
type delta struct {
	Window  time.Duration
	API     apiWrites
	CPU     counts[string]
	Clients map[string]clientStats
	Missing map[string]string
}

func (after snapshot) since(before snapshot) delta {
	d := delta{
		Window:  after.At.Sub(before.At),
		API:     after.API.minus(before.API),
		CPU:     after.CPU.minus(before.CPU),
		Clients: map[string]clientStats{},
		Missing: map[string]string{},
	}
	for name, a := range after.Clients {
		if b, ok := before.Clients[name]; ok {
			d.Clients[name] = a.minus(b)
		}
	}
	for _, m := range []map[string]string{before.Missing, after.Missing} {
		for name, why := range m {
			d.Missing[name] = why
		}
	}
	return d
}
