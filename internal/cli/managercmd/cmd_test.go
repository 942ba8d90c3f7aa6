package managercmd

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/cafe-io/cafe/internal/traffic/gateway"
)

// The gateway traffic provider is off without --gateway-api-url, reads
// Traefik at a loopback URL, and refuses any other address.
func TestGatewayProviderFlags(t *testing.T) {
	g := NewWithT(t)
	parse := func(args ...string) *options {
		cmd := NewCmd(genericiooptions.NewTestIOStreamsDiscard())
		g.Expect(cmd.ParseFlags(args)).To(Succeed())
		// The flags are bound to the options RunE reads.
		o := &options{}
		o.GatewayAPIURL, _ = cmd.Flags().GetString("gateway-api-url")
		o.GatewayControllerName, _ = cmd.Flags().GetString("gateway-controller-name")
		return o
	}

	off, err := parse().gatewayProvider()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(off).To(BeNil())

	on, err := parse("--gateway-api-url=http://127.0.0.1:9000").gatewayProvider()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(on.ControllerName).To(Equal(gateway.DefaultControllerName))
	g.Expect(on.Observer.String()).To(Equal("Traefik at http://127.0.0.1:9000"))

	other, err := parse("--gateway-api-url=http://127.0.0.1:9000", "--gateway-controller-name=gateway.envoyproxy.io/gatewayclass-controller").gatewayProvider()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(other.ControllerName).To(Equal("gateway.envoyproxy.io/gatewayclass-controller"))

	_, err = parse("--gateway-api-url=http://10.0.0.1:9000").gatewayProvider()
	g.Expect(err).To(MatchError(ContainSubstring("loopback")))
}
