package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controllerqueue"
	"github.com/cafe-io/cafe/internal/ownwrites"
)

// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups="",resources=nodes/status,verbs=get;update;patch
// Node heartbeats are listed in kube-node-lease, once per pass (not
// watched: see listLeases).
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=kube-node-lease,resources=leases,verbs=get;list
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=cafe.io,resources=nodehealthreports,verbs=get;list;watch
// Classic hosts are judged alike: their Leases listed in cafe-host-lease,
// their Healthy and Schedulable conditions applied, the ClassicSet
// instances of a Failed host asked to migrate.
// +kubebuilder:rbac:groups=cafe.io,resources=classichosts,verbs=get;list;watch
// +kubebuilder:rbac:groups=cafe.io,resources=classichosts/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=cafe.io,resources=classicinstances,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=cafe-host-lease,resources=leases,verbs=get;list
// +kubebuilder:rbac:groups=cafe.io,resources=nodelifecyclepolicies,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=cafe.io,resources=nodelifecyclepolicies/status,verbs=get;update;patch

// Reconciler judges every node and acts on the verdicts. It reconciles the
// cluster as one: the zone guard and the rate limit are decisions over all
// nodes, so one key ("cluster") is reconciled when a signal can have
// changed (triggers.go) and when a verdict could change by time alone.
type Reconciler struct {
	Client client.Client
	// APIReader lists the node Leases (default: the manager's).
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Prober supplies the KubeletProbe signal; SetupWithManager starts it.
	Prober *Prober
	// Now is the clock; tests may replace it.
	Now func() time.Time
	// Resync is how often the cluster is judged without an event while any
	// node has a bad signal or is not Healthy (default 2 s): migrations,
	// rate windows and recoveries move on it.
	Resync time.Duration
	// IdleResync is the same while every node is Healthy with no bad
	// signal (default 30 s): a safety net only, every change that can turn
	// a verdict starts a pass itself (triggers.go). At 100 nodes a pass
	// lists and copies every node, which every 2 s was most of CAFE's CPU
	// while nothing happened.
	IdleResync time.Duration

	// policy is the spec in force, shared with the prober.
	policyMu sync.Mutex
	policy   cafev1alpha1.NodeLifecyclePolicySpec

	// mu serialises reconciles with the in-memory state below. What a
	// decision needs is in the API (verdicts and since when on the nodes,
	// migration grants and guarded zones in the policy's status); the
	// state below only delays a recovery, dedupes events or feeds metrics.
	mu sync.Mutex
	// cleanStart: since when a node has had no bad signal.
	cleanStart map[string]time.Time
	// firstBad: a Failed node's first bad signal; migratedFrom: pods were
	// migrated off it (for the time-to-migrated metric, observed once).
	firstBad     map[string]time.Time
	migratedFrom map[string]bool
	// held: the last hold reported per node (an event when it changes).
	held map[string]string
	// nodeWrites: the controller's last write to each node, so that a
	// reconcile does not judge from a cache that has not seen it.
	nodeWrites ownwrites.Tracker
	// policyWrites: the same for the policy, whose status holds the
	// previous verdicts and the rate limits' grants.
	policyWrites ownwrites.Tracker
}

// errCacheBehind: the cache has not yet seen one of our own node writes.
var errCacheBehind = errors.New("the cache has not seen the last node write yet")

var _ reconcile.Reconciler = &Reconciler{}

// rateLimitWindow is the window of spec.migration.maxPodsPerMinute.
const rateLimitWindow = time.Minute

// PodNodeIndex indexes pods by spec.nodeName.
const PodNodeIndex = "cafe.io/pod-node"

const clusterKey = "cluster"

// SetupWithManager registers the controller, the pod index and the prober.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Client == nil || r.Recorder == nil {
		return errors.New("nodelifecycle: Client and Recorder are required")
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	if r.Resync == 0 {
		r.Resync = 2 * time.Second
	}
	if r.IdleResync == 0 {
		r.IdleResync = 30 * time.Second
	}
	r.policy = cafev1alpha1.DefaultNodeLifecyclePolicySpec()
	r.cleanStart, r.firstBad, r.migratedFrom, r.held = map[string]time.Time{}, map[string]time.Time{}, map[string]bool{}, map[string]string{}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, PodNodeIndex, func(o client.Object) []string {
		if n := o.(*corev1.Pod).Spec.NodeName; n != "" {
			return []string{n}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("indexing pods by node: %w", err)
	}
	if r.Prober == nil {
		r.Prober = &Prober{Reader: mgr.GetClient()}
	}
	r.Prober.Policy = r.currentPolicy
	probes := make(probeChanged, 1)
	r.Prober.Changed = probes.notify
	if err := mgr.Add(r.Prober); err != nil {
		return fmt.Errorf("adding the kubelet prober: %w", err)
	}
	all := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []ctrl.Request {
		return []ctrl.Request{{NamespacedName: types.NamespacedName{Name: clusterKey}}}
	})
	return ctrl.NewControllerManagedBy(mgr).
		WithOptions(controllerqueue.Options(controller.Options{})).
		Named("nodelifecycle").
		// A node's conditions, addresses and taints are signals and state;
		// its heartbeats alone are not.
		Watches(&corev1.Node{}, all, builder.WithPredicates(nodeSignalsChanged)).
		// A kubelet endpoint that stops or starts answering.
		WatchesRawSource(source.Channel(probes, all)).
		// Reports are signals; the policy is the rules.
		Watches(&cafev1alpha1.NodeHealthReport{}, all).
		// A host's conditions are its signals (its Lease is listed, like
		// the nodes').
		Watches(&cafev1alpha1.ClassicHost{}, all, builder.WithPredicates(predicate.ResourceVersionChangedPredicate{})).
		Watches(&cafev1alpha1.NodeLifecyclePolicy{}, all).
		Complete(r)
}

// actionDecision is what one pass decides from the judged nodes.
type actionDecision struct {
	zones []cafev1alpha1.ZoneHealth
	plan  actionPlan
	// wait and taintWait are when the migration and taint rate windows
	// next free a token (zero: not exhausted).
	wait, taintWait time.Duration
	// migrationGrants and taintGrants are the windows' grants with the
	// plan's taken: what the policy's status records before any action.
	migrationGrants, taintGrants []cafev1alpha1.MigrationGrant
}

// decideActions weighs the judged nodes' zones and plans their taints and
// migrations within what the policy's rate windows (the grants recorded in
// its status) still allow at now. Pure: the reconciler writes the result.
func decideActions(states []nodeState, p *cafev1alpha1.NodeLifecyclePolicySpec, status cafev1alpha1.NodeLifecyclePolicyStatus, now time.Time) actionDecision {
	members := make([]zoneMember, len(states))
	for i, st := range states {
		members[i] = zoneMember{Zone: st.Zone, Host: st.Host != nil, Verdict: st.Judgement.Verdict, UnhealthySince: st.UnhealthySince}
	}
	d := actionDecision{zones: zoneHealth(members, p.ZoneGuard, now)}
	migrations := rateWindow{window: rateLimitWindow, grants: status.RecentMigrations}
	taints := rateWindow{window: rateLimitWindow, grants: status.RecentTaints}
	var tokens, taintTokens int
	tokens, d.wait = migrations.available(now, int(p.Migration.MaxPodsPerMinute))
	taintTokens, d.taintWait = taints.available(now, int(p.Migration.MaxNewTaintsPerMinute))
	d.plan = planActions(states, d.zones, p, budget{Migrations: tokens, Taints: taintTokens}, now)
	d.migrationGrants, d.taintGrants = migrations.take(now, d.plan.Granted), taints.take(now, d.plan.TaintsGranted)
	return d
}

func (r *Reconciler) currentPolicy() cafev1alpha1.NodeLifecyclePolicySpec {
	r.policyMu.Lock()
	defer r.policyMu.Unlock()
	return *r.policy.DeepCopy()
}

// Reconcile judges every node, then writes conditions, taints, migration
// requests, events and the policy's status.
func (r *Reconciler) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.Now()
	policy, err := r.readPolicy(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	if r.policyWrites.Behind(client.ObjectKeyFromObject(policy), policy.ResourceVersion) {
		return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
	}
	p := policy.Spec.DeepCopy()
	r.policyMu.Lock()
	r.policy = *policy.Spec.DeepCopy()
	r.policyMu.Unlock()
	// A pass follows any change the prober's due times cannot foresee (a
	// node added or re-addressed, the probe settings changed).
	if r.Prober != nil {
		r.Prober.Wake()
	}

	states, requeue, err := r.judgeAll(ctx, p, policy.Status, now)
	if errors.Is(err, errCacheBehind) {
		return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	d := decideActions(states, p, policy.Status, now)
	zones, plan, wait, taintWait := d.zones, d.plan, d.wait, d.taintWait
	requeue = minPositive(requeue, plan.RequeueAfter)

	var errs []error
	if plan.Granted > 0 || plan.TaintsGranted > 0 {
		// The grants are recorded before any pod is asked to migrate or
		// any taint is added: a controller that crashes in between has
		// used up slots, never exceeded a limit.
		if err := r.recordGrant(ctx, policy, d.migrationGrants, d.taintGrants); err != nil {
			plan.withdrawGrants()
			if apierrors.IsConflict(err) {
				requeue = minPositive(requeue, time.Second)
			} else {
				errs = append(errs, err)
			}
		}
	}
	for i := range states {
		a := &plan.Nodes[i]
		if err := r.act(ctx, &states[i], a, now); err != nil {
			errs = append(errs, err)
		}
		if a.RateLimited {
			requeue = minPositive(requeue, wait)
		}
		if a.TaintRateLimited {
			requeue = minPositive(requeue, taintWait)
		}
	}
	errs = append(errs, r.updatePolicyStatus(ctx, policy, policyStatus(policy, states, zones, now)))
	r.recordMetrics(states, zones)
	resync := r.IdleResync
	if !allCalm(states) {
		resync = r.Resync
	}
	return ctrl.Result{RequeueAfter: minPositive(requeue, resync)}, errors.Join(errs...)
}

// judgeAll judges every node, then every classic host (the reports, which
// name either, listed once), and drops the in-memory state of those gone.
func (r *Reconciler) judgeAll(ctx context.Context, p *cafev1alpha1.NodeLifecyclePolicySpec, status cafev1alpha1.NodeLifecyclePolicyStatus, now time.Time) ([]nodeState, time.Duration, error) {
	byNode, byHost, err := r.reports(ctx)
	if err != nil {
		return nil, 0, err
	}
	nodes, requeue, err := r.judge(ctx, p, status.UnhealthyNodes, byNode, now)
	if err != nil {
		return nil, 0, err
	}
	hosts, hostsRequeue, err := r.judgeHosts(ctx, p, status.UnhealthyHosts, byHost, now)
	if err != nil {
		return nil, 0, err
	}
	states := append(nodes, hosts...)
	r.forgetAbsent(states)
	return states, minPositive(requeue, hostsRequeue), nil
}

// readPolicy reads the default policy, creating it with the defaults when
// it is missing so its status has a home.
func (r *Reconciler) readPolicy(ctx context.Context) (*cafev1alpha1.NodeLifecyclePolicy, error) {
	policy := &cafev1alpha1.NodeLifecyclePolicy{}
	err := r.Client.Get(ctx, client.ObjectKey{Name: cafev1alpha1.NodeLifecyclePolicyName}, policy)
	if apierrors.IsNotFound(err) {
		policy = &cafev1alpha1.NodeLifecyclePolicy{
			ObjectMeta: metav1.ObjectMeta{Name: cafev1alpha1.NodeLifecyclePolicyName},
			Spec:       cafev1alpha1.DefaultNodeLifecyclePolicySpec(),
		}
		err = r.Client.Create(ctx, policy)
		if apierrors.IsAlreadyExists(err) {
			err = r.Client.Get(ctx, client.ObjectKey{Name: cafev1alpha1.NodeLifecyclePolicyName}, policy)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading NodeLifecyclePolicy %s: %w", cafev1alpha1.NodeLifecyclePolicyName, err)
	}
	policy.Spec.Default()
	return policy, nil
}

// listLeases lists the node Leases from the API server's watch cache
// (resourceVersion 0), once per pass, instead of watching them: each node
// renews its Lease every 10 s, so a watch delivers, decodes and filters
// ten events a second at 100 nodes (a thousand at 10,000) that change no
// verdict, most of CAFE's CPU while it has nothing else to do. What a
// watch would bring is covered by the passes themselves: a fresh Lease's
// deadline schedules a pass (leaseStaleIn), which judges from a list read
// then, and while any Lease is stale or missing (a bad signal) passes run
// every Resync, which sees the heartbeat return.
func (r *Reconciler) listLeases(ctx context.Context) (*coordinationv1.LeaseList, error) {
	leases := &coordinationv1.LeaseList{}
	if err := r.APIReader.List(ctx, leases, client.InNamespace(corev1.NamespaceNodeLease), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}}); err != nil {
		return nil, fmt.Errorf("listing node leases: %w", err)
	}
	return leases, nil
}

// judge gathers every node's signals and decides its verdict. The states
// are in node name order.
func (r *Reconciler) judge(ctx context.Context, p *cafev1alpha1.NodeLifecyclePolicySpec, records []cafev1alpha1.NodeVerdictRecord, reportsOf map[string][]cafev1alpha1.NodeHealthReport, now time.Time) ([]nodeState, time.Duration, error) {
	nodeList := &corev1.NodeList{}
	// The cache's own nodes, only read: a pass runs every few seconds over
	// every node, and copying them all was most of its CPU. The writers
	// copy the one they patch (writableNode).
	if err := r.Client.List(ctx, nodeList, client.UnsafeDisableDeepCopy); err != nil {
		return nil, 0, fmt.Errorf("listing nodes: %w", err)
	}
	for i := range nodeList.Items {
		if r.nodeWrites.Behind(types.NamespacedName{Name: nodeList.Items[i].Name}, nodeList.Items[i].ResourceVersion) {
			return nil, 0, errCacheBehind
		}
	}
	leases, err := r.listLeases(ctx)
	if err != nil {
		return nil, 0, err
	}
	leaseOf := map[string]*coordinationv1.Lease{}
	for i := range leases.Items {
		leaseOf[leases.Items[i].Name] = &leases.Items[i]
	}
	sort.Slice(nodeList.Items, func(i, j int) bool { return nodeList.Items[i].Name < nodeList.Items[j].Name })
	recorded := map[string]cafev1alpha1.NodeVerdictRecord{}
	for _, rec := range records {
		recorded[rec.Node] = rec
	}

	var requeue time.Duration
	states := make([]nodeState, 0, len(nodeList.Items))
	for i := range nodeList.Items {
		node := &nodeList.Items[i]
		ev := nodeEvidence{Node: node, Lease: leaseOf[node.Name], Reports: reportsOf[node.Name], Probe: r.Prober.Result(node.Name)}
		st, after := judgedState(ev, p, recorded, r.cleanSince(node.Name, signalsOf(ev, p, now), p, now), now)
		requeue = minPositive(requeue, after)
		if st.Judgement.Verdict == cafev1alpha1.NodeVerdictFailed {
			if err := r.podsOf(ctx, &st); err != nil {
				return nil, 0, err
			}
		}
		states = append(states, st)
	}
	return states, requeue, nil
}

// reports lists the NodeHealthReports by the node and by the classic host
// they name. They are only read: the cache's own copies.
func (r *Reconciler) reports(ctx context.Context) (byNode, byHost map[string][]cafev1alpha1.NodeHealthReport, err error) {
	list := &cafev1alpha1.NodeHealthReportList{}
	if err := r.Client.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, nil, fmt.Errorf("listing NodeHealthReports: %w", err)
	}
	byNode, byHost = map[string][]cafev1alpha1.NodeHealthReport{}, map[string][]cafev1alpha1.NodeHealthReport{}
	for _, rep := range list.Items {
		switch {
		case rep.Spec.NodeName != "":
			byNode[rep.Spec.NodeName] = append(byNode[rep.Spec.NodeName], rep)
		case rep.Spec.HostName != "":
			byHost[rep.Spec.HostName] = append(byHost[rep.Spec.HostName], rep)
		}
	}
	return byNode, byHost, nil
}

// judgedState judges one node at now from its evidence, the verdicts
// recorded in the policy's status and since when it has had no bad signal;
// it returns the node's state (without its pods) and when the verdict could
// change by time alone (0: nothing pends).
func judgedState(ev nodeEvidence, p *cafev1alpha1.NodeLifecyclePolicySpec, recorded map[string]cafev1alpha1.NodeVerdictRecord, cleanSince, now time.Time) (nodeState, time.Duration) {
	node := ev.Node
	prev, prevSince := recordedVerdict(node, recorded)
	d := judgeNode(verdictInput{Policy: p, Signals: signalsOf(ev, p, now), Previous: prev, CleanSince: cleanSince, Now: now})
	st := nodeState{Node: node, Name: node.Name, Zone: node.Labels[cafev1alpha1.ZoneNodeLabel], Judgement: d, Previous: prev, VerdictSince: prevSince, LeaseFresh: leaseFresh(ev.Lease, p, now)}
	if prev != d.Verdict {
		st.VerdictSince = now
	}
	st.UnhealthySince = unhealthySince(node, prev, prevSince, d.Verdict, now)
	for _, t := range node.Spec.Taints {
		if t.Key == cafev1alpha1.UnhealthyTaintKey {
			st.NoSchedule = st.NoSchedule || t.Effect == corev1.TaintEffectNoSchedule
			st.NoExecute = st.NoExecute || t.Effect == corev1.TaintEffectNoExecute
		}
	}
	return st, minPositive(d.RequeueAfter, reportExpiry(ev.Reports, now), leaseStaleIn(ev.Lease, p, now))
}

// leaseStaleIn is how long until a fresh Lease goes stale if not renewed
// (zero for a stale or missing one, or when the Lease signal is off): no
// event marks that moment, so the pass is scheduled for it.
func leaseStaleIn(lease *coordinationv1.Lease, p *cafev1alpha1.NodeLifecyclePolicySpec, now time.Time) time.Duration {
	if !p.SignalEnabled(cafev1alpha1.SignalLease) || !leaseFresh(lease, p, now) {
		return 0
	}
	return lease.Spec.RenewTime.Add(seconds(p.LeaseStaleSeconds)).Sub(now)
}

// allCalm: every node Healthy with no bad signal, so nothing moves by time
// but the deadlines the judgement returned.
func allCalm(states []nodeState) bool {
	for i := range states {
		if states[i].Judgement.Verdict != cafev1alpha1.NodeVerdictHealthy || len(states[i].Judgement.Bad) > 0 {
			return false
		}
	}
	return true
}

// cleanSince returns since when the node (host, by its key) has had no
// bad signal, starting the clock at the first clean look (zero while a
// signal is bad).
func (r *Reconciler) cleanSince(key string, signals []Signal, p *cafev1alpha1.NodeLifecyclePolicySpec, now time.Time) time.Time {
	for _, s := range signals {
		if s.Bad && p.SignalEnabled(s.Name) {
			delete(r.cleanStart, key)
			return time.Time{}
		}
	}
	if _, ok := r.cleanStart[key]; !ok {
		r.cleanStart[key] = now
	}
	return r.cleanStart[key]
}

// forgetAbsent drops the in-memory state of nodes and hosts that are gone.
func (r *Reconciler) forgetAbsent(states []nodeState) {
	present := map[string]bool{}
	for i := range states {
		_, _, key := states[i].object()
		present[key] = true
	}
	for key := range r.cleanStart {
		if present[key] {
			continue
		}
		delete(r.cleanStart, key)
		if !strings.HasPrefix(key, hostKey("")) {
			r.nodeWrites.Forget(types.NamespacedName{Name: key})
		}
	}
}

// podsOf fills the InPlaceSet pods running on a Failed node.
func (r *Reconciler) podsOf(ctx context.Context, st *nodeState) error {
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.MatchingFields{PodNodeIndex: st.Name}); err != nil {
		return fmt.Errorf("listing pods of node %s: %w", st.Name, err)
	}
	var running []client.Object
	for i := range pods.Items {
		if phase := pods.Items[i].Status.Phase; phase != corev1.PodSucceeded && phase != corev1.PodFailed {
			running = append(running, &pods.Items[i])
		}
	}
	st.fileMovable(running, "InPlaceSet")
	return nil
}

// fileMovable files, in namespace/name order, the objects a CAFE set of
// kind setKind controls and that are not terminating: those already asked
// to migrate as Migrating, the others as Movable.
func (st *nodeState) fileMovable(objs []client.Object, setKind string) {
	sort.Slice(objs, func(i, j int) bool {
		return objs[i].GetNamespace()+"/"+objs[i].GetName() < objs[j].GetNamespace()+"/"+objs[j].GetName()
	})
	for _, o := range objs {
		ref := metav1.GetControllerOf(o)
		if o.GetDeletionTimestamp() != nil || ref == nil || ref.Kind != setKind || ref.APIVersion != cafev1alpha1.GroupVersion.String() {
			continue
		}
		if o.GetAnnotations()[cafev1alpha1.MigrationRequestedAnnotation] != "" {
			st.Migrating = append(st.Migrating, o)
		} else {
			st.Movable = append(st.Movable, o)
		}
	}
}

// recordedVerdict is the node's previous verdict and since when it holds.
// An unhealthy one comes only from the policy's status.unhealthyNodes,
// which only CAFE writes: a cafe.io/NodeHealthy condition saying Suspect or
// Failed that CAFE has not recorded there was written by someone else (a
// kubelet, node-problem-detector) and counts as Healthy. A Healthy
// verdict and its time come from the condition.
func recordedVerdict(node *corev1.Node, recorded map[string]cafev1alpha1.NodeVerdictRecord) (cafev1alpha1.NodeVerdict, time.Time) {
	if rec, ok := recorded[node.Name]; ok {
		return rec.Verdict, rec.Since.Time
	}
	for _, c := range node.Status.Conditions {
		if string(c.Type) != cafev1alpha1.NodeHealthyCondition {
			continue
		}
		if unhealthy(cafev1alpha1.NodeVerdict(c.Reason)) {
			return cafev1alpha1.NodeVerdictHealthy, time.Time{}
		}
		return cafev1alpha1.NodeVerdict(c.Reason), c.LastTransitionTime.Time
	}
	return "", time.Time{}
}

// unhealthySince is since when the node has been Suspect or Failed: its
// cafe.io/unhealthy-since annotation; when that is missing, the recorded
// verdict's time if it was already unhealthy (a node judged before the
// annotation existed, or whose annotation write failed while the condition
// was written), else now. Zero for a Healthy node.
func unhealthySince(node *corev1.Node, prev cafev1alpha1.NodeVerdict, prevSince time.Time, v cafev1alpha1.NodeVerdict, now time.Time) time.Time {
	if !unhealthy(v) {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339, node.Annotations[cafev1alpha1.UnhealthySinceAnnotation]); err == nil {
		return t
	}
	if unhealthy(prev) && !prevSince.IsZero() {
		return prevSince
	}
	return now
}

// act writes one node's or host's verdict, cordon (a node's taints, a
// host's Schedulable condition) and migration requests.
func (r *Reconciler) act(ctx context.Context, st *nodeState, a *nodeActions, now time.Time) error {
	obj, kind, key := st.object()
	// Built only to log: every pass acts on every node, and a logger with
	// values is a copy of the logger's core.
	log := func() logr.Logger { return ctrl.LoggerFrom(ctx).WithValues(kind, klog.KObj(obj)) }
	d := st.Judgement
	message := d.Message
	if a.Held != "" {
		message += ". Held: " + a.Held
	}
	var errs []error
	if err := r.writeVerdict(ctx, st, a, message); err != nil {
		errs = append(errs, err)
	} else if st.Previous != d.Verdict {
		r.verdictChanged(obj, key, kind, st.Previous, d, now)
		log().Info(kind+" verdict changed", "from", st.Previous, "to", d.Verdict, "evidence", d.Message)
	}
	if a.Held != r.held[key] {
		if a.Held != "" {
			r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, "MigrationHeld", "Hold", "%s", a.Held)
		}
		r.held[key] = a.Held
	}
	if st.Node != nil {
		if err := r.writeTaints(ctx, st.Node, a, now); err != nil {
			errs = append(errs, err)
		}
	}
	var started []string
	for _, target := range a.Migrate {
		requested, err := r.requestMigration(ctx, kind, st.Name, target, now)
		if err != nil {
			errs = append(errs, err)
		}
		if !requested {
			continue
		}
		st.countMigration()
		r.migratedFrom[key] = true
		started = append(started, target.GetNamespace()+"/"+target.GetName())
	}
	if len(started) > 0 {
		what := migratedKind(st)
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, "MigrationStarted", "Migrate", "Migrating %d %s(s) off the Failed %s: %s", len(started), what, strings.ToLower(kind), strings.Join(started, ", "))
		log().Info("Migrating "+what+"s off the Failed "+strings.ToLower(kind), what+"s", started)
	}
	r.observeMigrated(key, st, now)
	return errors.Join(errs...)
}

// writeVerdict writes the verdict where it lives: a node's
// cafe.io/unhealthy-since annotation and cafe.io/NodeHealthy condition, a
// host's Healthy and Schedulable conditions.
func (r *Reconciler) writeVerdict(ctx context.Context, st *nodeState, a *nodeActions, message string) error {
	if st.Host != nil {
		return r.writeHostConditions(ctx, st, a, message)
	}
	if err := r.writeUnhealthySince(ctx, st, st.UnhealthySince); err != nil {
		return err
	}
	return r.writeCondition(ctx, st, st.Judgement.Verdict, message, st.VerdictSince)
}

// verdictChanged reports a verdict written on a node or host (an event,
// the time-to-verdict metric) and keeps the in-memory state of the
// time-to-migrated metric.
func (r *Reconciler) verdictChanged(obj client.Object, key, kind string, prev cafev1alpha1.NodeVerdict, d nodeJudgement, now time.Time) {
	switch d.Verdict {
	case cafev1alpha1.NodeVerdictHealthy:
		delete(r.firstBad, key)
		delete(r.migratedFrom, key)
		if prev != "" {
			r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "Recovered", "Judge", "%s is Healthy again (was %s): %s", kind, prev, d.Message)
		}
	default:
		if !d.FirstBad.IsZero() {
			verdictSeconds.WithLabelValues(string(d.Verdict)).Observe(now.Sub(d.FirstBad).Seconds())
			if d.Verdict == cafev1alpha1.NodeVerdictFailed {
				r.firstBad[key] = d.FirstBad
			}
		}
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, string(d.Verdict), "Judge", "%s is %s: %s", kind, d.Verdict, d.Message)
	}
}

// observeMigrated records the time to migrated once the Failed node (host)
// has no InPlaceSet pod (ClassicSet instance) left running on it.
func (r *Reconciler) observeMigrated(key string, st *nodeState, now time.Time) {
	first, ok := r.firstBad[key]
	if !ok || !r.migratedFrom[key] || st.Judgement.Verdict != cafev1alpha1.NodeVerdictFailed || len(st.Movable)+len(st.Migrating) > 0 {
		return
	}
	migratedSeconds.Observe(now.Sub(first).Seconds())
	delete(r.firstBad, key)
}

// minPositive is the smallest positive duration of ds (0 when none is).
func minPositive(ds ...time.Duration) time.Duration {
	ds = slices.DeleteFunc(slices.Clone(ds), func(d time.Duration) bool { return d <= 0 })
	if len(ds) == 0 {
		return 0
	}
	return slices.Min(ds)
}
