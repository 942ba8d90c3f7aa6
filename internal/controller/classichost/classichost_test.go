package classichost_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controller/classichost"
	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/internal/manager"
	"github.com/cafe-io/cafe/test/framework"
)

// staleAfter is the manager's heartbeat bound in these tests: an agent
// renewing every 500 ms stays Ready, one that stops turns Unknown soon.
const staleAfter = 3 * time.Second

// One real kube-apiserver with CAFE installed (CRDs, RBAC, the host-agent
// admission policy) and CAFE's manager; agents run in the test process
// with credentials the API server authenticates (client certificates).
var suite = framework.ControllerSuite{Options: manager.Options{ClassicHostStaleAfter: staleAfter}}

func TestMain(m *testing.M) {
	suite.Prepare = func(ctx context.Context, _ client.Client) error { return install.CAFE(ctx, suite.Config) }
	os.Exit(suite.Main(m))
}

// runAgent runs host's agent until the returned stop is called.
func runAgent(t *testing.T, g Gomega, host, zone, address string) (stop func()) {
	t.Helper()
	return suite.RunAgent(t, g, framework.AgentOptions(t, host, zone, address))
}

func readyOf(ctx context.Context, g Gomega, name string) func() *metav1.Condition {
	return conditionOf(ctx, g, name, cafev1alpha1.ClassicHostReadyCondition)
}

func conditionOf(ctx context.Context, g Gomega, name, conditionType string) func() *metav1.Condition {
	return func() *metav1.Condition {
		h := &cafev1alpha1.ClassicHost{}
		if err := suite.Client.Get(ctx, client.ObjectKey{Name: name}, h); err != nil {
			return nil
		}
		return meta.FindStatusCondition(h.Status.Conditions, conditionType)
	}
}

func withReason(status metav1.ConditionStatus, reason string) OmegaMatcher {
	return And(Not(BeNil()), HaveField("Status", status), HaveField("Reason", reason))
}

// An agent registers its host, heartbeats through its Lease and states
// itself ready; the host is Ready while the heartbeats arrive, Unknown
// once they stop, Ready again when the agent returns. The agent's and
// CAFE's conditions live side by side (each applies only its own).
func TestAnAgentRegistersItsHostAndItsHeartbeatsMakeItReady(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	name := "vm-" + ns
	stop := runAgent(t, g, name, "zone-c", "127.0.42.1")

	g.Eventually(readyOf(ctx, g, name)).Should(withReason(metav1.ConditionTrue, cafev1alpha1.ClassicHostReasonHeartbeating))
	host := &cafev1alpha1.ClassicHost{}
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Name: name}, host)).To(Succeed())
	g.Expect(host.Spec.Zone).To(Equal("zone-c"))
	g.Expect(host.Spec.Address).To(Equal("127.0.42.1"))
	g.Expect(host.Spec.Capacity.Instances).To(Equal(int32(4)))
	g.Expect(host.Status.AgentVersion).To(Equal("test-1"))
	g.Expect(host.Status.AgentEndpoint).NotTo(BeNil())
	g.Expect(host.Status.ReservedPorts).To(Equal([]int32{host.Status.AgentEndpoint.Port}), "the agent's own port is kept from instances")
	g.Expect(meta.IsStatusConditionTrue(host.Status.Conditions, cafev1alpha1.ClassicHostAgentReadyCondition)).To(BeTrue())
	g.Expect(host.Status.ObservedGeneration).To(Equal(host.Generation))
	lease := &coordinationv1.Lease{}
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: cafev1alpha1.ClassicHostLeaseNamespace, Name: name}, lease)).To(Succeed())
	g.Expect(lease.Spec.HolderIdentity).To(Equal(ptr.To(name)))
	g.Expect(lease.OwnerReferences).To(ConsistOf(HaveField("UID", host.UID)))

	// Heartbeats keep it Ready past the stale bound.
	g.Consistently(readyOf(ctx, g, name), staleAfter+time.Second).Should(withReason(metav1.ConditionTrue, cafev1alpha1.ClassicHostReasonHeartbeating))

	stop()
	g.Eventually(readyOf(ctx, g, name)).Should(withReason(metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonHeartbeatStale))
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Name: name}, host)).To(Succeed())
	g.Expect(meta.IsStatusConditionTrue(host.Status.Conditions, cafev1alpha1.ClassicHostAgentReadyCondition)).To(BeTrue(), "CAFE's write leaves the agent's condition alone")

	runAgent(t, g, name, "zone-c", "127.0.42.1")
	g.Eventually(readyOf(ctx, g, name)).Should(withReason(metav1.ConditionTrue, cafev1alpha1.ClassicHostReasonHeartbeating))
}

// A host nobody's agent ever registered for (created by an administrator
// ahead of its agent) is Unknown, NeverHeartbeated.
func TestAHostWithoutHeartbeatIsUnknown(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	host := &cafev1alpha1.ClassicHost{ObjectMeta: metav1.ObjectMeta{Name: "vm-" + ns},
		Spec: cafev1alpha1.ClassicHostSpec{Zone: "zone-a", Address: "127.0.42.2"}}
	g.Expect(suite.Client.Create(ctx, host)).To(Succeed())
	g.Eventually(readyOf(ctx, g, host.Name)).Should(withReason(metav1.ConditionUnknown, cafev1alpha1.ClassicHostReasonNeverHeartbeated))
}

// The credential of host A writes host A and its Lease, and nothing of
// host B: admission (the cafe-host-agent-writes policy) refuses it,
// whatever RBAC grants the group.
func TestAHostAgentCannotWriteAnotherHost(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	a, b := "vm-a-"+ns, "vm-b-"+ns
	runAgent(t, g, b, "zone-b", "127.0.42.3")
	g.Eventually(readyOf(ctx, g, b)).Should(withReason(metav1.ConditionTrue, cafev1alpha1.ClassicHostReasonHeartbeating))
	asA, _ := suite.HostIdentity(t, g, a)

	forbiddenForA := And(Satisfy(apierrors.IsForbidden), MatchError(ContainSubstring("host agent "+a+" may write only its own ClassicHost and Lease")))
	other := &cafev1alpha1.ClassicHost{ObjectMeta: metav1.ObjectMeta{Name: "vm-c-" + ns},
		Spec: cafev1alpha1.ClassicHostSpec{Zone: "zone-a", Address: "127.0.42.4"}}
	// The API server loads an admission policy a moment after it is
	// created (its own informer): wait, with requests that store nothing,
	// until the installed policy is in force.
	g.Eventually(func() error { return asA.Create(ctx, other.DeepCopy(), client.DryRunAll) }).Should(forbiddenForA, "create another host")
	g.Expect(asA.Create(ctx, other)).To(forbiddenForA, "create another host")

	// Host B's agent and CAFE keep writing B's objects: a write from a
	// stale read is refused as a conflict before admission sees it, so
	// each forged write is made from a fresh read until the answer is not
	// a conflict.
	forge := func(obj client.Object, key client.ObjectKey, write func() error) error {
		return retry.OnError(retry.DefaultRetry, apierrors.IsConflict, func() error {
			if err := asA.Get(ctx, key, obj); err != nil {
				return err
			}
			return write()
		})
	}
	hostB := &cafev1alpha1.ClassicHost{}
	g.Expect(asA.Get(ctx, client.ObjectKey{Name: b}, hostB)).To(Succeed(), "agents may read hosts")
	g.Expect(forge(hostB, client.ObjectKey{Name: b}, func() error {
		hostB.Spec.Unschedulable = true
		return asA.Update(ctx, hostB)
	})).To(forbiddenForA, "update host B")
	g.Expect(forge(hostB, client.ObjectKey{Name: b}, func() error {
		meta.SetStatusCondition(&hostB.Status.Conditions, metav1.Condition{Type: cafev1alpha1.ClassicHostAgentReadyCondition, Status: metav1.ConditionFalse, Reason: "Forged", Message: "forged"})
		return asA.Status().Update(ctx, hostB)
	})).To(forbiddenForA, "update host B's status")

	leaseB := &coordinationv1.Lease{}
	g.Expect(forge(leaseB, client.ObjectKey{Namespace: cafev1alpha1.ClassicHostLeaseNamespace, Name: b}, func() error {
		leaseB.Spec.RenewTime = &metav1.MicroTime{Time: time.Now().Add(time.Hour)}
		return asA.Update(ctx, leaseB)
	})).To(forbiddenForA, "renew host B's Lease")
	g.Expect(asA.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: cafev1alpha1.ClassicHostLeaseNamespace, Name: "vm-c-" + ns}})).To(forbiddenForA, "create another host's Lease")
	g.Expect(asA.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: a}})).To(Satisfy(apierrors.IsForbidden), "a Lease outside cafe-host-lease (RBAC)")
	g.Expect(asA.Delete(ctx, hostB)).To(Satisfy(apierrors.IsForbidden), "delete host B")

	// A's own host is A's to write, and B's is as it was.
	mine := &cafev1alpha1.ClassicHost{ObjectMeta: metav1.ObjectMeta{Name: a}, Spec: cafev1alpha1.ClassicHostSpec{Zone: "zone-a", Address: "127.0.42.5"}}
	g.Expect(asA.Create(ctx, mine)).To(Succeed())
	// ... but not the conditions CAFE judges it by: an agent cannot vouch
	// for its own host's health or lift CAFE's cordon.
	// (CAFE's controllers write the new host's status meanwhile: each
	// attempt starts from a fresh read, and retries on a conflict.)
	setOwnCondition := func(typ string) func() error {
		return func() error {
			h := &cafev1alpha1.ClassicHost{}
			if err := asA.Get(ctx, client.ObjectKey{Name: a}, h); err != nil {
				return err
			}
			meta.SetStatusCondition(&h.Status.Conditions, metav1.Condition{Type: typ, Status: metav1.ConditionTrue, Reason: "Written", Message: "by the agent"})
			return asA.Status().Update(ctx, h)
		}
	}
	for _, forged := range []string{cafev1alpha1.ClassicHostReadyCondition, cafev1alpha1.ClassicHostReachableCondition, cafev1alpha1.ClassicHostHealthyCondition, cafev1alpha1.ClassicHostSchedulableCondition} {
		g.Eventually(setOwnCondition(forged)).Should(And(Satisfy(apierrors.IsForbidden), MatchError(ContainSubstring("may not write the conditions CAFE judges its host by"))), forged)
	}
	g.Eventually(setOwnCondition(cafev1alpha1.ClassicHostAgentReadyCondition)).Should(Succeed(), "its own AgentReady condition")
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Name: b}, hostB)).To(Succeed())
	g.Expect(hostB.Spec.Unschedulable).To(BeFalse())
	g.Expect(meta.IsStatusConditionTrue(hostB.Status.Conditions, cafev1alpha1.ClassicHostAgentReadyCondition)).To(BeTrue())
}

// The schema refuses a malformed host with the field named, and keeps a
// host's zone as registered.
func TestClassicHostValidation(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	for _, tc := range []struct {
		name    string
		spec    cafev1alpha1.ClassicHostSpec
		message string
	}{
		{"no-zone", cafev1alpha1.ClassicHostSpec{Address: "127.0.0.9"}, "spec.zone"},
		{"bad-address", cafev1alpha1.ClassicHostSpec{Zone: "zone-a", Address: "vm-1.example"}, "spec.address must be an IPv4 or IPv6 address"},
		{"unspecified", cafev1alpha1.ClassicHostSpec{Zone: "zone-a", Address: "0.0.0.0"}, "spec.address must not be the unspecified address"},
		{"bad-zone", cafev1alpha1.ClassicHostSpec{Zone: "Zone A", Address: "127.0.0.9"}, "spec.zone"},
		{"zero-capacity", cafev1alpha1.ClassicHostSpec{Zone: "zone-a", Address: "127.0.0.9", Capacity: cafev1alpha1.ClassicHostCapacity{Instances: -1}}, "spec.capacity.instances"},
	} {
		h := &cafev1alpha1.ClassicHost{ObjectMeta: metav1.ObjectMeta{Name: tc.name + "-" + ns}, Spec: tc.spec}
		g.Expect(suite.Client.Create(ctx, h)).To(And(Satisfy(apierrors.IsInvalid), MatchError(ContainSubstring(tc.message))), tc.name)
	}
	h := &cafev1alpha1.ClassicHost{ObjectMeta: metav1.ObjectMeta{Name: "moves-" + ns}, Spec: cafev1alpha1.ClassicHostSpec{Zone: "zone-a", Address: "127.0.0.9"}}
	g.Expect(suite.Client.Create(ctx, h)).To(Succeed())
	g.Expect(h.Spec.Capacity.Instances).To(Equal(int32(10)), "defaulted")
	g.Expect(suite.Client.Patch(ctx, h, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"zone":"zone-b"}}`)))).To(MatchError(ContainSubstring("spec.zone is immutable")))
}

// CAFE probes each host's agent at the host's address (the path its
// instances serve on): a running agent answers, Reachable; a host whose
// agent does not answer there (its network failed) turns Reachable
// Unknown, then False and not Ready (HostUnreachable) once the probes have
// failed for the unreachable bound, though its heartbeat is fresh.
func TestAHostCafeCannotReachIsNotReady(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	up := "vm-up-" + ns
	runAgent(t, g, up, "zone-a", "127.0.42.6")
	g.Eventually(conditionOf(ctx, g, up, cafev1alpha1.ClassicHostReachableCondition)).Should(withReason(metav1.ConditionTrue, cafev1alpha1.ClassicHostReasonAnswering))
	g.Eventually(readyOf(ctx, g, up)).Should(withReason(metav1.ConditionTrue, cafev1alpha1.ClassicHostReasonHeartbeating))

	// A host whose agent heartbeats but whose endpoint nothing answers at
	// the host's address: a running agent, its published endpoint moved to
	// a port nothing listens on.
	down := "vm-down-" + ns
	start := time.Now()
	runAgent(t, g, down, "zone-b", "127.0.42.7")
	host := &cafev1alpha1.ClassicHost{}
	g.Eventually(func(g Gomega) {
		g.Expect(suite.Client.Get(ctx, client.ObjectKey{Name: down}, host)).To(Succeed())
		g.Expect(host.Status.AgentEndpoint).NotTo(BeNil())
		host.Status.AgentEndpoint.Port = 1
		g.Expect(suite.Client.Status().Update(ctx, host)).To(Succeed())
	}).Should(Succeed())
	g.Eventually(readyOf(ctx, g, down)).Should(withReason(metav1.ConditionFalse, cafev1alpha1.ClassicHostReasonUnreachable), func() string {
		h := &cafev1alpha1.ClassicHost{}
		_ = suite.Client.Get(ctx, client.ObjectKey{Name: down}, h)
		return fmt.Sprintf("%+v", h.Status)
	})
	reachable := conditionOf(ctx, g, down, cafev1alpha1.ClassicHostReachableCondition)()
	g.Expect(reachable.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(reachable.Message).To(ContainSubstring("127.0.42.7:1"))
	// Condition times are stored in whole seconds: the bound holds to
	// within one.
	g.Expect(time.Since(start)).To(BeNumerically(">=", classichost.DefaultUnreachableAfter-time.Second), "not before the probes failed for the bound")
}
