package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// TraefikPageSize is how many services Traefik is asked for per page of
// /api/http/services. Traefik pages an in-memory list per request, so a
// service removed between two page requests would shift a later one onto
// the page already read: one page for everything avoids that.
const TraefikPageSize = 10000

// traefikMaxPages bounds the pages followed (X-Next-Page), in case a
// broken answer keeps pointing further.
const traefikMaxPages = 1000

// Traefik is the Observer of a Traefik proxy (v3): it reads Traefik's API
// (GET /api/http/services, the runtime configuration Traefik routes with)
// and returns every loadBalancer server URL and every serverStatus key,
// servers marked DOWN included (a health check brings them back without
// a configuration change).
type Traefik struct {
	// PageSize is how many services are asked for per page; NewTraefik
	// sets TraefikPageSize.
	PageSize int

	base   *url.URL
	client *http.Client
}

var _ Observer = &Traefik{}

// NewTraefik returns the Observer of the Traefik whose API (--api=true,
// served on its "traefik" entry point) is at apiURL, e.g.
// http://127.0.0.1:9000. The address must be a loopback IP: CAFE sends
// packets only to loopback, and the client it uses refuses to connect
// anywhere else, redirects and proxies included.
func NewTraefik(apiURL string) (*Traefik, error) {
	u, err := url.Parse(apiURL)
	if err != nil {
		return nil, fmt.Errorf("traefik API URL %q: %w", apiURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("traefik API URL %q: scheme must be http or https", apiURL)
	}
	ip, err := netip.ParseAddr(u.Hostname())
	if err != nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("traefik API URL %q: the host must be a loopback IP address (127.0.0.0/8 or ::1)", apiURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: loopbackOnly}
	return &Traefik{
		PageSize: TraefikPageSize,
		base:     u,
		client: &http.Client{
			Timeout: readTimeout,
			Transport: &http.Transport{
				Proxy:               nil,
				DialContext:         dialer.DialContext,
				MaxIdleConnsPerHost: 2,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return errors.New("traefik's API redirected: not followed")
			},
		},
	}, nil
}

// loopbackOnly refuses a connection to anything but a loopback address.
func loopbackOnly(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		return fmt.Errorf("refusing to connect to %s: not a loopback address", address)
	}
	return nil
}

// String implements Observer.
func (t *Traefik) String() string { return "Traefik at " + t.base.String() }

// traefikService is what Backends reads of an element of
// /api/http/services (Traefik's pkg/api serviceRepresentation: the
// dynamic.Service inline, plus serverStatus keyed by server URL).
type traefikService struct {
	Name         string `json:"name"`
	LoadBalancer *struct {
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
	} `json:"loadBalancer"`
	ServerStatus map[string]string `json:"serverStatus"`
}

// Backends implements Observer: the addresses of every server of every
// HTTP service, following Traefik's pages (X-Next-Page: the next page, or
// 1 after the last).
func (t *Traefik) Backends(ctx context.Context) ([]netip.AddrPort, error) {
	var addrs []netip.AddrPort
	seen := map[netip.AddrPort]bool{}
	for page := 1; ; {
		services, next, err := t.servicesPage(ctx, page)
		if err != nil {
			return nil, err
		}
		for _, s := range services {
			var urls []string
			if s.LoadBalancer != nil {
				for _, srv := range s.LoadBalancer.Servers {
					urls = append(urls, srv.URL)
				}
			}
			for u := range s.ServerStatus {
				urls = append(urls, u)
			}
			for _, raw := range urls {
				ap, ok, err := serverAddr(raw)
				if err != nil {
					return nil, fmt.Errorf("service %s: %w", s.Name, err)
				}
				if ok && !seen[ap] {
					seen[ap] = true
					addrs = append(addrs, ap)
				}
			}
		}
		if next <= page {
			return addrs, nil
		}
		if next > traefikMaxPages {
			return nil, fmt.Errorf("traefik's API points to page %d: more than %d pages of services", next, traefikMaxPages)
		}
		page = next
	}
}

// servicesPage reads one page of /api/http/services and the number of the
// next one.
func (t *Traefik) servicesPage(ctx context.Context, page int) ([]traefikService, int, error) {
	u := t.base.JoinPath("api", "http", "services")
	u.RawQuery = url.Values{"page": {strconv.Itoa(page)}, "per_page": {strconv.Itoa(t.PageSize)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, 0, fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	var services []traefikService
	if err := json.NewDecoder(resp.Body).Decode(&services); err != nil {
		return nil, 0, fmt.Errorf("GET %s: decoding: %w", u, err)
	}
	next, err := strconv.Atoi(resp.Header.Get("X-Next-Page"))
	if err != nil {
		// Traefik v3 always sets it; without it a later page could be
		// missed, so this is no answer.
		return nil, 0, fmt.Errorf("GET %s: no valid X-Next-Page header (%q)", u, resp.Header.Get("X-Next-Page"))
	}
	return services, next, nil
}

// serverAddr parses a Traefik server URL (http://10.0.0.7:8080). ok is
// false for a host name: a name is not a pod IP (Traefik's Gateway API
// provider lists pods by IP from their EndpointSlices).
func serverAddr(raw string) (ap netip.AddrPort, ok bool, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return netip.AddrPort{}, false, fmt.Errorf("server URL %q: %w", raw, err)
	}
	ip, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return netip.AddrPort{}, false, nil
	}
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "https":
			port = "443"
		default: // http, h2c
			port = "80"
		}
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, false, fmt.Errorf("server URL %q: port: %w", raw, err)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(p)), true, nil
}

// TraefikOptions configure the provider for a Traefik whose API answers at
// apiURL and whose GatewayClasses name controllerName (DefaultControllerName
// when empty).
func TraefikOptions(apiURL, controllerName string) (*Options, error) {
	obs, err := NewTraefik(apiURL)
	if err != nil {
		return nil, err
	}
	if controllerName == "" {
		controllerName = DefaultControllerName
	}
	return &Options{ControllerName: controllerName, Observer: obs}, nil
}
