package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/artifact"
	"github.com/cafe-io/cafe/internal/controllerqueue"
	"github.com/cafe-io/cafe/internal/httpcheck"
)

// Environment variables the agent sets for every instance's process.
const (
	EnvListen     = "CAFE_LISTEN"
	EnvInstance   = "CAFE_INSTANCE"
	EnvNamespace  = "CAFE_NAMESPACE"
	EnvPackageDir = "CAFE_PACKAGE_DIR"
)

// unhealthyAfter is how many health checks in a row must fail before a
// Ready instance is reported not Ready (the kubelet's failureThreshold).
const unhealthyAfter = 3

// instances runs the ClassicInstances of one host: it fetches and checks
// each one's package, runs its process, health-checks it and reports in
// status. What it needs to survive a restart is on disk (the process
// records) and in the API (status); the in-memory state is only the
// agent's own children and the count of failed health checks.
type instances struct {
	client  client.Client
	host    string
	address string
	workDir string
	// fetch downloads packages; checks sends health checks.
	fetch  *http.Client
	checks *http.Client
	period time.Duration
	grace  time.Duration
	netns  string
	// registry is the shared registry's URL as the instances reach it
	// ("" for none).
	registry string

	mu       sync.Mutex
	children map[string]*child
	failures map[string]int
	fetching map[string]*sync.Mutex
	// pinned counts, by package, the launches in progress that need it:
	// from before its fetch until their child is in children.
	pinned map[string]int
	// portWaiters are, by port, the instances waiting (PortBusy) for
	// another instance's process to let go of it: reconciled when the
	// agent reaps a process of that port, rather than a health period
	// later.
	portWaiters map[int32]map[types.NamespacedName]bool

	exits chan event.TypedGenericEvent[*cafev1alpha1.ClassicInstance]
}

// child is a process the agent started (and reaps) or adopted.
type child struct {
	rec *processRecord
	// exited is closed once the agent's own child has been reaped; nil for
	// an adopted process, whose end is seen by polling.
	exited chan struct{}
	// exitErr is the child's exit status once exited is closed.
	exitErr error
	// exitedAt is when the process was seen gone.
	exitedAt time.Time
}

func newInstances(c client.Client, o Options, registryURL string) *instances {
	return &instances{
		client: c, host: o.Host, address: o.Address, workDir: o.WorkDir,
		fetch:       &http.Client{Timeout: 10 * time.Minute},
		checks:      httpcheck.NewClient(2 * time.Second),
		period:      o.HealthPeriod,
		grace:       o.StopGrace,
		netns:       o.NetNS,
		registry:    registryURL,
		children:    map[string]*child{},
		failures:    map[string]int{},
		fetching:    map[string]*sync.Mutex{},
		pinned:      map[string]int{},
		portWaiters: map[int32]map[types.NamespacedName]bool{},
		exits:       make(chan event.TypedGenericEvent[*cafev1alpha1.ClassicInstance], 64),
	}
}

func (r *instances) setup(mgr ctrl.Manager) error {
	if err := mgr.Add(orphanSweep{r}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("classicinstance").
		// Only spec changes (and creates, deletes) concern the agent: its
		// own status writes must not wake it, or a failing fetch would
		// loop on its own reports. Health checks requeue by time.
		For(&cafev1alpha1.ClassicInstance{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(source.Channel(r.exits, &handler.TypedEnqueueRequestForObject[*cafev1alpha1.ClassicInstance]{})).
		// Several agents share a process in tests; a real host runs one.
		WithOptions(controllerqueue.Options(controller.Options{MaxConcurrentReconciles: 4, SkipNameValidation: ptr.To(true)})).
		Complete(r)
}

// Reconcile brings one instance's process to its spec and reports.
func (r *instances) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	key := req.String()
	inst := &cafev1alpha1.ClassicInstance{}
	err := r.client.Get(ctx, req.NamespacedName, inst)
	if apierrors.IsNotFound(err) {
		// Only once the object is gone: an instance being deleted keeps
		// serving while a finalizer holds it (a traffic provider's, until
		// its traffic system no longer sends it requests).
		return ctrl.Result{}, r.remove(ctx, key)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if inst.Spec.HostName != r.host {
		return ctrl.Result{}, nil // not ours: the cache's field selector keeps these out
	}
	spec := r.launchSpec(inst)
	running, err := r.current(key, spec.Dir)
	if err != nil {
		return ctrl.Result{}, err
	}
	if running == nil || running.rec.Launch != spec.Launch {
		return r.launch(ctx, inst, spec, running)
	}
	if running.gone() {
		return r.restart(ctx, inst, spec, running)
	}
	return r.check(ctx, inst, running)
}

// launch fetches the spec's package and replaces the running process (if
// any) with one of it. The old process is stopped only once the new
// package is on disk and checked, so a package that cannot be fetched
// leaves it running.
func (r *instances) launch(ctx context.Context, inst *cafev1alpha1.ClassicInstance, spec launchSpec, running *child) (ctrl.Result, error) {
	defer r.pin(spec.SHA256)()
	if err := r.ensurePackage(ctx, inst, spec.PackageDir); err != nil {
		return r.packageFailed(ctx, inst, running, err)
	}
	if running != nil {
		log.FromContext(ctx).Info("stopping the previous process", "pid", running.rec.PID, "sha256", running.rec.SHA256)
		r.stopChild(spec.Key, running)
	}
	result, err := r.startChild(ctx, inst, spec, 0)
	if err == nil && running != nil && running.rec.SHA256 != spec.SHA256 {
		err = r.collectPackages(ctx) // the previous package may be used no more
	}
	return result, err
}

// restart starts an exited process of the same package again, after a
// back-off that doubles with each restart up to a minute.
func (r *instances) restart(ctx context.Context, inst *cafev1alpha1.ClassicInstance, spec launchSpec, gone *child) (ctrl.Result, error) {
	backoff := min(time.Second<<min(gone.rec.Restarts, 6), time.Minute)
	if wait := time.Until(gone.exitedAt.Add(backoff)); wait > 0 {
		msg := "the process exited (" + gone.exitText() + "); restarting in " + wait.Round(time.Second).String()
		return ctrl.Result{RequeueAfter: wait}, r.report(ctx, inst, gone.rec, cafev1alpha1.ClassicInstanceStarting,
			metav1.ConditionFalse, cafev1alpha1.ClassicInstanceReasonExited, msg)
	}
	defer r.pin(spec.SHA256)()
	r.forget(spec.Key)
	return r.startChild(ctx, inst, spec, gone.rec.Restarts+1)
}

func (r *instances) startChild(ctx context.Context, inst *cafev1alpha1.ClassicInstance, spec launchSpec, restarts int32) (ctrl.Result, error) {
	if holder := r.portHolder(spec.Key, spec.Port, client.ObjectKeyFromObject(inst)); holder != "" {
		// Started now, the process could not listen: it would exit and
		// be restarted with a growing back-off, counted as restarts.
		// The holder's exit wakes it; the period covers an adopted
		// holder, whose end only polling sees.
		return ctrl.Result{RequeueAfter: r.period}, r.report(ctx, inst, nil, cafev1alpha1.ClassicInstanceStarting,
			metav1.ConditionFalse, cafev1alpha1.ClassicInstanceReasonPortBusy,
			fmt.Sprintf("waiting for port %d: the process of instance %s still holds it", spec.Port, holder))
	}
	rec, cmd, err := start(spec, restarts)
	if err != nil {
		return ctrl.Result{RequeueAfter: 10 * time.Second}, r.report(ctx, inst, nil, cafev1alpha1.ClassicInstanceFailed,
			metav1.ConditionFalse, cafev1alpha1.ClassicInstanceReasonStartFailed, err.Error())
	}
	log.FromContext(ctx).Info("started", "pid", rec.PID, "sha256", rec.SHA256, "restarts", restarts)
	c := &child{rec: rec, exited: make(chan struct{})}
	r.mu.Lock()
	r.children[spec.Key] = c
	delete(r.failures, spec.Key)
	r.mu.Unlock()
	go r.reap(inst, c, cmd)
	return ctrl.Result{RequeueAfter: r.period}, r.report(ctx, inst, rec, cafev1alpha1.ClassicInstanceStarting,
		metav1.ConditionFalse, cafev1alpha1.ClassicInstanceReasonStarting, "the process started; waiting for its health check")
}

// reap waits for the agent's own child and has the instance reconciled
// when it exits.
func (r *instances) reap(inst *cafev1alpha1.ClassicInstance, c *child, cmd *exec.Cmd) {
	err := cmd.Wait()
	r.mu.Lock()
	c.exitErr, c.exitedAt = err, time.Now()
	r.mu.Unlock()
	close(c.exited)
	r.enqueue(client.ObjectKeyFromObject(inst))
	for _, waiter := range r.portFreed(c.rec.Port) {
		r.enqueue(waiter)
	}
}

// enqueue has the instance reconciled.
func (r *instances) enqueue(key types.NamespacedName) {
	ref := &cafev1alpha1.ClassicInstance{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	r.exits <- event.TypedGenericEvent[*cafev1alpha1.ClassicInstance]{Object: ref}
}

// addPortWaiter records that the instance waits for port (PortBusy).
// r.mu is held.
func (r *instances) addPortWaiter(port int32, key types.NamespacedName) {
	if r.portWaiters[port] == nil {
		r.portWaiters[port] = map[types.NamespacedName]bool{}
	}
	r.portWaiters[port][key] = true
}

// portFreed returns, and forgets, the instances waiting for port: a
// process of that port has exited. One still held by another process is
// told PortBusy again and waits anew.
func (r *instances) portFreed(port int32) []types.NamespacedName {
	r.mu.Lock()
	defer r.mu.Unlock()
	waiters := slices.Collect(maps.Keys(r.portWaiters[port]))
	delete(r.portWaiters, port)
	return waiters
}

// check health-checks a running process and reports.
func (r *instances) check(ctx context.Context, inst *cafev1alpha1.ClassicInstance, running *child) (ctrl.Result, error) {
	key := client.ObjectKeyFromObject(inst).String()
	probeErr := r.probe(ctx, inst)
	r.mu.Lock()
	if probeErr == nil {
		delete(r.failures, key)
	} else {
		r.failures[key]++
	}
	failures := r.failures[key]
	r.mu.Unlock()
	wasReady := meta.IsStatusConditionTrue(inst.Status.Conditions, cafev1alpha1.ClassicInstanceReadyCondition)
	var err error
	switch {
	case probeErr == nil:
		err = r.report(ctx, inst, running.rec, cafev1alpha1.ClassicInstanceRunning, metav1.ConditionTrue,
			cafev1alpha1.ClassicInstanceReasonHealthy, "the process answers its health check")
	case wasReady && failures < unhealthyAfter:
		// One failed check is not yet a verdict.
	case wasReady:
		err = r.report(ctx, inst, running.rec, cafev1alpha1.ClassicInstanceRunning, metav1.ConditionFalse,
			cafev1alpha1.ClassicInstanceReasonUnhealthy, fmt.Sprintf("%d health checks in a row failed: %v", failures, probeErr))
	default:
		err = r.report(ctx, inst, running.rec, cafev1alpha1.ClassicInstanceStarting, metav1.ConditionFalse,
			cafev1alpha1.ClassicInstanceReasonStarting, "waiting for the health check: "+probeErr.Error())
	}
	return ctrl.Result{RequeueAfter: r.period}, err
}

// probe GETs the instance's health path at its address.
func (r *instances) probe(ctx context.Context, inst *cafev1alpha1.ClassicInstance) error {
	return httpcheck.Get(ctx, r.checks, "http://"+r.instanceAddress(inst)+inst.Spec.Artifact.HealthPath)
}

// ensurePackage has the spec's package unpacked at dir (shared by every
// instance of the host that runs the same package), fetching and checking
// it first if needed.
func (r *instances) ensurePackage(ctx context.Context, inst *cafev1alpha1.ClassicInstance, dir string) error {
	a := inst.Spec.Artifact
	lock := r.packageLock(a.SHA256)
	lock.Lock()
	defer lock.Unlock()
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	retry := inst.Status.ObservedGeneration == inst.Generation && inst.Status.Phase == cafev1alpha1.ClassicInstanceFailed
	if !retry { // a retry keeps the failure on record until it succeeds
		if err := r.report(ctx, inst, r.recordOf(client.ObjectKeyFromObject(inst).String()), cafev1alpha1.ClassicInstanceStarting,
			metav1.ConditionFalse, cafev1alpha1.ClassicInstanceReasonFetching, "fetching "+a.URL); err != nil {
			return err
		}
	}
	archive := dir + ".tar.gz"
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("creating the package directory: %w", err)
	}
	if err := artifact.Fetch(ctx, r.fetch, a.URL, a.SHA256, archive); err != nil {
		return err
	}
	defer os.Remove(archive)
	if err := artifact.Unpack(archive, dir); err != nil {
		return &unpackError{err}
	}
	return nil
}

type unpackError struct{ error }

func (e *unpackError) Unwrap() error { return e.error }

// packageFailed reports why the spec's package cannot run. A checksum
// mismatch is retried slowly (only a new spec or a corrected store can
// cure it); other failures back off through the work queue.
func (r *instances) packageFailed(ctx context.Context, inst *cafev1alpha1.ClassicInstance, running *child, err error) (ctrl.Result, error) {
	var rec *processRecord
	if running != nil && !running.gone() {
		rec = running.rec
	}
	reason, result := cafev1alpha1.ClassicInstanceReasonFetchFailed, ctrl.Result{RequeueAfter: 10 * time.Second}
	var unpack *unpackError
	switch {
	case artifact.IsChecksumMismatch(err):
		reason, result = cafev1alpha1.ClassicInstanceReasonChecksumMismatch, ctrl.Result{RequeueAfter: time.Minute}
	case errors.As(err, &unpack):
		reason, result = cafev1alpha1.ClassicInstanceReasonUnpackFailed, ctrl.Result{RequeueAfter: time.Minute}
	}
	log.FromContext(ctx).Info("the package cannot run", "reason", reason, "error", err.Error())
	return result, r.report(ctx, inst, rec, cafev1alpha1.ClassicInstanceFailed, metav1.ConditionFalse, reason, err.Error())
}

// report writes the instance's status if it differs from what the API
// holds.
func (r *instances) report(ctx context.Context, inst *cafev1alpha1.ClassicInstance, rec *processRecord,
	phase string, ready metav1.ConditionStatus, reason, message string) error {
	status := inst.Status.DeepCopy()
	status.ObservedGeneration = inst.Generation
	status.Phase = phase
	status.Address = r.instanceAddress(inst)
	status.Process, status.Restarts = nil, 0
	if rec != nil {
		started := metav1.NewTime(rec.StartedAt)
		status.Process = &cafev1alpha1.ClassicProcess{SHA256: rec.SHA256, PID: int64(rec.PID), StartedAt: &started}
		status.Restarts = rec.Restarts
	}
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{
		Type: cafev1alpha1.ClassicInstanceReadyCondition, Status: ready, Reason: reason,
		Message: truncate(message, 1024), ObservedGeneration: inst.Generation,
	})
	if equality.Semantic.DeepEqual(*status, inst.Status) {
		return nil
	}
	orig := inst.DeepCopy()
	inst.Status = *status
	if err := r.client.Status().Patch(ctx, inst, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("reporting the status of instance %s: %w", client.ObjectKeyFromObject(inst), err)
	}
	return nil
}

// remove stops a deleted instance's process and removes its directory.
func (r *instances) remove(ctx context.Context, key string) error {
	dir := r.instanceDir(key)
	running, err := r.current(key, dir)
	if err != nil {
		return err
	}
	if running != nil {
		log.FromContext(ctx).Info("instance deleted: stopping its process", "pid", running.rec.PID)
		r.stopChild(key, running)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return r.collectPackages(ctx)
}

// collectPackages removes the unpacked packages that no instance of the
// host names in its spec, no process runs from and no launch in progress
// needs: a host does not keep every release's package forever.
func (r *instances) collectPackages(ctx context.Context) error {
	instances := &cafev1alpha1.ClassicInstanceList{}
	if err := r.client.List(ctx, instances); err != nil {
		return fmt.Errorf("listing the host's instances: %w", err)
	}
	keep := map[string]bool{}
	for _, inst := range instances.Items {
		keep[inst.Spec.Artifact.SHA256] = true
	}
	dir := filepath.Join(r.workDir, "packages")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing packages: %w", err)
	}
	for _, e := range entries {
		sha := e.Name()
		if unpacked, ok := artifact.UnpackingInto(sha); ok {
			sha = unpacked // a package being unpacked, or a crashed agent's leftover
		}
		if !e.IsDir() || keep[sha] {
			continue
		}
		removed, err := r.removeUnneededPackage(filepath.Join(dir, e.Name()), sha)
		if err != nil {
			return err
		}
		if removed {
			log.FromContext(ctx).Info("removed a package no instance uses", "sha256", sha)
		}
	}
	return nil
}

// removeUnneededPackage removes path, package sha's directory or an unpack
// of it, unless a process or a launch in progress needs the package. It
// asks again under the package's lock (which a fetch and unpack hold),
// after the list of instances that said the package was unneeded: that
// list comes from the cache, which may not have had the instance whose
// launch has since fetched the package and is about to start it (an
// instance placed on a port another instance just freed, say).
func (r *instances) removeUnneededPackage(path, sha string) (bool, error) {
	lock := r.packageLock(sha)
	lock.Lock()
	defer lock.Unlock()
	if r.packageNeeded(sha) {
		return false, nil
	}
	if err := os.RemoveAll(path); err != nil {
		return false, fmt.Errorf("removing package %s: %w", sha, err)
	}
	return true, nil
}

// packageNeeded: a process of the agent runs from package sha, or a launch
// in progress needs it.
func (r *instances) packageNeeded(sha string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pinned[sha] > 0 {
		return true
	}
	for _, c := range r.children {
		if c.rec.SHA256 == sha {
			return true
		}
	}
	return false
}

// pin keeps package sha from collectPackages until the returned func is
// called. A launch pins its package before fetching it (before taking the
// package's lock) and unpins it once its child is in children, so that a
// collection taking the lock after the fetch sees one or the other.
func (r *instances) pin(sha string) (unpin func()) {
	r.mu.Lock()
	r.pinned[sha]++
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.pinned[sha]--; r.pinned[sha] <= 0 {
			delete(r.pinned, sha)
		}
	}
}

// current is the instance's process: the agent's own child, or one a
// previous agent started that still runs (adopted).
func (r *instances) current(key, dir string) (*child, error) {
	r.mu.Lock()
	c := r.children[key]
	r.mu.Unlock()
	if c != nil {
		return c, nil
	}
	rec, err := readRecord(dir)
	if err != nil || rec == nil {
		return nil, err
	}
	c = &child{rec: rec}
	if !rec.alive() {
		c.exitedAt = time.Now()
	}
	r.mu.Lock()
	r.children[key] = c
	r.mu.Unlock()
	return c, nil
}

// gone: the process has exited (an adopted one is checked now).
func (c *child) gone() bool {
	if c.exited != nil {
		return c.reaped()
	}
	if c.exitedAt.IsZero() && !c.rec.alive() {
		c.exitedAt = time.Now()
	}
	return !c.exitedAt.IsZero()
}

// running: the process has not exited. Unlike gone it records nothing, so
// it may be asked from another instance's reconcile.
func (c *child) running() bool {
	if c.exited != nil {
		return !c.reaped()
	}
	return c.rec.alive()
}

// reaped: the agent's own child has exited and been reaped.
func (c *child) reaped() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

func (r *instances) stopChild(key string, c *child) {
	if !c.gone() {
		c.rec.stop(r.grace, c.exited)
	}
	r.forget(key)
}

// portHolder names the other instance whose process, run by this agent,
// has not exited and was started on port: an instance placed on the port
// of one just deleted is created as soon as that one is gone from the
// API, while its process may still be stopping (up to --stop-grace).
// When there is one, waiter is recorded as waiting for the port under the
// same lock as the check, so the holder's reap cannot fall between them.
func (r *instances) portHolder(key string, port int32, waiter types.NamespacedName) string {
	if port == 0 {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, c := range r.children {
		if k != key && c.rec.Port == port && c.running() {
			r.addPortWaiter(port, waiter)
			return k
		}
	}
	return ""
}

func (r *instances) forget(key string) {
	r.mu.Lock()
	delete(r.children, key)
	delete(r.failures, key)
	r.mu.Unlock()
}

func (r *instances) recordOf(key string) *processRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.children[key]; c != nil {
		return c.rec
	}
	return nil
}

func (r *instances) packageLock(sha string) *sync.Mutex {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fetching[sha] == nil {
		r.fetching[sha] = &sync.Mutex{}
	}
	return r.fetching[sha]
}

// launchSpec is how inst's process is started.
func (r *instances) launchSpec(inst *cafev1alpha1.ClassicInstance) launchSpec {
	a := inst.Spec.Artifact
	key := client.ObjectKeyFromObject(inst).String()
	spec := launchSpec{
		Key: key, Dir: r.instanceDir(key), PackageDir: filepath.Join(r.workDir, "packages", a.SHA256),
		Command: a.Command, SHA256: a.SHA256, NetNS: r.netns, Port: a.Port,
	}
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + spec.Dir}
	for _, e := range a.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	// The agent's variables come last, so that they win.
	spec.Env = append(env, EnvListen+"="+r.instanceAddress(inst), EnvInstance+"="+inst.Name,
		EnvNamespace+"="+inst.Namespace, EnvPackageDir+"="+spec.PackageDir)
	sum := sha256.New()
	_ = json.NewEncoder(sum).Encode([]any{spec.Command, spec.Env, spec.SHA256, spec.NetNS}) // strings: cannot fail
	spec.Launch = hex.EncodeToString(sum.Sum(nil))[:16]
	if r.registry != "" {
		// Not in Launch: the registry's URL is the agent's wiring, not the
		// instance's spec, and reaches an instance at its next start,
		// never by restarting one that serves. First, so that an artifact
		// may name another registry.
		spec.Env = append([]string{EnvRegistry + "=" + r.registry}, spec.Env...)
	}
	return spec
}

func (r *instances) instanceAddress(inst *cafev1alpha1.ClassicInstance) string {
	return net.JoinHostPort(r.address, strconv.Itoa(int(inst.Spec.Artifact.Port)))
}

// instanceDir is where an instance's process record, working directory
// and output live: <workDir>/instances/<namespace>_<name> ('_' is in
// neither).
func (r *instances) instanceDir(key string) string {
	return filepath.Join(r.workDir, "instances", strings.Replace(key, "/", "_", 1))
}

// orphanSweep stops, once the cache has synced, the processes of
// instances deleted while the agent was not running.
type orphanSweep struct{ r *instances }

func (s orphanSweep) Start(ctx context.Context) error {
	entries, err := os.ReadDir(filepath.Join(s.r.workDir, "instances"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing instance directories: %w", err)
	}
	for _, e := range entries {
		ns, name, ok := strings.Cut(e.Name(), "_")
		if !e.IsDir() || !ok {
			continue
		}
		err := s.r.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &cafev1alpha1.ClassicInstance{})
		if apierrors.IsNotFound(err) {
			if err := s.r.remove(ctx, ns+"/"+name); err != nil {
				return err
			}
		}
	}
	return s.r.collectPackages(ctx)
}

// NeedLeaderElection: every agent sweeps its own host.
func (orphanSweep) NeedLeaderElection() bool { return false }

// exitText says how the process ended, as far as the agent knows: only
// its own children's exit status is known.
func (c *child) exitText() string {
	var exit *exec.ExitError
	switch {
	case c.exited == nil:
		return "found gone after an agent restart"
	case errors.As(c.exitErr, &exit):
		return exit.ProcessState.String()
	case c.exitErr != nil:
		return c.exitErr.Error()
	}
	return "exit status 0"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
