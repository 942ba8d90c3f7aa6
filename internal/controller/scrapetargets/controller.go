package scrapetargets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controllerqueue"
)

// +kubebuilder:rbac:groups="",resources=pods;nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=cafe.io,resources=classicinstances;classichosts,verbs=get;list;watch

// DefaultMinInterval is how often at most the file is rewritten: a release
// of a thousand pods changes their labels a thousand times, and Prometheus
// reads the file when it changes anyway.
const DefaultMinInterval = time.Second

// fileRequest is the one request every change maps to: the file is
// rendered whole.
var fileRequest = reconcile.Request{NamespacedName: types.NamespacedName{Name: "scrape-targets"}}

// Reconciler writes the file at Path.
type Reconciler struct {
	Client client.Client
	// Path is the file_sd file; its directory is created if missing.
	Path string
	// MinInterval between two writes (zero: DefaultMinInterval).
	MinInterval time.Duration

	// lastWrite is only a rate limit: a restarted manager renders the file
	// from the API at once.
	lastWrite time.Time
}

// SetupWithManager registers the controller. It reads the pods of the
// manager's cache (the pods CAFE manages), every classic instance, and the
// nodes' and hosts' zones.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Client == nil || r.Path == "" {
		return errors.New("scrapetargets: Client and Path are required")
	}
	if r.MinInterval == 0 {
		r.MinInterval = DefaultMinInterval
	}
	toFile := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request { return []reconcile.Request{fileRequest} })
	// Only what a target shows: labels, address, phase, deletion.
	shown := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return fingerprint(e.ObjectOld) != fingerprint(e.ObjectNew)
	}}
	zone := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return zoneOf(e.ObjectOld) != zoneOf(e.ObjectNew)
	}}
	return ctrl.NewControllerManagedBy(mgr).
		WithOptions(controllerqueue.Options(controller.Options{})).
		Named("scrapetargets").
		Watches(&corev1.Pod{}, toFile, builder.WithPredicates(shown)).
		Watches(&cafev1alpha1.ClassicInstance{}, toFile, builder.WithPredicates(shown)).
		Watches(&cafev1alpha1.ClassicHost{}, toFile, builder.WithPredicates(zone)).
		Watches(&corev1.Node{}, toFile, builder.WithPredicates(zone)).
		Complete(r)
}

// fingerprint is what of an object its target shows.
func fingerprint(o client.Object) string {
	var address string
	switch v := o.(type) {
	case *corev1.Pod:
		address = v.Status.PodIP + "/" + string(v.Status.Phase)
	case *cafev1alpha1.ClassicInstance:
		address = v.Status.Address
	}
	return fmt.Sprint(address, o.GetLabels(), o.GetDeletionTimestamp() != nil)
}

func zoneOf(o client.Object) string {
	switch v := o.(type) {
	case *corev1.Node:
		return v.Labels[cafev1alpha1.ZoneNodeLabel]
	case *cafev1alpha1.ClassicHost:
		return v.Spec.Zone
	}
	return ""
}

// Reconcile renders the file and writes it if it changed, at most once per
// MinInterval.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (ctrl.Result, error) {
	if wait := r.lastWrite.Add(r.MinInterval).Sub(time.Now()); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	content, err := r.render(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	if old, err := os.ReadFile(r.Path); err == nil && bytes.Equal(old, content) {
		return ctrl.Result{}, nil
	}
	if err := writeAtomically(r.Path, content); err != nil {
		return ctrl.Result{}, err
	}
	r.lastWrite = time.Now()
	log.FromContext(ctx).V(1).Info("scrape targets written", "path", r.Path, "bytes", len(content))
	return ctrl.Result{}, nil
}

func (r *Reconciler) render(ctx context.Context) ([]byte, error) {
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods); err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	instances := &cafev1alpha1.ClassicInstanceList{}
	if err := r.Client.List(ctx, instances); err != nil {
		return nil, fmt.Errorf("listing classic instances: %w", err)
	}
	nodes := &corev1.NodeList{}
	if err := r.Client.List(ctx, nodes); err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	hosts := &cafev1alpha1.ClassicHostList{}
	if err := r.Client.List(ctx, hosts); err != nil {
		return nil, fmt.Errorf("listing classic hosts: %w", err)
	}
	zoneOfNode := map[string]string{}
	for i := range nodes.Items {
		zoneOfNode[nodes.Items[i].Name] = zoneOf(&nodes.Items[i])
	}
	zoneOfHost := map[string]string{}
	for i := range hosts.Items {
		zoneOfHost[hosts.Items[i].Name] = zoneOf(&hosts.Items[i])
	}
	return Render(pods.Items, instances.Items, zoneOfNode, zoneOfHost)
}

// writeAtomically replaces path with content: a reader sees the old file
// or the new one, never a part.
func writeAtomically(path string, content []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing the scrape targets: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone once renamed
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the scrape targets: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the scrape targets: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the scrape targets: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return nil
}
