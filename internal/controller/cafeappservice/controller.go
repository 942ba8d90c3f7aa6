package cafeappservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/conflict"
	"github.com/cafe-io/cafe/internal/controllerqueue"
	"github.com/cafe-io/cafe/internal/ownedwrite"
	"github.com/cafe-io/cafe/internal/statuspatch"
)

// +kubebuilder:rbac:groups=cafe.io,resources=cafeappservices,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=cafe.io,resources=cafeappservices/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=cafe.io,resources=apprevisions,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=cafe.io,resources=apprevisions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=cafe.io,resources=cafedeployments,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch;delete
// Config ConfigMaps are created once and never updated; patch only adds a
// revision sharing the config to the ConfigMap's owners.
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;create;patch

const (
	// fieldOwner is the field manager of the app's CafeDeployment and
	// Service.
	fieldOwner = client.FieldOwner("cafe-appservice")

	// appliedAnnotation holds, on the CafeDeployment and the Service, the
	// hash of what the app last applied, so an unchanged object is not
	// applied again on every status change of the release.
	appliedAnnotation = "cafe.io/app-applied"

	// configMapRecheck is how often a published revision whose ConfigMap
	// is not its own is looked at again.
	configMapRecheck = 10 * time.Second

	// statusRevisions bounds the revision list in the app's status.
	statusRevisions = 20
)

// Reconciler records a CafeAppService's revisions, keeps its Service,
// publishes its published revision through the CafeDeployment it owns and
// follows the release.
type Reconciler struct {
	Client client.Client
	// APIReader reads ConfigMaps without caching every ConfigMap of the
	// cluster.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	Now       func() time.Time
}

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(_ context.Context, mgr ctrl.Manager) error {
	if r.Client == nil || r.APIReader == nil || r.Scheme == nil || r.Recorder == nil {
		return errors.New("cafeappservice: Client, APIReader, Scheme and Recorder are required")
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	return ctrl.NewControllerManagedBy(mgr).
		WithOptions(controllerqueue.Options(controller.Options{})).
		For(&cafev1alpha1.CafeAppService{}).
		// A revision deleted by hand is noticed (status list, GC); a revision
		// created just before a publish lets the publish proceed.
		Owns(&cafev1alpha1.AppRevision{}).
		// The CafeDeployment's release status is the revision's outcome.
		Owns(&cafev1alpha1.CafeDeployment{}).
		// A Service changed or deleted by hand is restored.
		Owns(&corev1.Service{}).
		Named("cafeappservice").
		Complete(r)
}

// Reconcile observes the app and its revisions, then decides and writes
// in three stages (see the package doc), each deciding from what the one
// before wrote: the latest revision; the Service and the publish; the
// revision statuses, events, collection and, last, the app's status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	o, err := r.observe(ctx, req.NamespacedName)
	if o == nil || err != nil {
		return ctrl.Result{}, err
	}
	if err := r.recordLatestRevision(ctx, o); err != nil {
		return ctrl.Result{}, err
	}
	pub, err := r.verifyPublished(ctx, o.app, decidePublish(o))
	if err != nil {
		return ctrl.Result{}, err
	}
	serviceName, serviceErr := r.reconcileService(ctx, o.app, pub.service)
	cd, err := r.publish(ctx, o.app, pub)
	if err != nil {
		// A CafeDeployment changed since read (an order paused it) is
		// rendered again from the fresh one.
		return conflict.Requeue(ctrl.Result{}, err)
	}
	plan := decideApp(o, pub, cd)
	if err := r.writeRevisionStatuses(ctx, o.revs, plan.revisions); err != nil {
		return ctrl.Result{}, err
	}
	for _, e := range plan.events {
		r.Recorder.Eventf(o.app, e.related, corev1.EventTypeNormal, e.reason, e.action, "%s", e.note)
	}
	deleted, collectErr := r.collect(ctx, plan.collect)
	writeErr := errors.Join(serviceErr, collectErr)
	statusErr := r.writeStatus(ctx, o.app, plan.report(o.app, serviceName, deleted, writeErr))
	var res ctrl.Result
	if pub.recheck {
		// Nothing watches ConfigMaps (CAFE caches none): look again for
		// the one the revision needs.
		res.RequeueAfter = configMapRecheck
	}
	return res, errors.Join(writeErr, statusErr)
}

// observe reads the app, defaulted, and its revisions; nil when the app is
// gone or being deleted (what it owns goes with it).
func (r *Reconciler) observe(ctx context.Context, key client.ObjectKey) (*observed, error) {
	app := &cafev1alpha1.CafeAppService{}
	if err := r.Client.Get(ctx, key, app); err != nil || !app.DeletionTimestamp.IsZero() {
		return nil, client.IgnoreNotFound(err)
	}
	app.Default()
	revs, err := r.revisions(ctx, app)
	if err != nil {
		return nil, err
	}
	return observedOf(app, revs, r.Now()), nil
}

// observedOf is what a reconcile at now observes of app (as read,
// defaulted) and its revisions.
func observedOf(app *cafev1alpha1.CafeAppService, revs []cafev1alpha1.AppRevision, now time.Time) *observed {
	o := &observed{app: app, now: now, forged: map[string]string{}}
	for _, rev := range revs {
		// Only CAFE records revisions (admission); one whose content is not
		// its hash got past that (no webhook then): never adopted nor run.
		if err := rev.VerifyContent(); err != nil {
			o.forged[rev.Name] = err.Error()
			o.topForged = max(o.topForged, rev.Spec.Number)
			// Its name takes a number too, which may not be spec.number:
			// the next revision must not be named after it. One beyond
			// the numbers a revision may have can never be reached.
			if n, ok := cafev1alpha1.ParseAppRevisionName(app.Name, rev.Name); ok && n <= cafev1alpha1.MaxRevisionNumber {
				o.topForged = max(o.topForged, n)
			}
			continue
		}
		o.revs = append(o.revs, rev)
	}
	return o
}

// revisions lists the app's AppRevisions (labelled with the app and
// controlled by it).
func (r *Reconciler) revisions(ctx context.Context, app *cafev1alpha1.CafeAppService) ([]cafev1alpha1.AppRevision, error) {
	list := &cafev1alpha1.AppRevisionList{}
	if err := r.Client.List(ctx, list, client.InNamespace(app.Namespace), client.MatchingLabels(appSelector(app.Name))); err != nil {
		return nil, fmt.Errorf("listing revisions: %w", err)
	}
	var out []cafev1alpha1.AppRevision
	for _, rev := range list.Items {
		if metav1.IsControlledBy(&rev, app) && rev.Spec.App == app.Name {
			out = append(out, rev)
		}
	}
	return out, nil
}

// recordLatestRevision is stage 1: it finds the revision of the app's
// current content or records it, with its ConfigMap, and adds it to what
// was observed.
func (r *Reconciler) recordLatestRevision(ctx context.Context, o *observed) error {
	app := o.app
	hash := app.ContentHash()
	d := decideRevision(app.Name, o.revs, hash, app.Spec.Config, max(app.Status.RevisionCount, o.topForged))
	if d.Existing != nil {
		o.latest = d.Existing.Name
		return nil
	}
	rev := &cafev1alpha1.AppRevision{
		ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: d.Name, Labels: appSelector(app.Name)},
		Spec: cafev1alpha1.AppRevisionSpec{
			App:           app.Name,
			Number:        d.Number,
			Hash:          hash,
			Template:      *app.Spec.Template.DeepCopy(),
			Service:       *app.Spec.Service.DeepCopy(),
			Config:        *app.Spec.Config.DeepCopy(),
			ConfigMapName: d.ConfigMapName,

			ClassicArtifact: app.Spec.ClassicArtifact.DeepCopy(),
		},
	}
	if err := controllerutil.SetControllerReference(app, rev, r.Scheme); err != nil {
		return err
	}
	if err := r.Client.Create(ctx, rev); err != nil {
		// AlreadyExists: a revision our cache has not seen yet; the watch
		// brings it and the next reconcile decides again.
		return fmt.Errorf("recording revision %s: %w", rev.Name, err)
	}
	// A ConfigMap that is not the revision's is reported when the revision
	// is published (verifyPublished), and refused then.
	if err := r.ensureConfigMap(ctx, app, rev); err != nil && !errors.As(err, new(*configMapMismatch)) {
		return err
	}
	r.Recorder.Eventf(app, rev, corev1.EventTypeNormal, "RevisionRecorded", "Record", "Recorded %s (hash %s)", rev.Name, rev.Spec.Hash)
	o.revs = append(o.revs, *rev)
	o.latest = rev.Name
	return nil
}

// configMapMismatch is a revision's ConfigMap that does not hold the
// revision's config: someone other than CAFE created or replaced it.
type configMapMismatch struct{ msg string }

func (e *configMapMismatch) Error() string { return e.msg }

// ensureConfigMap makes sure the revision's ConfigMap exists with the
// revision's config, immutable, and lists the revision among its owners,
// so it lives as long as one revision that reads it. An existing
// ConfigMap is adopted only when it holds exactly the revision's config
// (spec.config, covered by the revision's verified hash) and is
// immutable: otherwise a user could pre-create it, or delete and recreate
// it, to make an approved revision run other config. CAFE does not
// replace such a ConfigMap itself (pods may already have read it, and
// someone able to recreate it once can again): it returns a
// configMapMismatch, and the release of the revision does not proceed.
func (r *Reconciler) ensureConfigMap(ctx context.Context, app *cafev1alpha1.CafeAppService, rev *cafev1alpha1.AppRevision) error {
	if rev.Spec.ConfigMapName == "" {
		return nil
	}
	desired := desiredConfigMap(rev.Namespace, app.Name, rev.Spec.ConfigMapName, rev.Spec.Config)
	cm := &corev1.ConfigMap{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: rev.Namespace, Name: rev.Spec.ConfigMapName}, cm)
	switch {
	case apierrors.IsNotFound(err):
		if err := controllerutil.SetOwnerReference(rev, desired, r.Scheme); err != nil {
			return err
		}
		if err := r.Client.Create(ctx, desired); err != nil {
			return fmt.Errorf("creating ConfigMap %s of %s: %w", desired.Name, rev.Name, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading ConfigMap %s of %s: %w", rev.Spec.ConfigMapName, rev.Name, err)
	}
	if why := configMapDiffers(cm, desired); why != "" {
		return &configMapMismatch{fmt.Sprintf("ConfigMap %s/%s %s, so it is not the config of %s (someone other than CAFE created or replaced it); nothing is released: delete the ConfigMap and CAFE recreates it from the revision",
			cm.Namespace, cm.Name, why, rev.Name)}
	}
	for _, ref := range cm.OwnerReferences {
		if ref.UID == rev.UID {
			return nil
		}
	}
	patch := client.MergeFromWithOptions(cm.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if err := controllerutil.SetOwnerReference(rev, cm, r.Scheme); err != nil {
		return err
	}
	if err := r.Client.Patch(ctx, cm, patch); err != nil {
		return fmt.Errorf("adding %s to the owners of ConfigMap %s: %w", rev.Name, cm.Name, err)
	}
	return nil
}

// configMapDiffers says how cm is not the ConfigMap desired (its data,
// immutable), or "".
func configMapDiffers(cm, desired *corev1.ConfigMap) string {
	switch {
	case !ptr.Deref(cm.Immutable, false):
		return "is not immutable"
	case len(cm.BinaryData) > 0 || !maps.Equal(cm.Data, desired.Data):
		return "holds other data"
	}
	return ""
}

func (r *Reconciler) cafeDeployment(ctx context.Context, app *cafev1alpha1.CafeAppService) (*cafev1alpha1.CafeDeployment, error) {
	cd := &cafev1alpha1.CafeDeployment{}
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(app), cd)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading CafeDeployment: %w", err)
	}
	if !metav1.IsControlledBy(cd, app) {
		return nil, fmt.Errorf("CafeDeployment %s/%s exists and is not owned by the app; rename or delete it", cd.Namespace, cd.Name)
	}
	return cd, nil
}

// verifyPublished makes sure the published revision's ConfigMap holds its
// config; when it does not, nothing is published and the app's status
// says why (as for a revision that does not exist).
func (r *Reconciler) verifyPublished(ctx context.Context, app *cafev1alpha1.CafeAppService, pub publishPlan) (publishPlan, error) {
	if pub.published == nil {
		return pub, nil
	}
	err := r.ensureConfigMap(ctx, app, pub.published)
	var mismatch *configMapMismatch
	if errors.As(err, &mismatch) {
		r.Recorder.Eventf(app, pub.published, corev1.EventTypeWarning, "ConfigMapMismatch", "Publish", "%s", mismatch.msg)
		return publishPlan{service: pub.service, invalid: "spec.publishedRevision: " + mismatch.msg, recheck: true}, nil
	}
	return pub, err
}

// publish makes the CafeDeployment release the published revision and
// returns it as applied, or as read when nothing is published or what the
// app last applied is unchanged. A fast publish gives the CafeDeployment
// its own fast-release annotation, naming the revision (the template's
// cafe.io/app-revision label), so the template and the request for one
// group arrive in one write.
func (r *Reconciler) publish(ctx context.Context, app *cafev1alpha1.CafeAppService, pub publishPlan) (*cafev1alpha1.CafeDeployment, error) {
	current, err := r.cafeDeployment(ctx, app)
	if err != nil || pub.published == nil {
		return current, err
	}
	rev := pub.published
	desired := desiredCafeDeployment(app, rev, pub.fast)
	applied := hashJSON(struct {
		Spec cafev1alpha1.CafeDeploymentSpec
		Fast bool
	}{desired.Spec, pub.fast})
	if current != nil && current.Annotations[appliedAnnotation] == applied {
		return current, nil
	}
	if err := controllerutil.SetControllerReference(app, desired, r.Scheme); err != nil {
		return nil, err
	}
	metav1.SetMetaDataAnnotation(&desired.ObjectMeta, appliedAnnotation, applied)
	var existing client.Object
	if current != nil {
		desired.Spec.Strategy.Pause = resolvePause(current, desired.Spec.Strategy.Pause)
		existing = current
	}
	if err := ownedwrite.Write(ctx, r.Client, desired, existing, ownedwrite.Options{
		Owner: fieldOwner, Drop: []string{cafev1alpha1.FastReleaseAnnotation}, Locked: true,
	}); err != nil {
		return nil, fmt.Errorf("publishing %s: %w", rev.Name, err)
	}
	return desired, nil
}

// resolvePause is the pause the app's CafeDeployment gets from a publish
// whose rendering says rendered. A pause someone else set on the
// CafeDeployment (an order holding the app, `cafe deploy pause`) outlives
// it; one the app set itself follows the app. The last writer of a field
// is in managedFields.
func resolvePause(current *cafev1alpha1.CafeDeployment, rendered bool) bool {
	if rendered || !current.Spec.Strategy.Pause {
		return rendered
	}
	return !ownsField(current, string(fieldOwner), "spec", "strategy", "pause")
}

// ownsField reports whether manager last set the field at path of obj.
func ownsField(obj metav1.Object, manager string, path ...string) bool {
	for _, e := range obj.GetManagedFields() {
		if e.Manager != manager || e.FieldsV1 == nil {
			continue
		}
		var set map[string]any
		if json.Unmarshal(e.FieldsV1.Raw, &set) != nil {
			continue
		}
		found := true
		for _, name := range path {
			next, ok := set["f:"+name].(map[string]any)
			if !ok {
				found = false
				break
			}
			set = next
		}
		if found {
			return true
		}
	}
	return false
}

// reconcileService makes the app's Service match spec (an app without
// ports has none) and returns the Service's name for the app's status:
// unchanged when the Service cannot be read or is not the app's.
func (r *Reconciler) reconcileService(ctx context.Context, app *cafev1alpha1.CafeAppService, spec cafev1alpha1.AppServiceSpec) (string, error) {
	current := &corev1.Service{}
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(app), current)
	switch {
	case apierrors.IsNotFound(err):
		current = nil
	case err != nil:
		return app.Status.ServiceName, fmt.Errorf("reading Service: %w", err)
	case !metav1.IsControlledBy(current, app):
		return app.Status.ServiceName, fmt.Errorf("Service %s/%s exists and is not owned by the app; rename or delete it", current.Namespace, current.Name)
	}
	if len(spec.Ports) == 0 {
		if current != nil {
			return "", client.IgnoreNotFound(r.Client.Delete(ctx, current))
		}
		return "", nil
	}
	desired := desiredService(app, spec)
	// The labels count: publishing in the registry is one.
	applied := hashJSON(struct {
		Labels map[string]string
		Spec   corev1.ServiceSpec
	}{desired.Labels, desired.Spec})
	if current != nil && current.Annotations[appliedAnnotation] == applied {
		return app.Name, nil
	}
	metav1.SetMetaDataAnnotation(&desired.ObjectMeta, appliedAnnotation, applied)
	if err := controllerutil.SetControllerReference(app, desired, r.Scheme); err != nil {
		return app.Name, err
	}
	if err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(toUnstructured(desired)), fieldOwner, client.ForceOwnership); err != nil {
		return app.Name, fmt.Errorf("applying Service %s: %w", desired.Name, err)
	}
	return app.Name, nil
}

// writeRevisionStatuses writes each revision status that differs from the
// one read (before and after are in the same order).
func (r *Reconciler) writeRevisionStatuses(ctx context.Context, before, after []cafev1alpha1.AppRevision) error {
	for i := range after {
		if _, err := statuspatch.IfChanged(ctx, r.Client, &before[i], &after[i], revisionStatus); err != nil {
			return fmt.Errorf("recording the release outcome of %s: %w", after[i].Name, err)
		}
	}
	return nil
}

func revisionStatus(rev *cafev1alpha1.AppRevision) any { return rev.Status }

// collect deletes the revisions the plan collects and returns those it
// deleted (or found gone).
func (r *Reconciler) collect(ctx context.Context, revs []*cafev1alpha1.AppRevision) (map[string]bool, error) {
	deleted := map[string]bool{}
	var errs []error
	for _, rev := range revs {
		if err := r.Client.Delete(ctx, rev, client.Preconditions{UID: ptr.To(rev.UID)}); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("deleting old revision %s: %w", rev.Name, err))
			continue
		}
		deleted[rev.Name] = true
		ctrl.LoggerFrom(ctx).V(1).Info("Collected old revision", "AppRevision", klog.KObj(rev))
	}
	return deleted, errors.Join(errs...)
}

// writeStatus writes the app's status when it differs from the one read.
func (r *Reconciler) writeStatus(ctx context.Context, app *cafev1alpha1.CafeAppService, status cafev1alpha1.CafeAppServiceStatus) error {
	before := app.DeepCopy()
	after := app.DeepCopy()
	after.Status = status
	_, err := statuspatch.IfChanged(ctx, r.Client, before, after, func(a *cafev1alpha1.CafeAppService) any { return a.Status })
	return err
}

// toUnstructured turns a desired object into an apply request that
// carries only what CAFE sets (no status, no server-filled metadata).
func toUnstructured(obj client.Object) *unstructured.Unstructured {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		panic(fmt.Sprintf("converting %T to unstructured cannot fail: %v", obj, err))
	}
	delete(u, "status")
	unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
	return &unstructured.Unstructured{Object: u}
}
