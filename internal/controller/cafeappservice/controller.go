package cafeappservice

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// +kubebuilder:rbac:groups=cafe.io,resources=cafeappservices,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=cafe.io,resources=cafeappservices/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=cafe.io,resources=apprevisions,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=cafe.io,resources=apprevisions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=cafe.io,resources=cafedeployments,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;create;update;patch

const (
	// fieldOwner is the server-side-apply manager of the app's
	// CafeDeployment and Service.
	fieldOwner = client.FieldOwner("cafe-appservice")

	// appliedAnnotation holds, on the CafeDeployment and the Service, the
	// hash of what the app last applied, so an unchanged object is not
	// applied again on every status change of the release.
	appliedAnnotation = "cafe.io/app-applied"

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

// Reconcile runs the app's phases in order: revision, Service, publish,
// release outcome, garbage collection, status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	app := &cafev1alpha1.CafeAppService{}
	if err := r.Client.Get(ctx, req.NamespacedName, app); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !app.DeletionTimestamp.IsZero() {
		// Revisions, ConfigMaps, the CafeDeployment and the Service are
		// owned and go with the app.
		return ctrl.Result{}, nil
	}
	before := app.DeepCopy()
	app.Default()
	revs, err := r.revisions(ctx, app)
	if err != nil {
		return ctrl.Result{}, err
	}
	originals := map[string]*cafev1alpha1.AppRevision{}
	for i := range revs {
		originals[revs[i].Name] = revs[i].DeepCopy()
	}

	latest, revs, err := r.reconcileLatestRevision(ctx, app, revs)
	if err != nil {
		return ctrl.Result{}, err
	}
	byName := map[string]*cafev1alpha1.AppRevision{}
	for i := range revs {
		byName[revs[i].Name] = &revs[i]
	}

	published, invalid := publishedRevision(app, byName)
	svcSource := latest
	if published != nil {
		svcSource = published
	}
	errs := []error{r.reconcileService(ctx, app, svcSource.Spec.Service)}

	cd, err := r.cafeDeployment(ctx, app)
	if err != nil {
		return ctrl.Result{}, err
	}
	if published != nil {
		if app.Status.PublishedRevision != published.Name {
			transition(byName[app.Status.PublishedRevision], published, publicationOf(app, r.Now()))
			r.Recorder.Eventf(app, published, corev1.EventTypeNormal, "Publish", "Publish", "Publishing %s (by %s)", published.Name, orDash(published.Status.PublishedBy))
		}
		// The revision statuses are written before the app records the
		// publish, so a crash in between repeats the transition.
		if err := r.patchRevisionStatuses(ctx, originals, byName); err != nil {
			return ctrl.Result{}, err
		}
		for name, rev := range byName {
			originals[name] = rev.DeepCopy()
		}
		if cd, err = r.publish(ctx, app, published, cd); err != nil {
			return ctrl.Result{}, err
		}
		app.Status.PublishedRevision = published.Name
		if observeRelease(published, viewOf(cd), metav1.NewTime(r.Now())) {
			app.Status.LastSuccessfulRevision = published.Name
			r.Recorder.Eventf(app, published, corev1.EventTypeNormal, "Released", "Release", "%s runs on every pod", published.Name)
		}
	}
	if err := r.patchRevisionStatuses(ctx, originals, byName); err != nil {
		return ctrl.Result{}, err
	}

	limit := int(ptr.Deref(app.Spec.RevisionHistoryLimit, cafev1alpha1.DefaultAppRevisionHistoryLimit))
	deleted := map[string]bool{}
	for _, rev := range revisionsToDelete(revs, limit, app.Spec.PublishedRevision, app.Status.PublishedRevision, app.Status.LastSuccessfulRevision, latest.Name) {
		if err := r.Client.Delete(ctx, rev, client.Preconditions{UID: ptr.To(rev.UID)}); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("deleting old revision %s: %w", rev.Name, err))
			continue
		}
		deleted[rev.Name] = true
		log := ctrl.LoggerFrom(ctx)
		log.V(1).Info("Collected old revision", "AppRevision", klog.KObj(rev))
	}
	var remaining []cafev1alpha1.AppRevision
	for _, rev := range revs {
		if !deleted[rev.Name] {
			remaining = append(remaining, rev)
		}
	}

	app.Status.Revisions = summaries(remaining, statusRevisions)
	setConditions(app, published, invalid, viewOf(cd))
	if err := errors.Join(errs...); err == nil {
		app.Status.ObservedGeneration = app.Generation
	}
	if err := r.patchStatus(ctx, before, app); err != nil {
		errs = append(errs, err)
	}
	return ctrl.Result{}, errors.Join(errs...)
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

// reconcileLatestRevision finds or records the revision of the app's
// current content and makes sure its ConfigMap exists.
func (r *Reconciler) reconcileLatestRevision(ctx context.Context, app *cafev1alpha1.CafeAppService, revs []cafev1alpha1.AppRevision) (*cafev1alpha1.AppRevision, []cafev1alpha1.AppRevision, error) {
	c := contentOf(app)
	d := decideRevision(app.Name, revs, contentHash(c), app.Spec.Config, app.Status.RevisionCount)
	if d.Existing != nil {
		app.Status.LatestRevision = d.Existing.Name
		app.Status.RevisionCount = max(app.Status.RevisionCount, d.Existing.Spec.Number)
		return d.Existing, revs, nil
	}
	rev := &cafev1alpha1.AppRevision{
		ObjectMeta: metav1.ObjectMeta{Namespace: app.Namespace, Name: d.Name, Labels: appSelector(app.Name)},
		Spec: cafev1alpha1.AppRevisionSpec{
			App:           app.Name,
			Number:        d.Number,
			Hash:          contentHash(c),
			Template:      *c.Template.DeepCopy(),
			Service:       *c.Service.DeepCopy(),
			Config:        *c.Config.DeepCopy(),
			ConfigMapName: d.ConfigMapName,
		},
	}
	if err := controllerutil.SetControllerReference(app, rev, r.Scheme); err != nil {
		return nil, nil, err
	}
	if err := r.Client.Create(ctx, rev); err != nil {
		// AlreadyExists: a revision our cache has not seen yet; the watch
		// brings it and the next reconcile decides again.
		return nil, nil, fmt.Errorf("recording revision %s: %w", rev.Name, err)
	}
	if err := r.ensureConfigMap(ctx, app, rev); err != nil {
		return nil, nil, err
	}
	r.Recorder.Eventf(app, rev, corev1.EventTypeNormal, "RevisionRecorded", "Record", "Recorded %s (hash %s)", rev.Name, rev.Spec.Hash)
	app.Status.LatestRevision = rev.Name
	app.Status.RevisionCount = max(app.Status.RevisionCount, rev.Spec.Number)
	return rev, append(revs, *rev), nil
}

// ensureConfigMap makes sure the revision's ConfigMap exists with the
// revision's config and lists the revision among its owners, so it lives
// as long as one revision that reads it.
func (r *Reconciler) ensureConfigMap(ctx context.Context, app *cafev1alpha1.CafeAppService, rev *cafev1alpha1.AppRevision) error {
	if rev.Spec.ConfigMapName == "" {
		return nil
	}
	cm := &corev1.ConfigMap{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: rev.Namespace, Name: rev.Spec.ConfigMapName}, cm)
	switch {
	case apierrors.IsNotFound(err):
		cm = desiredConfigMap(rev.Namespace, app.Name, rev.Spec.ConfigMapName, rev.Spec.Config)
		if err := controllerutil.SetOwnerReference(rev, cm, r.Scheme); err != nil {
			return err
		}
		if err := r.Client.Create(ctx, cm); err != nil {
			return fmt.Errorf("creating ConfigMap %s of %s: %w", cm.Name, rev.Name, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading ConfigMap %s of %s: %w", rev.Spec.ConfigMapName, rev.Name, err)
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

// publishedRevision returns the revision spec.publishedRevision names, or
// why it cannot be published.
func publishedRevision(app *cafev1alpha1.CafeAppService, byName map[string]*cafev1alpha1.AppRevision) (*cafev1alpha1.AppRevision, string) {
	name := app.Spec.PublishedRevision
	if name == "" {
		return nil, ""
	}
	if _, ok := cafev1alpha1.ParseAppRevisionName(app.Name, name); !ok {
		return nil, fmt.Sprintf("spec.publishedRevision: %s is not a revision of %s (<app>-r<N>); nothing is released", name, app.Name)
	}
	rev, ok := byName[name]
	if !ok {
		return nil, fmt.Sprintf("spec.publishedRevision: AppRevision %s/%s does not exist or does not belong to %s; nothing is released (list the revisions with: cafe app revisions %s)", app.Namespace, name, app.Name, app.Name)
	}
	return rev, ""
}

// publicationOf reads who published, as CAFE's webhook stamped it.
func publicationOf(app *cafev1alpha1.CafeAppService, now time.Time) publication {
	at := metav1.NewTime(now)
	if t, err := time.Parse(time.RFC3339, app.Annotations[cafev1alpha1.PublishedAtAnnotation]); err == nil {
		at = metav1.NewTime(t)
	}
	return publication{By: app.Annotations[cafev1alpha1.PublishedByAnnotation], At: at}
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

// publish applies the CafeDeployment that releases rev, unless what the
// app last applied is unchanged. With the app's fast-release annotation on
// rev, the CafeDeployment gets its own, naming rev (the template's
// cafe.io/app-revision label), so the template and the request for one
// group arrive in one write.
func (r *Reconciler) publish(ctx context.Context, app *cafev1alpha1.CafeAppService, rev *cafev1alpha1.AppRevision, current *cafev1alpha1.CafeDeployment) (*cafev1alpha1.CafeDeployment, error) {
	if err := r.ensureConfigMap(ctx, app, rev); err != nil {
		return nil, err
	}
	fast := app.Annotations[cafev1alpha1.FastReleaseAnnotation] == rev.Name
	desired := desiredCafeDeployment(app, rev, fast)
	applied := hashJSON(struct {
		Spec cafev1alpha1.CafeDeploymentSpec
		Fast bool
	}{desired.Spec, fast})
	if current != nil && current.Annotations[appliedAnnotation] == applied {
		return current, nil
	}
	if err := controllerutil.SetControllerReference(app, desired, r.Scheme); err != nil {
		return nil, err
	}
	metav1.SetMetaDataAnnotation(&desired.ObjectMeta, appliedAnnotation, applied)
	u := toUnstructured(desired)
	if err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), fieldOwner, client.ForceOwnership); err != nil {
		return nil, fmt.Errorf("applying CafeDeployment %s for %s: %w", desired.Name, rev.Name, err)
	}
	out := &cafev1alpha1.CafeDeployment{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return nil, err
	}
	return out, nil
}

// reconcileService applies the app's Service; an app without ports has
// none.
func (r *Reconciler) reconcileService(ctx context.Context, app *cafev1alpha1.CafeAppService, spec cafev1alpha1.AppServiceSpec) error {
	current := &corev1.Service{}
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(app), current)
	switch {
	case apierrors.IsNotFound(err):
		current = nil
	case err != nil:
		return fmt.Errorf("reading Service: %w", err)
	case !metav1.IsControlledBy(current, app):
		return fmt.Errorf("Service %s/%s exists and is not owned by the app; rename or delete it", current.Namespace, current.Name)
	}
	if len(spec.Ports) == 0 {
		app.Status.ServiceName = ""
		if current != nil {
			return client.IgnoreNotFound(r.Client.Delete(ctx, current))
		}
		return nil
	}
	app.Status.ServiceName = app.Name
	desired := desiredService(app, spec)
	applied := hashJSON(desired.Spec)
	if current != nil && current.Annotations[appliedAnnotation] == applied {
		return nil
	}
	metav1.SetMetaDataAnnotation(&desired.ObjectMeta, appliedAnnotation, applied)
	if err := controllerutil.SetControllerReference(app, desired, r.Scheme); err != nil {
		return err
	}
	if err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(toUnstructured(desired)), fieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("applying Service %s: %w", desired.Name, err)
	}
	return nil
}

// patchRevisionStatuses writes the statuses that differ from originals.
func (r *Reconciler) patchRevisionStatuses(ctx context.Context, originals, current map[string]*cafev1alpha1.AppRevision) error {
	for name, rev := range current {
		orig, ok := originals[name]
		if !ok || equality.Semantic.DeepEqual(orig.Status, rev.Status) {
			continue
		}
		if err := r.Client.Status().Patch(ctx, rev, client.MergeFrom(orig)); err != nil {
			return fmt.Errorf("recording the release outcome of %s: %w", name, err)
		}
	}
	return nil
}

func (r *Reconciler) patchStatus(ctx context.Context, before, app *cafev1alpha1.CafeAppService) error {
	if equality.Semantic.DeepEqual(before.Status, app.Status) {
		return nil
	}
	if err := r.Client.Status().Patch(ctx, app, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("updating status: %w", client.IgnoreNotFound(err))
	}
	return nil
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
