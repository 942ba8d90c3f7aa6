package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/internal/podnet"
)

// The gateway of the local control plane: Traefik's Kubernetes Gateway
// provider programs the Gateway below, whose one HTTP listener is Traefik's
// "web" entry point on loopback. Apps attach HTTPRoutes to it.
const (
	GatewayClassName = "cafe"
	// TraefikControllerName is the controllerName Traefik's Gateway provider
	// claims GatewayClasses with.
	TraefikControllerName = "traefik.io/gateway-controller"
	GatewayNamespace      = "cafe-gateway"
	GatewayName           = "cafe"
	GatewayListenerName   = "http"

	// Component names (logs, Restart, Kill).
	TraefikComponent     = "traefik"
	PodEmulatorComponent = "pod-emulator"
)

// Identities of the traffic components: Traefik reads routes, Services and
// EndpointSlices and writes Gateway API status; the pod emulator reads pods.
var (
	GatewayIdentity     = Identity{Name: "gateway", User: "cafe:gateway"}
	PodEmulatorIdentity = Identity{Name: "pod-emulator", User: "cafe:pod-emulator"}
)

// GatewayURL is where requests enter the gateway (Traefik's web entry
// point); empty without Traffic.
func (cp *ControlPlane) GatewayURL() string {
	if cp.network == nil {
		return ""
	}
	return url(cp.ports.Gateway)
}

// GatewayAdminURL is Traefik's API (/api/http/services …), /ping and
// /metrics; empty without Traffic.
func (cp *ControlPlane) GatewayAdminURL() string {
	if cp.network == nil {
		return ""
	}
	return url(cp.ports.GatewayAdmin)
}

// PodNetwork is the network namespace the pod IPs live in; nil without
// Traffic.
func (cp *ControlPlane) PodNetwork() *podnet.Network { return cp.network }

// podCIDR is the range kwok hands pod IPs from.
func (cp *ControlPlane) podCIDR() netip.Prefix {
	if cp.network != nil {
		return cp.network.CIDR
	}
	return podnet.UnroutedCIDR
}

// createPodNetwork takes a pod CIDR for this control plane and routes it
// into a network namespace of its own (podnet).
func (cp *ControlPlane) createPodNetwork(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return errors.New("the pod network (a network namespace for the simulated pods' IPs) needs root; run as root or without traffic (cafe dev up --traffic=false)")
	}
	n, err := podnet.Allocate(ctx, cp.layout.dir)
	if err != nil {
		return err
	}
	cp.network = &n
	fmt.Fprintf(cp.cfg.Out, "pod network %s routed into network namespace %s\n", n.CIDR, n.Namespace)
	return nil
}

// startTraffic installs the Gateway API, starts the service registry,
// Traefik, the pod emulator and Prometheus, and waits until the gateway is
// programmed.
func (cp *ControlPlane) startTraffic(ctx context.Context, admin *rest.Config) error {
	if err := install.GatewayAPI(ctx, admin); err != nil {
		return err
	}
	c, err := client.New(admin, client.Options{Scheme: trafficScheme()})
	if err != nil {
		return fmt.Errorf("building client: %w", err)
	}
	if err := ensureTrafficRBAC(ctx, c); err != nil {
		return err
	}
	if err := cp.startRegistry(ctx); err != nil {
		return err
	}
	if err := cp.startGatewayProcess(ctx); err != nil {
		return err
	}
	if err := ensureGateway(ctx, c, int32(cp.ports.Gateway)); err != nil {
		return err
	}
	if err := cp.waitOrFail(ctx, func(ctx context.Context) error { return waitGatewayProgrammed(ctx, c) }); err != nil {
		return fmt.Errorf("waiting for Traefik to program Gateway %s/%s: %w", GatewayNamespace, GatewayName, err)
	}
	if err := cp.startPodEmulator(ctx); err != nil {
		return err
	}
	return cp.startPrometheus(ctx)
}

// Scrape jobs of the control plane's Prometheus (the job label of their
// series) and the file, in PrometheusDir, that holds the bearer token it
// scrapes CAFE with: whoever runs CAFE writes the token and CAFE's
// targets (package devenv), since the control plane knows neither.
const (
	GatewayScrapeJob    = "gateway"
	CafeScrapeJob       = "cafe"
	CafeScrapeTokenFile = "cafe-scrape.token"
)

// PrometheusURL is the control plane's Prometheus (its HTTP API is under
// /api/v1); empty without Traffic.
func (cp *ControlPlane) PrometheusURL() string {
	if cp.network == nil {
		return ""
	}
	return url(cp.ports.Prometheus)
}

// PrometheusDir holds Prometheus's configuration, data and target files
// (WriteScrapeTargets); empty without Traffic.
func (cp *ControlPlane) PrometheusDir() string {
	if cp.network == nil {
		return ""
	}
	return cp.layout.prometheus()
}

// startPrometheus runs Prometheus as one of the control plane's children,
// scraping Traefik's metrics (on its API entry point) and CAFE's, whose
// metrics endpoint is TLS with a self-signed certificate on loopback and
// answers only the bearer of an authorized token. CAFE's targets are
// written once CAFE runs; until then the job has none.
func (cp *ControlPlane) startPrometheus(ctx context.Context) error {
	dir := cp.layout.prometheus()
	cfg, err := preparePrometheus(PrometheusConfig{Dir: dir, Port: cp.ports.Prometheus, ScrapeInterval: 2 * time.Second, Jobs: []PrometheusJob{
		{Name: GatewayScrapeJob, Targets: []string{"127.0.0.1:" + strconv.Itoa(cp.ports.GatewayAdmin)}},
		{Name: CafeScrapeJob, Scheme: "https", InsecureSkipVerify: true, BearerTokenFile: filepath.Join(dir, CafeScrapeTokenFile)},
	}})
	if err != nil {
		return fmt.Errorf("configuring Prometheus: %w", err)
	}
	fmt.Fprintf(cp.cfg.Out, "starting %s (scraping the gateway and CAFE)\n", PrometheusComponent)
	p, err := startProcess(PrometheusComponent, cfg.Binary, prometheusArgs(cfg), nil, cp.layout.log(PrometheusComponent))
	if err != nil {
		return err
	}
	return cp.adopt(ctx, p, func(ctx context.Context) error { return waitHTTP(ctx, prometheusReadyURL(cfg.Port), nil) })
}

func (cp *ControlPlane) startGatewayProcess(ctx context.Context) error {
	fmt.Fprintf(cp.cfg.Out, "starting %s\n", TraefikComponent)
	p, err := startProcess(TraefikComponent, cp.binary("traefik"), traefikArgs(cp.layout, cp.ports),
		[]string{"KUBECONFIG=" + cp.layout.kubeconfig(GatewayIdentity)}, cp.layout.log(TraefikComponent))
	if err != nil {
		return err
	}
	return cp.adopt(ctx, p, func(ctx context.Context) error { return waitHTTP(ctx, url(cp.ports.GatewayAdmin)+"/ping", nil) })
}

func (cp *ControlPlane) startPodEmulator(ctx context.Context) error {
	if cp.cfg.CafeBinary == "" {
		return errors.New("the pod emulator needs the cafe binary (controlplane.Config.CafeBinary)")
	}
	fmt.Fprintf(cp.cfg.Out, "starting %s (emulated container endpoints)\n", PodEmulatorComponent)
	args := []string{
		"dev", "emulate-pods",
		"--kubeconfig=" + cp.layout.kubeconfig(PodEmulatorIdentity),
		"--state-dir=" + cp.layout.dir,
		"--pod-cidr=" + cp.network.CIDR.String(),
		"--health-addr=127.0.0.1:" + strconv.Itoa(cp.ports.PodEmulator),
	}
	p, err := startProcess(PodEmulatorComponent, cp.cfg.CafeBinary, args, nil, cp.layout.log(PodEmulatorComponent))
	if err != nil {
		return err
	}
	return cp.adopt(ctx, p, func(ctx context.Context) error { return waitHTTP(ctx, url(cp.ports.PodEmulator)+"/healthz", nil) })
}

// traefikArgs: the web entry point takes the Gateway's listener (Traefik
// matches listeners to entry points by port); the API, /ping and the
// Prometheus metrics are on the "traefik" entry point. Everything listens on
// loopback, and Traefik neither checks for new versions nor reports usage:
// no packet of the project leaves the machine.
func traefikArgs(l layout, p Ports) []string {
	return []string{
		"--global.checknewversion=false",
		"--global.sendanonymoususage=false",
		"--entrypoints.web.address=127.0.0.1:" + strconv.Itoa(p.Gateway),
		"--entrypoints.traefik.address=127.0.0.1:" + strconv.Itoa(p.GatewayAdmin),
		"--api=true",
		"--api.insecure=true",
		"--api.dashboard=false",
		"--ping=true",
		"--metrics.prometheus=true",
		"--providers.kubernetesgateway=true",
		"--providers.kubernetesgateway.statusaddress.ip=127.0.0.1",
		"--log.level=INFO",
		"--log.nocolor=true",
	}
}

func trafficScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, rbacv1.AddToScheme, gatewayv1.Install} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// ensureTrafficRBAC grants Traefik what its Gateway provider reads and
// writes (as its Helm chart does) and the emulator read access to pods.
func ensureTrafficRBAC(ctx context.Context, c client.Client) error {
	read := []string{"get", "list", "watch"}
	roles := []struct {
		id    Identity
		rules []rbacv1.PolicyRule
	}{
		{GatewayIdentity, []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces", "services", "secrets", "configmaps"}, Verbs: read},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: read},
			{APIGroups: []string{gatewayv1.GroupName}, Resources: []string{"gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants", "backendtlspolicies", "tcproutes", "tlsroutes"}, Verbs: read},
			{APIGroups: []string{gatewayv1.GroupName}, Resources: []string{"gatewayclasses/status", "gateways/status", "httproutes/status", "grpcroutes/status", "backendtlspolicies/status", "tcproutes/status", "tlsroutes/status"}, Verbs: []string{"update", "patch"}},
		}},
		{PodEmulatorIdentity, []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: read},
		}},
	}
	for _, r := range roles {
		id, rules := r.id, r.rules
		name := "cafe:" + id.Name
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := upsert(ctx, c, role, func() { role.Rules = rules }); err != nil {
			return err
		}
		binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := upsert(ctx, c, binding, func() {
			binding.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}
			binding.Subjects = []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: id.User}}
		}); err != nil {
			return err
		}
	}
	return nil
}

// ensureGateway creates the GatewayClass, the namespace and the Gateway, or
// points the Gateway's listener at this run's port (a kept state directory
// had other ports).
func ensureGateway(ctx context.Context, c client.Client, port int32) error {
	class := &gatewayv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: GatewayClassName}}
	if err := upsert(ctx, c, class, func() {
		class.Spec.ControllerName = TraefikControllerName
		class.Spec.Description = ptr.To("Traefik on loopback (docs/traffic.md)")
	}); err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: GatewayNamespace}}
	if err := upsert(ctx, c, ns, func() {}); err != nil {
		return err
	}
	all := gatewayv1.NamespacesFromAll
	gw := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: GatewayNamespace, Name: GatewayName}}
	return upsert(ctx, c, gw, func() {
		gw.Spec.GatewayClassName = GatewayClassName
		gw.Spec.Listeners = []gatewayv1.Listener{{
			Name:          GatewayListenerName,
			Port:          port,
			Protocol:      gatewayv1.HTTPProtocolType,
			AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: &all}},
		}}
	})
}

// upsert creates obj after mutate, or updates it with mutate applied.
func upsert(ctx context.Context, c client.Client, obj client.Object, mutate func()) error {
	return wait.PollUntilContextTimeout(ctx, pollInterval, time.Minute, true, func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		switch {
		case apierrors.IsNotFound(err):
			mutate()
			err = c.Create(ctx, obj)
		case err == nil:
			mutate()
			err = c.Update(ctx, obj)
		}
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("writing %T %s: %w", obj, client.ObjectKeyFromObject(obj), err)
		}
		return true, nil
	})
}

// waitGatewayProgrammed waits until Traefik reports the Gateway Programmed
// for this generation: routes attached to it are then served.
func waitGatewayProgrammed(ctx context.Context, c client.Client) error {
	return wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		gw := &gatewayv1.Gateway{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: GatewayNamespace, Name: GatewayName}, gw); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		cond := meta.FindStatusCondition(gw.Status.Conditions, string(gatewayv1.GatewayConditionProgrammed))
		return cond != nil && cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == gw.Generation, nil
	})
}
