// Package podnettest gives a test binary a pod network of its own, for the
// tests that listen on or send to simulated pods' IPs.
package podnettest

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/cafe-io/cafe/internal/podnet"
)

// Create makes a state directory and routes cidr into a network namespace
// named after it, for a TestMain. It needs root (CAP_NET_ADMIN,
// CAP_SYS_ADMIN) and says so; who names the tests in its errors. cleanup
// deletes the namespace and the directory.
func Create(who string, cidr netip.Prefix) (network podnet.Network, stateDir string, cleanup func(), err error) {
	if os.Geteuid() != 0 {
		return podnet.Network{}, "", nil, fmt.Errorf("%s need root for their pod network (CAP_NET_ADMIN, CAP_SYS_ADMIN): run them as root, as .ci/run does", who)
	}
	dir, err := os.MkdirTemp("", "cafe-podnet-test-")
	if err != nil {
		return podnet.Network{}, "", nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	network = podnet.For(dir, cidr)
	if err := network.Create(ctx); err != nil {
		os.RemoveAll(dir)
		return podnet.Network{}, "", nil, fmt.Errorf("%s: creating the pod network %s: %w", who, cidr, err)
	}
	return network, dir, func() {
		network.Delete(context.Background())
		os.RemoveAll(dir)
	}, nil
}
