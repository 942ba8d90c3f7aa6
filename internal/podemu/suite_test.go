package podemu_test

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/internal/podnet"
	"github.com/cafe-io/cafe/internal/podnet/podnettest"
	"github.com/cafe-io/cafe/test/framework"
)

// The tests run the emulator against a real kube-apiserver (envtest on the
// project's binaries) with nothing else: no kwok, no controller. Each test
// writes the pod statuses kwok would, through the status subresource, and
// sends real HTTP requests to the pod IPs, which a real pod network
// (podnet, root needed, as in CI) routes into a namespace of the test's
// own.
var (
	k8sClient client.WithWatch
	clientset kubernetes.Interface
	network   podnet.Network
)

// podCIDR is outside the local control plane's default range, so the tests
// run beside a `cafe dev up`.
var podCIDR = netip.MustParsePrefix("198.19.64.0/24")

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	flag.Parse()
	if !testing.Short() {
		var cleanup func()
		var err error
		if network, _, cleanup, err = podnettest.Create("podemu's tests", podCIDR); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer cleanup()
	}
	return framework.EnvtestMain(m, func(cfg *rest.Config) (err error) {
		if k8sClient, err = framework.NewClient(cfg); err != nil {
			return err
		}
		clientset, err = kubernetes.NewForConfig(cfg)
		return err
	})
}

// lastIP hands out the pod IPs of the tests: each test its own, so that no
// test sees another's (draining) listeners.
var lastIP atomic.Uint32

// nextIP is a fresh address of podCIDR.
func nextIP() netip.Addr {
	n := lastIP.Add(1) + 9
	if n > 254 {
		panic("podemu tests: out of pod IPs in " + podCIDR.String())
	}
	b := podCIDR.Addr().As4()
	b[3] = byte(n)
	return netip.AddrFrom4(b)
}
