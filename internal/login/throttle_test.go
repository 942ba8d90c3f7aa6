package login

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// Five failures for a name block it for the rest of the window, not other
// names; twenty from one address block the address; a success clears the
// name's failures but not the address's; failures age out.
func TestThrottleBlocksGuessingForAWindow(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	th := NewThrottle()
	th.now = func() time.Time { return now }

	for i := range DefaultMaxFailuresPerUser {
		g.Expect(th.RetryAfter("alice", "10.0.0.1")).To(BeZero(), "failure %d", i)
		th.Failed("alice", "127.0.0.1")
		now = now.Add(time.Second)
	}
	g.Expect(th.RetryAfter("alice", "127.0.0.2")).To(Equal(55*time.Second), "until the first failure leaves the minute")
	g.Expect(th.RetryAfter("bob", "127.0.0.1")).To(BeZero())
	now = now.Add(55 * time.Second)
	g.Expect(th.RetryAfter("alice", "127.0.0.2")).To(BeZero(), "the first failure left the window")

	for i := range DefaultMaxFailuresPerAddress {
		th.Failed("user"+string(rune('a'+i)), "127.0.0.9")
	}
	g.Expect(th.RetryAfter("carol", "127.0.0.9")).To(Equal(DefaultThrottleWindow))
	th.Succeeded("usera")
	g.Expect(th.RetryAfter("carol", "127.0.0.9")).To(Equal(DefaultThrottleWindow), "one success does not reset the address")
	g.Expect(th.RetryAfter("carol", "127.0.0.8")).To(BeZero())

	th.Failed("dave", "127.0.0.7")
	th.Succeeded("dave")
	g.Expect(th.failures).NotTo(HaveKey(userKey("dave")))
	now = now.Add(2 * DefaultThrottleWindow)
	th.sweep(now)
	g.Expect(th.failures).To(BeEmpty(), "expired entries are swept")
}
