package nodelifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups="",resources=nodes/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=cafe.io,resources=nodehealthreports,verbs=get;list;watch
// +kubebuilder:rbac:groups=cafe.io,resources=nodelifecyclepolicies,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=cafe.io,resources=nodelifecyclepolicies/status,verbs=get;update;patch

// Reconciler judges every node and acts on the verdicts. It reconciles the
// cluster as one: the zone guard and the rate limit are decisions over all
// nodes, so one key ("cluster") is reconciled, on node, report and policy
// changes and every resync period (Lease ages and probe results change
// without an event).
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// Prober supplies the KubeletProbe signal; SetupWithManager starts it.
	Prober *Prober
	// Now is the clock; tests may replace it.
	Now func() time.Time
	// Resync is how often the cluster is judged without an event (default 2 s).
	Resync time.Duration

	// policy is the spec in force, shared with the prober.
	policyMu sync.Mutex
	policy   cafev1alpha1.NodeLifecyclePolicySpec

	// mu serialises reconciles with the in-memory state below. What a
	// decision needs is in the API (verdicts and since when on the nodes,
	// migration grants and guarded zones in the policy's status); the
	// state below only delays a recovery, dedupes events or feeds metrics.
	mu sync.Mutex
	// cleanSince: since when a node has had no bad signal.
	cleanSince map[string]time.Time
	// firstBad: a Failed node's first bad signal; migratedFrom: pods were
	// migrated off it (for the time-to-migrated metric, observed once).
	firstBad     map[string]time.Time
	migratedFrom map[string]bool
	// held: the last hold reported per node (an event when it changes).
	held map[string]string
}

// rateLimitWindow is the window of spec.migration.maxPodsPerMinute.
const rateLimitWindow = time.Minute

// PodNodeIndex indexes pods by spec.nodeName.
const PodNodeIndex = "cafe.io/pod-node"

const clusterKey = "cluster"

// SetupWithManager registers the controller, the pod index and the prober.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr manager.Manager) error {
	if r.Client == nil || r.Recorder == nil {
		return errors.New("nodelifecycle: Client and Recorder are required")
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Resync == 0 {
		r.Resync = 2 * time.Second
	}
	r.policy = cafev1alpha1.DefaultNodeLifecyclePolicySpec()
	r.cleanSince, r.firstBad, r.migratedFrom, r.held = map[string]time.Time{}, map[string]time.Time{}, map[string]bool{}, map[string]string{}
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
	if err := mgr.Add(r.Prober); err != nil {
		return fmt.Errorf("adding the kubelet prober: %w", err)
	}
	all := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: clusterKey}}}
	})
	return ctrl.ControllerManagedBy(mgr).
		Named("nodelifecycle").
		// A node's conditions, addresses and taints are signals and state.
		Watches(&corev1.Node{}, all).
		// Reports are signals; the policy is the rules.
		Watches(&cafev1alpha1.NodeHealthReport{}, all).
		Watches(&cafev1alpha1.NodeLifecyclePolicy{}, all).
		Complete(r)
}

func (r *Reconciler) currentPolicy() cafev1alpha1.NodeLifecyclePolicySpec {
	r.policyMu.Lock()
	defer r.policyMu.Unlock()
	return *r.policy.DeepCopy()
}

// Reconcile judges every node, then writes conditions, taints, migration
// requests, events and the policy's status.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.Now()
	policy, err := r.readPolicy(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	p := policy.Spec.DeepCopy()
	r.policyMu.Lock()
	r.policy = *policy.Spec.DeepCopy()
	r.policyMu.Unlock()

	nodes, states, requeue, err := r.judge(ctx, p, now)
	if err != nil {
		return reconcile.Result{}, err
	}
	members := make([]zoneMember, len(states))
	for i := range states {
		members[i] = zoneMember{Zone: states[i].Zone, Verdict: states[i].Decision.Verdict, UnhealthySince: states[i].UnhealthySince}
	}
	wasGuarded := map[string]bool{}
	for _, z := range policy.Status.Zones {
		wasGuarded[z.Name] = z.Guarded
	}
	zones := ZoneHealth(members, p.ZoneGuard, wasGuarded, now)
	window := rateWindow{window: rateLimitWindow, grants: policy.Status.RecentMigrations}
	tokens, wait := window.available(now, int(p.Migration.MaxPodsPerMinute))
	plan := planActions(states, zones, p, tokens, now)
	requeue = minPositive(requeue, plan.RequeueAfter)

	var errs []error
	if plan.Granted > 0 {
		// The grant is recorded before any pod is asked to migrate: a
		// controller that crashes in between has used up slots, never
		// exceeded the limit.
		if err := r.recordGrant(ctx, policy, window.take(now, plan.Granted)); err != nil {
			for i := range plan.Nodes {
				if len(plan.Nodes[i].Migrate) > 0 {
					plan.Nodes[i].Migrate, plan.Nodes[i].RateLimited = nil, true
				}
			}
			if apierrors.IsConflict(err) {
				requeue = minPositive(requeue, time.Second)
			} else {
				errs = append(errs, err)
			}
		}
	}
	for i := range states {
		if err := r.act(ctx, nodes[i], &states[i], &plan.Nodes[i], p, now); err != nil {
			errs = append(errs, err)
		}
		if plan.Nodes[i].RateLimited {
			requeue = minPositive(requeue, wait)
		}
	}
	errs = append(errs, r.updatePolicyStatus(ctx, policy, states, zones, window, now))
	r.recordMetrics(states, zones)
	return reconcile.Result{RequeueAfter: minPositive(requeue, r.Resync)}, errors.Join(errs...)
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

// judge gathers every node's signals and decides its verdict.
func (r *Reconciler) judge(ctx context.Context, p *cafev1alpha1.NodeLifecyclePolicySpec, now time.Time) ([]*corev1.Node, []nodeState, time.Duration, error) {
	nodeList := &corev1.NodeList{}
	if err := r.Client.List(ctx, nodeList); err != nil {
		return nil, nil, 0, fmt.Errorf("listing nodes: %w", err)
	}
	leases := &coordinationv1.LeaseList{}
	if err := r.Client.List(ctx, leases, client.InNamespace(corev1.NamespaceNodeLease)); err != nil {
		return nil, nil, 0, fmt.Errorf("listing node leases: %w", err)
	}
	reports := &cafev1alpha1.NodeHealthReportList{}
	if err := r.Client.List(ctx, reports); err != nil {
		return nil, nil, 0, fmt.Errorf("listing NodeHealthReports: %w", err)
	}
	leaseOf := map[string]*coordinationv1.Lease{}
	for i := range leases.Items {
		leaseOf[leases.Items[i].Name] = &leases.Items[i]
	}
	reportsOf := map[string][]cafev1alpha1.NodeHealthReport{}
	for _, rep := range reports.Items {
		reportsOf[rep.Spec.NodeName] = append(reportsOf[rep.Spec.NodeName], rep)
	}
	sort.Slice(nodeList.Items, func(i, j int) bool { return nodeList.Items[i].Name < nodeList.Items[j].Name })

	var requeue time.Duration
	nodes := make([]*corev1.Node, 0, len(nodeList.Items))
	states := make([]nodeState, 0, len(nodeList.Items))
	present := map[string]bool{}
	for i := range nodeList.Items {
		node := &nodeList.Items[i]
		present[node.Name] = true
		ev := nodeEvidence{Node: node, Lease: leaseOf[node.Name], Reports: reportsOf[node.Name], Probe: r.Prober.Result(node.Name)}
		prev, prevSince := recordedVerdict(node)
		d := Decide(verdictInput{Policy: p, Signals: Signals(ev, p, now), Previous: prev, CleanSince: r.clean(node.Name, ev, p, now), Now: now})
		requeue = minPositive(requeue, minPositive(d.RequeueAfter, reportExpiry(ev.Reports, now)))
		st := nodeState{Name: node.Name, Zone: node.Labels[cafev1alpha1.ZoneNodeLabel], Decision: d, VerdictSince: prevSince, LeaseFresh: LeaseFresh(ev.Lease, p, now)}
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
		if d.Verdict == cafev1alpha1.NodeVerdictFailed {
			if err := r.podsOf(ctx, &st); err != nil {
				return nil, nil, 0, err
			}
		}
		nodes = append(nodes, node)
		states = append(states, st)
	}
	for name := range r.cleanSince {
		if !present[name] {
			delete(r.cleanSince, name)
		}
	}
	return nodes, states, requeue, nil
}

// clean returns since when the node has had no bad signal, starting the
// clock at the first clean look.
func (r *Reconciler) clean(node string, ev nodeEvidence, p *cafev1alpha1.NodeLifecyclePolicySpec, now time.Time) time.Time {
	for _, s := range Signals(ev, p, now) {
		if s.Bad && p.SignalEnabled(s.Name) {
			delete(r.cleanSince, node)
			return time.Time{}
		}
	}
	if _, ok := r.cleanSince[node]; !ok {
		r.cleanSince[node] = now
	}
	return r.cleanSince[node]
}

// podsOf fills the InPlaceSet pods running on a Failed node.
func (r *Reconciler) podsOf(ctx context.Context, st *nodeState) error {
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.MatchingFields{PodNodeIndex: st.Name}); err != nil {
		return fmt.Errorf("listing pods of node %s: %w", st.Name, err)
	}
	sort.Slice(pods.Items, func(i, j int) bool {
		a, b := pods.Items[i], pods.Items[j]
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	for i := range pods.Items {
		pod := &pods.Items[i]
		ref := metav1.GetControllerOf(pod)
		if !pod.DeletionTimestamp.IsZero() || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed ||
			ref == nil || ref.Kind != "InPlaceSet" || ref.APIVersion != cafev1alpha1.GroupVersion.String() {
			continue
		}
		if pod.Annotations[cafev1alpha1.MigrationRequestedAnnotation] != "" {
			st.Migrating = append(st.Migrating, pod)
		} else {
			st.Movable = append(st.Movable, pod)
		}
	}
	return nil
}

// recordedVerdict reads the verdict CAFE last wrote on the node and since
// when it holds.
func recordedVerdict(node *corev1.Node) (cafev1alpha1.NodeVerdict, time.Time) {
	for _, c := range node.Status.Conditions {
		if string(c.Type) == cafev1alpha1.NodeHealthyCondition {
			return cafev1alpha1.NodeVerdict(c.Reason), c.LastTransitionTime.Time
		}
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

// writeUnhealthySince keeps the node's cafe.io/unhealthy-since annotation
// in step with its verdict. It is written before the verdict's condition,
// so a node recorded as unhealthy always carries it.
func (r *Reconciler) writeUnhealthySince(ctx context.Context, node *corev1.Node, since time.Time) error {
	var want any
	if !since.IsZero() {
		want = since.UTC().Format(time.RFC3339)
	}
	have, ok := node.Annotations[cafev1alpha1.UnhealthySinceAnnotation]
	if (want == nil && !ok) || (want != nil && have == want) {
		return nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{cafev1alpha1.UnhealthySinceAnnotation: want}}})
	if err := r.Client.Patch(ctx, node, client.RawPatch(types.MergePatchType, patch)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("annotating node %s with %s: %w", node.Name, cafev1alpha1.UnhealthySinceAnnotation, err)
	}
	return nil
}

// recordGrant writes the rate limit's grants to the policy's status, with
// an optimistic lock (the cache may not have our last grant yet: then this
// conflicts and nothing migrates until the next reconcile), and updates
// policy to what the API server stored.
func (r *Reconciler) recordGrant(ctx context.Context, policy *cafev1alpha1.NodeLifecyclePolicy, grants []cafev1alpha1.MigrationGrant) error {
	updated := policy.DeepCopy()
	updated.Status.RecentMigrations = grants
	if err := r.Client.Status().Patch(ctx, updated, client.MergeFromWithOptions(policy, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("recording %d migration grant(s) in NodeLifecyclePolicy %s: %w", len(grants), policy.Name, err)
	}
	updated.Spec.Default()
	*policy = *updated
	return nil
}

// act writes one node's verdict, taints and migration requests.
func (r *Reconciler) act(ctx context.Context, node *corev1.Node, st *nodeState, a *nodeActions, p *cafev1alpha1.NodeLifecyclePolicySpec, now time.Time) error {
	log := logf.FromContext(ctx).WithValues("Node", klog.KObj(node))
	d := st.Decision
	prev, _ := recordedVerdict(node)
	message := d.Message
	if a.Held != "" {
		message += ". Held: " + a.Held
	}
	var errs []error
	if err := r.writeUnhealthySince(ctx, node, st.UnhealthySince); err != nil {
		errs = append(errs, err)
	}
	if err := r.writeCondition(ctx, node, d.Verdict, message, st.VerdictSince); err != nil {
		errs = append(errs, err)
	} else if prev != d.Verdict {
		r.verdictChanged(node, prev, d, now)
		log.Info("Node verdict changed", "from", prev, "to", d.Verdict, "evidence", d.Message)
	}
	if a.Held != r.held[node.Name] {
		if a.Held != "" {
			r.Recorder.Eventf(node, nil, corev1.EventTypeWarning, "MigrationHeld", "Hold", "%s", a.Held)
		}
		r.held[node.Name] = a.Held
	}
	if err := r.writeTaints(ctx, node, a, now); err != nil {
		errs = append(errs, err)
	}
	var started []string
	for _, pod := range a.Migrate {
		value := fmt.Sprintf("nodelifecycle %s node %s Failed", now.UTC().Format(time.RFC3339), node.Name)
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{cafev1alpha1.MigrationRequestedAnnotation: value}}})
		if err := r.Client.Patch(ctx, pod, client.RawPatch(types.MergePatchType, patch)); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("requesting migration of pod %s/%s: %w", pod.Namespace, pod.Name, err))
			}
			continue
		}
		migrationsTotal.Inc()
		r.migratedFrom[node.Name] = true
		started = append(started, pod.Namespace+"/"+pod.Name)
	}
	if len(started) > 0 {
		r.Recorder.Eventf(node, nil, corev1.EventTypeWarning, "MigrationStarted", "Migrate", "Migrating %d pod(s) off the Failed node: %s", len(started), strings.Join(started, ", "))
		log.Info("Migrating pods off the Failed node", "pods", started)
	}
	r.observeMigrated(node.Name, st, now)
	return errors.Join(errs...)
}

func (r *Reconciler) verdictChanged(node *corev1.Node, prev cafev1alpha1.NodeVerdict, d Decision, now time.Time) {
	switch d.Verdict {
	case cafev1alpha1.NodeVerdictHealthy:
		delete(r.firstBad, node.Name)
		delete(r.migratedFrom, node.Name)
		if prev != "" {
			r.Recorder.Eventf(node, nil, corev1.EventTypeNormal, "Recovered", "Judge", "Node is Healthy again (was %s): %s", prev, d.Message)
		}
	default:
		if !d.FirstBad.IsZero() {
			verdictSeconds.WithLabelValues(string(d.Verdict)).Observe(now.Sub(d.FirstBad).Seconds())
			if d.Verdict == cafev1alpha1.NodeVerdictFailed {
				r.firstBad[node.Name] = d.FirstBad
			}
		}
		r.Recorder.Eventf(node, nil, corev1.EventTypeWarning, string(d.Verdict), "Judge", "Node is %s: %s", d.Verdict, d.Message)
	}
}

// observeMigrated records the time to migrated once the Failed node has no
// InPlaceSet pod left running on it.
func (r *Reconciler) observeMigrated(node string, st *nodeState, now time.Time) {
	first, ok := r.firstBad[node]
	if !ok || !r.migratedFrom[node] || st.Decision.Verdict != cafev1alpha1.NodeVerdictFailed || len(st.Movable)+len(st.Migrating) > 0 {
		return
	}
	migratedSeconds.Observe(now.Sub(first).Seconds())
	delete(r.firstBad, node)
}

// writeCondition patches cafe.io/NodeHealthy when it changes. Its
// lastTransitionTime is when the verdict (the reason) last changed.
func (r *Reconciler) writeCondition(ctx context.Context, node *corev1.Node, v cafev1alpha1.NodeVerdict, message string, since time.Time) error {
	status := corev1.ConditionFalse
	if v == cafev1alpha1.NodeVerdictHealthy {
		status = corev1.ConditionTrue
	}
	for _, c := range node.Status.Conditions {
		if string(c.Type) == cafev1alpha1.NodeHealthyCondition && c.Status == status && c.Reason == string(v) && c.Message == message {
			return nil
		}
	}
	cond := corev1.NodeCondition{
		Type: corev1.NodeConditionType(cafev1alpha1.NodeHealthyCondition), Status: status, Reason: string(v), Message: message,
		LastTransitionTime: metav1.NewTime(since), LastHeartbeatTime: metav1.NewTime(r.Now()),
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{cond}}})
	if err != nil {
		return err
	}
	if err := r.Client.Status().Patch(ctx, node, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("writing condition %s on node %s: %w", cafev1alpha1.NodeHealthyCondition, node.Name, err)
	}
	return nil
}

// writeTaints puts CAFE's taints on the node or takes them off, with an
// optimistic lock (the upstream node lifecycle controller taints too).
func (r *Reconciler) writeTaints(ctx context.Context, node *corev1.Node, a *nodeActions, now time.Time) error {
	want := map[corev1.TaintEffect]bool{corev1.TaintEffectNoSchedule: a.NoSchedule, corev1.TaintEffectNoExecute: a.NoExecute}
	var taints []corev1.Taint
	have := map[corev1.TaintEffect]bool{}
	for _, t := range node.Spec.Taints {
		if t.Key == cafev1alpha1.UnhealthyTaintKey {
			if !want[t.Effect] {
				continue
			}
			have[t.Effect] = true
		}
		taints = append(taints, t)
	}
	var added []string
	for _, e := range []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute} {
		if want[e] && !have[e] {
			t := corev1.Taint{Key: cafev1alpha1.UnhealthyTaintKey, Effect: e}
			if e == corev1.TaintEffectNoExecute {
				t.TimeAdded = &metav1.Time{Time: now}
			}
			taints = append(taints, t)
			added = append(added, string(e))
		}
	}
	if len(taints) == len(node.Spec.Taints) && len(added) == 0 {
		return nil
	}
	removed := len(added) == 0
	updated := node.DeepCopy()
	updated.Spec.Taints = taints
	if err := r.Client.Patch(ctx, updated, client.MergeFromWithOptions(node, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil // judged again at the next resync
		}
		return fmt.Errorf("tainting node %s: %w", node.Name, err)
	}
	if removed {
		r.Recorder.Eventf(node, nil, corev1.EventTypeNormal, "Untainted", "Untaint", "Removed %s taints", cafev1alpha1.UnhealthyTaintKey)
	} else {
		r.Recorder.Eventf(node, nil, corev1.EventTypeWarning, "Tainted", "Taint", "Added %s:%s", cafev1alpha1.UnhealthyTaintKey, strings.Join(added, ","))
	}
	return nil
}

// updatePolicyStatus records the counts, the zones, the rate limit's
// grants still in its window and the ZoneGuard condition, with an event
// when the guard trips or clears. The patch is optimistically locked: a
// policy read from a cache that has not seen the last grant yet must not
// write an older list of grants back.
func (r *Reconciler) updatePolicyStatus(ctx context.Context, policy *cafev1alpha1.NodeLifecyclePolicy, states []nodeState, zones []cafev1alpha1.ZoneHealth, window rateWindow, now time.Time) error {
	st := policy.Status.DeepCopy()
	st.ObservedGeneration = policy.Generation
	window.grants = st.RecentMigrations
	st.RecentMigrations = window.current(now)
	st.Healthy, st.Suspect, st.Failed = 0, 0, 0
	for _, s := range states {
		switch s.Decision.Verdict {
		case cafev1alpha1.NodeVerdictFailed:
			st.Failed++
		case cafev1alpha1.NodeVerdictSuspect:
			st.Suspect++
		default:
			st.Healthy++
		}
	}
	st.Zones = zones
	var guarded []string
	for _, z := range zones {
		if z.Guarded {
			guarded = append(guarded, fmt.Sprintf("%s (%d of %d nodes Suspect or Failed, %d of them turned so within %ds)", z.Name, z.Unhealthy, z.Nodes, z.RecentlyUnhealthy, policy.Spec.ZoneGuard.WindowSeconds))
		}
	}
	cond := metav1.Condition{Type: cafev1alpha1.NodeLifecycleZoneGuardCondition, Status: metav1.ConditionFalse, Reason: cafev1alpha1.NodeLifecycleZoneGuardClearReason, Message: "no zone is guarded", ObservedGeneration: policy.Generation}
	if len(guarded) > 0 {
		cond.Status, cond.Reason = metav1.ConditionTrue, cafev1alpha1.NodeLifecycleZoneGuardTrippedReason
		cond.Message = fmt.Sprintf("more than %d%% of the nodes turned Suspect or Failed together in zone(s) %s: CAFE assumes a partition or a monitoring fault and migrates nothing there; check the zone's network and monitoring", policy.Spec.ZoneGuard.MaxUnhealthyPercent, strings.Join(guarded, ", "))
	}
	was := meta.FindStatusCondition(st.Conditions, cafev1alpha1.NodeLifecycleZoneGuardCondition)
	wasGuarded := was != nil && was.Status == metav1.ConditionTrue
	meta.SetStatusCondition(&st.Conditions, cond)
	if equalStatus(&policy.Status, st) {
		return nil
	}
	updated := policy.DeepCopy()
	updated.Status = *st
	if err := r.Client.Status().Patch(ctx, updated, client.MergeFromWithOptions(policy, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsConflict(err) {
			return nil // written at the next reconcile, from a fresher read
		}
		return client.IgnoreNotFound(err)
	}
	switch {
	case len(guarded) > 0 && (!wasGuarded || was.Message != cond.Message):
		r.Recorder.Eventf(policy, nil, corev1.EventTypeWarning, "ZoneGuardTripped", "Guard", "%s", cond.Message)
	case len(guarded) == 0 && wasGuarded:
		r.Recorder.Eventf(policy, nil, corev1.EventTypeNormal, "ZoneGuardCleared", "Guard", "No zone is guarded any more")
	}
	return nil
}

func equalStatus(a, b *cafev1alpha1.NodeLifecyclePolicyStatus) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func (r *Reconciler) recordMetrics(states []nodeState, zones []cafev1alpha1.ZoneHealth) {
	counts := map[cafev1alpha1.NodeVerdict]float64{}
	for _, s := range states {
		counts[s.Decision.Verdict]++
	}
	for _, v := range []cafev1alpha1.NodeVerdict{cafev1alpha1.NodeVerdictHealthy, cafev1alpha1.NodeVerdictSuspect, cafev1alpha1.NodeVerdictFailed} {
		nodesByVerdict.WithLabelValues(string(v)).Set(counts[v])
	}
	zoneGuarded.Reset()
	for _, z := range zones {
		v := 0.0
		if z.Guarded {
			v = 1
		}
		zoneGuarded.WithLabelValues(z.Name).Set(v)
	}
}

func minPositive(a, b time.Duration) time.Duration {
	ds := slices.DeleteFunc([]time.Duration{a, b}, func(d time.Duration) bool { return d <= 0 })
	if len(ds) == 0 {
		return 0
	}
	return slices.Min(ds)
}
