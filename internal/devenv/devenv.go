// Package devenv is CAFE on the embedded local control plane: it builds the
// Kubernetes binaries if needed, starts the control plane with simulated
// nodes, installs CAFE's CRDs and RBAC and runs CAFE's controllers in-process
// under the cafe-controller-manager ServiceAccount's identity.
//
// `cafe dev up` and the e2e tests both start CAFE through Up, so the tests
// exercise exactly what a user runs.
package devenv

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/internal/login"
	"github.com/cafe-io/cafe/internal/manager"
	"github.com/cafe-io/cafe/internal/token"
	"github.com/cafe-io/cafe/internal/traffic/gateway"
	"github.com/cafe-io/cafe/internal/webhook/certs"
)

// Options configure Up.
type Options struct {
	ControlPlane controlplane.Config
	// SourceDir is the repository root holding hack/tools; empty means the
	// binaries in ControlPlane.BinDir must already exist.
	SourceDir string
	// WithoutCAFE starts a bare Kubernetes control plane: no CRDs, no manager.
	WithoutCAFE bool
	// WithoutGatewayProvider leaves the gateway traffic provider off even
	// when the control plane runs a gateway: pods behind its routes are
	// operated on without the gateway's confirmation (a test-only switch
	// that shows what the confirmation prevents).
	WithoutGatewayProvider bool
	// Manager configures the in-process controller manager.
	Manager manager.Options
	// Logger receives the manager's logs.
	Logger logr.Logger
	// ClassicHosts are the classic hosts to enrol and run agents for
	// (ClassicHostPlan names them); they need CAFE and
	// ControlPlane.CafeBinary.
	ClassicHosts []ClassicHost
	// DemoAppBinary, with classic hosts, is the demo app
	// (examples/demo-app) whose packages an artifact store on loopback
	// serves; empty serves none.
	DemoAppBinary string
}

// Env is a running local control plane with CAFE.
type Env struct {
	ControlPlane *controlplane.ControlPlane
	// Admin is a client configuration with cluster-admin rights.
	Admin *rest.Config

	// ClassicHosts are the classic hosts whose agents run.
	ClassicHosts []ClassicHost
	// DemoApp is the artifact store of the demo app's packages, when
	// served.
	DemoApp     *DemoApp
	stopDemoApp context.CancelFunc

	opts          Options
	cancelManager context.CancelFunc
	// managerDone is closed when the manager has returned managerErr.
	managerDone chan struct{}
	managerErr  error
	stopOnce    sync.Once
	// loginServer is the login service's URL (with the directory).
	loginServer string
}

// Up starts everything and returns once nodes are Ready, CRDs are served and
// the manager runs. On error nothing is left running.
func Up(ctx context.Context, opts Options) (env *Env, err error) {
	out := opts.ControlPlane.Out
	if out == nil {
		out = io.Discard
	}
	if err := controlplane.EnsureBinaries(ctx, controlplane.BuildOptions{RepoRoot: opts.SourceDir, BinDir: opts.ControlPlane.BinDir, Out: out}); err != nil {
		return nil, err
	}
	cp, err := controlplane.Start(ctx, opts.ControlPlane)
	if err != nil {
		return nil, err
	}
	env = &Env{ControlPlane: cp}
	defer func() {
		if err != nil {
			env.Stop()
		}
	}()
	if env.Admin, err = cp.AdminRESTConfig(); err != nil {
		return env, err
	}
	if opts.WithoutCAFE {
		return env, nil
	}
	fmt.Fprintln(out, "installing CAFE CRDs and RBAC")
	if err := install.CAFE(ctx, env.Admin); err != nil {
		return env, fmt.Errorf("installing CAFE: %w", err)
	}
	if opts.Manager.GatewayProvider, err = gatewayProvider(cp, opts); err != nil {
		return env, err
	}
	if opts.Manager.ScrapeTargetsFile == "" {
		opts.Manager.ScrapeTargetsFile = filepath.Join(cp.StateDir(), "monitoring", "targets.json")
	}
	fmt.Fprintf(out, "starting CAFE controllers (Prometheus file_sd targets of every pod and classic instance: %s)\n", opts.Manager.ScrapeTargetsFile)
	if reg := cp.RegistryURL(); reg != "" && opts.Manager.RegistryEndpoints == nil {
		opts.Manager.RegistryEndpoints = []string{reg}
		fmt.Fprintf(out, "CAFE registers the pods and classic instances of Services labelled %s=true in the service registry at %s\n", cafev1alpha1.RegistryPublishLabel, reg)
	}
	metricsAddr, err := monitorCAFE(ctx, cp, env.Admin, &opts.Manager)
	if err != nil {
		return env, err
	}
	if err := env.startManager(ctx, opts); err != nil {
		return env, err
	}
	if env.loginServer != "" {
		fmt.Fprintf(out, "directory users (passwords in %s) log in with: cafe login --server %s --certificate-authority %s --user alice --output alice.kubeconfig\n",
			filepath.Join(cp.StateDir(), "directory", "passwords"), env.loginServer, env.LoginCAFile())
	}
	if metricsAddr != "" {
		if err := controlplane.WriteScrapeTargets(cp.PrometheusDir(), controlplane.CafeScrapeJob, []string{metricsAddr}); err != nil {
			return env, fmt.Errorf("pointing Prometheus at CAFE's metrics: %w", err)
		}
		fmt.Fprintf(out, "Prometheus %s scrapes the gateway and CAFE's metrics (https://%s/metrics, as ServiceAccount %s/%s)\n", cp.PrometheusURL(), metricsAddr, install.Namespace, prometheusServiceAccount)
	}
	if err := env.startClassicHosts(ctx, opts.ControlPlane.CafeBinary, opts.ClassicHosts); err != nil {
		return env, err
	}
	if err := env.serveDemoApp(ctx, opts.DemoAppBinary, opts.SourceDir); err != nil {
		return env, err
	}
	return env, nil
}

// gatewayProvider guards the routes of the control plane's gateway unless
// the caller configured a provider or turned it off.
func gatewayProvider(cp *controlplane.ControlPlane, opts Options) (*gateway.Options, error) {
	if opts.Manager.GatewayProvider != nil || opts.WithoutGatewayProvider || cp.GatewayAdminURL() == "" {
		return opts.Manager.GatewayProvider, nil
	}
	p, err := gateway.TraefikOptions(cp.GatewayAdminURL(), "")
	if err != nil {
		return nil, fmt.Errorf("the gateway traffic provider: %w", err)
	}
	return p, nil
}

func (e *Env) startManager(ctx context.Context, opts Options) error {
	e.opts = opts
	cfg, err := e.ControlPlane.CafeRESTConfig()
	if err != nil {
		return err
	}
	ports, err := controlplane.FreePorts(1)
	if err != nil {
		return err
	}
	webhookURL := fmt.Sprintf("https://127.0.0.1:%d", ports[0])
	if err := InstallWebhooks(ctx, e.Admin, webhookURL); err != nil {
		return err
	}
	mgrOpts := opts.Manager
	mgrOpts.Webhook = &manager.WebhookOptions{
		Host: "127.0.0.1",
		Port: ports[0],
		Certs: certs.Options{
			Namespace:                       install.Namespace,
			SecretName:                      install.WebhookSecretName,
			IPAddresses:                     []net.IP{net.ParseIP("127.0.0.1")},
			CertDir:                         filepath.Join(e.ControlPlane.StateDir(), "webhook-certs"),
			MutatingWebhookConfigurations:   []string{install.MutatingWebhookName},
			ValidatingWebhookConfigurations: []string{install.ValidatingWebhookName},
		},
	}
	if e.ControlPlane.DirectoryURL() != "" && mgrOpts.Login == nil {
		dir, err := e.ControlPlane.DirectoryClient()
		if err != nil {
			return err
		}
		mgrOpts.Login = &manager.LoginOptions{Directory: &dir, IssuerURL: webhookURL}
	}
	mgr, err := manager.New(cfg, mgrOpts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), opts.Logger))
	e.cancelManager = cancel
	e.managerDone = make(chan struct{})
	go func() {
		defer close(e.managerDone)
		e.managerErr = mgr.Start(ctx)
	}()
	// Webhooks fail closed: wait until the server answers before returning.
	if err := WaitWebhookServer(ctx, webhookURL, e.managerDone); err != nil {
		return err
	}
	if mgrOpts.Login != nil {
		return e.trustIssuer(ctx, mgrOpts.Login.IssuerURL)
	}
	return nil
}

// trustIssuer makes the control plane's API server accept the tokens CAFE
// issues at issuer: their keys are served under CAFE's webhook
// certificate, whose CA is in its Secret. The API server reloads its
// configuration by itself within seconds.
func (e *Env) trustIssuer(ctx context.Context, issuer string) error {
	c, err := client.New(e.Admin, client.Options{})
	if err != nil {
		return err
	}
	secret := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: install.Namespace, Name: install.WebhookSecretName}, secret); err != nil {
		return fmt.Errorf("reading CAFE's webhook CA: %w", err)
	}
	ca := secret.Data["ca.crt"]
	if err := os.MkdirAll(filepath.Dir(e.LoginCAFile()), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(e.LoginCAFile(), ca, 0o600); err != nil {
		return err
	}
	first := e.loginServer == ""
	e.loginServer = issuer
	if err := e.ControlPlane.TrustIssuer(issuer, token.Audience, string(ca)); err != nil {
		return err
	}
	if !first {
		// A manager restarted for a test (StopControllers): its issuer is
		// trusted within seconds; only the first start waits for it.
		return nil
	}
	return e.waitLoginWorks(ctx, ca)
}

// waitLoginWorks logs a demo user in and waits until the API server, having
// reloaded its configuration, accepts the credential: ready means a
// `cafe login` works.
func (e *Env) waitLoginWorks(ctx context.Context, caPEM []byte) error {
	user := controlplane.DemoDirectory().Users[0].Name
	password, err := e.ControlPlane.DirectoryPassword(user)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	creds, err := login.Client{Server: e.loginServer, RootCAs: roots}.Login(ctx, user, password)
	if err != nil {
		return fmt.Errorf("logging %s in to check the login service: %w", user, err)
	}
	cfg := rest.AnonymousClientConfig(e.Admin)
	cfg.BearerToken = creds.Token
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	var last error
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		last = c.Create(ctx, &authenticationv1.SelfSubjectReview{})
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("the API server does not accept CAFE's tokens yet (%v): %w", last, err)
	}
	return nil
}

// LoginServer is CAFE's login service (`cafe login --server`); empty
// without the directory.
func (e *Env) LoginServer() string { return e.loginServer }

// LoginCAFile holds the CA of the login service's certificate (`cafe
// login --certificate-authority`).
func (e *Env) LoginCAFile() string {
	return filepath.Join(e.ControlPlane.StateDir(), "login", "ca.crt")
}

// StopControllers replaces CAFE's in-process manager with one that only
// serves the admission webhooks: no CAFE controller runs in this process
// until StartControllers. The e2e tests use it to run the controllers in a
// `cafe manager` child process they can SIGKILL while admission (identity
// stamping, validation) keeps working, without two managers ever running
// the same controllers at once: it returns only after the old manager
// returned, so its controllers stopped.
func (e *Env) StopControllers(ctx context.Context) error { return e.restartManager(ctx, true) }

// StartControllers runs CAFE's controllers in-process again after
// StopControllers. Whatever ran them meanwhile must have stopped.
func (e *Env) StartControllers(ctx context.Context) error { return e.restartManager(ctx, false) }

// restartManager stops the in-process manager and starts a new one, with
// or without controllers, from the same options; nothing of the old one
// survives in memory.
func (e *Env) restartManager(ctx context.Context, webhooksOnly bool) error {
	if e.cancelManager == nil {
		return errors.New("no CAFE manager runs (WithoutCAFE)")
	}
	e.cancelManager()
	<-e.managerDone
	if e.managerErr != nil {
		return fmt.Errorf("the stopped CAFE manager returned: %w", e.managerErr)
	}
	opts := e.opts
	opts.Manager.SkipControllerNameValidation = true
	opts.Manager.WebhooksOnly = webhooksOnly
	return e.startManager(ctx, opts)
}

// Wait blocks until ctx ends (nil), a control-plane child exits, or the
// manager stops on its own (their error).
func (e *Env) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-e.ControlPlane.Failed():
		return err
	case <-e.managerDone:
		err := e.managerErr
		if err == nil {
			err = errors.New("stopped without an error")
		}
		return fmt.Errorf("CAFE manager: %w", err)
	}
}

// ManagerShutdownTimeout bounds how long Stop waits for the in-process
// manager to finish its reconciles: a controller busy with a huge or
// hostile object (or an API server too loaded to answer) must not keep
// `cafe dev up` from stopping on Ctrl-C.
const ManagerShutdownTimeout = 30 * time.Second

// Stop stops the manager, waiting at most ManagerShutdownTimeout for it,
// then the control plane (whose children get SIGKILL after their own
// grace). Safe to call twice.
func (e *Env) Stop() {
	e.stopOnce.Do(func() {
		if e.cancelManager != nil {
			e.cancelManager()
			select {
			case <-e.managerDone:
			case <-time.After(ManagerShutdownTimeout):
				e.opts.Logger.Info("CAFE manager did not stop in time; stopping the control plane under it", "timeout", ManagerShutdownTimeout)
			}
		}
		e.ControlPlane.Stop()
		e.stopClassicInstances()
		if e.stopDemoApp != nil {
			e.stopDemoApp()
		}
	})
}
