// Package classichost keeps the Ready condition of classic hosts: True
// while the host's agent renews its Lease in cafe-host-lease (and says it
// can run instances), Unknown once the heartbeats stop, the way the node
// lifecycle judges a kubelet's Lease.
package classichost

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controllerqueue"
	"github.com/cafe-io/cafe/internal/httpcheck"
	"github.com/cafe-io/cafe/internal/ssa"
)

// +kubebuilder:rbac:groups=cafe.io,resources=classichosts,verbs=get;list;watch
// +kubebuilder:rbac:groups=cafe.io,resources=classichosts/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=cafe-host-lease,resources=leases,verbs=get;list;watch

// FieldOwner is the server-side-apply field manager of the Ready
// condition: the agent applies its own (AgentReady, agentVersion) under
// another, so neither write can undo the other's.
const FieldOwner = client.FieldOwner("cafe-classichost-controller")

// DefaultStaleAfter is how long a heartbeat counts: four renewals of the
// agent's default 10 s interval, kube-controller-manager's node monitor
// grace period.
const DefaultStaleAfter = 40 * time.Second

// Reconciler writes each ClassicHost's Ready condition.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// Now is the clock; tests may replace it.
	Now func() time.Time
	// StaleAfter is how long after its renewTime a Lease still counts
	// (default DefaultStaleAfter).
	StaleAfter time.Duration
	// ProbePeriod is how often each host's agent endpoint is probed
	// (default DefaultProbePeriod); UnreachableAfter how long it must fail
	// before the host is unreachable (default DefaultUnreachableAfter).
	ProbePeriod, UnreachableAfter time.Duration
	// Prober probes an agent's endpoint; default an HTTP GET of /healthz
	// with a one-second timeout, through no proxy.
	Prober func(ctx context.Context, address string, port int32) error
}

// Defaults of the reachability probe: every 2 s, unreachable after 6 s of
// failures (three probes).
const (
	DefaultProbePeriod      = 2 * time.Second
	DefaultUnreachableAfter = 6 * time.Second
)

// SetupWithManager registers the controller: a host is reconciled when it
// changes and when its Lease is created, renewed or deleted.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Client == nil || r.Recorder == nil {
		return errors.New("classichost: Client and Recorder are required")
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.StaleAfter == 0 {
		r.StaleAfter = DefaultStaleAfter
	}
	if r.ProbePeriod == 0 {
		r.ProbePeriod = DefaultProbePeriod
	}
	if r.UnreachableAfter == 0 {
		r.UnreachableAfter = DefaultUnreachableAfter
	}
	if r.Prober == nil {
		r.Prober = httpProbe
	}
	hostOfLease := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []ctrl.Request {
		return []ctrl.Request{{NamespacedName: client.ObjectKey{Name: o.GetName()}}}
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("classichost").
		For(&cafev1alpha1.ClassicHost{}).
		// A probe takes up to a second: a slow host must not hold up the
		// others' judgements.
		WithOptions(controllerqueue.Options(controller.Options{MaxConcurrentReconciles: 4})).
		Watches(&coordinationv1.Lease{}, hostOfLease, builder.WithPredicates(inHostLeaseNamespace)).
		Complete(r)
}

// inHostLeaseNamespace passes the Leases of classic hosts only.
var inHostLeaseNamespace = predicate.NewPredicateFuncs(func(o client.Object) bool {
	return o.GetNamespace() == cafev1alpha1.ClassicHostLeaseNamespace
})

// Reconcile judges one host's heartbeat and applies its Ready condition.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	host := &cafev1alpha1.ClassicHost{}
	if err := r.Client.Get(ctx, req.NamespacedName, host); err != nil {
		if apierrors.IsNotFound(err) {
			hostReady.DeletePartialMatch(map[string]string{"host": req.Name})
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("reading host %s: %w", req.Name, err)
	}
	lease, err := r.lease(ctx, host.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	reachable := judgeReachable(host, r.probe(ctx, host), r.Now(), r.UnreachableAfter)
	judged := judgeReady(host, lease, reachable, r.Now(), r.StaleAfter)
	recordReady(host, judged.Condition.Status)
	requeue := ctrl.Result{RequeueAfter: r.ProbePeriod}
	if judged.Recheck > 0 && judged.Recheck < r.ProbePeriod {
		requeue.RequeueAfter = judged.Recheck
	}
	previousReachable := meta.FindStatusCondition(host.Status.Conditions, cafev1alpha1.ClassicHostReachableCondition)
	if sameStatusAndReason(previousReachable, reachable) {
		reachable.Message = previousReachable.Message // the probe's error text varies; a write per probe would not help
	}
	if ssa.SameCondition(host.Status.Conditions, judged.Condition) && ssa.SameCondition(host.Status.Conditions, reachable) {
		return requeue, nil
	}
	if err := r.applyConditions(ctx, host, judged.Condition, reachable); err != nil {
		return ctrl.Result{}, err
	}
	if ssa.SameCondition(host.Status.Conditions, judged.Condition) {
		return requeue, nil
	}
	log.FromContext(ctx).Info("host readiness changed", "host", host.Name, "status", judged.Condition.Status, "reason", judged.Condition.Reason)
	eventType := corev1.EventTypeNormal
	if judged.Condition.Status != metav1.ConditionTrue {
		eventType = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(host, nil, eventType, judged.Condition.Reason, "Judge", "%s", judged.Condition.Message)
	return requeue, nil
}

// probe probes the host's agent endpoint; nil when it has none (the
// judgement says so).
func (r *Reconciler) probe(ctx context.Context, host *cafev1alpha1.ClassicHost) error {
	if host.Status.AgentEndpoint == nil {
		return nil
	}
	return r.Prober(ctx, host.Spec.Address, host.Status.AgentEndpoint.Port)
}

// probeClient sends probes straight to the host, within a second.
var probeClient = httpcheck.NewClient(time.Second)

// httpProbe GETs http://<address>:<port>/healthz and wants a 2xx answer.
func httpProbe(ctx context.Context, address string, port int32) error {
	return httpcheck.Get(ctx, probeClient, "http://"+net.JoinHostPort(address, strconv.Itoa(int(port)))+"/healthz")
}

// lease reads the host's heartbeat Lease (nil when it has none).
func (r *Reconciler) lease(ctx context.Context, host string) (*coordinationv1.Lease, error) {
	lease := &coordinationv1.Lease{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: cafev1alpha1.ClassicHostLeaseNamespace, Name: host}, lease)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the Lease of host %s: %w", host, err)
	}
	return lease, nil
}

// sameStatusAndReason: the same judgement, whatever the message says.
func sameStatusAndReason(previous *metav1.Condition, cond metav1.Condition) bool {
	return previous != nil && previous.Status == cond.Status && previous.Reason == cond.Reason
}

// applyConditions applies the controller's conditions (Ready, Reachable:
// always both, since an applied list entry left out is dropped) and
// observedGeneration under the controller's field manager; the agent's
// fields are not in the request.
func (r *Reconciler) applyConditions(ctx context.Context, host *cafev1alpha1.ClassicHost, conds ...metav1.Condition) error {
	body, err := ssa.ClassicHostConditions(host, r.Now(), conds...)
	if err != nil {
		return err
	}
	if err := r.Client.Status().Apply(ctx, body, FieldOwner, client.ForceOwnership); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil // gone, or replaced by a host of the same name: its own event follows
		}
		return fmt.Errorf("applying the conditions of host %s: %w", host.Name, err)
	}
	return nil
}
