// Package managercmd implements `cafe manager`: CAFE's controllers, as run
// by the Deployment in config/manager.
package managercmd

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/cafe-io/cafe/internal/controller/classichost"
	"github.com/cafe-io/cafe/internal/directory"
	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/internal/manager"
	"github.com/cafe-io/cafe/internal/memlimit"
	"github.com/cafe-io/cafe/internal/traffic/gateway"
	"github.com/cafe-io/cafe/internal/webhook/certs"
)

type options struct {
	manager.Options
	Kubeconfig     string
	Zap            zap.Options
	MemoryLimit    string
	WebhookPort    int
	WebhookHost    string
	WebhookCertDir string
	WebhookService string
	Namespace      string
	// GatewayAPIURL and GatewayControllerName configure the gateway
	// traffic provider (off while the URL is empty).
	GatewayAPIURL         string
	GatewayControllerName string
	// IdentitySource, Directory* and Login* configure the login service
	// (off while neither a directory URL nor the objects source is set).
	IdentitySource              string
	DirectoryURL                string
	DirectoryCAFile             string
	DirectoryBase               string
	DirectoryReaderPasswordFile string
	LoginIssuerURL              string
	TokenLifetime               time.Duration
}

// Identity sources of the login service (--identity-source).
const (
	identityLDAP    = "ldap"
	identityObjects = "objects"
)

// loginOptions is the login service's configuration, nil when it is off
// (no directory and no other source chosen).
func (o *options) loginOptions() (*manager.LoginOptions, error) {
	switch o.IdentitySource {
	case identityLDAP:
		if o.DirectoryURL == "" {
			if o.LoginIssuerURL != "" {
				return nil, errors.New("--login-issuer-url: the login service needs its users: --directory-url (LDAP), or --identity-source=objects (IAMUsers and IAMGroups)")
			}
			return nil, nil
		}
	case identityObjects:
		if o.DirectoryURL != "" {
			return nil, errors.New("--directory-url: unused with --identity-source=objects, whose users and groups are IAMUsers and IAMGroups")
		}
	default:
		return nil, fmt.Errorf("--identity-source %q: %s or %s", o.IdentitySource, identityLDAP, identityObjects)
	}
	if o.WebhookPort == 0 || o.LoginIssuerURL == "" {
		return nil, errors.New("the login service runs on the webhook server: set --webhook-port and --login-issuer-url (the https URL users and the API server reach it at)")
	}
	if o.TokenLifetime > time.Hour {
		return nil, fmt.Errorf("--token-lifetime %s: at most 1h (the API server's configuration refuses longer tokens)", o.TokenLifetime)
	}
	opts := &manager.LoginOptions{IssuerURL: o.LoginIssuerURL, TokenLifetime: o.TokenLifetime}
	if o.IdentitySource == identityLDAP {
		dir, err := o.directoryClient()
		if err != nil {
			return nil, err
		}
		opts.Directory = dir
	}
	return opts, nil
}

// directoryClient reaches the LDAP directory the --directory-* flags name.
func (o *options) directoryClient() (*directory.Client, error) {
	caPEM, err := os.ReadFile(o.DirectoryCAFile)
	if err != nil {
		return nil, fmt.Errorf("--directory-ca-file: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("--directory-ca-file: %s holds no PEM certificate", o.DirectoryCAFile)
	}
	reader, err := os.ReadFile(o.DirectoryReaderPasswordFile)
	if err != nil {
		return nil, fmt.Errorf("--directory-reader-password-file: %w", err)
	}
	return &directory.Client{URL: o.DirectoryURL, RootCAs: roots, Directory: directory.Directory{Base: o.DirectoryBase}, ReaderPassword: strings.TrimSpace(string(reader))}, nil
}

// gatewayProvider is the gateway traffic provider's configuration, nil
// when it is off. Traefik is the one implementation CAFE reads today.
func (o *options) gatewayProvider() (*gateway.Options, error) {
	if o.GatewayAPIURL == "" {
		return nil, nil
	}
	opts, err := gateway.TraefikOptions(o.GatewayAPIURL, o.GatewayControllerName)
	if err != nil {
		return nil, fmt.Errorf("--gateway-api-url: %w", err)
	}
	return opts, nil
}

// webhookOptions serves the webhooks behind the in-cluster Service, with a
// certificate for the Service's DNS names.
func (o *options) webhookOptions() *manager.WebhookOptions {
	if o.WebhookPort == 0 {
		return nil
	}
	svc, ns := o.WebhookService, o.Namespace
	opts := &manager.WebhookOptions{
		Host: o.WebhookHost,
		Port: o.WebhookPort,
		Certs: certs.Options{
			Namespace:                       ns,
			SecretName:                      install.WebhookSecretName,
			DNSNames:                        []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local"},
			CertDir:                         o.WebhookCertDir,
			MutatingWebhookConfigurations:   []string{install.MutatingWebhookName},
			ValidatingWebhookConfigurations: []string{install.ValidatingWebhookName},
		},
	}
	// Out of a cluster the API server calls the webhooks by URL at that
	// address: the certificate must name it.
	if ip := net.ParseIP(o.WebhookHost); ip != nil {
		opts.Certs.IPAddresses = []net.IP{ip}
	}
	return opts
}

// NewCmd returns `cafe manager`.
func NewCmd(streams genericiooptions.IOStreams) *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:   "manager",
		Short: "Run CAFE's controllers (in a cluster, or against --kubeconfig)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := zap.New(zap.UseFlagOptions(&o.Zap), zap.WriteTo(streams.ErrOut))
			ctrl.SetLogger(log)
			limit, err := memlimit.Apply(o.MemoryLimit)
			if err != nil {
				return err
			}
			log.Info("Go runtime soft memory limit", "bytes", limit.Bytes, "source", limit.Source)
			cfg, err := o.restConfig()
			if err != nil {
				return err
			}
			o.Webhook = o.webhookOptions()
			if o.Login, err = o.loginOptions(); err != nil {
				return err
			}
			if o.GatewayProvider, err = o.gatewayProvider(); err != nil {
				return err
			}
			o.Options.Namespace = o.Namespace
			mgr, err := manager.New(cfg, o.Options)
			if err != nil {
				return err
			}
			log.Info("Starting CAFE manager")
			return mgr.Start(ctrl.SetupSignalHandler())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig to use (default: in-cluster, then $KUBECONFIG)")
	f.StringVar(&o.MetricsAddr, "metrics-bind-address", "0", "Prometheus metrics address, e.g. :8443 (0 disables)")
	f.BoolVar(&o.MetricsInsecure, "metrics-insecure", false, "serve metrics over plain HTTP to anyone (default: TLS, callers authenticated and authorized for get on /metrics); only for a loopback address")
	f.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "health probe address")
	f.StringVar(&o.MemoryLimit, "memory-limit", memlimit.Auto, fmt.Sprintf("soft memory limit of the Go runtime, e.g. 256Mi: the garbage collector works harder near it rather than letting the heap double first; %q takes %.0f%% of the container's memory limit (none outside a container; GOMEMLIMIT, if set, wins), %q sets none", memlimit.Auto, 100*memlimit.DefaultRatio, memlimit.None))
	f.StringVar(&o.PprofAddr, "pprof-bind-address", "", "net/http/pprof address for profiling, e.g. 127.0.0.1:6060 (empty disables it)")
	f.BoolVar(&o.LeaderElection, "leader-elect", false, "elect a leader so only one replica reconciles")
	f.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader Lease (default: the pod's namespace)")
	f.Float32Var(&o.ClientQPS, "kube-api-qps", manager.DefaultClientQPS, "QPS of CAFE's client to the API server")
	f.IntVar(&o.ClientBurst, "kube-api-burst", 2*manager.DefaultClientQPS, "burst of CAFE's client to the API server")
	f.BoolVar(&o.ClientCompression, "kube-api-compression", false, "ask the API server to gzip its answers (lists and watch streams): less traffic over a slow link, more CPU on both ends; off by default, the API server being near")
	f.IntVar(&o.WebhookPort, "webhook-port", 0, "port of the admission webhook server (0 disables it)")
	f.StringVar(&o.WebhookHost, "webhook-host", "", "address the admission webhook server listens on (empty: every address); an IP address also goes into its certificate, for an API server that calls the webhooks by URL (`cafe manager` run outside the cluster)")
	f.StringVar(&o.WebhookCertDir, "webhook-cert-dir", "/tmp/cafe-webhook-certs", "directory CAFE writes its webhook serving certificate to")
	f.StringVar(&o.WebhookService, "webhook-service", "cafe-webhook-service", "Service in front of the webhook server (its DNS names go into the certificate)")
	f.DurationVar(&o.ReleaseOrderIdleTimeout, "release-order-idle-timeout", 72*time.Hour, "cancel, reason Expired, a release order that changed no app and that nobody acted on for this long (pending approval, approved but not started, paused before its first app), so that it stops holding its apps against other orders; 0 never expires orders")
	f.DurationVar(&o.ReleaseOrderRetention, "release-order-retention", 0, "how long finished release orders (the audit record) are kept before CAFE deletes them, e.g. 87600h; 0 keeps them forever. An order's spec.retentionDays can only lengthen it")
	f.StringVar(&o.GatewayAPIURL, "gateway-api-url", "", "base URL of the Traefik API (its --api on a loopback address, e.g. http://127.0.0.1:9000) that the gateway traffic provider asks which pods the gateway still sends to; empty turns the provider off (finalizer traffic.cafe.io/gateway)")
	f.StringVar(&o.GatewayControllerName, "gateway-controller-name", gateway.DefaultControllerName, "spec.controllerName of the GatewayClasses whose Gateways' HTTPRoutes the gateway traffic provider guards")
	f.DurationVar(&o.ClassicHostStaleAfter, "classic-host-stale-after", classichost.DefaultStaleAfter, "how long after its last renewal a classic host's heartbeat Lease still counts; a host whose agent stops renewing turns Ready=Unknown then")
	f.StringVar(&o.ScrapeTargetsFile, "scrape-targets-file", "", "a Prometheus file_sd file CAFE keeps listing every pod and classic instance it runs, with namespace, app, unit, zone and version labels (written atomically when it changes); empty writes none")
	f.StringVar(&o.PrometheusURL, "prometheus-url", "", "base URL of the Prometheus that TrafficAnalyses query (e.g. http://127.0.0.1:9090); CAFE's admission webhook also asks it to parse their queries. Empty admits analyses unchecked, with a warning")
	f.StringSliceVar(&o.RegistryEndpoints, "registry-endpoints", nil, "client URLs of CAFE's east-west service registry (an etcd on loopback, e.g. http://127.0.0.1:2479): CAFE registers the ready pods and classic instances of Services labelled registry.cafe.io/publish=true there and holds traffic.cafe.io/registry on them until every consumer has applied their deregistration; empty turns both off")
	f.StringVar(&o.IdentitySource, "identity-source", identityLDAP, "where the login service finds users, passwords and groups: ldap (the directory of --directory-url) or objects (IAMUsers and IAMGroups in the cluster, passwords' bcrypt hashes in Secrets of --namespace; see cafe iam hash-password)")
	f.StringVar(&o.DirectoryURL, "directory-url", "", "ldaps:// URL of the bank's directory (LDAP, Active Directory); set, CAFE serves its login service and token issuer on the webhook server (docs/iam.md)")
	f.StringVar(&o.DirectoryCAFile, "directory-ca-file", "", "PEM file of the CA that signed the directory's certificate")
	f.StringVar(&o.DirectoryBase, "directory-base", "", "the directory's base DN (users under ou=people, groups under ou=groups)")
	f.StringVar(&o.DirectoryReaderPasswordFile, "directory-reader-password-file", "", "file holding the password of the read-only account cn=cafe-reader,<base>")
	f.StringVar(&o.LoginIssuerURL, "login-issuer-url", "", "https URL at which users and the API server reach the webhook server: the tokens' issuer, and cafe login's --server")
	f.DurationVar(&o.TokenLifetime, "token-lifetime", 0, "how long a Kubernetes credential CAFE issues is valid (the revocation bound; default 60s, at most 1h)")
	f.StringVar(&o.Namespace, "namespace", envOr("POD_NAMESPACE", "cafe-system"), "namespace CAFE runs in (holds the webhook certificate Secret)")
	// The cluster's floor under every release order's approval rules: a
	// requester chooses spec.approval, the operator bounds it.
	f.IntVar(&o.Approval.MinApprovals, "min-approvals", 1, "least number of approvals every release order needs, whatever its spec.approval.required")
	f.StringSliceVar(&o.Approval.ApproverGroups, "approver-groups", nil, "when set, every approval must come from a member of one of these groups (on top of the order's approverGroups)")
	f.StringSliceVar(&o.Approval.ServiceAccounts, "approver-service-accounts", nil, "ServiceAccount user names (system:serviceaccount:<ns>:<name>) allowed to approve release orders; any other ServiceAccount is refused")
	return cmd
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func (o *options) restConfig() (*rest.Config, error) {
	if o.Kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("loading --kubeconfig: %w", err)
		}
		return cfg, nil
	}
	return ctrl.GetConfig()
}
