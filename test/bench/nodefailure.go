package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	klabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/podutil"
	"github.com/cafe-io/cafe/test/framework/watchrec"
)

// The node-failure scenario (issue 6): how long after a node's heartbeats
// stop are its pods Ready on other nodes of its zone, with CAFE's node
// lifecycle controller and with the upstream (kube-controller-manager)
// controller alone at its defaults.
//
// Every variant registers its own kwok nodes (nodeFailureNodesPerZone in each
// of nodeFailureZones), tainted so that no other pod lands there, runs a
// CafeDeployment (podSetType InPlaceSet) over those zones, stops the
// heartbeats of the busiest node of the first zone and watches the pods until
// the CafeDeployment again has all its replicas Ready, none on that node. A
// recorder of the namespace's watch stream (pods and EndpointSlices) checks
// the water level (spec.strategy.minAvailable) and the lossless protocol.
// The nodes and the namespace are deleted afterwards.
const (
	nodeFailureKey = "node-failure"
	// nodeFailureTaint keeps every other pod off the scenario's nodes.
	nodeFailureTaint        = "cafe.io/bench-node-failure"
	nodeFailureNodesPerZone = 3
	nodeFailureReplicas     = 18
	// nodeFailureMinAvailable allows a whole zone's pods (6) to be
	// unavailable, and no more.
	nodeFailureMinAvailable = 12
	// nodeFailureTimeout bounds one variant; the upstream one needs about
	// six minutes.
	nodeFailureTimeout = 15 * time.Minute
	// heartbeatsStoppedHolder is the Lease holder the scenario hands a
	// node's Lease to, so that kwok stops renewing it.
	heartbeatsStoppedHolder = "bench-heartbeats-stopped"
)

var nodeFailureZones = []string{"nf-a", "nf-b", "nf-c"}

// nodeFailureVariant is one way the failure is handled or happens.
type nodeFailureVariant struct {
	Key   string
	Title string
	// Mode is the NodeLifecyclePolicy's mode during the variant: Enforce
	// (CAFE acts) or Observe (CAFE judges, writes its condition and
	// metrics, but neither taints nor migrates: the upstream controller
	// alone acts).
	Mode cafev1alpha1.NodeLifecycleMode
	// KubeletDown also stops the node's kubelet endpoint from answering
	// (a dead machine), so CAFE's kubelet probe fails too.
	KubeletDown bool
	Describe    string
}

func nodeFailureVariants() []nodeFailureVariant {
	return []nodeFailureVariant{
		{Key: "cafe", Title: "CAFE (default policy)", Mode: cafev1alpha1.NodeLifecycleEnforce,
			Describe: "heartbeats stop (kwok stops renewing the node's Lease and its status); its kubelet endpoint still answers. NodeLifecyclePolicy `default` with every default (mode Enforce)"},
		{Key: "upstream", Title: "upstream controller alone (defaults)", Mode: cafev1alpha1.NodeLifecycleObserve,
			Describe: "the same failure; CAFE's NodeLifecyclePolicy in mode Observe (it judges and writes its condition, but neither taints nor migrates), so kube-controller-manager's node lifecycle controller alone acts, with its defaults"},
		{Key: "cafe-node-down", Title: "CAFE, node down (heartbeats and kubelet endpoint)", Mode: cafev1alpha1.NodeLifecycleEnforce, KubeletDown: true,
			Describe: "heartbeats stop and the node's kubelet endpoint stops answering (the node is pointed at a closed port), as a dead machine's would; default policy (Enforce)"},
	}
}

// selectNodeFailureVariants picks the named variants, in the order given.
func selectNodeFailureVariants(names string) ([]nodeFailureVariant, error) {
	return selectByKey("-node-failure-variants", "variant", nodeFailureVariants(), func(v nodeFailureVariant) string { return v.Key }, names)
}

// nodeFailureResult is one variant's run.
type nodeFailureResult struct {
	Variant nodeFailureVariant
	Run     int
	// Took is the whole variant, set-up and clean-up included.
	Took time.Duration
	// Completed is false when the pods were not Ready elsewhere within
	// nodeFailureTimeout; Problem says what was seen.
	Completed bool
	Problem   string

	Victim string
	Zone   string
	// Lost are the pods that ran on the victim.
	Lost     int
	Replicas int
	// LastRenewal is the victim's last Lease renewal: when its heartbeats
	// stopped, the start of every duration below.
	LastRenewal time.Time
	// ReadyElsewhere: the CafeDeployment again had all its replicas Ready
	// (and not terminating) on other nodes than the victim.
	ReadyElsewhere time.Duration
	// VictimEmptied: besides, none of its pods on the victim was left
	// without its deletion begun (a dead node's kubelet never confirms a
	// deletion, so they stay Terminating until the node is deleted).
	VictimEmptied time.Duration
	// Milestones: when the watches first saw each step (0: not seen).
	NotReady, Suspect, Failed, Unreachable, CafeTainted time.Duration
	FirstMoved                                          time.Duration
	// SameZone: every pod that replaced a lost one runs in the victim's
	// zone; WrongZone lists those that do not.
	SameZone  bool
	WrongZone []string
	// LowestReady is the fewest Ready pods (not terminating) in the watch
	// stream after the heartbeats stopped; MinAvailable the spec's.
	LowestReady  int
	MinAvailable int
	// WaterLevel and Lossless are the watch-stream checkers' findings.
	WaterLevel, Lossless []string
}

// runNodeFailure runs one variant on fresh nodes in a fresh namespace and
// removes both afterwards. An error means the benchmark cannot go on.
func (r *runner) runNodeFailure(ctx context.Context, v nodeFailureVariant, run int) (res nodeFailureResult, err error) {
	res = nodeFailureResult{Variant: v, Run: run, Replicas: nodeFailureReplicas, MinAvailable: nodeFailureMinAvailable}
	ctx, cancel := r.cluster.watchFailures(ctx)
	defer cancel()
	c := r.cluster.client
	out := r.cluster.out
	tag := fmt.Sprintf("[%s/%s run %d]", nodeFailureKey, v.Key, run)
	ns := fmt.Sprintf("bench-%s-%s-%d", nodeFailureKey, v.Key, run)

	restore, err := r.setNodeLifecycleMode(ctx, v.Mode)
	if err != nil {
		return res, err
	}
	defer func() {
		if rerr := restore(context.WithoutCancel(ctx)); rerr != nil && err == nil {
			err = rerr
		}
	}()

	specs, zoneOf := nodeFailureNodes(v.Key, run)
	fmt.Fprintf(out, "%s registering %d nodes over %s, policy mode %s\n", tag, len(specs), strings.Join(nodeFailureZones, ", "), v.Mode)
	defer func() {
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
		defer cancel()
		if cerr := r.tearDownNodeFailure(cleanupCtx, ns, res.Victim, specs); cerr != nil {
			fmt.Fprintf(out, "%s cleaning up: %v\n", tag, cerr)
		}
	}()
	for _, s := range specs {
		node := s.Node()
		node.Spec.Taints = []corev1.Taint{{Key: nodeFailureTaint, Effect: corev1.TaintEffectNoSchedule}}
		if err := c.Create(ctx, node); err != nil {
			return res, fmt.Errorf("%s registering node %s: %w", tag, s.Name, err)
		}
	}
	setupCtx, cancelSetup := context.WithTimeout(ctx, r.timeout)
	defer cancelSetup()
	if err := waitNodesReady(setupCtx, c, controlplane.NodeNames(specs)); err != nil {
		return res, fmt.Errorf("%s: %w", tag, err)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return res, fmt.Errorf("%s creating namespace %s: %w", tag, ns, err)
	}
	if err := c.Create(ctx, service(ns)); err != nil {
		return res, fmt.Errorf("%s creating the Service: %w", tag, err)
	}
	if err := c.Create(ctx, nodeFailureDeployment(ns)); err != nil {
		return res, fmt.Errorf("%s creating the CafeDeployment: %w", tag, err)
	}
	if _, _, err := waitPodsSettled(setupCtx, c, ns, nodeFailureReplicas, imageV1, nil); err != nil {
		return res, fmt.Errorf("%s: %w", tag, err)
	}
	w := cafeDeployment{shape: shape{Replicas: nodeFailureReplicas}}
	if err := w.WaitDone(setupCtx, c, ns); err != nil {
		return res, fmt.Errorf("%s: %w", tag, err)
	}
	if err := waitEndpoints(setupCtx, c, ns, appName, nodeFailureReplicas); err != nil {
		return res, fmt.Errorf("%s: %w", tag, err)
	}

	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels(appLabels())); err != nil {
		return res, fmt.Errorf("%s listing pods: %w", tag, err)
	}
	res.Zone = nodeFailureZones[0]
	res.Victim = busiest(pods.Items, zoneOf, res.Zone)
	original := map[string]bool{}
	for _, p := range pods.Items {
		original[p.Name] = true
		if p.Spec.NodeName == res.Victim {
			res.Lost++
		}
	}

	rec, err := watchrec.Start(ctx, r.cluster.admin, ns, watchrec.WithPodSelector(klabels.SelectorFromSet(appLabels())))
	if err != nil {
		return res, fmt.Errorf("%s starting the watch recorder: %w", tag, err)
	}
	defer rec.Stop()
	if err := rec.WaitForSync(ctx); err != nil {
		return res, fmt.Errorf("%s: %w", tag, err)
	}
	watchCtx, stopNodeWatch := context.WithCancel(ctx)
	defer stopNodeWatch()
	seen := watchNode(watchCtx, c, res.Victim)

	fmt.Fprintf(out, "%s stopping the heartbeats of %s (%d of the %d pods)%s\n", tag, res.Victim, res.Lost, nodeFailureReplicas, map[bool]string{true: " and its kubelet endpoint", false: ""}[v.KubeletDown])
	if res.LastRenewal, err = stopHeartbeats(ctx, c, res.Victim, v.KubeletDown); err != nil {
		return res, fmt.Errorf("%s: %w", tag, err)
	}

	var firstMoved, replaced time.Time
	var last string
	waitCtx, cancelWait := context.WithTimeout(ctx, nodeFailureTimeout)
	defer cancelWait()
	at, err := watchUntil(waitCtx, c, &corev1.PodList{}, func(objs []client.Object) bool {
		live, ready := 0, 0
		onVictim := 0
		for _, o := range objs {
			p := o.(*corev1.Pod)
			if original[p.Name] && p.Spec.NodeName == res.Victim && firstMoved.IsZero() &&
				(p.DeletionTimestamp != nil || p.Annotations[cafev1alpha1.MigrationRequestedAnnotation] != "") {
				firstMoved = time.Now()
			}
			if p.DeletionTimestamp != nil {
				continue
			}
			live++
			if p.Spec.NodeName == res.Victim {
				onVictim++
			} else if podutil.Ready(p) {
				ready++
			}
		}
		last = fmt.Sprintf("%d pods not terminating, %d Ready elsewhere, %d on %s", live, ready, onVictim, res.Victim)
		if ready >= nodeFailureReplicas && replaced.IsZero() {
			replaced = time.Now()
		}
		return !replaced.IsZero() && live == nodeFailureReplicas && onVictim == 0
	}, client.InNamespace(ns), client.MatchingLabels(appLabels()))
	stopNodeWatch()
	milestones := <-seen
	since := func(t time.Time) time.Duration {
		if t.IsZero() {
			return 0
		}
		return t.Sub(res.LastRenewal)
	}
	res.NotReady, res.Suspect, res.Failed = since(milestones.NotReady), since(milestones.Suspect), since(milestones.Failed)
	res.Unreachable, res.CafeTainted, res.FirstMoved = since(milestones.Unreachable), since(milestones.CafeTainted), since(firstMoved)
	if err != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("%s: %w", tag, withCause(ctx, err))
		}
		res.Problem = fmt.Sprintf("the pods were not Ready elsewhere within %s (last seen: %s)\n%s", nodeFailureTimeout, last, w.Describe(ctx, c, ns))
		fmt.Fprintf(out, "%s NOT FINISHED: %s\n", tag, res.Problem)
		return res, nil
	}
	res.Completed = true
	res.ReadyElsewhere, res.VictimEmptied = replaced.Sub(res.LastRenewal), at.Sub(res.LastRenewal)

	if err := c.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels(appLabels())); err != nil {
		return res, fmt.Errorf("%s listing pods: %w", tag, err)
	}
	res.SameZone = true
	moved := 0
	for _, p := range pods.Items {
		if original[p.Name] || p.DeletionTimestamp != nil {
			continue
		}
		moved++
		if zoneOf[p.Spec.NodeName] != res.Zone {
			res.SameZone = false
			res.WrongZone = append(res.WrongZone, fmt.Sprintf("%s on %s (zone %q)", p.Name, p.Spec.NodeName, zoneOf[p.Spec.NodeName]))
		}
	}
	if moved != res.Lost {
		res.SameZone = false
		res.WrongZone = append(res.WrongZone, fmt.Sprintf("%d new pods for %d lost", moved, res.Lost))
	}
	if err := rec.WaitForSync(ctx); err != nil {
		return res, fmt.Errorf("%s: %w", tag, err)
	}
	events := rec.Events()
	res.LowestReady = lowestReady(events, klabels.SelectorFromSet(appLabels()))
	res.WaterLevel = violations(watchrec.CheckWaterLevel(events, klabels.SelectorFromSet(appLabels()), nodeFailureMinAvailable))
	res.Lossless = violations(watchrec.CheckLossless(events))
	fmt.Fprintf(out, "%s %d pod(s) Ready on other nodes of %s %s after the last heartbeat, none left undeleted on %s after %s (upstream NotReady %s, CAFE Suspect %s, Failed %s, first pod moved %s); fewest Ready %d (minAvailable %d); water-level violations %d, lossless violations %d\n",
		tag, res.Lost, res.Zone, seconds(res.ReadyElsewhere), res.Victim, seconds(res.VictimEmptied), optSeconds(res.NotReady), optSeconds(res.Suspect), optSeconds(res.Failed), optSeconds(res.FirstMoved),
		res.LowestReady, nodeFailureMinAvailable, len(res.WaterLevel), len(res.Lossless))
	return res, nil
}

// nodeFailureNodes are a variant's own nodes, named after it and the run
// (a name is never reused: the Lease of a deleted node may outlive it), and
// the zone of each.
func nodeFailureNodes(variant string, run int) ([]controlplane.NodeSpec, map[string]string) {
	var specs []controlplane.NodeSpec
	zoneOf := map[string]string{}
	for _, z := range nodeFailureZones {
		for i := range nodeFailureNodesPerZone {
			name := fmt.Sprintf("%s-r%d-%s-%d", variant, run, z, i)
			specs = append(specs, controlplane.NodeSpec{Name: name, Zone: z})
			zoneOf[name] = z
		}
	}
	return specs, zoneOf
}

// nodeFailureDeployment is the scenario's app: a CafeDeployment
// (InPlaceSet) over the scenario's zones whose pods tolerate its nodes'
// taint, with minAvailable set.
func nodeFailureDeployment(ns string) *cafev1alpha1.CafeDeployment {
	tpl := podTemplate(imageV1)
	tpl.Spec.Tolerations = []corev1.Toleration{{Key: nodeFailureTaint, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	return &cafev1alpha1.CafeDeployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: appName},
		Spec: cafev1alpha1.CafeDeploymentSpec{
			Replicas:   ptr.To[int32](nodeFailureReplicas),
			Selector:   &metav1.LabelSelector{MatchLabels: appLabels()},
			Template:   tpl,
			PodSetType: cafev1alpha1.PodSetTypeInPlaceSet,
			Topology:   cafev1alpha1.Topology{UnitType: cafev1alpha1.UnitTypeZone, Values: nodeFailureZones},
			Strategy:   cafev1alpha1.CafeDeploymentStrategy{MinAvailable: ptr.To(intstr.FromInt32(nodeFailureMinAvailable))},
		},
	}
}

// busiest is the node of zone running most of the pods (the first by name
// on a tie).
func busiest(pods []corev1.Pod, zoneOf map[string]string, zone string) string {
	count := map[string]int{}
	for _, p := range pods {
		if zoneOf[p.Spec.NodeName] == zone {
			count[p.Spec.NodeName]++
		}
	}
	var nodes []string
	for n, z := range zoneOf {
		if z == zone {
			nodes = append(nodes, n)
		}
	}
	sort.Strings(nodes)
	best := nodes[0]
	for _, n := range nodes {
		if count[n] > count[best] {
			best = n
		}
	}
	return best
}

// setNodeLifecycleMode sets the NodeLifecyclePolicy's mode and returns how
// to set it back. CAFE creates the policy when it starts; the benchmark
// waits for it.
func (r *runner) setNodeLifecycleMode(ctx context.Context, mode cafev1alpha1.NodeLifecycleMode) (func(context.Context) error, error) {
	c := r.cluster.client
	var policy *cafev1alpha1.NodeLifecyclePolicy
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := watchUntil(waitCtx, c, &cafev1alpha1.NodeLifecyclePolicyList{}, func(objs []client.Object) bool {
		p, ok := find[*cafev1alpha1.NodeLifecyclePolicy](objs, cafev1alpha1.NodeLifecyclePolicyName)
		policy = p
		return ok
	}); err != nil {
		return nil, fmt.Errorf("waiting for CAFE to create NodeLifecyclePolicy %s: %w", cafev1alpha1.NodeLifecyclePolicyName, err)
	}
	before := policy.Spec.Mode
	set := func(ctx context.Context, m cafev1alpha1.NodeLifecycleMode) error {
		patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"mode": m}})
		if err := c.Patch(ctx, &cafev1alpha1.NodeLifecyclePolicy{ObjectMeta: metav1.ObjectMeta{Name: cafev1alpha1.NodeLifecyclePolicyName}}, client.RawPatch(types.MergePatchType, patch)); err != nil {
			return fmt.Errorf("setting the NodeLifecyclePolicy's mode to %q: %w", m, err)
		}
		return nil
	}
	if before == mode {
		return func(context.Context) error { return nil }, nil
	}
	if err := set(ctx, mode); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return set(ctx, before) }, nil
}

// stopHeartbeats stops kwok's simulation of the node's kubelet and returns
// the Lease's last renewal. Removing kwok's annotation stops the node's
// status updates but not its Lease renewals (kwok v0.8.0 never releases a
// Lease it once held), so the Lease is also handed to another holder for an
// hour: kwok renews only Leases it holds or that expired. The hand-over is
// one last renewal, because kube-controller-manager v1.37
// (NodeControllerLeaseCircuitBreaker) never judges a node whose live Lease
// changed without its renewTime advancing. With kubeletDown the node's
// kubelet endpoint is also pointed at a closed port.
func stopHeartbeats(ctx context.Context, c client.Client, node string, kubeletDown bool) (time.Time, error) {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{controlplane.KwokNodeAnnotation: nil}}})
	if err := c.Patch(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return time.Time{}, fmt.Errorf("removing kwok's annotation from node %s: %w", node, err)
	}
	var renewed time.Time
	for attempt := 0; ; attempt++ {
		lease := &coordinationv1.Lease{}
		err := c.Get(ctx, types.NamespacedName{Namespace: corev1.NamespaceNodeLease, Name: node}, lease)
		if err == nil {
			renewed = time.Now()
			lease.Spec.HolderIdentity = ptr.To(heartbeatsStoppedHolder)
			lease.Spec.LeaseDurationSeconds = ptr.To[int32](3600)
			lease.Spec.RenewTime = &metav1.MicroTime{Time: renewed}
			err = c.Update(ctx, lease)
		}
		if err == nil {
			break
		}
		// A conflict is kwok renewing at the same moment: read again.
		if !apierrors.IsConflict(err) || attempt == 20 {
			return time.Time{}, fmt.Errorf("handing the Lease of node %s over: %w", node, err)
		}
	}
	if !kubeletDown {
		return renewed, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return renewed, fmt.Errorf("finding a closed port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return renewed, err
	}
	patch, _ = json.Marshal(map[string]any{"status": map[string]any{"daemonEndpoints": map[string]any{"kubeletEndpoint": map[string]any{"Port": port}}}})
	if err := c.Status().Patch(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
		return renewed, fmt.Errorf("pointing node %s's kubelet endpoint at a closed port: %w", node, err)
	}
	return renewed, nil
}

// nodeMilestones are when a watch of the failed node first saw each step.
type nodeMilestones struct {
	// NotReady: the upstream controller set Ready to Unknown/False.
	NotReady time.Time
	// Unreachable: its node.kubernetes.io/unreachable:NoExecute taint.
	Unreachable time.Time
	// Suspect, Failed: CAFE's verdict (condition cafe.io/NodeHealthy).
	Suspect, Failed time.Time
	// CafeTainted: CAFE's cafe.io/unhealthy:NoSchedule taint.
	CafeTainted time.Time
}

// watchNode watches the node until ctx ends and then sends what it saw.
func watchNode(ctx context.Context, c client.WithWatch, name string) <-chan nodeMilestones {
	out := make(chan nodeMilestones, 1)
	go func() {
		var m nodeMilestones
		note := func(t *time.Time, happened bool) {
			if happened && t.IsZero() {
				*t = time.Now()
			}
		}
		_, _ = watchUntil(ctx, c, &corev1.NodeList{}, func(objs []client.Object) bool {
			node, ok := find[*corev1.Node](objs, name)
			if !ok {
				return false
			}
			note(&m.NotReady, !controlplane.NodeReady(node))
			for _, cond := range node.Status.Conditions {
				if string(cond.Type) == cafev1alpha1.NodeHealthyCondition {
					note(&m.Suspect, cond.Reason == string(cafev1alpha1.NodeVerdictSuspect) || cond.Reason == string(cafev1alpha1.NodeVerdictFailed))
					note(&m.Failed, cond.Reason == string(cafev1alpha1.NodeVerdictFailed))
				}
			}
			for _, t := range node.Spec.Taints {
				note(&m.Unreachable, t.Key == corev1.TaintNodeUnreachable && t.Effect == corev1.TaintEffectNoExecute)
				note(&m.CafeTainted, t.Key == cafev1alpha1.UnhealthyTaintKey && t.Effect == corev1.TaintEffectNoSchedule)
			}
			return false
		}, client.MatchingFields{"metadata.name": name})
		out <- m
	}()
	return out
}

// waitNodesReady watches until every named node is Ready.
func waitNodesReady(ctx context.Context, c client.WithWatch, names []string) error {
	var missing []string
	_, err := watchUntil(ctx, c, &corev1.NodeList{}, func(objs []client.Object) bool {
		missing = missing[:0]
		for _, n := range names {
			node, ok := find[*corev1.Node](objs, n)
			if !ok || !controlplane.NodeReady(node) {
				missing = append(missing, n)
			}
		}
		return len(missing) == 0
	})
	if err != nil {
		return fmt.Errorf("waiting for nodes to be Ready (not yet: %v): %w", missing, err)
	}
	return nil
}

// lowestReady is the fewest available pods (Ready, not terminating,
// matching selector) after any event of the stream that is not part of the
// initial list.
func lowestReady(events []watchrec.Event, selector klabels.Selector) int {
	events = slices.Clone(events)
	watchrec.SortEvents(events)
	available := map[string]bool{}
	lowest := -1
	for _, ev := range events {
		if ev.Pod == nil {
			continue
		}
		key := ev.Pod.Namespace + "/" + ev.Pod.Name
		if ev.Type != watchrec.Deleted && !ev.LeftFilter && ev.Pod.DeletionTimestamp == nil && selector.Matches(klabels.Set(ev.Pod.Labels)) && podutil.Ready(ev.Pod) {
			available[key] = true
		} else {
			delete(available, key)
		}
		if !ev.Synthetic && (lowest < 0 || len(available) < lowest) {
			lowest = len(available)
		}
	}
	if lowest < 0 {
		return len(available)
	}
	return lowest
}

func violations(vs []watchrec.Violation) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.String())
	}
	return out
}

// tearDownNodeFailure deletes the namespace and, once it is gone, the
// variant's nodes and their Leases. The failed node's pods can never finish
// terminating by themselves (no kubelet confirms their deletion), so the
// benchmark force-deletes them, as an operator would a dead machine's.
func (r *runner) tearDownNodeFailure(ctx context.Context, ns, victim string, specs []controlplane.NodeSpec) error {
	c := r.cluster.client
	var errs []error
	err := c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if client.IgnoreNotFound(err) != nil {
		errs = append(errs, fmt.Errorf("deleting namespace %s: %w", ns, err))
	}
	if victim != "" {
		pods := &corev1.PodList{}
		if err := c.List(ctx, pods, client.InNamespace(ns)); err != nil {
			errs = append(errs, fmt.Errorf("listing the pods of %s: %w", ns, err))
		}
		for i := range pods.Items {
			if p := &pods.Items[i]; p.Spec.NodeName == victim {
				if err := c.Delete(ctx, p, client.GracePeriodSeconds(0)); client.IgnoreNotFound(err) != nil {
					errs = append(errs, fmt.Errorf("force-deleting pod %s of the failed node: %w", p.Name, err))
				}
			}
		}
	}
	if err := waitNamespaceGone(ctx, c, ns); err != nil {
		errs = append(errs, err)
	}
	for _, s := range specs {
		if err := c.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: s.Name}}); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("deleting node %s: %w", s.Name, err))
		}
		if err := c.Delete(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: corev1.NamespaceNodeLease, Name: s.Name}}); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("deleting the Lease of node %s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

func optSeconds(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return seconds(d)
}
