package releaseorder

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/audit"
	"github.com/cafe-io/cafe/internal/conflict"
	"github.com/cafe-io/cafe/internal/controllerqueue"
	"github.com/cafe-io/cafe/internal/seal"
)

// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=cafe.io,resources=classicinstances,verbs=get;list;watch
// +kubebuilder:rbac:groups=cafe.io,resources=releaseorders,verbs=get;list;watch;delete;purge
// +kubebuilder:rbac:groups=cafe.io,resources=releaseorders/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=cafe.io,resources=releaseactions,verbs=get;list;watch
// +kubebuilder:rbac:groups=cafe.io,resources=cafeappservices,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=cafe.io,resources=apprevisions,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=cafe.io,resources=cafedeployments,verbs=get;list;watch;patch

// Index names of the controller's cache.
const (
	// ActionOrderIndex indexes ReleaseActions by spec.order.
	ActionOrderIndex = "spec.order"
	// OrderAppIndex indexes ReleaseOrders by the names of their apps.
	OrderAppIndex = "spec.apps.name"
)

// Reconciler drives ReleaseOrders: it processes their actions, releases
// their apps in dependency order through each app's spec.publishedRevision,
// follows the releases, applies the failure policy and keeps the signed
// audit trail, all from the order's status so that a restart resumes where
// the order stood.
type Reconciler struct {
	Client client.Client
	// APIReader reads the order itself uncached: a decision is only ever
	// made from the order's latest status (the write is locked on it too).
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Namespace holds the audit signing key (CAFE's namespace).
	Namespace string
	// KeyClient reads and creates the signing key Secret and the public
	// key ConfigMap uncached: a cached read would start a cluster-wide
	// informer on ConfigMaps, which CAFE may not list. Nil means Client.
	KeyClient client.Client
	// Seals holds the key that verifies the identities CAFE's admission
	// webhook stamped (nil: one reading KeyClient in Namespace).
	Seals *seal.Loader
	// Approval is the cluster's approval policy.
	Approval cafev1alpha1.ApprovalPolicy
	// Retention is the cluster's retention policy for finished orders: CAFE
	// deletes a finished order once Retention (and its spec.retentionDays,
	// which can only lengthen it) has passed. Zero keeps orders forever.
	Retention time.Duration
	// IdleTimeout is the cluster's limit on an order that changed no app
	// (pending approval, approved but not started, held before its first
	// app): once nobody acted on it for this long CAFE cancels it, reason
	// Expired, so that an order cannot hold its apps against others
	// forever. Zero never expires orders.
	IdleTimeout time.Duration
	// KeyRecheck is how often the signing key is checked against the
	// published one, so that a rotation is picked up and a replaced Secret
	// stops signing without a restart. Zero means audit.DefaultKeyRecheck.
	KeyRecheck time.Duration
	// Now is the clock; tests may replace it.
	Now func() time.Time

	keysMu sync.Mutex
	keys   *signingKeys
}

// signingKeys is the key the controller signs with and the published keys
// it checks trails against, as read at checkedAt.
type signingKeys struct {
	signer    audit.Signer
	ring      audit.KeyRing
	checkedAt time.Time
}

var _ reconcile.Reconciler = &Reconciler{}

// SetupWithManager registers the controller, its indexes and the runnable
// that creates the audit signing key at start.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Client == nil || r.APIReader == nil || r.Recorder == nil || r.Namespace == "" {
		return errors.New("releaseorder: Client, APIReader, Recorder and Namespace are required")
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Seals == nil {
		r.Seals = &seal.Loader{Client: r.keyClient(), Namespace: r.Namespace}
	}
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &cafev1alpha1.ReleaseAction{}, ActionOrderIndex, func(o client.Object) []string {
		return []string{o.(*cafev1alpha1.ReleaseAction).Spec.Order}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &cafev1alpha1.ReleaseOrder{}, OrderAppIndex, func(o client.Object) []string {
		var names []string
		for _, a := range o.(*cafev1alpha1.ReleaseOrder).Spec.Apps {
			names = append(names, a.Name)
		}
		return names
	}); err != nil {
		return err
	}
	// The signing key is created at first start, not at the first order,
	// so that the public key is published for auditors from the start. It
	// is retried by the reconciler if the namespace is not there yet.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		if _, err := r.signingKeys(ctx); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Creating the audit signing key; retried at the first release order")
		}
		return nil
	})); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		WithOptions(controllerqueue.Options(controller.Options{})).
		For(&cafev1alpha1.ReleaseOrder{}).
		// A person acts on an order by creating a ReleaseAction.
		Watches(&cafev1alpha1.ReleaseAction{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []ctrl.Request {
			return []ctrl.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.(*cafev1alpha1.ReleaseAction).Spec.Order}}}
		})).
		// An app's status says when its release succeeded or failed.
		Watches(&cafev1alpha1.CafeAppService{}, handler.EnqueueRequestsFromMapFunc(r.ordersOfApp)).
		// Its CafeDeployment says which group runs and whether it waits for
		// a confirmation (the CafeDeployment is named after the app).
		Watches(&cafev1alpha1.CafeDeployment{}, handler.EnqueueRequestsFromMapFunc(r.ordersOfApp)).
		Named("releaseorder").
		Complete(r)
}

// ordersOfApp maps an app (or its CafeDeployment, of the same name) to the
// open orders that release it.
func (r *Reconciler) ordersOfApp(ctx context.Context, o client.Object) []ctrl.Request {
	list := &cafev1alpha1.ReleaseOrderList{}
	if err := r.Client.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{OrderAppIndex: o.GetName()}); err != nil {
		return nil
	}
	var out []ctrl.Request
	for _, ro := range list.Items {
		if !ro.IsFinished() {
			out = append(out, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&ro)})
		}
	}
	return out
}

// signingKeys returns the signing key and the published keys, read again
// once KeyRecheck has passed: the API holds them, memory only caches them.
func (r *Reconciler) signingKeys(ctx context.Context) (signingKeys, error) {
	r.keysMu.Lock()
	defer r.keysMu.Unlock()
	now := r.Now()
	if r.keys != nil && now.Sub(r.keys.checkedAt) < r.keyRecheck() {
		return *r.keys, nil
	}
	s, bundle, err := audit.EnsureSigner(ctx, r.keyClient(), r.Namespace)
	if err != nil {
		r.keys = nil
		return signingKeys{}, err
	}
	if r.keys == nil || r.keys.signer.ID() != s.ID() {
		ctrl.LoggerFrom(ctx).Info("Signing audit trails", "keyID", s.ID(), "publishedKeys", bundle.Ring().IDs())
	}
	r.keys = &signingKeys{signer: s, ring: bundle.Ring(), checkedAt: now}
	return *r.keys, nil
}

func (r *Reconciler) keyClient() client.Client {
	if r.KeyClient == nil {
		return r.Client
	}
	return r.KeyClient
}

// Reconcile gathers the order, its unprocessed actions and its apps,
// decides (the pure decide), writes the status with its audit entries in one
// write, then makes the apps match the status (applyEffects).
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	order := &cafev1alpha1.ReleaseOrder{}
	if err := r.APIReader.Get(ctx, req.NamespacedName, order); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !order.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	keys, err := r.signingKeys(ctx)
	switch {
	case errors.Is(err, audit.ErrKeyNotPublished):
		return r.refuseToSign(ctx, order, cafev1alpha1.AuditReasonSigningKeyNotPublished, err)
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("audit signing key: %w", err)
	}
	// Chain only onto the trail CAFE signed: one shortened, edited or
	// forged through the status subresource is reported, not extended.
	if p := audit.CheckIntact(audit.OrderRecord(order), keys.ring); p != nil {
		return r.refuseToSign(ctx, order, cafev1alpha1.AuditReasonTrailTampered, p)
	}
	seals, err := r.Seals.Key(ctx)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("identity seal key: %w", err)
	}
	actions, err := r.unprocessedActions(ctx, order)
	if err != nil {
		return ctrl.Result{}, err
	}
	apps, err := r.readApps(ctx, order)
	if err != nil {
		return ctrl.Result{}, err
	}
	before := order.DeepCopy()
	now := r.Now()
	subject := audit.SubjectOf(order)
	decision := decide(order, actions, apps, now, func(trail []cafev1alpha1.AuditEntry, e cafev1alpha1.AuditEntry) []cafev1alpha1.AuditEntry {
		return keys.signer.Append(subject, trail, e)
	}, orderRules{Identity: seals, Approval: r.Approval, IdleTimeout: r.IdleTimeout})
	sealAudit(order, before, keys.signer)
	if !equality.Semantic.DeepEqual(before.Status, order.Status) {
		// Locked on the resourceVersion read: a status written meanwhile
		// (another replica, a stale read) makes this write fail instead of
		// losing its audit entries.
		if err := r.Client.Status().Update(ctx, order); err != nil {
			if apierrors.IsConflict(err) {
				return ctrl.Result{RequeueAfter: conflict.Retry}, nil
			}
			return ctrl.Result{}, fmt.Errorf("writing the status of ReleaseOrder %s: %w", req, err)
		}
		if h := order.Status.AuditHead; h != nil && !equality.Semantic.DeepEqual(h, before.Status.AuditHead) {
			// Outside the cluster too (shipped logs): the head a verifier
			// can hold a trail to.
			log.Info("Audit head", "ReleaseOrder", klog.KObj(order), "uid", order.UID, "count", h.Count, "hash", h.Hash, "keyID", h.KeyID)
		}
		r.report(order, before, decision)
	}
	if err := r.applyEffects(ctx, order); err != nil {
		return ctrl.Result{}, err
	}
	result := ctrl.Result{RequeueAfter: decision.RequeueAfter}
	if keep, ok := retentionOf(order, r.Retention); ok && order.IsFinished() && order.Status.FinishedAt != nil {
		deleteAt := order.Status.FinishedAt.Add(keep)
		if !now.Before(deleteAt) {
			log.Info("Deleting finished release order past its retention", "ReleaseOrder", klog.KObj(order))
			return ctrl.Result{}, client.IgnoreNotFound(r.Client.Delete(ctx, order, client.Preconditions{UID: ptr.To(order.UID)}))
		}
		if after := deleteAt.Sub(now); result.RequeueAfter == 0 || after < result.RequeueAfter {
			result.RequeueAfter = after
		}
	}
	return result, nil
}

// unprocessedActions lists the order's actions; decide picks the ones not
// processed yet, in the order they were admitted (pendingActions).
func (r *Reconciler) unprocessedActions(ctx context.Context, order *cafev1alpha1.ReleaseOrder) ([]cafev1alpha1.ReleaseAction, error) {
	list := &cafev1alpha1.ReleaseActionList{}
	if err := r.Client.List(ctx, list, client.InNamespace(order.Namespace), client.MatchingFields{ActionOrderIndex: order.Name}); err != nil {
		return nil, fmt.Errorf("listing the actions of %s: %w", order.Name, err)
	}
	var out []cafev1alpha1.ReleaseAction
	for _, a := range list.Items {
		// An action created before the order (same name, an older order)
		// is not this order's.
		if !a.CreationTimestamp.Before(&order.CreationTimestamp) {
			out = append(out, a)
		}
	}
	return out, nil
}

// readApps observes every app of the order.
func (r *Reconciler) readApps(ctx context.Context, order *cafev1alpha1.ReleaseOrder) (map[string]appObservation, error) {
	out := map[string]appObservation{}
	for _, a := range order.Spec.Apps {
		v, err := r.readApp(ctx, order, a.Name)
		if err != nil {
			return nil, err
		}
		out[a.Name] = v
	}
	return out, nil
}

// readApp observes one app of the order: its CafeAppService, the outcomes
// of the order's revisions of it and the release of its CafeDeployment.
func (r *Reconciler) readApp(ctx context.Context, order *cafev1alpha1.ReleaseOrder, name string) (appObservation, error) {
	v := appObservation{Outcomes: map[string]cafev1alpha1.ReleaseOutcome{}}
	app := &cafev1alpha1.CafeAppService{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: order.Namespace, Name: name}, app)
	switch {
	case apierrors.IsNotFound(err):
		return v, nil
	case err != nil:
		return v, fmt.Errorf("reading CafeAppService %s: %w", name, err)
	}
	v.Exists = true
	v.OutsideChanges = outsideChanges(app.Annotations)
	v.Published, v.Generation = app.Spec.PublishedRevision, app.Generation
	v.ObservedGeneration, v.StatusPublished = app.Status.ObservedGeneration, app.Status.PublishedRevision
	if c := meta.FindStatusCondition(app.Status.Conditions, cafev1alpha1.AppReadyCondition); c != nil {
		v.Ready = c.Status == "True" && c.ObservedGeneration == app.Generation
	}
	s := app.Spec.Workload.Strategy
	v.Strategy = cafev1alpha1.ReleaseOrderAppStrategy{BatchSize: s.BatchSize, Groups: s.Groups, NeedWaitingForConfirm: s.NeedWaitingForConfirm}
	revs := []string{order.Spec.App(name).Revision}
	if st := order.Status.AppStatus(name); st != nil && st.FromRevision != "" {
		revs = append(revs, st.FromRevision)
	}
	for _, rn := range revs {
		rev := &cafev1alpha1.AppRevision{}
		if err := r.Client.Get(ctx, client.ObjectKey{Namespace: order.Namespace, Name: rn}, rev); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return v, fmt.Errorf("reading AppRevision %s: %w", rn, err)
		}
		v.Outcomes[rn] = rev.Status.Outcome
	}
	cd := &cafev1alpha1.CafeDeployment{}
	reader := client.Reader(r.Client)
	if v.Outcomes[order.Spec.App(name).Revision] == cafev1alpha1.ReleaseOutcomeFailed {
		// The app fails on this observation: its release's last state (the
		// verdict that failed it, for the trail) is read from the API
		// server, not from a cache that may lag the revision's.
		reader = r.APIReader
	}
	err = reader.Get(ctx, client.ObjectKey{Namespace: order.Namespace, Name: name}, cd)
	switch {
	case apierrors.IsNotFound(err):
		return v, nil
	case err != nil:
		return v, fmt.Errorf("reading CafeDeployment %s: %w", name, err)
	}
	rel := cd.Status.Release
	v.ReleasePhase, v.CurrentGroup, v.TotalGroups = rel.Phase, ptr.Deref(rel.CurrentGroup, 0), ptr.Deref(rel.TotalGroups, 0)
	for _, g := range rel.Groups {
		if g.FinishTime != nil {
			v.GroupsDone++
		}
	}
	v.OutsideChanges = append(v.OutsideChanges, outsideChanges(cd.Annotations)...)
	v.Updated = ptr.Deref(cd.Status.UpdatedReplicas, 0)
	v.Paused = cd.Spec.Strategy.Pause
	if rel.Phase == cafev1alpha1.ReleasePhaseWaitingForConfirm && rel.CurrentGroup != nil {
		v.WaitingGroup = ptr.To(*rel.CurrentGroup)
	}
	v.Verdicts = trafficVerdicts(cd)
	if rel.Phase == cafev1alpha1.ReleasePhaseCompleted {
		if v.Members, err = r.readMembers(ctx, order.Namespace, name); err != nil {
			return v, err
		}
	}
	return v, nil
}

// trafficVerdicts are the verdicts on the traffic steps of the
// CafeDeployment's release.
func trafficVerdicts(cd *cafev1alpha1.CafeDeployment) []trafficVerdict {
	var out []trafficVerdict
	for _, g := range cd.Status.Release.Groups {
		st := g.Traffic
		if st == nil || st.StartTime == nil || (st.Verdict != cafev1alpha1.AnalysisPassed && st.Verdict != cafev1alpha1.AnalysisFailed) {
			continue
		}
		tv := trafficVerdict{Group: g.Index, Split: st.Split, Verdict: st.Verdict, Reason: st.VerdictReason, Started: st.StartTime.Time, OverriddenBy: st.OverriddenBy}
		if step := cd.Spec.Strategy.TrafficStepAfter(g.Index); step != nil && step.Analysis != nil {
			tv.Analysis = step.Analysis.Name
		}
		if n := len(st.Measurements); n > 0 {
			tv.Values = st.Measurements[n-1].Metrics
		}
		out = append(out, tv)
	}
	return out
}

// readMembers lists the app's pods and classic instances (by the app
// label every one carries) from the cache.
func (r *Reconciler) readMembers(ctx context.Context, ns, app string) ([]appMember, error) {
	selector := client.MatchingLabels{cafev1alpha1.AppLabel: app}
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.InNamespace(ns), selector, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing the pods of app %s: %w", app, err)
	}
	instances := &cafev1alpha1.ClassicInstanceList{}
	if err := r.Client.List(ctx, instances, client.InNamespace(ns), selector, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing the classic instances of app %s: %w", app, err)
	}
	members := make([]appMember, 0, len(pods.Items)+len(instances.Items))
	for _, p := range pods.Items {
		if p.DeletionTimestamp.IsZero() {
			members = append(members, appMember{Kind: "pod", Name: p.Name, Revision: p.Labels[cafev1alpha1.AppRevisionLabel], Place: p.Spec.NodeName})
		}
	}
	for _, in := range instances.Items {
		if in.DeletionTimestamp.IsZero() {
			members = append(members, appMember{Kind: "classic instance", Name: in.Name, Revision: in.Labels[cafev1alpha1.AppRevisionLabel], Place: in.Spec.HostName})
		}
	}
	return members, nil
}

// report records metrics and events of what the written status changed.
func (r *Reconciler) report(order, before *cafev1alpha1.ReleaseOrder, d orderDecision) {
	for _, o := range d.Observations {
		observe(order, o)
	}
	if before.Status.Phase != order.Status.Phase {
		r.Recorder.Eventf(order, nil, "Normal", string(order.Status.Phase), "Phase", "%s", order.Status.Message)
	}
}

// sealAudit signs the head of a trail decide appended to, and marks a trail
// CAFE had refused to sign as intact again.
func sealAudit(order, before *cafev1alpha1.ReleaseOrder, s audit.Signer) {
	if len(order.Status.Audit) != len(before.Status.Audit) {
		order.Status.AuditHead = s.Head(audit.SubjectOf(order), order.Status.Audit)
	}
	if meta.IsStatusConditionFalse(order.Status.Conditions, cafev1alpha1.OrderAuditIntactCondition) {
		meta.SetStatusCondition(&order.Status.Conditions, metav1.Condition{
			Type: cafev1alpha1.OrderAuditIntactCondition, Status: metav1.ConditionTrue, Reason: cafev1alpha1.AuditReasonIntact,
			Message: "the trail chains to its signed head and CAFE signs with the published key", ObservedGeneration: order.Generation,
		})
	}
}

// refuseToSign stops the order where it stands: a change CAFE cannot sign
// onto an intact trail is not made. The order's AuditIntact condition and a
// Warning event say why; the check is repeated after KeyRecheck, so a
// restored or rotated key resumes the order.
func (r *Reconciler) refuseToSign(ctx context.Context, order *cafev1alpha1.ReleaseOrder, reason string, cause error) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx).WithValues("ReleaseOrder", klog.KObj(order), "reason", reason)
	msg := truncateMessage(fmt.Sprintf("CAFE does not sign this order's trail, so the order does not progress: %v", cause))
	cond := metav1.Condition{Type: cafev1alpha1.OrderAuditIntactCondition, Status: metav1.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: order.Generation}
	if !meta.SetStatusCondition(&order.Status.Conditions, cond) {
		log.V(1).Info("Still not signing the audit trail of the release order", "cause", cause.Error())
	} else {
		log.Info("Not signing the audit trail of the release order", "cause", cause.Error())
		if err := r.Client.Status().Update(ctx, order); err != nil {
			if apierrors.IsConflict(err) {
				return ctrl.Result{RequeueAfter: conflict.Retry}, nil
			}
			return ctrl.Result{}, fmt.Errorf("writing the AuditIntact condition of ReleaseOrder %s: %w", klog.KObj(order), err)
		}
		r.Recorder.Eventf(order, nil, "Warning", reason, "Audit", "%s", msg)
	}
	return ctrl.Result{RequeueAfter: r.keyRecheck()}, nil
}

func (r *Reconciler) keyRecheck() time.Duration {
	if r.KeyRecheck <= 0 {
		return audit.DefaultKeyRecheck
	}
	return r.KeyRecheck
}

func truncateMessage(s string) string {
	if len(s) > 32768 {
		return s[:32768]
	}
	return s
}

// retentionOf is how long a finished order is kept, and false when it is
// kept forever. The cluster's policy decides; an order's retentionDays can
// only lengthen it, never shorten it: the record is not its requester's to
// remove.
func retentionOf(order *cafev1alpha1.ReleaseOrder, policy time.Duration) (time.Duration, bool) {
	if policy <= 0 {
		return 0, false
	}
	if d := order.Spec.RetentionDays; d != nil {
		if own := time.Duration(*d) * 24 * time.Hour; own > policy {
			return own, true
		}
	}
	return policy, true
}
