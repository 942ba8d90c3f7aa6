package registry

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cafe-io/cafe/internal/registry"
)

// View is one consistent read of a namespace in the registry: what the
// decision of Routes reads.
type View struct {
	// Revision is the registry revision of the read.
	Revision int64
	// Registrations by service.
	Registrations map[registry.Service][]registry.Registration
	// Changed is each service's revision key's mod_revision: the revision
	// of its latest change.
	Changed map[registry.Service]int64
	// Acks by service, by consumer key's last segment.
	Acks map[registry.Service]map[string]registry.Ack
}

// NewView reads the key-values of a namespace's services prefix and
// consumers prefix. A value that does not decode is an error: the
// decision must not be made on part of the registry.
func NewView(rev int64, services, consumers []*mvccpb.KeyValue) (*View, error) {
	v := &View{Revision: rev, Registrations: map[registry.Service][]registry.Registration{},
		Changed: map[registry.Service]int64{}, Acks: map[registry.Service]map[string]registry.Ack{}}
	for _, kv := range services {
		key := string(kv.Key)
		svc, rest, ok := registry.ServiceOfKey(key)
		if !ok {
			continue
		}
		switch {
		case rest == "revision":
			v.Changed[svc] = kv.ModRevision
		case strings.HasPrefix(rest, "instances/"):
			r, err := registry.DecodeRegistration(key, kv.Value)
			if err != nil {
				return nil, err
			}
			v.Registrations[svc] = append(v.Registrations[svc], r)
		}
	}
	for _, kv := range consumers {
		key := string(kv.Key)
		svc, consumer, ok := registry.ServiceOfKey(key)
		if !ok {
			continue
		}
		a, err := registry.DecodeAck(key, kv.Value)
		if err != nil {
			return nil, err
		}
		if v.Acks[svc] == nil {
			v.Acks[svc] = map[string]registry.Ack{}
		}
		v.Acks[svc][consumer] = a
	}
	return v, nil
}

// Routes decides whether the registry may still send calls to an object
// whose addresses isObject recognises: while a registration lists it, or
// while a live consumer of some service has not acknowledged that
// service's latest change. why says which, or why not.
func (v *View) Routes(isObject func(netip.AddrPort) bool) (routed bool, why string) {
	for _, svc := range sortedServices(v.Registrations) {
		for _, r := range v.Registrations[svc] {
			if ap, err := netip.ParseAddrPort(r.Address); err == nil && isObject(ap) {
				return true, fmt.Sprintf("is registered in %s as %s", svc, r.Address)
			}
		}
	}
	consumers := 0
	for _, svc := range sortedServices(v.Acks) {
		changed := v.Changed[svc]
		for _, name := range sortedKeys(v.Acks[svc]) {
			consumers++
			if a := v.Acks[svc][name]; a.Revision < changed {
				return true, fmt.Sprintf("is deregistered, but consumer %s (%s) of %s has applied revision %d, before the service's latest change at %d",
					name, a.Consumer, svc, a.Revision, changed)
			}
		}
	}
	return false, fmt.Sprintf("is in no registration, and all %d live consumers of the namespace's services have applied their latest changes", consumers)
}

func sortedServices[V any](m map[registry.Service]V) []registry.Service {
	out := make([]registry.Service, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b registry.Service) int { return strings.Compare(a.String(), b.String()) })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
