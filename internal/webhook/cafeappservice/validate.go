package cafeappservice

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/admit"
	"github.com/cafe-io/cafe/internal/release/plan"
	"github.com/cafe-io/cafe/internal/traffic/routecheck"
)

// ValidatePath is where the Validator is served.
const ValidatePath = "/validate-cafe-io-v1alpha1-cafeappservice"

// Validator refuses CafeAppService specs the CRD cannot judge.
type Validator struct {
	// Reader reads AppRevisions (and the app's HTTPRoute, when it has
	// traffic steps) from the API server: a revision recorded a moment ago
	// must be publishable at once, so no cache.
	Reader client.Reader
}

// Handle implements admission.Handler.
func (v Validator) Handle(ctx context.Context, req admission.Request) admission.Response {
	app, old := &cafev1alpha1.CafeAppService{}, &cafev1alpha1.CafeAppService{}
	if err := admit.DecodeChange(req, "CafeAppService", app, old); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if err := ValidateSpec(app); err != nil {
		return admission.Denied(err.Error())
	}
	if t := app.Spec.Workload.Strategy.Traffic; t != nil && !equality.Semantic.DeepEqual(t, old.Spec.Workload.Strategy.Traffic) {
		if err := routecheck.Check(ctx, v.Reader, app.Namespace, t, "spec.workload.strategy.traffic"); err != nil {
			return admission.Denied(err.Error())
		}
	}
	if app.Spec.PublishedRevision == "" || app.Spec.PublishedRevision == old.Spec.PublishedRevision {
		return admission.Allowed("")
	}
	rev, err := v.revision(ctx, app)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admit.Verdict(ValidatePublish(app, rev))
}

// revision reads the revision spec.publishedRevision names; nil when it
// does not exist.
func (v Validator) revision(ctx context.Context, app *cafev1alpha1.CafeAppService) (*cafev1alpha1.AppRevision, error) {
	rev := &cafev1alpha1.AppRevision{}
	err := v.Reader.Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: app.Spec.PublishedRevision}, rev)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading AppRevision %s: %w", app.Spec.PublishedRevision, err)
	}
	return rev, nil
}

// ValidatePublish refuses publishing rev (nil: it does not exist) on app:
// it must be one of the app's revisions, recorded by CAFE for this very
// app (controller reference to its UID), its content matching its hash.
func ValidatePublish(app *cafev1alpha1.CafeAppService, rev *cafev1alpha1.AppRevision) error {
	name := app.Spec.PublishedRevision
	hint := fmt.Sprintf("list the app's revisions with: cafe app revisions %s -n %s", app.Name, app.Namespace)
	if _, ok := cafev1alpha1.ParseAppRevisionName(app.Name, name); !ok {
		return fmt.Errorf("spec.publishedRevision: %s is not a revision of %s (its revisions are named %s-r<N>); %s", name, app.Name, app.Name, hint)
	}
	if app.UID == "" {
		return fmt.Errorf("spec.publishedRevision: %s cannot be published when the app is created: CAFE records the app's revisions after creation; create the app, then publish", name)
	}
	if rev == nil {
		return fmt.Errorf("spec.publishedRevision: AppRevision %s/%s does not exist; %s", app.Namespace, name, hint)
	}
	owner := metav1.GetControllerOf(rev)
	if rev.Spec.App != app.Name || owner == nil || owner.UID != app.UID {
		return fmt.Errorf("spec.publishedRevision: AppRevision %s/%s belongs to another app (spec.app %q), not to %s; %s", app.Namespace, name, rev.Spec.App, app.Name, hint)
	}
	if !rev.DeletionTimestamp.IsZero() {
		return fmt.Errorf("spec.publishedRevision: AppRevision %s/%s is being deleted", app.Namespace, name)
	}
	if err := rev.VerifyContent(); err != nil {
		return fmt.Errorf("spec.publishedRevision: %w", err)
	}
	return nil
}

// ValidateSpec refuses what the CRD's CEL rules cannot express: the
// pieces CAFE adds to the template (labels, config env, config volume)
// colliding with the template's own, and workload settings the release
// planner cannot plan (for example custom groups not covering every
// replica).
func ValidateSpec(app *cafev1alpha1.CafeAppService) error {
	var errs []error
	t := app.Spec.Template
	for _, key := range []string{cafev1alpha1.AppLabel, cafev1alpha1.AppRevisionLabel} {
		if _, ok := t.Labels[key]; ok {
			errs = append(errs, fmt.Errorf("spec.template.metadata.labels[%s]: set by CAFE; remove it", key))
		}
	}
	cfg := app.Spec.Config
	mountPath := cfg.MountPath
	if mountPath == "" {
		mountPath = cafev1alpha1.DefaultConfigMountPath
	}
	containers := append(append([]corev1.Container{}, t.Spec.InitContainers...), t.Spec.Containers...)
	for _, c := range containers {
		for _, e := range c.Env {
			if _, ok := cfg.Env[e.Name]; ok {
				errs = append(errs, fmt.Errorf("spec.config.env[%s]: container %q of spec.template already sets %s", e.Name, c.Name, e.Name))
			}
		}
		if len(cfg.Files) == 0 {
			continue
		}
		for _, m := range c.VolumeMounts {
			if m.Name == cafev1alpha1.ConfigVolumeName {
				errs = append(errs, fmt.Errorf("spec.template: container %q mounts a volume named %s, which CAFE uses for spec.config.files", c.Name, m.Name))
			}
			if strings.TrimSuffix(m.MountPath, "/") == strings.TrimSuffix(mountPath, "/") {
				errs = append(errs, fmt.Errorf("spec.config.mountPath: container %q of spec.template already mounts %s", c.Name, m.MountPath))
			}
		}
	}
	for _, vol := range t.Spec.Volumes {
		if vol.Name == cafev1alpha1.ConfigVolumeName && len(cfg.Files) > 0 {
			errs = append(errs, fmt.Errorf("spec.template.spec.volumes[%s]: the name is CAFE's, for spec.config.files", vol.Name))
		}
	}
	w := app.Spec.Workload
	if _, err := plan.New(cafev1alpha1.CafeDeploymentSpec{Replicas: w.Replicas, Topology: w.Topology, Strategy: w.Strategy}); err != nil {
		errs = append(errs, errors.New(strings.ReplaceAll(err.Error(), "spec.", "spec.workload.")))
	}
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	sort.Strings(msgs)
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}
