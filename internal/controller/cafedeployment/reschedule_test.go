package cafedeployment

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestReschedule(t *testing.T) {
	units := []string{"a", "b", "c"}
	base := map[string]int32{"a": 2, "b": 2, "c": 2}
	all := map[string]bool{"a": true, "b": true, "c": true}
	tests := []struct {
		name         string
		moved, stuck map[string]int32
		schedulable  map[string]bool
		wantMoved    map[string]int32
		wantReplicas map[string]int32
	}{
		{"nothing stuck keeps the spec's split", nil, nil, all, map[string]int32{}, base},
		{"stuck pods of a unit move to the other units", nil, map[string]int32{"c": 2}, map[string]bool{"a": true, "b": true}, map[string]int32{"c": 2}, map[string]int32{"a": 3, "b": 3, "c": 0}},
		{"an odd number moves with the remainder to the first unit", nil, map[string]int32{"c": 1}, map[string]bool{"a": true, "b": true}, map[string]int32{"c": 1}, map[string]int32{"a": 3, "b": 2, "c": 1}},
		{"moved replicas stay out while the unit has no schedulable node", map[string]int32{"c": 2}, nil, map[string]bool{"a": true, "b": true}, map[string]int32{"c": 2}, map[string]int32{"a": 3, "b": 3, "c": 0}},
		{"a unit with a schedulable node again takes its replicas back", map[string]int32{"c": 2}, nil, all, map[string]int32{}, base},
		{"a unit never moves out more than its share", map[string]int32{"c": 2}, map[string]int32{"c": 5}, map[string]bool{}, map[string]int32{"c": 2}, map[string]int32{"a": 3, "b": 3, "c": 0}},
		{"with every unit stuck nothing moves", nil, map[string]int32{"a": 1, "b": 1, "c": 1}, map[string]bool{}, map[string]int32{}, base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			moved, replicas := reschedule(rescheduleInput{Units: units, Base: base, Moved: tt.moved, StuckPods: tt.stuck, Schedulable: tt.schedulable})
			g.Expect(moved).To(Equal(tt.wantMoved))
			g.Expect(replicas).To(Equal(tt.wantReplicas))
			var sum int32
			for _, n := range replicas {
				sum += n
			}
			g.Expect(sum).To(Equal(int32(6)), "rescheduling never changes the total")
		})
	}
}
