package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// requestTimeout bounds each request a Consumer makes to the registry: a
// registry that does not answer in time is retried (or, in NewConsumer,
// reported), never waited on forever.
const requestTimeout = 5 * time.Second

// The backoff between retries of a failed step (a lease grant, a read of
// the service, an acknowledgement): short at first so that a blip costs
// little, bounded so that a registry that comes back is noticed soon.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// maxNameLen bounds a consumer's name, as Kubernetes bounds an object's.
const maxNameLen = 253

// ConsumerOptions configure a Consumer.
type ConsumerOptions struct {
	// Endpoints are the registry's client URLs; they must pass
	// CheckEndpoints (loopback only).
	Endpoints []string
	// Service is the service called.
	Service Service
	// Name is the consumer's id, one key segment of its ConsumerKey: it
	// must be unique among the consumers of the service (two consumers of
	// one name would overwrite each other's acknowledgements). At most 253
	// characters of [A-Za-z0-9._-].
	Name string
	// Describe is the Ack's Consumer field, for people.
	Describe string
	// PortName, when set, picks only the registrations of that port name.
	PortName string
	// Log receives what the Consumer does and what goes wrong.
	Log logr.Logger
	// ApplyDelay makes a lagging consumer, for drills and tests: every
	// change the watch delivers is applied (and so acknowledged) this much
	// later. Zero applies at once.
	ApplyDelay time.Duration
}

// Consumer is the calling side of the registry: it keeps a table of one
// service's registered instances, picks one per call (client-side round
// robin), and acknowledges in the registry every revision whose changes it
// has applied to that table, so that a provider stops an instance only
// once no consumer can pick it any more (package doc: Deregistration is
// confirmed by the consumers).
//
// Its acknowledgement lives under a lease of its own (TTL ConsumerTTL): a
// consumer that dies stops holding back deregistrations once the lease
// expires, and Close revokes it at once.
//
// Pick, Instances and Acked are safe for concurrent use.
type Consumer struct {
	service         Service
	name, describe  string
	portName        string
	applyDelay      time.Duration
	key             string // ConsumerKey(service, name)
	instancesPrefix string
	log             logr.Logger
	client          *clientv3.Client

	// instances is the published table, sorted by address; it is never
	// modified once published, so readers need no lock.
	instances atomic.Pointer[[]Registration]
	// next is the round robin's counter.
	next atomic.Uint64
	// acked is the revision of the last acknowledgement written.
	acked atomic.Int64

	ctx    context.Context // the consumer's lifetime: NewConsumer's ctx, until Close
	cancel context.CancelFunc
	done   chan struct{} // closed once run has stopped everything
	err    error         // why stopping failed; read after done

	// The rest belongs to the goroutine that runs the consumer (and to
	// NewConsumer before it starts).
	table        map[string]Registration // by instance key
	applied      int64                   // every change up to this revision is in the table
	lease        clientv3.LeaseID        // 0 while there is none
	leaseCancel  context.CancelFunc      // stops lease's keep-alive
	keepAlive    <-chan *clientv3.LeaseKeepAliveResponse
	ackLease     clientv3.LeaseID // the lease the acknowledgement was last written under
	watch        clientv3.WatchChan
	watchCancel  context.CancelFunc
	resyncNeeded bool
}

// NewConsumer connects to the registry, reads the service's instances,
// acknowledges the revision it read, and keeps doing so for every change
// until Close or until ctx ends. It returns only once the first
// acknowledgement is written, so that a consumer that has started is
// counted before it picks anything; it fails (and leaves nothing behind)
// if any of that fails.
func NewConsumer(ctx context.Context, o ConsumerOptions) (*Consumer, error) {
	if err := CheckEndpoints(o.Endpoints); err != nil {
		return nil, err
	}
	if err := checkService(o.Service); err != nil {
		return nil, err
	}
	if err := checkConsumerName(o.Name); err != nil {
		return nil, err
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   o.Endpoints,
		DialTimeout: requestTimeout,
		// Pings notice a registry that went away while the watch is
		// quiet; the registry accepts them every 5 s at the most.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: requestTimeout,
		// The client's own retries are internal; what reaches the
		// Consumer as an error is logged through o.Log.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("registry client for %v: %w", o.Endpoints, err)
	}
	c := &Consumer{
		service:         o.Service,
		name:            o.Name,
		describe:        o.Describe,
		portName:        o.PortName,
		applyDelay:      o.ApplyDelay,
		key:             ConsumerKey(o.Service, o.Name),
		instancesPrefix: InstancesPrefix(o.Service),
		log:             o.Log.WithValues("service", o.Service.String(), "consumer", o.Name),
		client:          client,
		done:            make(chan struct{}),
	}
	c.publish(nil)
	c.ctx, c.cancel = context.WithCancel(ctx)
	if err := c.start(); err != nil {
		c.cancel()
		c.stop()
		return nil, errors.Join(err, c.err)
	}
	go c.run()
	return c, nil
}

// start takes the first lease, reads the service, starts watching it, and
// writes the first acknowledgement.
func (c *Consumer) start() error {
	if err := c.grantLease(); err != nil {
		return err
	}
	if err := c.resync(); err != nil {
		return err
	}
	return c.writeAck()
}

// Pick returns the next instance of the round robin over the current
// table, or false if the table is empty (or the consumer has stopped). It
// is cheap: a load and an atomic increment.
func (c *Consumer) Pick() (Registration, bool) {
	s := *c.instances.Load()
	if len(s) == 0 {
		return Registration{}, false
	}
	n := c.next.Add(1) - 1
	return s[n%uint64(len(s))], true
}

// Instances returns the current table, sorted by address.
func (c *Consumer) Instances() []Registration { return slices.Clone(*c.instances.Load()) }

// Acked returns the revision of the last acknowledgement written to the
// registry: every change of the service up to it was in the table first.
func (c *Consumer) Acked() int64 { return c.acked.Load() }

// Close stops the consumer and revokes its lease, so that its
// acknowledgement disappears at once and providers stop waiting for it;
// from then on Pick finds nothing, since an instance it could pick would
// no longer be waited for. It returns once everything has stopped. Close
// may be called more than once, and after NewConsumer's ctx has ended.
func (c *Consumer) Close() error {
	c.cancel()
	<-c.done
	return c.err
}

// run applies the watch's changes and writes the acknowledgements until
// the consumer's context ends, then stops everything.
func (c *Consumer) run() {
	defer c.stop()
	backoff := minBackoff
	var retry <-chan time.Time // set while a failed step waits to be retried
	for {
		if retry == nil {
			if err := c.catchUp(); err != nil {
				if c.ctx.Err() != nil {
					return
				}
				c.log.Error(err, "Registry step failed; retrying", "after", backoff.String())
				retry = time.After(backoff)
				backoff = min(2*backoff, maxBackoff)
			} else {
				backoff = minBackoff
			}
		}
		select {
		case <-c.ctx.Done():
			return
		case <-retry:
			retry = nil
		case _, ok := <-c.keepAlive:
			if !ok {
				if c.ctx.Err() != nil {
					return
				}
				c.log.Info("Lost the lease; taking a new one", "lease", fmt.Sprintf("%x", c.lease))
				c.dropLease()
			}
		case resp, ok := <-c.watch:
			c.onWatch(resp, ok)
		}
	}
}

// catchUp does whatever is pending: a fresh read of the service if the
// watch broke (first: the table is what Pick uses, lease or not), a lease
// if there is none, then an acknowledgement if the table has changes the
// registry has not been told of (or the lease is new).
func (c *Consumer) catchUp() error {
	var errs []error
	if c.resyncNeeded {
		if err := c.resync(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.lease == 0 {
		if err := c.grantLease(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return c.writeAck()
}

// onWatch handles one response of the watch (ok false: the channel
// closed).
func (c *Consumer) onWatch(resp clientv3.WatchResponse, ok bool) {
	switch {
	case !ok:
		if c.ctx.Err() != nil {
			return // stopping
		}
		c.restartWatch("the watch ended")
	case resp.Err() != nil:
		// Canceled or compacted: the events between what was applied and
		// what can be watched are lost, so the table is read afresh.
		c.restartWatch(resp.Err().Error())
	case resp.IsProgressNotify():
		// Every event up to the header's revision has been sent, and
		// every one sent has been applied: the table is current as of it.
		c.advance(resp.Header.Revision)
	case len(resp.Events) > 0:
		// A watch response never splits a revision's events, so once all
		// of its events are applied the table is current as of the
		// highest of them.
		var highest int64
		for _, ev := range resp.Events {
			c.apply(c.table, string(ev.Kv.Key), ev.Kv.Value, ev.Type == clientv3.EventTypeDelete)
			highest = max(highest, ev.Kv.ModRevision)
		}
		if beforePublish != nil {
			beforePublish()
		}
		c.setTable(c.table)
		c.advance(highest)
	}
}

// restartWatch gives up the watch and asks for a fresh read.
func (c *Consumer) restartWatch(reason string) {
	c.log.Info("Watch of the service broke; reading it again", "reason", reason)
	c.stopWatch()
	c.resyncNeeded = true
}

// advance records that the table is current as of rev.
func (c *Consumer) advance(rev int64) {
	if rev > c.applied {
		c.applied = rev
	}
}

// resync reads the service, rebuilds the table from what it read, and
// watches from the revision after the read.
func (c *Consumer) resync() error {
	c.stopWatch()
	c.resyncNeeded = true
	ctx, cancel := context.WithTimeout(c.ctx, requestTimeout)
	defer cancel()
	resp, err := c.client.Get(ctx, ServicePrefix(c.service), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("reading service %s from the registry: %w", c.service, err)
	}
	table := make(map[string]Registration, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		c.apply(table, string(kv.Key), kv.Value, false)
	}
	c.setTable(table)
	rev := resp.Header.Revision
	c.advance(rev)
	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(c.ctx))
	c.watch = c.client.Watch(wctx, ServicePrefix(c.service),
		clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
	if c.applyDelay > 0 {
		c.watch = delayed(wctx, c.watch, c.applyDelay)
	}
	c.watchCancel = wcancel
	c.resyncNeeded = false
	c.log.V(1).Info("Read the service", "revision", rev, "instances", len(table))
	return nil
}

// beforePublish, when a test sets it, runs before each table built from
// watch events is published: slowing it shows whether an acknowledgement
// could be written ahead of its table.
var beforePublish func()

// delayed hands on each response of in d after it arrived (a lagging
// consumer: every change reaches its table d late, however many come), and
// closes its channel when in closes or ctx ends.
func delayed(ctx context.Context, in clientv3.WatchChan, d time.Duration) clientv3.WatchChan {
	type arrival struct {
		resp clientv3.WatchResponse
		at   time.Time
	}
	queue := make(chan arrival, 1024)
	out := make(chan clientv3.WatchResponse)
	go func() {
		defer close(queue)
		for resp := range in {
			select {
			case queue <- arrival{resp, time.Now()}:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		defer close(out)
		for a := range queue {
			select {
			case <-time.After(time.Until(a.at.Add(d))):
			case <-ctx.Done():
				return
			}
			select {
			case out <- a.resp:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// stopWatch cancels the watch, if any.
func (c *Consumer) stopWatch() {
	if c.watchCancel != nil {
		c.watchCancel()
	}
	c.watch, c.watchCancel = nil, nil
}

// apply makes one key's change to table: a put of an instance key adds or
// replaces its registration (or removes it if it cannot be read, or is of
// another port name), a delete removes it. Other keys (the revision key)
// change nothing.
func (c *Consumer) apply(table map[string]Registration, key string, value []byte, deleted bool) {
	addr, ok := strings.CutPrefix(key, c.instancesPrefix)
	if !ok {
		return
	}
	if deleted {
		delete(table, key)
		return
	}
	r, err := DecodeRegistration(key, value)
	if err == nil && r.Address != addr {
		err = fmt.Errorf("registration %s: address %q is not the key's", key, r.Address)
	}
	if err != nil {
		// An instance whose registration cannot be read is not picked:
		// nothing says it should be.
		delete(table, key)
		c.log.Error(err, "Skipping an unreadable registration")
		return
	}
	if c.portName != "" && r.PortName != c.portName {
		delete(table, key)
		return
	}
	table[key] = r
}

// setTable makes table the consumer's and publishes a sorted copy of it:
// the map keeps changing in the consumer's goroutine, what is published
// never does.
func (c *Consumer) setTable(table map[string]Registration) {
	c.table = table
	s := make([]Registration, 0, len(table))
	for _, r := range table {
		s = append(s, r)
	}
	c.publish(s)
}

// publish sorts s by address and makes it what Pick and Instances read.
func (c *Consumer) publish(s []Registration) {
	slices.SortFunc(s, func(a, b Registration) int {
		// Addresses were checked by DecodeRegistration.
		pa, errA := netip.ParseAddrPort(a.Address)
		pb, errB := netip.ParseAddrPort(b.Address)
		if errA != nil || errB != nil {
			return strings.Compare(a.Address, b.Address)
		}
		return pa.Compare(pb)
	})
	c.instances.Store(&s)
}

// grantLease takes a new lease and keeps it alive.
func (c *Consumer) grantLease() error {
	ctx, cancel := context.WithTimeout(c.ctx, requestTimeout)
	defer cancel()
	resp, err := c.client.Grant(ctx, int64(ConsumerTTL/time.Second))
	if err != nil {
		return fmt.Errorf("granting the consumer's lease: %w", err)
	}
	kctx, kcancel := context.WithCancel(c.ctx)
	ch, err := c.client.KeepAlive(kctx, resp.ID)
	if err != nil {
		kcancel()
		c.revoke(resp.ID)
		return fmt.Errorf("keeping lease %x alive: %w", resp.ID, err)
	}
	c.lease, c.leaseCancel, c.keepAlive = resp.ID, kcancel, ch
	c.log.V(1).Info("Took a lease", "lease", fmt.Sprintf("%x", resp.ID))
	return nil
}

// dropLease forgets the lease (it is gone), so that catchUp takes another.
func (c *Consumer) dropLease() {
	if c.leaseCancel != nil {
		c.leaseCancel()
	}
	c.lease, c.leaseCancel, c.keepAlive = 0, nil, nil
}

// writeAck writes the acknowledgement of the applied revision under the
// lease, unless it is there already.
func (c *Consumer) writeAck() error {
	if c.applied <= c.acked.Load() && c.ackLease == c.lease {
		return nil
	}
	value, err := encodeAck(Ack{Revision: c.applied, Consumer: c.describe})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, requestTimeout)
	defer cancel()
	if _, err := c.client.Put(ctx, c.key, value, clientv3.WithLease(c.lease)); err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			c.log.Info("The lease expired; taking a new one", "lease", fmt.Sprintf("%x", c.lease))
			c.dropLease()
		}
		return fmt.Errorf("acknowledging revision %d: %w", c.applied, err)
	}
	c.ackLease = c.lease
	c.acked.Store(c.applied)
	c.log.V(1).Info("Acknowledged", "revision", c.applied)
	return nil
}

// stop ends the watch and the keep-alive, empties the table, revokes the
// lease and closes the client; c.err says what failed.
func (c *Consumer) stop() {
	c.stopWatch()
	c.publish(nil)
	var errs []error
	if c.lease != 0 {
		lease := c.lease
		c.dropLease()
		if err := c.revoke(lease); err != nil {
			errs = append(errs, fmt.Errorf("revoking the consumer's lease: %w", err))
		}
	}
	if err := c.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
		errs = append(errs, fmt.Errorf("closing the registry client: %w", err))
	}
	c.err = errors.Join(errs...)
	close(c.done)
}

// revoke revokes a lease, even while the consumer stops; a lease already
// gone is no error.
func (c *Consumer) revoke(lease clientv3.LeaseID) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), requestTimeout)
	defer cancel()
	if _, err := c.client.Revoke(ctx, lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return err
	}
	return nil
}

// checkService refuses a service that cannot be a pair of key segments.
func checkService(s Service) error {
	if s.Namespace == "" || s.Name == "" || strings.Contains(s.Namespace, "/") || strings.Contains(s.Name, "/") {
		return fmt.Errorf("service %q: want a namespace and a name, neither empty nor containing '/'", s.String())
	}
	return nil
}

// checkConsumerName refuses a name that is not one key segment of the
// safe characters.
func checkConsumerName(name string) error {
	switch {
	case name == "":
		return errors.New("consumer name is empty")
	case len(name) > maxNameLen:
		return fmt.Errorf("consumer name %q: longer than %d characters", name, maxNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("consumer name %q: not a name", name)
	}
	for _, r := range name {
		if !nameChar(r) {
			return fmt.Errorf("consumer name %q: character %q is not one of [A-Za-z0-9._-]", name, r)
		}
	}
	return nil
}

func nameChar(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '-'
}

// encodeAck is an Ack's value.
func encodeAck(a Ack) (string, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return "", fmt.Errorf("encoding acknowledgement: %w", err)
	}
	return string(b), nil
}
