package nodelifecycle

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// The probe keeps its connection to a kubelet between probes (one TLS
// handshake, not one per probe), and a kept connection still tells a dead
// or hung kubelet from a live one.
func TestProbeReusesItsConnectionAndStillSeesTheKubeletGo(t *testing.T) {
	g := NewWithT(t)
	var hang atomic.Bool
	release := make(chan struct{})
	kubelet := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if hang.Load() {
			<-release
		}
		// A real kubelet wants credentials, and says so in a body, which
		// the probe must read for its connection to be kept.
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
	}))
	var handshakes atomic.Int32
	kubelet.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		handshakes.Add(1)
		return nil, nil
	}}
	kubelet.StartTLS()
	defer kubelet.Close()
	defer close(release)
	endpoint := strings.TrimPrefix(kubelet.URL, "https://")

	for range 5 {
		g.Expect(httpProbe(context.Background(), endpoint, 2*time.Second)).To(Succeed(), "any HTTP answer is a live kubelet")
	}
	g.Expect(handshakes.Load()).To(BeEquivalentTo(1), "five probes over one kept connection")

	hang.Store(true)
	err := httpProbe(context.Background(), endpoint, 300*time.Millisecond)
	g.Expect(err).To(HaveOccurred(), "a kubelet that stops answering on the kept connection fails the probe")

	hang.Store(false)
	kubelet.CloseClientConnections()
	kubelet.Listener.Close()
	g.Expect(httpProbe(context.Background(), endpoint, time.Second)).NotTo(Succeed(), "a kubelet that is gone fails the probe though a connection was kept")
}

// A kubelet endpoint that answers the TLS hello in plain HTTP (kwok's) is
// alive, and later probes ask it in plain HTTP on one kept connection; when
// it serves TLS again it is still seen alive.
func TestProbeRemembersAPlainHTTPKubelet(t *testing.T) {
	g := NewWithT(t)
	var conns atomic.Int32
	kubelet := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	kubelet.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	kubelet.Start()
	endpoint := strings.TrimPrefix(kubelet.URL, "http://")
	for range 5 {
		g.Expect(httpProbe(context.Background(), endpoint, 2*time.Second)).To(Succeed())
	}
	g.Expect(conns.Load()).To(BeEquivalentTo(2), "one refused TLS hello, then one kept plain connection")
	kubelet.Close()

	// The same address now serves TLS.
	l, err := net.Listen("tcp", endpoint)
	g.Expect(err).NotTo(HaveOccurred())
	tlsKubelet := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	tlsKubelet.Listener = l
	tlsKubelet.StartTLS()
	defer tlsKubelet.Close()
	g.Expect(httpProbe(context.Background(), endpoint, 2*time.Second)).To(Succeed())
	tlsKubelet.Close()
	g.Expect(httpProbe(context.Background(), endpoint, time.Second)).NotTo(Succeed(), "gone is gone, whichever way it was asked")
}
