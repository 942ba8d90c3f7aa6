package classicset

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

var t0 = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

// inst is an instance state: name, updated, ready since an hour, gate.
func inst(name string, updated, ready bool, gate cafev1alpha1.ClassicTrafficGate) instanceState {
	return instanceState{
		Instance: &cafev1alpha1.ClassicInstance{ObjectMeta: metav1.ObjectMeta{Name: name}},
		Updated:  updated, Ready: ready, ReadySince: t0.Add(-time.Hour), Gate: gate,
	}
}

const (
	open      = cafev1alpha1.ClassicTrafficGateOpen
	forUpdate = cafev1alpha1.ClassicTrafficGateDrainForUpdate
	forDelete = cafev1alpha1.ClassicTrafficGateDrainForDelete
)

func drained(s instanceState) instanceState { s.Drained = true; return s }

func held(s instanceState, by string) instanceState { s.Holders = []string{by}; return s }

func readySince(s instanceState, d time.Duration) instanceState { s.ReadySince = t0.Add(-d); return s }

func migrating(s instanceState) instanceState { s.Migrating = true; return s }

func sameArtifact(s instanceState) instanceState { s.SameArtifact = true; return s }

// names renders a plan's writes for comparison.
func names(p planResult) []string {
	var out []string
	for _, g := range p.Gates {
		out = append(out, fmt.Sprintf("gate %s %s", g.Instance.Name, g.Gate))
	}
	for _, i := range p.Update {
		out = append(out, "update "+i.Name)
	}
	for _, i := range p.Delete {
		out = append(out, "delete "+i.Name)
	}
	if p.Create > 0 {
		out = append(out, fmt.Sprintf("create %d", p.Create))
	}
	return out
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name      string
		in        planInput
		want      []string
		requeue   time.Duration
		held      string
		blockedOn bool
	}{
		{name: "an instance asked to migrate is replaced first while it serves",
			in:   planInput{Replicas: 2, MaxUnavailable: 1, Instances: []instanceState{migrating(inst("a", true, true, open)), inst("b", true, true, open)}},
			want: []string{"create 1"}},
		{name: "then drained once the set has its replicas available without it",
			in:   planInput{Replicas: 2, MaxUnavailable: 1, Instances: []instanceState{migrating(inst("a", true, true, open)), inst("b", true, true, open), inst("c", true, true, open)}},
			want: []string{"gate a DrainForDelete"}},
		{name: "and deleted once drained",
			in:   planInput{Replicas: 2, MaxUnavailable: 1, Instances: []instanceState{drained(migrating(inst("a", true, true, forDelete))), inst("b", true, true, open), inst("c", true, true, open)}},
			want: []string{"delete a"}},
		{name: "an instance of a dead host waits for its replacement, and a release updates it meanwhile",
			in:   planInput{Replicas: 1, MaxUnavailable: 1, Instances: []instanceState{migrating(inst("a", false, false, open))}},
			want: []string{"gate a DrainForUpdate", "create 1"}},
		{name: "a migration goes on while the set is paused",
			in:   planInput{Replicas: 1, MaxUnavailable: 1, Paused: true, Instances: []instanceState{migrating(inst("a", true, false, open)), inst("b", true, true, open)}},
			want: []string{"gate a DrainForDelete"}},
		{name: "a revision that only relabels moves every instance at once, without a drain",
			in:   planInput{Replicas: 2, MaxUnavailable: 1, Instances: []instanceState{sameArtifact(inst("a", false, true, open)), sameArtifact(inst("b", false, true, open))}},
			want: []string{"update a", "update b"}},
		{name: "missing instances are created",
			in:   planInput{Replicas: 3, MaxUnavailable: 1, Instances: []instanceState{inst("a", true, true, open)}},
			want: []string{"create 2"}},
		{name: "an update drains one available instance at a time",
			in:        planInput{Replicas: 3, MaxUnavailable: 1, Instances: []instanceState{inst("a", false, true, open), inst("b", false, true, open), inst("c", false, true, open)}},
			want:      []string{"gate a DrainForUpdate"},
			blockedOn: true},
		{name: "a drained instance gets the new package",
			in:   planInput{Replicas: 2, MaxUnavailable: 1, Instances: []instanceState{drained(inst("a", false, true, forUpdate)), inst("b", false, true, open)}},
			want: []string{"update a"}, blockedOn: true},
		{name: "a drain still held waits and says by what",
			in:   planInput{Replicas: 2, MaxUnavailable: 1, Instances: []instanceState{held(inst("a", false, true, forUpdate), "EndpointSlice web-cafe-x"), inst("b", false, true, open)}},
			held: "a (held by EndpointSlice web-cafe-x)", blockedOn: true},
		{name: "an updated instance ready for minReadySeconds is opened",
			in:   planInput{Replicas: 2, MaxUnavailable: 1, MinReadySeconds: 10 * time.Second, Instances: []instanceState{readySince(inst("a", true, true, forUpdate), 11*time.Second), inst("b", false, true, open)}},
			want: []string{"gate a Open"}, blockedOn: true},
		{name: "an updated instance ready for less than minReadySeconds waits for them",
			in:      planInput{Replicas: 2, MaxUnavailable: 1, MinReadySeconds: 10 * time.Second, Instances: []instanceState{readySince(inst("a", true, true, forUpdate), 4*time.Second), inst("b", false, true, open)}},
			requeue: 6 * time.Second, blockedOn: true},
		{name: "an updated instance not yet healthy stays closed",
			in:        planInput{Replicas: 2, MaxUnavailable: 1, Instances: []instanceState{inst("a", true, false, forUpdate), inst("b", false, true, open)}},
			blockedOn: true},
		{name: "an instance that serves nobody is updated without spending the budget",
			in:   planInput{Replicas: 3, MaxUnavailable: 1, Instances: []instanceState{inst("a", false, true, open), inst("b", false, false, open), drained(inst("c", false, true, forUpdate))}},
			want: []string{"gate b DrainForUpdate", "update c"}, blockedOn: true},
		{name: "the partition keeps instances on the old revision",
			in:   planInput{Replicas: 3, Partition: 2, MaxUnavailable: 3, Instances: []instanceState{inst("a", true, true, open), inst("b", false, true, open), inst("c", false, true, open)}},
			want: nil},
		{name: "surplus instances are drained for deletion, old and last by name first",
			in:   planInput{Replicas: 1, MaxUnavailable: 1, Instances: []instanceState{inst("a", true, true, open), inst("b", false, true, open), inst("c", true, true, open)}},
			want: []string{"gate b DrainForDelete", "gate c DrainForDelete"}},
		{name: "a drained surplus instance is deleted",
			in:   planInput{Replicas: 1, MaxUnavailable: 1, Instances: []instanceState{inst("a", true, true, open), drained(inst("b", true, true, forDelete))}},
			want: []string{"delete b"}},
		{name: "pause starts no drain and cancels one not acted on",
			in:   planInput{Replicas: 2, MaxUnavailable: 2, Paused: true, Instances: []instanceState{inst("a", false, true, forUpdate), inst("b", false, true, open)}},
			want: []string{"gate a Open"}},
		{name: "a rollback reopens an instance drained for an update it no longer needs",
			in:   planInput{Replicas: 2, MaxUnavailable: 1, Instances: []instanceState{inst("a", true, true, forUpdate), inst("b", true, true, open)}},
			want: []string{"gate a Open"}},
		{name: "terminating instances are neither counted nor acted on",
			in:   planInput{Replicas: 1, MaxUnavailable: 1, Instances: []instanceState{{Instance: &cafev1alpha1.ClassicInstance{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, Terminating: true, Gate: forDelete}}},
			want: []string{"create 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			tt.in.Now = t0
			p := plan(tt.in)
			g.Expect(names(p)).To(Equal(tt.want))
			g.Expect(p.RequeueAfter).To(Equal(tt.requeue))
			g.Expect(p.Held).To(Equal(tt.held))
			g.Expect(p.Blocked != "").To(Equal(tt.blockedOn), "blocked: %q", p.Blocked)
		})
	}
}

func TestPlanNeverTakesMoreThanTheBudgetOutOfTraffic(t *testing.T) {
	// Walk a release of 6 instances with maxUnavailable 2: at every step
	// at most 2 are closed or unavailable, and it finishes.
	g := NewWithT(t)
	var states []instanceState
	for i := range 6 {
		states = append(states, inst(fmt.Sprintf("i%d", i), false, true, open))
	}
	for step := 0; step < 40; step++ {
		p := plan(planInput{Replicas: 6, MaxUnavailable: 2, Now: t0, Instances: states})
		for _, gc := range p.Gates {
			for i := range states {
				if states[i].Instance == gc.Instance {
					states[i].Gate, states[i].Drained = gc.Gate, gc.Gate != open
				}
			}
		}
		for _, u := range p.Update {
			for i := range states {
				if states[i].Instance == u {
					states[i].Updated = true
				}
			}
		}
		out := 0
		for _, s := range states {
			if !s.gateOpen() || !s.Ready {
				out++
			}
		}
		g.Expect(out).To(BeNumerically("<=", 2), "step %d", step)
		done := true
		for _, s := range states {
			done = done && s.Updated && s.gateOpen()
		}
		if done {
			return
		}
	}
	t.Fatal("the release did not finish in 40 steps")
}

func TestPlace(t *testing.T) {
	host := func(name, zone string, ready, cordoned bool, capacity int32) cafev1alpha1.ClassicHost {
		h := cafev1alpha1.ClassicHost{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: cafev1alpha1.ClassicHostSpec{Zone: zone, Unschedulable: cordoned, Capacity: cafev1alpha1.ClassicHostCapacity{Instances: capacity}}}
		status := metav1.ConditionFalse
		if ready {
			status = metav1.ConditionTrue
		}
		h.Status.Conditions = []metav1.Condition{{Type: cafev1alpha1.ClassicHostReadyCondition, Status: status}}
		return h
	}
	set := &cafev1alpha1.ClassicSet{Spec: cafev1alpha1.ClassicSetSpec{
		Placement: cafev1alpha1.ClassicPlacement{Zone: "zone-a"},
		Template:  cafev1alpha1.ClassicInstanceTemplate{Artifact: cafev1alpha1.ClassicArtifact{Port: 8080}},
	}}
	hosts := []cafev1alpha1.ClassicHost{
		host("a-busy", "zone-a", true, false, 10), host("a-empty", "zone-a", true, false, 10), host("a-down", "zone-a", false, false, 10),
		host("a-cordoned", "zone-a", true, true, 10), host("a-full", "zone-a", true, false, 1), host("a-port", "zone-a", true, false, 10),
		host("a-mine", "zone-a", true, false, 10), host("b-empty", "zone-b", true, false, 10),
		host("a-agent-port", "zone-a", true, false, 10), host("a-judged", "zone-a", true, false, 10),
	}
	hosts[8].Status.ReservedPorts = []int32{10352, 8080}
	hosts[9].Status.Conditions = append(hosts[9].Status.Conditions, metav1.Condition{Type: cafev1alpha1.ClassicHostSchedulableCondition, Status: metav1.ConditionFalse})
	load := map[string]hostLoad{
		"a-busy": {Instances: 2, Ports: map[int32]bool{9000: true}}, "a-full": {Instances: 1, Ports: map[int32]bool{9000: true}},
		"a-port": {Instances: 1, Ports: map[int32]bool{8080: true}}, "a-mine": {Instances: 1, Ports: map[int32]bool{8080: true}, OfSet: true},
	}
	g := NewWithT(t)
	g.Expect(place(set, hosts, load, 1)).To(Equal(placement{Hosts: []string{"a-empty"}}), "the emptiest host of the zone first")
	g.Expect(place(set, hosts, load, 2)).To(Equal(placement{Hosts: []string{"a-empty", "a-busy"}}))
	got := place(set, hosts, load, 4)
	g.Expect(got.Hosts).To(Equal([]string{"a-empty", "a-busy"}))
	g.Expect(got.Missing).To(Equal("2 of the instances wanted have no host: 9 classic hosts in zone zone-a (1 not Ready, 2 unschedulable, 1 already run one of this set, 1 at capacity, 2 have port 8080 taken)"))
	g.Expect(place(set, hosts, load, 0)).To(Equal(placement{}))
}
