package registry

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/cafe-io/cafe/internal/podnet"
)

// Prefix is the root of every key CAFE reads or writes in the registry.
const Prefix = "/cafe/registry/v1/"

// ConsumerTTL is the lease TTL a Consumer keeps its acknowledgements
// under: a consumer that dies stops holding back deregistrations this long
// after its last keep-alive.
const ConsumerTTL = 10 * time.Second

// Service names one registered service: a Kubernetes Service's namespace
// and name.
type Service struct {
	Namespace, Name string
}

func (s Service) String() string { return s.Namespace + "/" + s.Name }

// ParseService reads "<namespace>/<name>".
func ParseService(s string) (Service, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return Service{}, fmt.Errorf("service %q: want <namespace>/<name>", s)
	}
	return Service{Namespace: ns, Name: name}, nil
}

// ServicesPrefix holds the services of one namespace.
func ServicesPrefix(namespace string) string { return Prefix + "services/" + namespace + "/" }

// ServicePrefix holds everything of one service: its instances and its
// revision key. A consumer watches it.
func ServicePrefix(s Service) string { return ServicesPrefix(s.Namespace) + s.Name + "/" }

// InstancesPrefix holds the registrations of one service.
func InstancesPrefix(s Service) string { return ServicePrefix(s) + "instances/" }

// InstanceKey is one registration: an address and port of the service.
func InstanceKey(s Service, addr netip.AddrPort) string { return InstancesPrefix(s) + addr.String() }

// RevisionKey is the service's change marker: written in every transaction
// that changes its instances, so its mod_revision is the revision of the
// service's latest change.
func RevisionKey(s Service) string { return ServicePrefix(s) + "revision" }

// ConsumersPrefix holds the acknowledgements of every consumer of one
// service.
func ConsumersPrefix(s Service) string {
	return Prefix + "consumers/" + s.Namespace + "/" + s.Name + "/"
}

// ConsumersOfNamespace holds the acknowledgements of the consumers of
// every service of a namespace.
func ConsumersOfNamespace(namespace string) string { return Prefix + "consumers/" + namespace + "/" }

// ConsumerKey is one consumer's acknowledgement for one service.
func ConsumerKey(s Service, consumer string) string { return ConsumersPrefix(s) + consumer }

// Kinds of registered instances.
const (
	KindPod             = "Pod"
	KindClassicInstance = "ClassicInstance"
)

// Registration is the value of an instance key.
type Registration struct {
	// Address is "<ip>:<port>", the key's last segment.
	Address string `json:"address"`
	// PortName is the Service port's name ("" for an unnamed port).
	PortName string `json:"portName,omitempty"`
	// Kind and Name name the object behind the address (the
	// EndpointSlice's targetRef): a Pod or a ClassicInstance.
	Kind string `json:"kind,omitempty"`
	Name string `json:"name,omitempty"`
	// Zone is the endpoint's zone, for zone-aware consumers.
	Zone string `json:"zone,omitempty"`
}

// Ack is the value of a consumer key.
type Ack struct {
	// Revision is the highest registry revision whose changes to the
	// service the consumer has applied.
	Revision int64 `json:"revision"`
	// Consumer describes the consumer for people (its name and address).
	Consumer string `json:"consumer,omitempty"`
}

// ServiceOfKey returns the service an instance, revision or consumer key
// belongs to, and the key's rest after the service ("instances/<addr>",
// "revision", "<consumer>").
func ServiceOfKey(key string) (Service, string, bool) {
	rest, ok := strings.CutPrefix(key, Prefix)
	if !ok {
		return Service{}, "", false
	}
	_, rest, ok = strings.Cut(rest, "/") // "services" or "consumers"
	if !ok {
		return Service{}, "", false
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return Service{}, "", false
	}
	return Service{Namespace: parts[0], Name: parts[1]}, parts[2], true
}

// DecodeRegistration reads an instance key's value.
func DecodeRegistration(key string, value []byte) (Registration, error) {
	var r Registration
	if err := json.Unmarshal(value, &r); err != nil {
		return r, fmt.Errorf("registration %s: %w", key, err)
	}
	if _, err := netip.ParseAddrPort(r.Address); err != nil {
		return r, fmt.Errorf("registration %s: address: %w", key, err)
	}
	return r, nil
}

// DecodeAck reads a consumer key's value.
func DecodeAck(key string, value []byte) (Ack, error) {
	var a Ack
	if err := json.Unmarshal(value, &a); err != nil {
		return a, fmt.Errorf("acknowledgement %s: %w", key, err)
	}
	return a, nil
}

// CheckEndpoints refuses registry endpoints that are not http(s) URLs on
// loopback or in the ranges the project routes into network namespaces of
// its own (a classic host's relay to the registry on the local control
// plane): the project sends nothing anywhere else.
func CheckEndpoints(endpoints []string) error {
	if len(endpoints) == 0 {
		return fmt.Errorf("no registry endpoints")
	}
	for _, e := range endpoints {
		rest, ok := strings.CutPrefix(e, "http://")
		if !ok {
			if rest, ok = strings.CutPrefix(e, "https://"); !ok {
				return fmt.Errorf("registry endpoint %q: want http://<ip>:<port> or https://<ip>:<port>", e)
			}
		}
		ap, err := netip.ParseAddrPort(strings.TrimSuffix(rest, "/"))
		if err != nil {
			return fmt.Errorf("registry endpoint %q: %w", e, err)
		}
		if !podnet.Allowed(ap.Addr()) {
			return fmt.Errorf("registry endpoint %q: not a loopback address nor one of the project's namespaces (%s): the project sends nothing elsewhere", e, podnet.SafetyNet)
		}
	}
	return nil
}
