package framework

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/cafe-io/cafe/config"
	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/devenv"
	"github.com/cafe-io/cafe/internal/scheme"
)

// RepoRoot is the root of the CAFE source tree this file is part of.
func RepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("framework: cannot locate the source tree")
	}
	root, err := controlplane.FindRepoRoot(filepath.Dir(file))
	if err != nil {
		panic(fmt.Sprintf("framework: %v", err))
	}
	return root
}

// BinDir is where the control-plane binaries are cached (the repository's bin/).
func BinDir() string { return filepath.Join(RepoRoot(), "bin") }

var (
	goBinariesMu sync.Mutex
	goBinaries   = map[string]*goBinary{}
)

type goBinary struct {
	once sync.Once
	path string
	err  error
}

// CafeBinary builds cmd/cafe from the source tree once per test binary and
// returns its path: the tests run what a user runs (`cafe dev emulate-pods`,
// `cafe manager`, the CLI).
func CafeBinary() (string, error) { return GoBinary("./cmd/cafe", "cafe") }

// DemoAppBinary builds the classic demo app (examples/demo-app) once per
// test binary and returns its path.
func DemoAppBinary() (string, error) { return GoBinary("./examples/demo-app", "demo-app") }

// GoBinary builds the main package pkg of this module as name, once per
// test binary, and returns its path.
func GoBinary(pkg, name string) (string, error) {
	goBinariesMu.Lock()
	b := goBinaries[pkg]
	if b == nil {
		b = &goBinary{}
		goBinaries[pkg] = b
	}
	goBinariesMu.Unlock()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", name+"-bin-")
		if err != nil {
			b.err = err
			return
		}
		bin := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building %s: %w\n%s", pkg, err, out)
			return
		}
		b.path = bin
	})
	return b.path, b.err
}

// EnsureBinaries builds the control-plane binaries unless they are current.
// `make test` builds them first; this makes a bare `go test` work too.
func EnsureBinaries(ctx context.Context, out io.Writer) error {
	return controlplane.EnsureBinaries(ctx, controlplane.BuildOptions{RepoRoot: RepoRoot(), BinDir: BinDir(), Out: out})
}

// StartEnvtest starts etcd and kube-apiserver through controller-runtime's
// envtest, pointed at the project's own binaries, with CAFE's CRDs installed.
func StartEnvtest(ctx context.Context) (*envtest.Environment, *rest.Config, error) {
	return startEnvtest(ctx, envtest.WebhookInstallOptions{}, false)
}

// StartEnvtestWithWebhooks is StartEnvtest that also installs CAFE's
// admission webhook configurations (config/webhook/webhooks.yaml) with each
// webhook's service reference replaced by a URL on a free loopback port,
// env.WebhookInstallOptions.LocalServingHost and LocalServingPort: the API
// server calls the webhooks a test serves there (manager.New with
// Webhook options, which also puts its own CA into the caBundles).
func StartEnvtestWithWebhooks(ctx context.Context) (*envtest.Environment, *rest.Config, error) {
	return startEnvtest(ctx, webhookInstallOptions(), false)
}

func webhookInstallOptions() envtest.WebhookInstallOptions {
	return envtest.WebhookInstallOptions{
		Paths:            []string{filepath.Join(RepoRoot(), "config", "webhook", "webhooks.yaml")},
		LocalServingHost: "127.0.0.1",
	}
}

// startEnvtest starts envtest with CAFE's CRDs, and the Gateway API's
// (config.GatewayAPICRDPaths) when gatewayAPI is set.
func startEnvtest(ctx context.Context, webhooks envtest.WebhookInstallOptions, gatewayAPI bool) (*envtest.Environment, *rest.Config, error) {
	if err := EnsureBinaries(ctx, os.Stderr); err != nil {
		return nil, nil, err
	}
	crds := []string{filepath.Join(RepoRoot(), config.CRDPaths)}
	if gatewayAPI {
		crds = append(crds, filepath.Join(RepoRoot(), config.GatewayAPICRDPaths))
	}
	return StartEnvironment(func() *envtest.Environment {
		return &envtest.Environment{
			BinaryAssetsDirectory: BinDir(),
			CRDDirectoryPaths:     crds,
			ErrorIfCRDPathMissing: true,
			Scheme:                scheme.New(),
			WebhookInstallOptions: webhooks,
		}
	})
}

// envtestStarts is how many times StartEnvironment tries.
const envtestStarts = 3

// envtestStartTimeout bounds how long etcd and kube-apiserver each may take
// to become healthy. envtest's default, 20 s, is too short under make test's
// load (two envtest packages and three e2e control planes on two cores): CI
// saw kube-apiserver time out, be restarted by envtest five times over and
// fail the package. The wait ends as soon as /healthz answers, so a longer
// bound costs nothing when the machine is quiet.
const envtestStartTimeout = 2 * time.Minute

// envtestStartTimeoutEnv is envtest's own override of the bound; a caller
// who sets it is obeyed.
const envtestStartTimeoutEnv = "KUBEBUILDER_CONTROLPLANE_START_TIMEOUT"

// StartEnvironment starts the envtest environment newEnv builds. envtest gives the API
// server a fixed 5 s to create the default namespace once it is healthy;
// under make test's load (several control planes at once on two cores) it
// sometimes takes longer, and a fresh start, built anew, then succeeds.
// Any other failure is returned at once.
func StartEnvironment(newEnv func() *envtest.Environment) (*envtest.Environment, *rest.Config, error) {
	for attempt := 1; ; attempt++ {
		env := newEnv()
		applyStartTimeout(env)
		cfg, err := env.Start()
		if err == nil {
			return env, cfg, nil
		}
		// Start leaves etcd and kube-apiserver running when a later step
		// (installing CRDs) fails; nobody else would stop them.
		_ = env.Stop()
		if attempt == envtestStarts || !strings.Contains(err.Error(), "default namespace didn't register") {
			return nil, nil, fmt.Errorf("starting envtest (attempt %d): %w", attempt, err)
		}
	}
}

// applyStartTimeout gives env envtestStartTimeout unless its builder or
// envtestStartTimeoutEnv chose a bound.
func applyStartTimeout(env *envtest.Environment) {
	if env.ControlPlaneStartTimeout == 0 && os.Getenv(envtestStartTimeoutEnv) == "" {
		env.ControlPlaneStartTimeout = envtestStartTimeout
	}
}

// EnvOptions tune StartEnv. The zero value is the `cafe dev up` default:
// 6 nodes over zone-a, zone-b and zone-c, with CAFE.
type EnvOptions struct {
	Topology    *controlplane.Topology
	WithoutCAFE bool
	// StateDir defaults to a fresh temporary directory.
	StateDir string
	Out      io.Writer
	// Logger receives CAFE's controller logs; by default they go to Out.
	Logger logr.Logger
	// Traffic runs the pod network, the pod emulator (from CafeBinary) and
	// the gateway (controlplane.Config.Traffic).
	Traffic bool
	// Directory runs the OpenLDAP directory (controlplane.Config.Directory).
	Directory bool
	// ClassicHosts runs that many classic hosts (agents from CafeBinary,
	// in network namespaces of their own with Traffic) and the demo app's
	// artifact store.
	ClassicHosts int
}

// StartEnv starts the full local control plane with kwok nodes and CAFE,
// through devenv.Up like `cafe dev up` does. Call Env.Stop when done.
func StartEnv(ctx context.Context, opts EnvOptions) (*devenv.Env, error) {
	topology := controlplane.DefaultTopology()
	if opts.Topology != nil {
		topology = *opts.Topology
	}
	stateDir := opts.StateDir
	if stateDir == "" {
		dir, err := os.MkdirTemp("", "cafe-e2e-")
		if err != nil {
			return nil, err
		}
		stateDir = dir
	}
	out := opts.Out
	if out == nil {
		out = os.Stderr
	}
	logger := opts.Logger
	if logger.GetSink() == nil {
		logger = zap.New(zap.WriteTo(out), zap.Level(zapcore.InfoLevel))
	}
	ctrllog.SetLogger(logger)
	cafe, demo := "", ""
	if opts.Traffic || opts.ClassicHosts > 0 {
		var err error
		if cafe, err = CafeBinary(); err != nil {
			return nil, err
		}
	}
	if opts.ClassicHosts > 0 {
		var err error
		if demo, err = DemoAppBinary(); err != nil {
			return nil, err
		}
	}
	return devenv.Up(ctx, devenv.Options{
		ControlPlane: controlplane.Config{
			StateDir:   stateDir,
			BinDir:     BinDir(),
			Topology:   topology,
			Traffic:    opts.Traffic,
			Directory:  opts.Directory,
			CafeBinary: cafe,
			Out:        out,
		},
		SourceDir:     RepoRoot(),
		WithoutCAFE:   opts.WithoutCAFE,
		Logger:        logger,
		ClassicHosts:  devenv.ClassicHostPlan(opts.ClassicHosts, topology.Zones),
		DemoAppBinary: demo,
	})
}
