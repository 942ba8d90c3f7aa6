// Command demo-app is CAFE's demo application as a real process: what a
// classic host runs from a package. It answers HTTP exactly as the pod
// emulator's emulated containers do (internal/appanswer): headers
// X-Cafe-Pod and X-Cafe-Version, a JSON body naming the instance and its
// version, /healthz "ok"; a version ending in -fail answers 500, one
// ending in -slow answers late.
//
// Its version is the VERSION file of its package (bin/demo-app beside
// VERSION), unless --version says otherwise.
//
// With --registry and --call-service it also calls a second app, east-west,
// through CAFE's service registry (internal/registry): it runs a registry
// Consumer of that service, and GET /call picks one of its registered
// instances (client-side round robin), calls GET / there once (no retry:
// a failed call shows) and answers with the upstream's status and body,
// naming the upstream in X-Cafe-Upstream. It answers 503 while no
// instance is registered, 502 if the call fails. It calls only loopback
// addresses and the project's namespaces (podnet.SafetyNet). /healthz does
// not depend on the registry.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/cafe-io/cafe/internal/appanswer"
	"github.com/cafe-io/cafe/internal/podnet"
	"github.com/cafe-io/cafe/internal/registry"
)

// name is the app's: its image's name and its container's in the answers.
const name = "demo-app"

// shutdownTimeout bounds how long the requests in flight may take to
// finish after SIGTERM; after it they are cut and the exit code is 1.
const shutdownTimeout = 5 * time.Second

// options are the command line's.
type options struct {
	listen, name, namespace, version string
	slowLatency                      time.Duration
	allowNonLoopback                 bool
	// registry and callService are set together, or neither is: the
	// registry's client URLs and the service GET /call calls.
	registry    []string
	callService registry.Service
	// applyDelay makes the registry consumer lag (a drill).
	applyDelay time.Duration
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log, os.Args[1:]); errors.Is(err, flag.ErrHelp) {
		return // the flag package printed the usage
	} else if err != nil {
		log.Error("Exiting", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	if o.version == "" {
		if o.version, err = packageVersion(); err != nil {
			return err
		}
	}
	if err := checkVersion(o.version); err != nil {
		return err
	}
	if err := checkListen(o.listen, o.allowNonLoopback); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return serve(ctx, log, o)
}

// parseFlags parses args; the flags default to the environment the agent
// starts an instance with (CAFE_LISTEN, CAFE_INSTANCE, CAFE_NAMESPACE,
// CAFE_REGISTRY) and the artifact's (CAFE_CALL_SERVICE,
// CAFE_REGISTRY_APPLY_DELAY).
func parseFlags(args []string) (options, error) {
	var o options
	var registryURLs, callService string
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", os.Getenv("CAFE_LISTEN"), "address to serve on, host:port (env CAFE_LISTEN; required; a loopback address unless --allow-non-loopback; port 0 picks one)")
	fs.StringVar(&o.name, "name", os.Getenv("CAFE_INSTANCE"), "instance name, in the answers' pod field and X-Cafe-Pod header (env CAFE_INSTANCE)")
	fs.StringVar(&o.namespace, "namespace", os.Getenv("CAFE_NAMESPACE"), "namespace, in the answers (env CAFE_NAMESPACE)")
	fs.StringVar(&o.version, "version", "", "version to report (default: the package's VERSION file, ../VERSION from the executable)")
	fs.DurationVar(&o.slowLatency, "slow-latency", appanswer.DefaultSlowLatency, "how late a version ending in -slow answers")
	fs.BoolVar(&o.allowNonLoopback, "allow-non-loopback", false, "allow --listen on an address that is not loopback")
	fs.StringVar(&registryURLs, "registry", os.Getenv("CAFE_REGISTRY"), "the service registry's client URLs, comma-separated, loopback only (env CAFE_REGISTRY; with --call-service)")
	fs.StringVar(&callService, "call-service", os.Getenv("CAFE_CALL_SERVICE"), "the service GET /call calls, <namespace>/<service>, found in --registry (env CAFE_CALL_SERVICE)")
	fs.Func("registry-apply-delay", "a drill: apply (and acknowledge) every change of the registry this much later, as a lagging consumer would; CAFE must then hold a release until the consumer has caught up (env CAFE_REGISTRY_APPLY_DELAY)", func(v string) (err error) {
		o.applyDelay, err = time.ParseDuration(v)
		return err
	})
	if v := os.Getenv("CAFE_REGISTRY_APPLY_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return o, fmt.Errorf("CAFE_REGISTRY_APPLY_DELAY %q: %w", v, err)
		}
		o.applyDelay = d // the flag, when given, overrides it
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.applyDelay < 0 || o.applyDelay > time.Minute {
		return o, fmt.Errorf("--registry-apply-delay %s: must be between 0 and 1m", o.applyDelay)
	}
	if o.slowLatency <= 0 {
		return o, fmt.Errorf("--slow-latency %s: must be positive", o.slowLatency)
	}
	if callService == "" && !flagSet(fs, "registry") {
		// An agent started with --registry gives every instance
		// CAFE_REGISTRY; an app that calls nobody ignores it.
		registryURLs = ""
	}
	if err := parseCall(&o, registryURLs, callService); err != nil {
		return o, err
	}
	return o, nil
}

// flagSet says whether the command line set the flag.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// parseCall reads --registry and --call-service into o: both or neither.
func parseCall(o *options, registryURLs, callService string) error {
	switch {
	case registryURLs == "" && callService == "":
		return nil
	case callService == "":
		return errors.New("--registry needs --call-service (or CAFE_CALL_SERVICE): the service to call")
	case registryURLs == "":
		return fmt.Errorf("--call-service %q needs --registry (or CAFE_REGISTRY): the registry to find it in", callService)
	}
	for _, u := range strings.Split(registryURLs, ",") {
		if u = strings.TrimSpace(u); u != "" {
			o.registry = append(o.registry, u)
		}
	}
	if err := registry.CheckEndpoints(o.registry); err != nil {
		return fmt.Errorf("--registry: %w", err)
	}
	s, err := registry.ParseService(callService)
	if err != nil {
		return fmt.Errorf("--call-service: %w", err)
	}
	o.callService = s
	return nil
}

// packageVersion reads the VERSION file of the package the executable
// belongs to: <package>/VERSION for <package>/bin/demo-app.
func packageVersion() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the package's VERSION: %w", err)
	}
	file := filepath.Join(filepath.Dir(filepath.Dir(exe)), "VERSION")
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading the package's version (or give --version): %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// checkVersion refuses a version that cannot go into a header or an
// image tag as is.
func checkVersion(v string) error {
	if v == "" {
		return errors.New("the version is empty")
	}
	if strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return fmt.Errorf("version %q: no spaces or control characters", v)
	}
	return nil
}

// checkListen refuses an address that is not an IP literal on loopback or
// in the ranges the project routes into network namespaces of its own (a
// classic host's address on the local control plane) unless allowed: the
// project's traffic stays there. An empty host (all interfaces) or a host
// name is neither.
func checkListen(listen string, allowNonLoopback bool) error {
	if listen == "" {
		return errors.New("--listen (or CAFE_LISTEN) is required")
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", listen, err)
	}
	if allowNonLoopback {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err != nil || !podnet.Allowed(ip) {
		return fmt.Errorf("--listen %q: not a loopback address (127.0.0.0/8 or ::1) nor one of the project's namespaces (%s); --allow-non-loopback to listen there anyway", listen, podnet.SafetyNet)
	}
	return nil
}

// serve answers on o.listen until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, log *slog.Logger, o options) error {
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	return serveOn(ctx, log, o, ln)
}

// serveOn answers on ln until ctx ends, then shuts down gracefully; it
// closes ln.
func serveOn(ctx context.Context, log *slog.Logger, o options, ln net.Listener) error {
	in := appanswer.Instance{
		Pod: o.name, Namespace: o.namespace, Container: name, Image: name + ":" + o.version,
		Version: o.version, Behaviour: appanswer.BehaviourOf(o.version), SlowLatency: o.slowLatency,
	}
	handler := appanswer.Handler(in)
	if o.callService != (registry.Service{}) {
		c := startCaller(log, o, in, ln.Addr().String())
		// Stopped after the server: the requests in flight finish
		// calling first.
		defer c.stop()
		handler = c.route(handler)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	// The address, not o.listen: with port 0 it says which port it got.
	log.Info("Listening", "address", ln.Addr().String(), "name", in.Pod, "namespace", in.Namespace,
		"version", in.Version, "behaviour", in.Behaviour)
	select {
	case err := <-served:
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	log.Info("Stopping", "reason", "signal", "timeout", shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("stopping: requests in flight cut after %s: %w", shutdownTimeout, err)
	}
	log.Info("Stopped")
	return nil
}
