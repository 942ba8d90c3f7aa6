package registry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	. "github.com/onsi/gomega"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cafe-io/cafe/internal/registry"
	"github.com/cafe-io/cafe/test/framework"
)

// Waits on state poll at this rate until this deadline; nothing sleeps in
// place of a state.
const (
	deadline = 30 * time.Second
	poll     = 20 * time.Millisecond
)

var svc = registry.Service{Namespace: "shop", Name: "web"}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// addr is the address of instance i of a test service.
func addr(i int) string { return fmt.Sprintf("198.18.0.%d:8080", i+1) }

// change is one registrar-like transaction: it puts and deletes instance
// keys and writes the service's revision key with them.
type change struct {
	put    []registry.Registration
	delete []string // addresses
	raw    map[string]string
}

// apply commits ch in one transaction and returns its revision.
func (ch change) apply(t *testing.T, reg *framework.Registry, s registry.Service) int64 {
	t.Helper()
	var ops []clientv3.Op
	for _, r := range ch.put {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, clientv3.OpPut(registry.InstancesPrefix(s)+r.Address, string(b)))
	}
	for _, a := range ch.delete {
		ops = append(ops, clientv3.OpDelete(registry.InstancesPrefix(s)+a))
	}
	for k, v := range ch.raw {
		ops = append(ops, clientv3.OpPut(k, v))
	}
	ops = append(ops, clientv3.OpPut(registry.RevisionKey(s), "changed"))
	resp, err := reg.Client.Txn(t.Context()).Then(ops...).Commit()
	if err != nil {
		t.Fatalf("registering: %v", err)
	}
	return resp.Header.Revision
}

// regs are registrations of instances is of the test service.
func regs(portName string, is ...int) []registry.Registration {
	out := make([]registry.Registration, 0, len(is))
	for _, i := range is {
		out = append(out, registry.Registration{Address: addr(i), PortName: portName, Kind: registry.KindPod, Name: fmt.Sprintf("web-%d", i)})
	}
	return out
}

// addrs are the addresses of rs.
func addrs(rs []registry.Registration) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Address)
	}
	return out
}

// startConsumer runs a consumer of s named name against reg until the
// test ends.
func startConsumer(t *testing.T, reg *framework.Registry, o registry.ConsumerOptions) *registry.Consumer {
	t.Helper()
	o.Endpoints = []string{reg.Endpoint}
	if o.Service == (registry.Service{}) {
		o.Service = svc
	}
	if o.Name == "" {
		o.Name = "caller-1"
	}
	o.Log = testr.New(t)
	c, err := registry.NewConsumer(t.Context(), o)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// ackOf reads a consumer's acknowledgement and the lease it is under;
// found is false if there is none.
func ackOf(g Gomega, reg *framework.Registry, s registry.Service, name string) (ack registry.Ack, lease clientv3.LeaseID, found bool) {
	key := registry.ConsumerKey(s, name)
	resp, err := reg.Client.Get(context.Background(), key)
	g.Expect(err).NotTo(HaveOccurred())
	if len(resp.Kvs) == 0 {
		return ack, 0, false
	}
	ack, err = registry.DecodeAck(key, resp.Kvs[0].Value)
	g.Expect(err).NotTo(HaveOccurred())
	return ack, clientv3.LeaseID(resp.Kvs[0].Lease), true
}

func TestConsumerBuildsItsTableAndRoundRobins(t *testing.T) {
	g := NewWithT(t)
	reg := framework.StartRegistry(t)
	rev := change{
		put: regs("http", 2, 0, 1),
		raw: map[string]string{
			registry.InstancesPrefix(svc) + addr(7): "not json",
			// Its address is not its key's: not picked either.
			registry.InstancesPrefix(svc) + addr(8): `{"address":"` + addr(9) + `"}`,
		},
	}.apply(t, reg, svc)
	// Another service's instance is not in the table.
	change{put: regs("http", 5)}.apply(t, reg, registry.Service{Namespace: "shop", Name: "cart"})

	c := startConsumer(t, reg, registry.ConsumerOptions{Describe: "caller-1 at 127.0.0.1:1234"})

	g.Expect(c.Instances()).To(Equal(regs("http", 0, 1, 2)), "the registered instances, sorted by address; unreadable ones skipped")
	// NewConsumer returns once its acknowledgement is written.
	ack, lease, found := ackOf(g, reg, svc, "caller-1")
	g.Expect(found).To(BeTrue(), "acknowledged before NewConsumer returned")
	g.Expect(ack).To(Equal(registry.Ack{Revision: c.Acked(), Consumer: "caller-1 at 127.0.0.1:1234"}))
	g.Expect(ack.Revision).To(BeNumerically(">=", rev))
	g.Expect(lease).NotTo(BeZero(), "under the consumer's lease")

	// Round robin: N picks give each instance N/3 exactly, from one
	// goroutine or from many.
	counts := map[string]int{}
	for range 300 {
		r, ok := c.Pick()
		g.Expect(ok).To(BeTrue())
		counts[r.Address]++
	}
	g.Expect(counts).To(Equal(map[string]int{addr(0): 100, addr(1): 100, addr(2): 100}))

	var mu sync.Mutex
	var wg sync.WaitGroup
	counts = map[string]int{}
	for range 8 {
		wg.Go(func() {
			local := map[string]int{}
			for range 300 {
				if r, ok := c.Pick(); ok {
					local[r.Address]++
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for a, n := range local {
				counts[a] += n
			}
		})
	}
	wg.Wait()
	g.Expect(counts).To(Equal(map[string]int{addr(0): 800, addr(1): 800, addr(2): 800}))
}

func TestConsumerAppliesATransactionOfPutAndDelete(t *testing.T) {
	g := NewWithT(t)
	reg := framework.StartRegistry(t)
	change{put: regs("", 0, 1)}.apply(t, reg, svc)
	c := startConsumer(t, reg, registry.ConsumerOptions{})
	g.Expect(addrs(c.Instances())).To(Equal([]string{addr(0), addr(1)}))

	rev := change{put: regs("", 2), delete: []string{addr(0)}}.apply(t, reg, svc)

	g.Eventually(func(g Gomega) {
		ack, _, found := ackOf(g, reg, svc, "caller-1")
		g.Expect(found).To(BeTrue())
		g.Expect(ack.Revision).To(BeNumerically(">=", rev))
	}).WithTimeout(deadline).WithPolling(poll).Should(Succeed(), "the transaction is acknowledged")
	g.Expect(addrs(c.Instances())).To(Equal([]string{addr(1), addr(2)}), "acknowledged, so applied")
	// Acked is recorded once the acknowledgement's write has returned,
	// which may be after the registry shows it.
	g.Eventually(c.Acked).WithTimeout(deadline).WithPolling(poll).Should(BeNumerically(">=", rev))
}

// The protocol's promise: an acknowledgement of a revision is written only
// once every change up to it is in the table. The test sees every
// acknowledgement the consumer writes while instances are deregistered one
// transaction at a time, and checks each against the table.
func TestConsumerNeverAcknowledgesAheadOfItsTable(t *testing.T) {
	g := NewWithT(t)
	reg := framework.StartRegistry(t)
	const n = 20
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	start := change{put: regs("", all...)}.apply(t, reg, svc)
	// A slow consumer: were it to acknowledge before its table is
	// published, the test would read the table before it is.
	registry.SlowPublishing(t, 100*time.Millisecond)
	c := startConsumer(t, reg, registry.ConsumerOptions{})
	g.Expect(c.Instances()).To(HaveLen(n))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	acks := reg.Client.Watch(ctx, registry.ConsumerKey(svc, "caller-1"), clientv3.WithRev(start+1))

	// Deregister each instance in a transaction of its own, and a
	// transaction of another service's between them (a revision the
	// consumer never sees an event of).
	other := registry.Service{Namespace: "shop", Name: "cart"}
	revs := make([]int64, n)
	for i := range n {
		revs[i] = change{delete: []string{addr(i)}}.apply(t, reg, svc)
		change{put: regs("", i)}.apply(t, reg, other)
	}

	last, seen := int64(0), 0
	timeout := time.After(deadline)
	for last < revs[n-1] {
		select {
		case resp := <-acks:
			g.Expect(resp.Err()).NotTo(HaveOccurred())
			for _, ev := range resp.Events {
				g.Expect(ev.Type).To(Equal(clientv3.EventTypePut), "the consumer's key is never deleted while it runs")
				ack, err := registry.DecodeAck(string(ev.Kv.Key), ev.Kv.Value)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(ack.Revision).To(BeNumerically(">=", last), "acknowledgements never go back")
				last = ack.Revision
				seen++
				table := addrs(c.Instances())
				for i, rev := range revs {
					if rev <= ack.Revision {
						g.Expect(table).NotTo(ContainElement(addr(i)),
							"acknowledged revision %d, which deleted instance %d (revision %d), so it must be out of the table", ack.Revision, i, rev)
					}
				}
			}
		case <-timeout:
			t.Fatalf("the consumer acknowledged revision %d after %s; want %d", last, deadline, revs[n-1])
		}
	}
	g.Expect(seen).To(BeNumerically(">", 0))
	g.Expect(c.Instances()).To(BeEmpty())
	_, ok := c.Pick()
	g.Expect(ok).To(BeFalse(), "nothing to pick")
}

func TestConsumerPortNameFilter(t *testing.T) {
	g := NewWithT(t)
	reg := framework.StartRegistry(t)
	change{put: append(regs("http", 0, 2), regs("metrics", 1)...)}.apply(t, reg, svc)
	c := startConsumer(t, reg, registry.ConsumerOptions{PortName: "http"})
	g.Expect(addrs(c.Instances())).To(Equal([]string{addr(0), addr(2)}), "only port http")

	// Instance 1 turns http, instance 0 turns metrics.
	rev := change{put: append(regs("http", 1), regs("metrics", 0)...)}.apply(t, reg, svc)
	g.Eventually(c.Acked).WithTimeout(deadline).WithPolling(poll).Should(BeNumerically(">=", rev))
	g.Expect(addrs(c.Instances())).To(Equal([]string{addr(1), addr(2)}))
}

func TestConsumerCloseRevokesItsLease(t *testing.T) {
	g := NewWithT(t)
	reg := framework.StartRegistry(t)
	change{put: regs("", 0)}.apply(t, reg, svc)
	before := runtime.NumGoroutine()

	c, err := registry.NewConsumer(t.Context(), registry.ConsumerOptions{
		Endpoints: []string{reg.Endpoint}, Service: svc, Name: "caller-1", Log: testr.New(t),
	})
	g.Expect(err).NotTo(HaveOccurred())
	_, _, found := ackOf(g, reg, svc, "caller-1")
	g.Expect(found).To(BeTrue())

	g.Expect(c.Close()).To(Succeed())
	_, _, found = ackOf(g, reg, svc, "caller-1")
	g.Expect(found).To(BeFalse(), "gone as Close returns: the lease is revoked")
	_, ok := c.Pick()
	g.Expect(ok).To(BeFalse(), "a closed consumer picks nothing: nobody waits for it any more")
	g.Expect(c.Close()).To(Succeed(), "Close again")

	g.Eventually(runtime.NumGoroutine).WithTimeout(deadline).WithPolling(poll).Should(BeNumerically("<=", before),
		"every goroutine of the consumer (and its client) ends")
}

func TestConsumerStopsWhenItsContextEnds(t *testing.T) {
	g := NewWithT(t)
	reg := framework.StartRegistry(t)
	ctx, cancel := context.WithCancel(t.Context())
	c, err := registry.NewConsumer(ctx, registry.ConsumerOptions{
		Endpoints: []string{reg.Endpoint}, Service: svc, Name: "caller-1", Log: testr.New(t),
	})
	g.Expect(err).NotTo(HaveOccurred())
	cancel()
	g.Eventually(func(g Gomega) {
		_, _, found := ackOf(g, reg, svc, "caller-1")
		g.Expect(found).To(BeFalse())
	}).WithTimeout(registry.ConsumerTTL/2).WithPolling(poll).Should(Succeed(), "the lease is revoked, not left to expire")
	g.Expect(c.Close()).To(Succeed())
}

func TestConsumerTakesANewLeaseWhenItsLeaseIsLost(t *testing.T) {
	g := NewWithT(t)
	reg := framework.StartRegistry(t)
	change{put: regs("", 0, 1)}.apply(t, reg, svc)
	c := startConsumer(t, reg, registry.ConsumerOptions{Describe: "caller one"})
	ack, lease, found := ackOf(g, reg, svc, "caller-1")
	g.Expect(found).To(BeTrue())

	_, err := reg.Client.Revoke(t.Context(), lease)
	g.Expect(err).NotTo(HaveOccurred())
	_, _, found = ackOf(g, reg, svc, "caller-1")
	g.Expect(found).To(BeFalse(), "the revoke deleted the acknowledgement")

	g.Eventually(func(g Gomega) {
		again, newLease, found := ackOf(g, reg, svc, "caller-1")
		g.Expect(found).To(BeTrue(), "acknowledged again")
		g.Expect(newLease).NotTo(Equal(lease), "under a new lease")
		g.Expect(newLease).NotTo(BeZero())
		g.Expect(again.Revision).To(BeNumerically(">=", ack.Revision))
		g.Expect(again.Consumer).To(Equal("caller one"))
	}).WithTimeout(deadline).WithPolling(poll).Should(Succeed())

	// And it goes on applying and acknowledging changes.
	rev := change{delete: []string{addr(0)}}.apply(t, reg, svc)
	g.Eventually(func(g Gomega) {
		again, _, found := ackOf(g, reg, svc, "caller-1")
		g.Expect(found).To(BeTrue())
		g.Expect(again.Revision).To(BeNumerically(">=", rev))
	}).WithTimeout(deadline).WithPolling(poll).Should(Succeed())
	g.Expect(addrs(c.Instances())).To(Equal([]string{addr(1)}))
}

func TestNewConsumerRefusesBadOptions(t *testing.T) {
	ok := registry.ConsumerOptions{Endpoints: []string{"http://127.0.0.1:1"}, Service: svc, Name: "caller-1"}
	for _, tc := range []struct {
		name   string
		modify func(*registry.ConsumerOptions)
		err    string
	}{
		{name: "non-loopback endpoint", modify: func(o *registry.ConsumerOptions) { o.Endpoints = []string{"http://10.1.2.3:2379"} }, err: "not a loopback address"},
		{name: "no endpoint", modify: func(o *registry.ConsumerOptions) { o.Endpoints = nil }, err: "no registry endpoints"},
		{name: "no service", modify: func(o *registry.ConsumerOptions) { o.Service = registry.Service{} }, err: "service"},
		{name: "service name with a slash", modify: func(o *registry.ConsumerOptions) { o.Service.Name = "a/b" }, err: "'/'"},
		{name: "empty name", modify: func(o *registry.ConsumerOptions) { o.Name = "" }, err: "consumer name is empty"},
		{name: "name with a slash", modify: func(o *registry.ConsumerOptions) { o.Name = "a/b" }, err: "'/'"},
		{name: "name with a space", modify: func(o *registry.ConsumerOptions) { o.Name = "a b" }, err: "' '"},
		{name: "name with a non-ASCII letter", modify: func(o *registry.ConsumerOptions) { o.Name = "café" }, err: "'é'"},
		{name: "name ..", modify: func(o *registry.ConsumerOptions) { o.Name = ".." }, err: "not a name"},
		{name: "name too long", modify: func(o *registry.ConsumerOptions) { o.Name = strings.Repeat("a", 254) }, err: "longer than 253"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			o := ok
			tc.modify(&o)
			c, err := registry.NewConsumer(t.Context(), o)
			g.Expect(err).To(MatchError(ContainSubstring(tc.err)))
			g.Expect(c).To(BeNil())
		})
	}
}

func TestNewConsumerFailsWithoutARegistry(t *testing.T) {
	g := NewWithT(t)
	// A loopback port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	endpoint := "http://" + ln.Addr().String()
	g.Expect(ln.Close()).To(Succeed())

	c, err := registry.NewConsumer(t.Context(), registry.ConsumerOptions{
		Endpoints: []string{endpoint}, Service: svc, Name: strings.Repeat("a", 253), Log: testr.New(t),
	})
	g.Expect(err).To(MatchError(ContainSubstring("lease")), "the first step fails")
	g.Expect(c).To(BeNil())
}

// A consumer whose watch is compacted away while it is cut off from the
// registry reads the service again: its table and its acknowledgement
// catch up with the changes it never saw an event of.
func TestConsumerReadsTheServiceAgainAfterACompaction(t *testing.T) {
	g := NewWithT(t)
	reg := framework.StartRegistry(t)
	p := startProxy(t, strings.TrimPrefix(reg.Endpoint, "http://"))
	change{put: regs("", 0, 1)}.apply(t, reg, svc)
	c, err := registry.NewConsumer(t.Context(), registry.ConsumerOptions{
		Endpoints: []string{"http://" + p.addr()}, Service: svc, Name: "caller-1", Log: testr.New(t),
	})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = c.Close() })
	g.Expect(addrs(c.Instances())).To(Equal([]string{addr(0), addr(1)}))

	p.cut()
	change{delete: []string{addr(0)}}.apply(t, reg, svc)
	rev := change{put: regs("", 2)}.apply(t, reg, svc)
	_, err = reg.Client.Compact(t.Context(), rev, clientv3.WithCompactPhysical())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(addrs(c.Instances())).To(Equal([]string{addr(0), addr(1)}), "cut off: nothing seen yet")
	g.Expect(c.Acked()).To(BeNumerically("<", rev))
	p.resume()

	g.Eventually(c.Acked).WithTimeout(deadline).WithPolling(poll).Should(BeNumerically(">=", rev))
	g.Expect(addrs(c.Instances())).To(Equal([]string{addr(1), addr(2)}))
	ack, _, found := ackOf(g, reg, svc, "caller-1")
	g.Expect(found).To(BeTrue())
	g.Expect(ack.Revision).To(BeNumerically(">=", rev))
}

// proxy forwards TCP connections on loopback to a target, and can cut
// them all off for a while.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	isCut  bool
	conns  map[net.Conn]struct{}
}

// startProxy forwards to target until the test ends.
func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.forward(conn) })
		}
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

// forward copies between conn and a connection to the target until
// either ends or the proxy cuts them.
func (p *proxy) forward(conn net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = conn.Close()
		return
	}
	p.mu.Lock()
	if p.isCut {
		p.mu.Unlock()
		_ = conn.Close()
		_ = up.Close()
		return
	}
	p.conns[conn], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, conn); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, up); done <- struct{}{} }()
	<-done
	_ = conn.Close()
	_ = up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, conn)
	delete(p.conns, up)
	p.mu.Unlock()
}

// cut closes every connection and refuses new ones until resume.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isCut = true
	for conn := range p.conns {
		_ = conn.Close()
	}
}

func (p *proxy) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isCut = false
}

// A lagging consumer (ApplyDelay) keeps a deregistered instance in its
// table, and its acknowledgement below the deregistration, for the delay,
// then catches up.
func TestConsumerApplyDelayLagsEveryChangeByTheDelay(t *testing.T) {
	g := NewWithT(t)
	reg := framework.StartRegistry(t)
	change{put: regs("", 0, 1, 2)}.apply(t, reg, svc)
	const lag = time.Second
	c := startConsumer(t, reg, registry.ConsumerOptions{ApplyDelay: lag})
	g.Expect(c.Instances()).To(HaveLen(3), "the first read is not delayed")

	var last int64
	for i := range 3 {
		last = change{delete: []string{addr(i)}}.apply(t, reg, svc)
	}
	g.Consistently(func() int { return len(c.Instances()) }).WithTimeout(lag/2).WithPolling(20*time.Millisecond).Should(BeNumerically(">", 0),
		"a lagging consumer still picks the deregistered instances")
	g.Expect(c.Acked()).To(BeNumerically("<", last), "nor has it acknowledged their deregistration")
	g.Eventually(c.Instances).WithTimeout(deadline).WithPolling(poll).Should(BeEmpty())
	g.Eventually(c.Acked).WithTimeout(deadline).WithPolling(poll).Should(BeNumerically(">=", last))
}
