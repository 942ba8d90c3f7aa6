package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// profiler captures CPU profiles of the control plane's busiest components
// during a release (-profile-dir), to see what caps the writes per second;
// of cafe manager too when -manager-args has --pprof-bind-address.
type profiler struct {
	dir     string
	seconds int
}

// start begins one CPU profile per component, named after the release;
// wait blocks until they are written. Errors are reported, not fatal: a
// profile is a diagnosis, not a measurement.
func (p profiler) start(ctx context.Context, c *cluster, release string) (wait func()) {
	if p.dir == "" {
		return func() {}
	}
	type target struct {
		hc  *http.Client
		url string
	}
	ports := c.cp.Ports()
	targets := map[string]target{
		"kube-apiserver":          {c.apiHTTP, c.admin.Host},
		"kube-controller-manager": {c.componentHTTP, "https://127.0.0.1:" + strconv.Itoa(ports.ControllerManager)},
	}
	if addr := c.managerPprofAddr; addr != "" {
		targets[cafeProcess] = target{http.DefaultClient, "http://" + addr}
	}
	var wg sync.WaitGroup
	for name, t := range targets {
		wg.Go(func() {
			file := filepath.Join(p.dir, release+"-"+name+".pprof")
			if err := fetchProfile(ctx, t.hc, t.url, p.seconds, file); err != nil {
				fmt.Fprintf(c.out, "[%s] profiling %s: %v\n", release, name, err)
			}
		})
	}
	return wg.Wait
}

// fetchProfile writes base's /debug/pprof/profile over seconds to file.
func fetchProfile(ctx context.Context, hc *http.Client, base string, seconds int, file string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(seconds)*time.Second+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/debug/pprof/profile?seconds="+strconv.Itoa(seconds), nil)
	if err != nil {
		return err
	}
	// The clients' own timeouts are shorter than a profile.
	hcLong := *hc
	hcLong.Timeout = 0
	resp, err := hcLong.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
