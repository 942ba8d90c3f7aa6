// Package manager builds CAFE's controller manager: one controller-runtime
// manager with every CAFE controller registered. `cafe manager` (in a
// cluster), `cafe dev up` (in-process against the local control plane) and the
// integration tests all build it here, from the same Options, so what the
// tests exercise is what runs.
package manager

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/admit"
	"github.com/cafe-io/cafe/internal/analysis"
	"github.com/cafe-io/cafe/internal/controller/cafeappservice"
	"github.com/cafe-io/cafe/internal/controller/cafedeployment"
	"github.com/cafe-io/cafe/internal/controller/classicendpoints"
	"github.com/cafe-io/cafe/internal/controller/classichost"
	"github.com/cafe-io/cafe/internal/controller/classicset"
	"github.com/cafe-io/cafe/internal/controller/gatekeeper"
	iamcontroller "github.com/cafe-io/cafe/internal/controller/iam"
	"github.com/cafe-io/cafe/internal/controller/inplaceset"
	"github.com/cafe-io/cafe/internal/controller/nodelifecycle"
	"github.com/cafe-io/cafe/internal/controller/registrar"
	"github.com/cafe-io/cafe/internal/controller/scrapetargets"
	"github.com/cafe-io/cafe/internal/controller/trafficprovider"
	"github.com/cafe-io/cafe/internal/directory"
	"github.com/cafe-io/cafe/internal/login"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/internal/objectdirectory"
	"github.com/cafe-io/cafe/internal/registry"
	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/internal/token"
	"github.com/cafe-io/cafe/internal/traffic"
	"github.com/cafe-io/cafe/internal/traffic/gateway"
	registryprovider "github.com/cafe-io/cafe/internal/traffic/registry"
	appwebhook "github.com/cafe-io/cafe/internal/webhook/cafeappservice"
	cdwebhook "github.com/cafe-io/cafe/internal/webhook/cafedeployment"
	"github.com/cafe-io/cafe/internal/webhook/certs"
	iamwebhook "github.com/cafe-io/cafe/internal/webhook/iam"
	nhrwebhook "github.com/cafe-io/cafe/internal/webhook/nodehealthreport"
	podwebhook "github.com/cafe-io/cafe/internal/webhook/pod"
	tawebhook "github.com/cafe-io/cafe/internal/webhook/trafficanalysis"
)

// Options configure the manager. The zero value is valid for tests: no
// metrics or probe listener, no leader election.
type Options struct {
	// MetricsAddr is the Prometheus metrics listen address; "0" or "" disables it.
	MetricsAddr string
	// MetricsInsecure serves metrics over plain HTTP to anyone who can
	// connect; by default they are served over TLS to callers the API
	// server authenticates and authorizes (get on the non-resource URL
	// /metrics: the cafe-metrics-reader ClusterRole). Only for a manager
	// listening on loopback, e.g. the benchmark's.
	MetricsInsecure bool
	// ProbeAddr serves /healthz and /readyz; "" disables it.
	ProbeAddr string
	// PprofAddr serves net/http/pprof for profiling; "" or "0" disables it.
	PprofAddr string
	// LeaderElection makes only one replica reconcile at a time.
	LeaderElection bool
	// LeaderElectionNamespace holds the leader Lease.
	LeaderElectionNamespace string
	// Webhook, when set, serves CAFE's admission webhooks with a certificate
	// CAFE issues and renews itself.
	Webhook *WebhookOptions
	// ClientQPS and ClientBurst limit CAFE's requests to the API server;
	// zero means DefaultClientQPS and twice that.
	ClientQPS   float32
	ClientBurst int
	// ClientCompression asks the API server to gzip its answers. Off, every
	// watch event CAFE receives is neither compressed by the API server nor
	// decompressed by CAFE: a fifth of CAFE's CPU while other controllers
	// released their pods (issue 14), for traffic that stays in the cluster.
	ClientCompression bool
	// Namespace is the namespace CAFE runs in (it holds the audit signing
	// key); empty means install.Namespace (internal/install).
	Namespace string
	// SkipControllerNameValidation lets a second manager run in the same
	// process after the first stopped (devenv.Env.StopControllers):
	// controller-runtime otherwise refuses controller names it has seen.
	SkipControllerNameValidation bool
	// ReleaseOrderRetention is the cluster's retention policy for finished
	// release orders: CAFE deletes one this long after it finished (longer
	// if its spec.retentionDays says so). Zero keeps them forever.
	ReleaseOrderRetention time.Duration
	// ReleaseOrderIdleTimeout cancels an order that changed no app once
	// nobody acted on it for this long (releaseorder.Reconciler.IdleTimeout).
	// Zero never expires orders.
	ReleaseOrderIdleTimeout time.Duration
	// WebhooksOnly builds a manager that serves the admission webhooks
	// (Webhook must be set) and runs no controller: the controllers run in
	// another process, e.g. the `cafe manager` child the release-order e2e
	// test kills, while admission keeps working.
	WebhooksOnly bool
	// Approval is the cluster's floor under every release order's approval
	// rules (minimum approvals, approver groups, ServiceAccounts allowed
	// to approve); the zero value adds nothing to the orders' own rules
	// and lets no ServiceAccount approve.
	Approval cafev1alpha1.ApprovalPolicy
	// GatewayProvider, when set, runs the Gateway API traffic provider
	// (finalizer traffic.cafe.io/gateway): a pod behind an HTTPRoute of a
	// Gateway of GatewayProvider.ControllerName is released only once the
	// gateway itself no longer lists it. It needs the Gateway API CRDs;
	// nil (the default) reads none of their kinds.
	GatewayProvider *gateway.Options
	// ClassicHostStaleAfter is how long a classic host's heartbeat counts
	// (zero: classichost.DefaultStaleAfter).
	ClassicHostStaleAfter time.Duration
	// ScrapeTargetsFile, when set, is a Prometheus file_sd file CAFE keeps
	// listing every pod and classic instance it runs (scrapetargets).
	ScrapeTargetsFile string
	// RegistryEndpoints, when set, are the client URLs (loopback) of
	// CAFE's east-west service registry (an etcd, package
	// internal/registry): CAFE registers the pods and instances of
	// published Services there (registrar) and runs the registry traffic
	// provider (finalizer traffic.cafe.io/registry).
	RegistryEndpoints []string
	// PrometheusURL, when set, is the Prometheus that TrafficAnalyses query
	// (its HTTP API); the admission webhook also asks it to parse their
	// queries. Empty: analyses are admitted unchecked, with a warning.
	PrometheusURL string
	// Login, when set, serves CAFE's login service and token issuer on the
	// webhook server (Webhook must be set): directory users get short-lived
	// Kubernetes credentials (docs/iam.md).
	Login *LoginOptions
}

// LoginOptions configure the login service and the token issuer.
type LoginOptions struct {
	// Directory, when set, checks passwords and reads groups (LDAP, Active
	// Directory); nil: CAFE's own directory of IAMUsers and IAMGroups does
	// (package objectdirectory).
	Directory *directory.Client
	// IssuerURL is the webhook server's https URL as the API server and
	// users reach it: the tokens' issuer.
	IssuerURL string
	// TokenLifetime is how long a token is valid; zero means
	// token.DefaultLifetime.
	TokenLifetime time.Duration
}

// prometheus is the Prometheus TrafficAnalyses query, nil without one.
func (o Options) prometheus() *analysis.Prometheus {
	if o.PrometheusURL == "" {
		return nil
	}
	return &analysis.Prometheus{URL: o.PrometheusURL}
}

// DefaultClientQPS is CAFE's client rate limit. A release writes about
// three times per pod (gate closed, image, gate reopened) from one client,
// where kube-controller-manager gives each of its controllers a client of
// its own: at 100 QPS a 1,000-pod release, in place or rolled back fast,
// queued in CAFE's limiter and took 31.5 s (fast rollback 28.7 s); at 300
// 23.5 s (17.6 s) with no wait there, the control plane's CPU the only
// bound (docs/benchmarks.md). The API server's priority and fairness, not
// this limit, is what protects it from a busy client.
const DefaultClientQPS = 300

// WebhookOptions configure the admission webhook server.
type WebhookOptions struct {
	// Host and Port the server listens on.
	Host string
	Port int
	// Certs says where the CA and serving certificate live, for which names,
	// and which webhook configurations get the CA bundle. Certs.CertDir is
	// also the server's certificate directory.
	Certs certs.Options
}

// LeaderElectionID names the Lease replicas of the manager compete for.
const LeaderElectionID = "cafe-controller-manager.cafe.io"

// New builds the manager and registers every CAFE controller with it.
func New(cfg *rest.Config, opts Options) (ctrl.Manager, error) {
	if opts.WebhooksOnly && opts.Webhook == nil {
		return nil, fmt.Errorf("a webhooks-only manager needs webhook options")
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = opts.ClientQPS, opts.ClientBurst
	if cfg.QPS == 0 {
		cfg.QPS = DefaultClientQPS
	}
	if cfg.Burst == 0 {
		cfg.Burst = int(2 * cfg.QPS)
	}
	cfg.DisableCompression = !opts.ClientCompression
	// rest_client_rate_limiter_duration_seconds: how long CAFE's requests
	// waited for the client's own limit (--kube-api-qps), the first thing
	// to read when a release runs slower than the API server allows.
	crmetrics.RegisterRESTClientMetrics(crmetrics.MetricRateLimiterLatency)
	metricsAddr := opts.MetricsAddr
	if metricsAddr == "" {
		metricsAddr = "0"
	}
	var webhookServer webhook.Server
	if opts.Webhook != nil {
		// The server reads its certificate when it starts, so it must exist
		// before the manager does; the Rotator renews it afterwards.
		if err := ensureWebhookCerts(cfg, opts.Webhook.Certs); err != nil {
			return nil, err
		}
		webhookServer = webhook.NewServer(webhook.Options{Host: opts.Webhook.Host, Port: opts.Webhook.Port, CertDir: opts.Webhook.Certs.CertDir})
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		WebhookServer:           webhookServer,
		Cache:                   cacheOptions(),
		Scheme:                  scheme.New(),
		Metrics:                 metricsOptions(metricsAddr, opts.MetricsInsecure),
		HealthProbeBindAddress:  opts.ProbeAddr,
		PprofBindAddress:        opts.PprofAddr,
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        LeaderElectionID,
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		// Release the lease on shutdown so a rolling update of the manager
		// does not wait a lease duration before the new leader acts.
		LeaderElectionReleaseOnCancel: true,
		Controller:                    ctrlconfig.Controller{SkipNameValidation: &opts.SkipControllerNameValidation},
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	if opts.ProbeAddr != "" {
		if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
			return nil, fmt.Errorf("adding health check: %w", err)
		}
		if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
			return nil, fmt.Errorf("adding ready check: %w", err)
		}
	}
	// The controllers and the pod webhooks both read EndpointSlices by pod.
	slices, err := lossless.SetupSlices(context.Background(), mgr)
	if err != nil {
		return nil, err
	}
	if !opts.WebhooksOnly {
		if err := setupControllers(context.Background(), mgr, slices, opts); err != nil {
			return nil, err
		}
		if err := setupReleaseOrders(context.Background(), mgr, opts); err != nil {
			return nil, err
		}
		if err := setupTrafficProviders(context.Background(), mgr, opts); err != nil {
			return nil, err
		}
	}
	if opts.Webhook != nil {
		if err := setupWebhooks(mgr, cfg, opts, slices); err != nil {
			return nil, err
		}
	}
	return mgr, nil
}

// The webhook certificate Secret is in CAFE's namespace (a Role there);
// only CAFE's own webhook configurations get their caBundle patched, by
// name (install.MutatingWebhookName and install.ValidatingWebhookName).
// cacheOptions: no controller reads managedFields, and dropping them from
// the cache halves what each cached pod weighs and what a copy of it costs.
// Leases are watched in cafe-host-lease only (classic hosts' heartbeats;
// the node lifecycle lists node Leases per pass instead of watching
// their renewals): the manager may read Leases nowhere else. Pods are watched only where CAFE
// manages them (managedPods), ReplicaSets and StatefulSets only where a
// CafeDeployment made them (ownedPodSets): a release of another
// controller's 1,000 pods sends CAFE no pod and no ReplicaSet event at all.
// Of RBAC objects only those CAFE projects (iamProjected).
// Of EndpointSlices only CAFE's own (those listing classic instances) are
// in this cache: lossless.Slices watches the others only in the
// namespaces of the managed pods.
func cacheOptions() cache.Options {
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&coordinationv1.Lease{}: {Namespaces: map[string]cache.Config{cafev1alpha1.ClassicHostLeaseNamespace: {}}},
			&corev1.Pod{}:           {Label: managedPods},
			&appsv1.ReplicaSet{}:    {Label: ownedPodSets},
			&appsv1.StatefulSet{}:   {Label: ownedPodSets},
			&discoveryv1.EndpointSlice{}: {Label: labels.SelectorFromSet(labels.Set{
				discoveryv1.LabelManagedBy: classicendpoints.ManagedBy,
			})},
			&rbacv1.ClusterRole{}:        {Label: iamProjected},
			&rbacv1.ClusterRoleBinding{}: {Label: iamProjected},
			&rbacv1.RoleBinding{}:        {Label: iamProjected},
		},
	}
}

// registerLogin serves the token issuer's discovery and keys, and the login
// service, on the webhook server (its TLS certificate is CAFE's own).
func registerLogin(srv webhook.Server, mgr ctrl.Manager, c client.Client, opts Options) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key, err := token.EnsureKey(ctx, c, opts.namespace())
	if err != nil {
		return err
	}
	issuer := &token.Issuer{URL: opts.Login.IssuerURL, Audience: token.Audience, Key: key, Lifetime: opts.Login.TokenLifetime}
	keys := issuer.Handler()
	srv.Register(token.DiscoveryPath, keys)
	srv.Register(token.JWKSPath, keys)
	service := (&login.Service{Directory: opts.Login.source(mgr, opts.namespace()), Access: issuer, Log: mgr.GetLogger().WithName("login")}).Handler()
	srv.Register(login.LoginPath, service)
	srv.Register(login.RefreshPath, service)
	return nil
}

// source is where logins are checked: the directory when one is
// configured, CAFE's IAMUsers and IAMGroups otherwise (read from the
// manager's cache; password Secrets uncached, so CAFE keeps no copy of its
// namespace's Secrets).
func (o *LoginOptions) source(mgr ctrl.Manager, namespace string) login.Directory {
	if o.Directory != nil {
		return o.Directory
	}
	return objectdirectory.Directory{Objects: mgr.GetClient(), Secrets: mgr.GetAPIReader(), Namespace: namespace}
}

// iamProjected selects the RBAC objects CAFE projects from IAMRoles and
// IAMRoleBindings: the only ones it watches (a cluster's other roles and
// bindings are none of its business).
var iamProjected = labels.SelectorFromSet(labels.Set{cafev1alpha1.IAMManagedLabel: cafev1alpha1.IAMManagedValue})

// managedPods selects the pods CAFE creates, in place (InPlaceSet) and
// through its native pod sets (ReplicaSet, StatefulSet templates): all carry
// cafe.io/revision-hash. Every controller that reads pods reads only these
// (the webhooks decode the pod from the request, and the eviction guard
// reads the API server).
var managedPods = labelExists(cafev1alpha1.RevisionHashLabel)

// labelExists selects the objects that carry key, whatever its value.
func labelExists(key string) labels.Selector {
	exists, err := labels.NewRequirement(key, selection.Exists, nil)
	if err != nil {
		panic(err)
	}
	return labels.NewSelector().Add(*exists)
}

// ownedPodSets selects the ReplicaSets and StatefulSets a CafeDeployment
// creates: all carry cafe.io/deployment, and every read of them (the
// pod-set drivers, the gate keeper's minReadySeconds) is of CAFE's own.
var ownedPodSets = labelExists(cafev1alpha1.DeploymentLabel)

// metricsOptions serves metrics over TLS (a self-signed certificate) to
// callers the API server authenticates (TokenReview) and authorizes for
// get on /metrics (SubjectAccessReview), unless insecure.
func metricsOptions(addr string, insecure bool) metricsserver.Options {
	if insecure {
		return metricsserver.Options{BindAddress: addr}
	}
	return metricsserver.Options{BindAddress: addr, SecureServing: true, FilterProvider: filters.WithAuthenticationAndAuthorization}
}

// +kubebuilder:rbac:groups="",namespace=cafe-system,resources=secrets,verbs=get;create;update
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations,resourceNames=cafe-mutating-webhook,verbs=get;patch
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,resourceNames=cafe-validating-webhook,verbs=get;patch

func ensureWebhookCerts(cfg *rest.Config, o certs.Options) error {
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return fmt.Errorf("building client for webhook certificates: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := certs.Ensure(ctx, c, o); err != nil {
		return fmt.Errorf("issuing webhook certificates: %w", err)
	}
	return nil
}

func setupWebhooks(mgr ctrl.Manager, cfg *rest.Config, opts Options, slices *lossless.Slices) error {
	o := opts.Webhook.Certs
	// The Rotator reads the API server directly: the Secret must not wait
	// for a cache that the webhook's own readiness may hold up.
	c, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return err
	}
	if err := mgr.Add(&certs.Rotator{Client: c, Options: o}); err != nil {
		return fmt.Errorf("adding certificate rotator: %w", err)
	}
	srv := mgr.GetWebhookServer()
	srv.Register(cdwebhook.MutatePath, &webhook.Admission{Handler: &cdwebhook.IdentityStamper{}})
	srv.Register(cdwebhook.ValidatePath, &webhook.Admission{Handler: cdwebhook.Validator{Reader: mgr.GetAPIReader()}})
	self := &admit.Self{Client: mgr.GetClient()}
	srv.Register(podwebhook.GuardPath, &webhook.Admission{Handler: &podwebhook.Guard{Client: mgr.GetClient(), Slices: slices, CAFE: self}})
	srv.Register(podwebhook.EvictionPath, &webhook.Admission{Handler: &podwebhook.EvictionGuard{Reader: mgr.GetAPIReader(), Client: mgr.GetClient(), Slices: slices}})
	srv.Register(appwebhook.MutatePath, &webhook.Admission{Handler: &appwebhook.IdentityStamper{}})
	srv.Register(appwebhook.ValidatePath, &webhook.Admission{Handler: appwebhook.Validator{Reader: mgr.GetAPIReader()}})
	srv.Register(appwebhook.RevisionDeletePath, &webhook.Admission{Handler: appwebhook.RevisionDeleteGuard{Reader: mgr.GetAPIReader()}})
	srv.Register(appwebhook.RevisionPath, &webhook.Admission{Handler: appwebhook.RevisionGuard{CAFE: self}})
	srv.Register(nhrwebhook.MutatePath, &webhook.Admission{Handler: nhrwebhook.Stamper{}})
	srv.Register(nhrwebhook.ValidatePath, &webhook.Admission{Handler: nhrwebhook.Validator{Reader: mgr.GetAPIReader()}})
	srv.Register(tawebhook.ValidatePath, &webhook.Admission{Handler: tawebhook.Validator{Prometheus: opts.prometheus()}})
	srv.Register(iamwebhook.RolePath, &webhook.Admission{Handler: iamwebhook.RoleValidator{Reader: mgr.GetAPIReader(), Client: mgr.GetClient()}})
	srv.Register(iamwebhook.BindingPath, &webhook.Admission{Handler: iamwebhook.BindingValidator{Reader: mgr.GetAPIReader(), Client: mgr.GetClient()}})
	registerReleaseOrderWebhooks(srv, mgr, c, opts.namespace(), opts.Approval)
	if opts.Login != nil {
		if err := registerLogin(srv, mgr, c, opts); err != nil {
			return err
		}
	}
	if err := mgr.AddReadyzCheck("webhook", srv.StartedChecker()); err != nil {
		return fmt.Errorf("adding webhook ready check: %w", err)
	}
	return nil
}

// setupControllers registers every controller. Each controller package
// exposes a Reconciler with SetupWithManager.
func setupControllers(ctx context.Context, mgr ctrl.Manager, slices *lossless.Slices, opts Options) error {
	// The classic controllers find a host's instances by this index.
	err := mgr.GetFieldIndexer().IndexField(ctx, &cafev1alpha1.ClassicInstance{}, cafev1alpha1.ClassicInstanceHostField, func(o client.Object) []string {
		return []string{o.(*cafev1alpha1.ClassicInstance).Spec.HostName}
	})
	if err != nil {
		return fmt.Errorf("indexing classic instances by host: %w", err)
	}
	ips := &inplaceset.Reconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme(), Recorder: mgr.GetEventRecorder("inplaceset"), Slices: slices}
	if err := ips.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up the InPlaceSet controller: %w", err)
	}
	cd := &cafedeployment.Reconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme(), Recorder: mgr.GetEventRecorder("cafedeployment"), Slices: slices, Prometheus: opts.prometheus()}
	if err := cd.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up the CafeDeployment controller: %w", err)
	}
	gk := &gatekeeper.Reconciler{Client: mgr.GetClient()}
	if err := gk.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up the gate keeper: %w", err)
	}
	app := &cafeappservice.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(), Recorder: mgr.GetEventRecorder("cafeappservice")}
	if err := app.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up the CafeAppService controller: %w", err)
	}
	nl := &nodelifecycle.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("nodelifecycle")}
	if err := nl.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up the node lifecycle controller: %w", err)
	}
	endpoints := &classicendpoints.Reconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme()}
	if err := endpoints.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up the classic endpoints controller: %w", err)
	}
	sets := &classicset.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(), Recorder: mgr.GetEventRecorder("classicset")}
	if err := sets.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the ClassicSet controller: %w", err)
	}
	if opts.ScrapeTargetsFile != "" {
		targets := &scrapetargets.Reconciler{Client: mgr.GetClient(), Path: opts.ScrapeTargetsFile}
		if err := targets.SetupWithManager(mgr); err != nil {
			return fmt.Errorf("setting up the scrape targets file: %w", err)
		}
	}
	hosts := &classichost.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("classichost"), StaleAfter: opts.ClassicHostStaleAfter}
	if err := hosts.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the classic host controller: %w", err)
	}
	roles := &iamcontroller.RoleReconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme(), Recorder: mgr.GetEventRecorder("iamrole")}
	if err := roles.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the IAMRole controller: %w", err)
	}
	bindings := &iamcontroller.BindingReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(), Recorder: mgr.GetEventRecorder("iamrolebinding")}
	if err := bindings.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the IAMRoleBinding controller: %w", err)
	}
	return nil
}

// setupTrafficProviders runs one trafficprovider controller per traffic
// provider configured, and a second one over the classic instances for a
// provider that implements traffic.InstanceProvider. A provider that is
// off registers nothing: its kinds' CRDs may not exist.
func setupTrafficProviders(ctx context.Context, mgr ctrl.Manager, opts Options) error {
	var providers []traffic.Provider
	if len(opts.RegistryEndpoints) > 0 {
		reg, err := dialRegistry(mgr, opts.RegistryEndpoints)
		if err != nil {
			return err
		}
		registrar := &registrar.Reconciler{Client: mgr.GetClient(), Registry: reg}
		if err := registrar.SetupWithManager(mgr); err != nil {
			return fmt.Errorf("setting up the registrar: %w", err)
		}
		p, err := registryprovider.New(mgr.GetClient(), reg)
		if err != nil {
			return err
		}
		providers = append(providers, p)
	}
	if opts.GatewayProvider != nil {
		gw, err := gateway.New(ctx, mgr, *opts.GatewayProvider)
		if err != nil {
			return err
		}
		providers = append(providers, gw)
	}
	for _, p := range providers {
		opts := trafficprovider.Options{Client: mgr.GetClient(), Provider: p, Recorder: mgr.GetEventRecorder("traffic-" + p.Name())}
		r := &trafficprovider.Reconciler{Options: opts}
		if err := r.SetupWithManager(ctx, mgr); err != nil {
			return fmt.Errorf("setting up the %s traffic provider: %w", p.Name(), err)
		}
		// A provider whose system may also route to classic instances
		// holds its finalizer on them too (ClassicSet waits for it).
		if _, ok := p.(traffic.InstanceProvider); ok {
			ri := &trafficprovider.InstanceReconciler{Options: opts}
			if err := ri.SetupWithManager(ctx, mgr); err != nil {
				return fmt.Errorf("setting up the %s traffic provider for classic instances: %w", p.Name(), err)
			}
		}
	}
	return nil
}

// dialRegistry connects to the service registry (loopback endpoints only)
// and closes the connection when the manager stops.
func dialRegistry(mgr ctrl.Manager, endpoints []string) (*clientv3.Client, error) {
	if err := registry.CheckEndpoints(endpoints); err != nil {
		return nil, err
	}
	reg, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("connecting to the service registry at %v: %w", endpoints, err)
	}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		return reg.Close()
	})); err != nil {
		return nil, err
	}
	return reg, nil
}
