package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/config"
	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/test/framework/managerproc"
)

// OpenKruise, the peer the benchmark releases a CloneSet with beside CAFE:
// kruise-manager built from the release hack/tools/kruise pins, run as a
// child process against the same control plane.
const (
	kruiseModule  = "github.com/openkruise/kruise"
	kruiseVersion = "v1.8.2"
	// kruiseNamespace holds what kruise-manager keeps in the cluster (its
	// webhook certificate Secret).
	kruiseNamespace = "kruise-system"
	// Kruise's defaults are QPS 30 / burst 50; the benchmark gives it what
	// kube-controller-manager gets, so client throttling slows neither.
	kruiseQPS   = controlplane.DefaultClientQPS
	kruiseBurst = 2 * controlplane.DefaultClientQPS
)

// The webhook configurations kruise-manager fills in (caBundle, URL) at
// start; it refuses to start without them.
const (
	kruiseMutatingWebhooks   = "kruise-mutating-webhook-configuration"
	kruiseValidatingWebhooks = "kruise-validating-webhook-configuration"
)

// kruiseCRDs are every CRD of Kruise's release, as its install creates
// them: kruise-manager looks each kind up at start and waits about 16 s of
// discovery retries for every one that is missing.
func kruiseCRDs(src string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(src, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("no CRD manifests under %s/config/crd/bases (%v)", src, err)
	}
	return paths, nil
}

// kruiseWebhookPaths are the admission webhooks of the CloneSet (defaulting
// and validation), the only ones installed: Kruise's pod webhooks
// (SidecarSet injection, workload spreading, deletion protection) serve
// features a CloneSet release does not use, and would sit in front of every
// pod creation of the other scenarios.
var kruiseWebhookPaths = map[string]bool{
	"/mutate-apps-kruise-io-v1alpha1-cloneset":   true,
	"/validate-apps-kruise-io-v1alpha1-cloneset": true,
}

// runWithPeer runs s, with kruise-manager running for the CloneSet
// scenario only: the other scenarios run on a control plane without it,
// as before it was added, and CAFE's CPU is measured while Kruise releases.
func (r *runner) runWithPeer(ctx context.Context, s scenario, run int, repoRoot, stateDir string) (runResult, error) {
	if s.Key != cloneSetKey {
		return r.run(ctx, s, run)
	}
	c := r.cluster
	var err error
	if c.kruise, err = c.startKruise(ctx, repoRoot, stateDir); err != nil {
		return runResult{}, err
	}
	defer func() {
		c.kruise.Stop()
		c.kruise = nil
	}()
	return r.run(ctx, s, run)
}

// kruiseSourceDir is where the Go module cache holds kruise's source (its
// CRDs and webhook manifests), as the tools module resolves it.
func kruiseSourceDir(ctx context.Context, repoRoot string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", kruiseModule)
	cmd.Dir = filepath.Join(repoRoot, controlplane.KruiseManager.Module)
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locating the source of %s@%s: %w: %s", kruiseModule, kruiseVersion, err, strings.TrimSpace(stderr.String()))
	}
	dir := strings.TrimSpace(string(out))
	if !strings.HasSuffix(dir, "@"+kruiseVersion) {
		return "", fmt.Errorf("%s resolves to %s, not %s", kruiseModule, dir, kruiseVersion)
	}
	return dir, nil
}

// startKruise builds kruise-manager if needed, installs what a CloneSet
// needs (CRDs, its namespace, the CloneSet webhooks) and starts it, with
// its webhook server on loopback. It waits until the manager has written
// its serving certificate into the webhook configurations.
func (c *cluster) startKruise(ctx context.Context, repoRoot, stateDir string) (*managerproc.Process, error) {
	binDir := filepath.Join(repoRoot, "bin")
	fmt.Fprintf(c.out, "building or finding kruise-manager %s (cached in bin/)\n", kruiseVersion)
	if err := controlplane.EnsureBinary(ctx, controlplane.BuildOptions{RepoRoot: repoRoot, BinDir: binDir, Out: c.out}, controlplane.KruiseManager); err != nil {
		return nil, fmt.Errorf("building kruise-manager: %w", err)
	}
	src, err := kruiseSourceDir(ctx, repoRoot)
	if err != nil {
		return nil, err
	}
	if err := c.installKruise(ctx, src); err != nil {
		return nil, err
	}
	ports, err := controlplane.FreePorts(4)
	if err != nil {
		return nil, fmt.Errorf("picking ports for kruise-manager: %w", err)
	}
	p, err := managerproc.StartController(ctx, managerproc.Controller{
		Name:   "kruise-manager",
		Binary: filepath.Join(binDir, controlplane.KruiseManager.Name),
		Args: []string{
			"--enable-leader-election=false",
			"--metrics-addr=127.0.0.1:" + strconv.Itoa(ports[0]),
			"--health-probe-addr=127.0.0.1:" + strconv.Itoa(ports[1]),
			"--pprof-addr=127.0.0.1:" + strconv.Itoa(ports[2]),
			"--rest-config-qps=" + strconv.Itoa(kruiseQPS),
			"--rest-config-burst=" + strconv.Itoa(kruiseBurst),
		},
		Env: []string{
			"KUBECONFIG=" + c.cp.KubeconfigPath(),
			"POD_NAMESPACE=" + kruiseNamespace,
			"WEBHOOK_HOST=127.0.0.1",
			"WEBHOOK_PORT=" + strconv.Itoa(ports[3]),
			"WEBHOOK_CERT_DIR=" + filepath.Join(stateDir, "kruise-webhook-certs"),
		},
		LogPath:    c.cp.LogPath("kruise-manager"),
		ReadyURL:   fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[1]),
		MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[0]),
	})
	if err != nil {
		return nil, err
	}
	if err := c.waitKruiseWebhooks(ctx, p, ports[3]); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// installKruise creates Kruise's namespace, its CRDs (established)
// and the CloneSet's webhook configurations, from kruise's own manifests.
func (c *cluster) installKruise(ctx context.Context, src string) error {
	if err := c.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: kruiseNamespace}}); client.IgnoreAlreadyExists(err) != nil {
		return fmt.Errorf("creating namespace %s: %w", kruiseNamespace, err)
	}
	paths, err := kruiseCRDs(src)
	if err != nil {
		return err
	}
	var crds []*unstructured.Unstructured
	for _, path := range paths {
		objs, err := decodeManifests(path)
		if err != nil {
			return err
		}
		crds = append(crds, objs...)
	}
	if err := install.ApplyAndWait(ctx, c.admin, crds); err != nil {
		return fmt.Errorf("installing Kruise's CRDs: %w", err)
	}
	mutating, validating, err := kruiseWebhookConfigurations(filepath.Join(src, "config", "webhook", "manifests.yaml"))
	if err != nil {
		return err
	}
	for _, obj := range []client.Object{mutating, validating} {
		if err := c.client.Create(ctx, obj); client.IgnoreAlreadyExists(err) != nil {
			return fmt.Errorf("creating %s: %w", obj.GetName(), err)
		}
	}
	return nil
}

// kruiseWebhookConfigurations reads kruise's webhook manifests and keeps
// the CloneSet's webhooks, under the names kruise-manager looks for.
func kruiseWebhookConfigurations(path string) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{}
	validating := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	docs, err := decodeManifests(path)
	if err != nil {
		return nil, nil, err
	}
	for _, doc := range docs {
		switch doc.GetKind() {
		case "MutatingWebhookConfiguration":
			err = fromUnstructured(doc, mutating)
		case "ValidatingWebhookConfiguration":
			err = fromUnstructured(doc, validating)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	mutating.ObjectMeta = metav1.ObjectMeta{Name: kruiseMutatingWebhooks}
	mutating.Webhooks = keepWebhooks(mutating.Webhooks, func(w admissionregistrationv1.MutatingWebhook) admissionregistrationv1.WebhookClientConfig {
		return w.ClientConfig
	})
	validating.ObjectMeta = metav1.ObjectMeta{Name: kruiseValidatingWebhooks}
	validating.Webhooks = keepWebhooks(validating.Webhooks, func(w admissionregistrationv1.ValidatingWebhook) admissionregistrationv1.WebhookClientConfig {
		return w.ClientConfig
	})
	if len(mutating.Webhooks) != 1 || len(validating.Webhooks) != 1 {
		return nil, nil, fmt.Errorf("%s: expected one mutating and one validating CloneSet webhook, found %d and %d", path, len(mutating.Webhooks), len(validating.Webhooks))
	}
	return mutating, validating, nil
}

// keepWebhooks keeps the webhooks whose service path is a CloneSet's.
func keepWebhooks[W any](all []W, config func(W) admissionregistrationv1.WebhookClientConfig) []W {
	var out []W
	for _, w := range all {
		if svc := config(w).Service; svc != nil && svc.Path != nil && kruiseWebhookPaths[*svc.Path] {
			out = append(out, w)
		}
	}
	return out
}

// decodeManifests reads the objects of one of Kruise's YAML files.
func decodeManifests(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading kruise's manifests: %w", err)
	}
	objs, err := config.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return objs, nil
}

// waitKruiseWebhooks waits until kruise-manager has pointed its webhook
// configurations at its port with its CA: before that the API server
// cannot call them and every CloneSet write fails.
func (c *cluster) waitKruiseWebhooks(ctx context.Context, p *managerproc.Process, port int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-p.Exited():
			cancel(p.ExitError())
		case <-ctx.Done():
		}
	}()
	served := func(cc admissionregistrationv1.WebhookClientConfig) bool {
		return cc.URL != nil && len(cc.CABundle) > 0
	}
	err := waitForObject(ctx, c.client, &admissionregistrationv1.MutatingWebhookConfigurationList{}, "", kruiseMutatingWebhooks, func(m *admissionregistrationv1.MutatingWebhookConfiguration) bool {
		return len(m.Webhooks) > 0 && served(m.Webhooks[0].ClientConfig)
	})
	if err == nil {
		err = waitForObject(ctx, c.client, &admissionregistrationv1.ValidatingWebhookConfigurationList{}, "", kruiseValidatingWebhooks, func(v *admissionregistrationv1.ValidatingWebhookConfiguration) bool {
			return len(v.Webhooks) > 0 && served(v.Webhooks[0].ClientConfig)
		})
	}
	if err != nil {
		return fmt.Errorf("waiting for kruise-manager to serve its CloneSet webhooks (log: %s): %w", p.LogPath(), withCause(ctx, err))
	}
	return nil
}

// cloneSetGVK is the CloneSet's kind; the benchmark handles it as
// unstructured data rather than import Kruise's API module (it pins
// Kubernetes libraries of its own).
var cloneSetGVK = schema.GroupVersionKind{Group: "apps.kruise.io", Version: "v1alpha1", Kind: "CloneSet"}

// cloneSetKey names the CloneSet scenario.
const cloneSetKey = "cloneset"

// cloneSet is the peer scenario: an OpenKruise CloneSet updated in place.
type cloneSet struct{ shape shape }

func (cloneSet) Kind() string {
	return "OpenKruise CloneSet " + kruiseVersion + " (apps.kruise.io/v1alpha1)"
}

func (w cloneSet) object(ns, image string) (*unstructured.Unstructured, error) {
	// The Deployment's template: spread over zones and nodes alike.
	template, err := toUnstructuredMap(&deployment(w).object(ns, image).Spec.Template)
	if err != nil {
		return nil, err
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"namespace": ns, "name": appName},
		"spec": map[string]any{
			"replicas": int64(w.shape.Replicas),
			"selector": map[string]any{"matchLabels": map[string]any{appLabel: appName}},
			"template": template,
			"updateStrategy": map[string]any{
				"type":                  "InPlaceIfPossible",
				"maxUnavailable":        int64(w.shape.MaxUnavailable),
				"maxSurge":              int64(0),
				"inPlaceUpdateStrategy": map[string]any{"gracePeriodSeconds": int64(0)},
			},
		},
	}}
	obj.SetGroupVersionKind(cloneSetGVK)
	return obj, nil
}

func (w cloneSet) Settings() []string {
	return []string{
		fmt.Sprintf("%d replicas, the Deployment's pod template (topologySpreadConstraints: zone maxSkew 1 DoNotSchedule, hostname maxSkew 1 ScheduleAnyway)", w.shape.Replicas),
		fmt.Sprintf("updateStrategy: InPlaceIfPossible, maxUnavailable %d, maxSurge 0, inPlaceUpdateStrategy.gracePeriodSeconds 0 (Kruise's default)", w.shape.MaxUnavailable),
		fmt.Sprintf("kruise-manager %s built from its Go module (hack/tools/kruise), a separate process with the admin kubeconfig, client QPS %d / burst %d (its defaults are 30 / 50), leader election off, every Kruise CRD installed, the CloneSet's admission webhooks only (on loopback, its own certificates)", kruiseVersion, kruiseQPS, kruiseBurst),
		"in-place update: Kruise writes its readiness gate InPlaceUpdateReady False, patches the image in the next write, waits for the container's imageID to change and sets the gate True; it does not wait for the EndpointSlices to drop the pod before the image changes (with gracePeriodSeconds > 0 it waits that long instead)",
	}
}

func (w cloneSet) WaterLevel() int { return int(w.shape.Replicas - w.shape.MaxUnavailable) }

func (w cloneSet) Create(ctx context.Context, c client.Client, ns, image string) error {
	obj, err := w.object(ns, image)
	if err != nil {
		return err
	}
	return create(ctx, c, "the CloneSet", obj)
}

func (w cloneSet) SetImage(ctx context.Context, c client.Client, ns, image string) error {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(cloneSetGVK)
	obj.SetNamespace(ns)
	obj.SetName(appName)
	return setImage(ctx, c, obj, image)
}

// WaitDone: every replica updated, ready and available at the generation
// the image change made.
func (w cloneSet) WaitDone(ctx context.Context, c client.WithWatch, ns string) error {
	n := int64(w.shape.Replicas)
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(cloneSetGVK.GroupVersion().WithKind(cloneSetGVK.Kind + "List"))
	err := waitForObject(ctx, c, list, ns, appName, func(cs *unstructured.Unstructured) bool {
		st := cloneSetStatus(cs)
		return st["observedGeneration"] == cs.GetGeneration() && st["replicas"] == n && st["updatedReplicas"] == n &&
			st["updatedReadyReplicas"] == n && st["availableReplicas"] == n
	})
	if err != nil {
		return fmt.Errorf("waiting for the CloneSet to report every replica updated and available: %w", err)
	}
	return nil
}

// cloneSetStatus reads the CloneSet's integer status fields.
func cloneSetStatus(cs *unstructured.Unstructured) map[string]int64 {
	out := map[string]int64{}
	for _, f := range []string{"observedGeneration", "replicas", "readyReplicas", "availableReplicas", "updatedReplicas", "updatedReadyReplicas"} {
		v, _, _ := unstructured.NestedInt64(cs.Object, "status", f)
		out[f] = v
	}
	return out
}

func (w cloneSet) Describe(ctx context.Context, c client.Client, ns string) string {
	cs := &unstructured.Unstructured{}
	cs.SetGroupVersionKind(cloneSetGVK)
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: appName}, cs); err != nil {
		return fmt.Sprintf("reading the CloneSet: %v", err)
	}
	st := cloneSetStatus(cs)
	return fmt.Sprintf("CloneSet: generation %d, observedGeneration %d, replicas %d, ready %d, available %d, updated %d, updatedReady %d\n",
		cs.GetGeneration(), st["observedGeneration"], st["replicas"], st["readyReplicas"], st["availableReplicas"], st["updatedReplicas"], st["updatedReadyReplicas"])
}

// toUnstructuredMap turns a pointer to a typed value into unstructured
// data.
func toUnstructuredMap(v any) (map[string]any, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(v)
	if err != nil {
		return nil, fmt.Errorf("converting %T to unstructured data: %w", v, err)
	}
	return m, nil
}

// fromUnstructured fills a typed object from unstructured data.
func fromUnstructured(u *unstructured.Unstructured, into any) error {
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		return fmt.Errorf("decoding %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}
