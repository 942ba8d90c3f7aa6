package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/cafe-io/cafe/internal/podnet"
	"github.com/cafe-io/cafe/internal/registry"
)

// EnvRegistry is the variable that gives an instance the shared service
// registry's URL (the demo app reads it).
const EnvRegistry = "CAFE_REGISTRY"

// DefaultRegistryRelayPort is the port on the host's address where the
// agent relays the shared registry to the instances of a host that lives
// in a network namespace of its own.
const DefaultRegistryRelayPort = 10352

// relayDialTimeout bounds connecting to the registry for one relayed
// connection.
const relayDialTimeout = 5 * time.Second

// checkRegistry validates --registry and --registry-relay-port.
func (o *Options) checkRegistry() error {
	if o.RegistryRelayPort < 0 || o.RegistryRelayPort > 65535 {
		return fmt.Errorf("--registry-relay-port %d: a TCP port (0 for any free one)", o.RegistryRelayPort)
	}
	if o.Registry == "" {
		return nil
	}
	if err := registry.CheckEndpoints([]string{o.Registry}); err != nil {
		return fmt.Errorf("--registry: %w", err)
	}
	return nil
}

// instancesRegistry gives the instances a way to the shared registry and
// returns the URL they reach it at ("" without --registry). A host in a
// network namespace of its own reaches only its end of its link, not the
// registry on the machine's loopback: there the agent relays the
// registry's port on the host's address (inside the namespace) to the
// registry, as the bank's network would route a VM to it. Elsewhere the
// instances use the registry's URL as is. The relay runs until ctx ends.
func (a *Agent) instancesRegistry(ctx context.Context) (string, int32, error) {
	if a.Registry == "" || a.NetNS == "" {
		return a.Registry, 0, nil
	}
	u, err := url.Parse(a.Registry)
	if err != nil {
		return "", 0, fmt.Errorf("--registry %q: %w", a.Registry, err)
	}
	address := net.JoinHostPort(a.Address, strconv.Itoa(a.RegistryRelayPort))
	var ln net.Listener
	if err := podnet.InNamespace(a.NetNS, func() (err error) {
		ln, err = net.Listen("tcp", address)
		return err
	}); err != nil {
		return "", 0, fmt.Errorf("--registry-relay-port: listening on %s in network namespace %s: %w", address, a.NetNS, err)
	}
	go relay(ctx, ln, u.Host)
	return u.Scheme + "://" + ln.Addr().String(), int32(ln.Addr().(*net.TCPAddr).Port), nil
}

// relay accepts connections on ln until ctx ends and joins each to a new
// connection to target (dialled from the agent's own namespace). Ending
// closes the listener and every relayed connection.
func relay(ctx context.Context, ln net.Listener, target string) {
	logger := log.FromContext(ctx).WithValues("relay", ln.Addr().String(), "target", target)
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = struct{}{}
		} else {
			delete(conns, c)
		}
	}
	go func() {
		<-ctx.Done()
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			_ = c.Close()
		}
	}()
	dialer := net.Dialer{Timeout: relayDialTimeout}
	for {
		down, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			break
		}
		if err != nil {
			// Out of file descriptors and the like: pass, as net/http's
			// server does, rather than leave the instances without a
			// registry for good.
			logger.Error(err, "the registry relay cannot accept; retrying")
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		track(down, true)
		wg.Go(func() {
			defer track(down, false)
			defer down.Close()
			up, err := dialer.DialContext(ctx, "tcp", target)
			if err != nil {
				logger.V(1).Info("cannot reach the registry for a relayed connection", "error", err.Error())
				return
			}
			track(up, true)
			defer track(up, false)
			defer up.Close()
			if ctx.Err() != nil {
				return // ended while dialling: the closer may have missed up
			}
			join(down, up)
		})
	}
	wg.Wait()
}

// join copies both ways until both directions have ended, passing each
// end of stream on as a half-close.
func join(a, b net.Conn) {
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tcp, ok := dst.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		} else {
			_ = dst.Close()
		}
	}
	wg.Go(func() { pipe(a, b) })
	pipe(b, a)
	wg.Wait()
}
