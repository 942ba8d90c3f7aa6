package nodelifecycle

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// Review finding 13: the kubelet probe follows no redirect. A "kubelet" on
// 127.0.0.1 redirects to a server on 127.0.0.2: the probe counts the
// redirect as an answer and never reaches the other host.
func TestSecurityF13_ProberFollowsNoRedirects(t *testing.T) {
	g := NewWithT(t)
	var reached atomic.Int32
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Add(1) }))
	l, err := net.Listen("tcp", "127.0.0.2:0")
	g.Expect(err).NotTo(HaveOccurred())
	other.Listener = l
	other.StartTLS()
	defer other.Close()
	kubelet := httptest.NewTLSServer(http.RedirectHandler(other.URL+"/steal", http.StatusFound))
	defer kubelet.Close()

	err = httpProbe(context.Background(), strings.TrimPrefix(kubelet.URL, "https://"), 5*time.Second)
	g.Expect(err).NotTo(HaveOccurred(), "a redirect is an answer: the kubelet is alive")
	g.Expect(reached.Load()).To(BeZero(), "the probe followed the redirect to another host")
}
