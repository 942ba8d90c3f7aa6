// Package releaseorder holds the admission webhooks of ReleaseOrder and
// ReleaseAction:
//
//   - Stamper (mutating, ReleaseOrder and ReleaseAction CREATE) writes the
//     user the API server authenticated into spec.requestedBy of an order
//     and spec.actor of an action (with their groups, and the action's
//     admission time), refuses a request that names someone else or comes
//     from CAFE's own identity, and seals the stamp (internal/seal) so the
//     controller can tell it from a forged one. Both specs are immutable
//     (CEL), so the stamp stays what the API server said.
//   - OrderValidator (validating, ReleaseOrder CREATE and DELETE) refuses a
//     dependency cycle, an app or revision that does not exist, an app that
//     another open order changes, and deleting an open order — each naming
//     the field. A finished order is the record: deleting it needs the
//     verb purge on it (SubjectAccessReview), which CAFE's own retention
//     has and a requester does not.
//   - ActionValidator (validating, ReleaseAction CREATE) refuses an action
//     the user may not take — a SubjectAccessReview on the verb of the
//     action on releaseorders, so RBAC decides — an approval by the
//     requester, and an action the order's phase does not allow.
//
// The controller checks the phase and the four-eyes rule again when it
// processes the action: admission and processing are apart in time.
package releaseorder

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/admit"
	"github.com/cafe-io/cafe/internal/release/plan"
	"github.com/cafe-io/cafe/internal/seal"
)

// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// Paths the webhooks are served at.
const (
	MutatePath         = "/mutate-cafe-io-v1alpha1-release"
	ValidateOrderPath  = "/validate-cafe-io-v1alpha1-releaseorder"
	ValidateActionPath = "/validate-cafe-io-v1alpha1-releaseaction"
)

// Stamper stamps the authenticated user on orders and actions, and seals
// the stamp.
type Stamper struct {
	// Seals holds the key stamps are sealed with.
	Seals *seal.Loader
	// Clock gives actions their admission time, strictly increasing.
	Clock *seal.Clock
}

// Handle implements admission.Handler.
func (s *Stamper) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create {
		return admission.Allowed("")
	}
	key, err := s.Seals.Key(ctx)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	groups := req.UserInfo.Groups
	switch req.Kind.Kind {
	case "ReleaseOrder":
		return admit.Stamp(req, "ReleaseOrder", "", nil, func(_, o *cafev1alpha1.ReleaseOrder, user string, _ time.Time) (bool, error) {
			return true, StampOrder(o, user, groups, key)
		})
	case "ReleaseAction":
		return admit.Stamp(req, "ReleaseAction", "", nil, func(_, a *cafev1alpha1.ReleaseAction, user string, _ time.Time) (bool, error) {
			return true, StampAction(a, user, groups, s.Clock.Next(), key)
		})
	}
	return admission.Allowed("")
}

// StampOrder writes the requester into a new order and seals it, refusing
// a client that names someone else, writes a seal, or is CAFE itself.
func StampOrder(o *cafev1alpha1.ReleaseOrder, user string, groups []string, key seal.Key) error {
	switch {
	case user == cafev1alpha1.ControllerIdentity:
		return fmt.Errorf("spec.requestedBy: %s is CAFE's own identity, reserved for what CAFE does itself; a person requests an order", user)
	case o.Spec.RequestedBy != "" && o.Spec.RequestedBy != user:
		return fmt.Errorf("spec.requestedBy: set by CAFE from the authenticated user (%s); it cannot name %q", user, o.Spec.RequestedBy)
	case o.Spec.Seal != "":
		return fmt.Errorf("spec.seal: set by CAFE's admission webhook; a client cannot write it")
	}
	o.Spec.RequestedBy, o.Spec.RequestedByGroups = user, boundGroups(groups)
	o.Spec.Seal = key.Order(o.Namespace, o.Spec)
	return nil
}

// StampAction writes the actor and the admission time into a new action
// and seals them, refusing a client that names someone else, writes a
// stamp, or is CAFE itself; it labels the action with its order.
func StampAction(a *cafev1alpha1.ReleaseAction, user string, groups []string, at metav1.MicroTime, key seal.Key) error {
	switch {
	case user == cafev1alpha1.ControllerIdentity:
		return fmt.Errorf("spec.actor: %s is CAFE's own identity, reserved for what CAFE does itself; a person acts on an order", user)
	case a.Spec.Actor != "" && a.Spec.Actor != user:
		return fmt.Errorf("spec.actor: set by CAFE from the authenticated user (%s); it cannot name %q", user, a.Spec.Actor)
	case a.Spec.ActorGroups != nil && !slices.Equal(a.Spec.ActorGroups, boundGroups(groups)):
		return fmt.Errorf("spec.actorGroups: set by CAFE from the authenticated user's groups; a client cannot write them")
	case a.Spec.AdmittedAt != nil:
		return fmt.Errorf("spec.admittedAt: set by CAFE's admission webhook; a client cannot write it")
	case a.Spec.Seal != "":
		return fmt.Errorf("spec.seal: set by CAFE's admission webhook; a client cannot write it")
	}
	a.Spec.Actor, a.Spec.ActorGroups, a.Spec.AdmittedAt = user, boundGroups(groups), &at
	a.Spec.Seal = key.Action(a.Namespace, a.Spec)
	metav1.SetMetaDataLabel(&a.ObjectMeta, cafev1alpha1.ReleaseOrderLabel, cafev1alpha1.ReleaseOrderLabelValue(a.Spec.Order))
	return nil
}

func boundGroups(groups []string) []string {
	if len(groups) > 64 {
		groups = groups[:64]
	}
	return slices.Clone(groups)
}

// PurgeVerb is the RBAC verb on releaseorders that allows deleting a
// finished order (its record). CAFE's ServiceAccount has it, for the
// cluster's retention policy; no shipped role for people does.
const PurgeVerb = "purge"

// OrderValidator judges what the CRD cannot.
type OrderValidator struct {
	// Reader reads apps, revisions and orders uncached.
	Reader client.Reader
	// Client creates SubjectAccessReviews.
	Client client.Client
}

// Handle implements admission.Handler.
func (v OrderValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	switch req.Operation {
	case admissionv1.Delete:
		o := &cafev1alpha1.ReleaseOrder{}
		if err := admit.Decode(req.OldObject, o, "ReleaseOrder"); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		ns := &corev1.Namespace{}
		if err := v.Reader.Get(ctx, client.ObjectKey{Name: o.Namespace}, ns); err == nil && !ns.DeletionTimestamp.IsZero() {
			return admission.Allowed("the namespace is being deleted")
		}
		if !o.IsFinished() {
			return admission.Denied(fmt.Sprintf("ReleaseOrder %s/%s is %s: an open order cannot be deleted (it is the record); cancel it first (cafe release cancel %s -n %s)",
				o.Namespace, o.Name, o.EffectivePhase(), o.Name, o.Namespace))
		}
		return v.mayPurge(ctx, req, o)
	case admissionv1.Create:
		o := &cafev1alpha1.ReleaseOrder{}
		if err := admit.Decode(req.Object, o, "ReleaseOrder"); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		w, err := v.gather(ctx, o)
		if err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		return admit.Verdict(ValidateOrder(o, w))
	}
	return admission.Allowed("")
}

// mayPurge allows deleting a finished order only to an identity RBAC grants
// the verb purge on it: the record is the cluster's, kept by its retention
// policy, not its requester's to remove.
func (v OrderValidator) mayPurge(ctx context.Context, req admission.Request, o *cafev1alpha1.ReleaseOrder) admission.Response {
	allowed, reason, err := authorize(ctx, v.Client, req, o.Namespace, PurgeVerb, o.Name)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	if allowed {
		return admission.Allowed("")
	}
	msg := fmt.Sprintf("ReleaseOrder %s/%s is the record of a finished release: CAFE deletes it under the cluster's retention policy; %s may not delete it: RBAC grants no verb %q on releaseorders (cafe.io) to them",
		o.Namespace, o.Name, req.UserInfo.Username, PurgeVerb)
	if reason != "" {
		msg += " (" + reason + ")"
	}
	return admission.Denied(msg)
}

// OrderWorld is what ValidateOrder checks an order against.
type OrderWorld struct {
	// Apps are the CafeAppServices of the namespace the order names, by
	// name (missing: does not exist).
	Apps map[string]*cafev1alpha1.CafeAppService
	// Revisions are the AppRevisions the order names (missing: does not
	// exist).
	Revisions map[string]*cafev1alpha1.AppRevision
	// Orders are the other orders of the namespace.
	Orders []cafev1alpha1.ReleaseOrder
}

func (v OrderValidator) gather(ctx context.Context, o *cafev1alpha1.ReleaseOrder) (OrderWorld, error) {
	w := OrderWorld{Apps: map[string]*cafev1alpha1.CafeAppService{}, Revisions: map[string]*cafev1alpha1.AppRevision{}}
	for _, a := range o.Spec.Apps {
		app := &cafev1alpha1.CafeAppService{}
		if err := v.Reader.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: a.Name}, app); err == nil {
			w.Apps[a.Name] = app
		} else if !apierrors.IsNotFound(err) {
			return w, err
		}
		rev := &cafev1alpha1.AppRevision{}
		if err := v.Reader.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: a.Revision}, rev); err == nil {
			w.Revisions[a.Revision] = rev
		} else if !apierrors.IsNotFound(err) {
			return w, err
		}
	}
	list := &cafev1alpha1.ReleaseOrderList{}
	if err := v.Reader.List(ctx, list, client.InNamespace(o.Namespace)); err != nil {
		return w, err
	}
	w.Orders = list.Items
	return w, nil
}

// ValidateOrder returns every reason to refuse a new order, each naming
// its field, or nil.
func ValidateOrder(o *cafev1alpha1.ReleaseOrder, w OrderWorld) error {
	var errs []string
	if cycle := o.Spec.DependencyCycle(); cycle != nil {
		i := slices.IndexFunc(o.Spec.Apps, func(a cafev1alpha1.ReleaseOrderApp) bool { return a.Name == cycle[0] })
		errs = append(errs, fmt.Sprintf("spec.apps[%d].dependsOn: dependency cycle %s: an order releases apps in dependency order, so the dependencies must not loop", i, strings.Join(cycle, " → ")))
	}
	for i, a := range o.Spec.Apps {
		app := w.Apps[a.Name]
		if app == nil {
			errs = append(errs, fmt.Sprintf("spec.apps[%d].name: CafeAppService %s/%s does not exist (list them with: cafe app list -n %s)", i, o.Namespace, a.Name, o.Namespace))
			continue
		}
		rev := w.Revisions[a.Revision]
		owner := (*metav1.OwnerReference)(nil)
		if rev != nil {
			owner = metav1.GetControllerOf(rev)
		}
		switch {
		case rev == nil:
			errs = append(errs, fmt.Sprintf("spec.apps[%d].revision: AppRevision %s/%s does not exist (list them with: cafe app revisions %s -n %s)", i, o.Namespace, a.Revision, a.Name, o.Namespace))
		case rev.Spec.App != a.Name || owner == nil || owner.UID != app.UID:
			errs = append(errs, fmt.Sprintf("spec.apps[%d].revision: AppRevision %s/%s is not a revision of %s", i, o.Namespace, a.Revision, a.Name))
		case rev.VerifyContent() != nil:
			errs = append(errs, fmt.Sprintf("spec.apps[%d].revision: %v", i, rev.VerifyContent()))
		}
		if a.Strategy != nil {
			wl := app.Spec.Workload
			strategy := wl.Strategy
			if a.Strategy.BatchSize != nil {
				strategy.BatchSize = a.Strategy.BatchSize
			}
			if a.Strategy.Groups != nil {
				strategy.Groups = a.Strategy.Groups
			}
			if _, err := plan.New(cafev1alpha1.CafeDeploymentSpec{Replicas: wl.Replicas, Topology: wl.Topology, Strategy: strategy}); err != nil {
				errs = append(errs, fmt.Sprintf("spec.apps[%d].strategy: with the app's workload the release cannot be planned: %s", i, strings.ReplaceAll(err.Error(), "spec.strategy.", "")))
			}
		}
		for _, other := range w.Orders {
			if other.Name == o.Name || !other.HoldsApps() || other.Spec.App(a.Name) == nil {
				continue
			}
			errs = append(errs, fmt.Sprintf("spec.apps[%d].name: app %s is changed by the open ReleaseOrder %s (%s); finish or cancel it first (cafe release get %s -n %s)",
				i, a.Name, other.Name, other.EffectivePhase(), other.Name, o.Namespace))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(errs, "; "))
}

// ActionValidator refuses actions the user may not take or the order's
// phase does not allow.
type ActionValidator struct {
	// Reader reads the order uncached.
	Reader client.Reader
	// Client creates SubjectAccessReviews.
	Client client.Client
	// Approval is the cluster's approval policy.
	Approval cafev1alpha1.ApprovalPolicy
}

// Handle implements admission.Handler.
func (v ActionValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create {
		return admission.Allowed("")
	}
	a := &cafev1alpha1.ReleaseAction{}
	if err := admit.Decode(req.Object, a, "ReleaseAction"); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	o := &cafev1alpha1.ReleaseOrder{}
	err := v.Reader.Get(ctx, client.ObjectKey{Namespace: a.Namespace, Name: a.Spec.Order}, o)
	switch {
	case apierrors.IsNotFound(err):
		return admission.Denied(fmt.Sprintf("spec.order: ReleaseOrder %s/%s does not exist", a.Namespace, a.Spec.Order))
	case err != nil:
		return admission.Errored(http.StatusInternalServerError, err)
	}
	allowed, reason, err := v.mayAct(ctx, req, a)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	if !allowed {
		msg := fmt.Sprintf("%s may not %s ReleaseOrder %s/%s: RBAC grants no verb %q on releaseorders (cafe.io) to them", req.UserInfo.Username, a.Spec.Action.Verb(), a.Namespace, a.Spec.Order, a.Spec.Action.Verb())
		if reason != "" {
			msg += " (" + reason + ")"
		}
		return admission.Denied(msg)
	}
	return admit.Verdict(ValidateAction(o, a, v.Approval))
}

// mayAct asks the API server's authorizer whether the requesting user may
// use the action's verb on the order.
func (v ActionValidator) mayAct(ctx context.Context, req admission.Request, a *cafev1alpha1.ReleaseAction) (bool, string, error) {
	return authorize(ctx, v.Client, req, a.Namespace, a.Spec.Action.Verb(), a.Spec.Order)
}

// authorize asks the API server's authorizer whether the requesting user
// may use verb on the order named.
func authorize(ctx context.Context, c client.Client, req admission.Request, namespace, verb, order string) (bool, string, error) {
	return admit.MayUser(ctx, c, req.UserInfo, authorizationv1.ResourceAttributes{
		Namespace: namespace, Verb: verb, Group: cafev1alpha1.GroupVersion.Group, Resource: "releaseorders", Name: order,
	})
}

// ValidateAction returns why the (stamped) action may not be taken on the
// order as it stands under the cluster's approval policy, or nil.
func ValidateAction(o *cafev1alpha1.ReleaseOrder, a *cafev1alpha1.ReleaseAction, policy cafev1alpha1.ApprovalPolicy) error {
	ref := fmt.Sprintf("ReleaseOrder %s/%s", o.Namespace, o.Name)
	if err := cafev1alpha1.ActionAllowedIn(a.Spec.Action, o.EffectivePhase()); err != nil {
		return fmt.Errorf("spec.action: %s: %w", ref, err)
	}
	if o.Status.ActionsProcessed() >= cafev1alpha1.MaxAuditedActions && a.Spec.Action != cafev1alpha1.ActionCancel {
		return fmt.Errorf("spec.action: %s has processed %d actions, the most its audit trail records one by one; only a Cancel is taken now", ref, cafev1alpha1.MaxAuditedActions)
	}
	switch a.Spec.Action {
	case cafev1alpha1.ActionApprove:
		if err := o.CheckApprover(a.Spec.Actor, a.Spec.ActorGroups, policy); err != nil {
			return fmt.Errorf("spec.action: %w", err)
		}
	case cafev1alpha1.ActionStart:
		if _, _, closed := o.WindowState(metav1.Now().Time); closed {
			return fmt.Errorf("spec.action: %s: its window closed at %s; cancel it and create a new order", ref, o.Spec.Window.End.UTC().Format("2006-01-02T15:04:05Z07:00"))
		}
	}
	if a.Spec.App != "" && o.Spec.App(a.Spec.App) == nil {
		return fmt.Errorf("spec.app: %s has no app %s", ref, a.Spec.App)
	}
	if a.Spec.App != "" && a.Spec.Action != cafev1alpha1.ActionConfirm {
		return fmt.Errorf("spec.app: only a Confirm can name one app; %s acts on the whole order", a.Spec.Action)
	}
	return nil
}
