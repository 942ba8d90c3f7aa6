package trafficprovider_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/cafe-io/cafe/internal/manager"
	"github.com/cafe-io/cafe/internal/traffic/gateway"
	"github.com/cafe-io/cafe/test/framework"
)

// The controller name of the gateway the suite's provider guards, and of
// another one it must ignore.
const (
	ourController   = "cafe.io/test-gateway-controller"
	otherController = "example.com/other-gateway-controller"
	// ourClass and otherClass are GatewayClasses of each, created once.
	ourClass   = "cafe-test-gateway"
	otherClass = "other-gateway"
)

// observer is the gateway the suite's manager asks: the tests decide what
// it answers (see testObserver).
var observer = &testObserver{routed: map[netip.AddrPort]bool{}}

// The API tests share one real kube-apiserver, with the Gateway API CRDs,
// and one CAFE manager built by manager.New with the gateway traffic
// provider on, as `cafe manager --gateway-api-url=...` builds it, but
// asking observer rather than a Traefik, and with the registrar and the
// registry provider on a real registry (--registry-endpoints).
var suite = framework.ControllerSuite{
	GatewayAPI: true,
	Options: manager.Options{GatewayProvider: &gateway.Options{
		ControllerName: ourController,
		Observer:       observer,
	}},
	Prepare: createClasses,
}

// registryServer is the service registry (a real etcd) the suite's manager
// registers in and whose consumers the registry provider asks.
var registryServer *framework.Registry

func TestMain(m *testing.M) {
	var err error
	if registryServer, err = framework.RunRegistry(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	suite.Options.RegistryEndpoints = []string{registryServer.Endpoint}
	code := suite.Main(m)
	registryServer.Stop()
	os.Exit(code)
}

func createClasses(ctx context.Context, c client.Client) error {
	for name, controller := range map[string]string{ourClass: ourController, otherClass: otherController} {
		class := &gatewayv1.GatewayClass{}
		class.Name = name
		class.Spec.ControllerName = gatewayv1.GatewayController(controller)
		if err := c.Create(ctx, class); err != nil {
			return err
		}
	}
	return nil
}

// testObserver is a gateway whose backends the tests set: the addresses
// routed (a pod's IP on port 8080, or an instance's address and port), or
// an error (the gateway does not answer), or, while delegate is set,
// whatever a real gateway (a Traefik) answers. Parallel tests only route
// and unroute their own addresses; a test that sets the error or the
// delegate runs alone (SetupAlone).
type testObserver struct {
	mu       sync.Mutex
	routed   map[netip.AddrPort]bool
	err      error
	delegate gateway.Observer
}

func (o *testObserver) Backends(ctx context.Context) ([]netip.AddrPort, error) {
	o.mu.Lock()
	delegate, err := o.delegate, o.err
	var addrs []netip.AddrPort
	for addr, routed := range o.routed {
		if routed {
			addrs = append(addrs, addr)
		}
	}
	o.mu.Unlock()
	switch {
	case delegate != nil:
		return delegate.Backends(ctx)
	case err != nil:
		return nil, err
	}
	return addrs, nil
}

func (o *testObserver) String() string { return "the test gateway" }

// route routes a pod's IP (on port 8080) or stops routing it.
func (o *testObserver) route(ip string, routed bool) {
	o.routeAddr(netip.AddrPortFrom(netip.MustParseAddr(ip), 8080).String(), routed)
}

// routeAddr routes an address and port ("10.0.0.1:9090") or stops routing
// it.
func (o *testObserver) routeAddr(addr string, routed bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.routed[netip.MustParseAddrPort(addr)] = routed
}

func (o *testObserver) fail(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.err = err
}

func (o *testObserver) use(delegate gateway.Observer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.delegate = delegate
}

var errUnreachable = errors.New("connection refused (the test gateway is down)")
