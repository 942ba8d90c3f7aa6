package releaseorder

import (
	"testing"

	. "github.com/onsi/gomega"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// app builds an order entry: app("b", "a") is b depending on a.
func app(name string, deps ...string) cafev1alpha1.ReleaseOrderApp {
	return cafev1alpha1.ReleaseOrderApp{Name: name, Revision: name + "-r2", DependsOn: deps}
}

// at builds app statuses: at("a", Succeeded, "b", Pending).
func at(pairs ...any) []cafev1alpha1.ReleaseOrderAppStatus {
	var out []cafev1alpha1.ReleaseOrderAppStatus
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, cafev1alpha1.ReleaseOrderAppStatus{Name: pairs[i].(string), Phase: pairs[i+1].(cafev1alpha1.ReleaseOrderAppPhase)})
	}
	return out
}

const (
	pending    = cafev1alpha1.AppPending
	publishing = cafev1alpha1.AppPublishing
	releasing  = cafev1alpha1.AppReleasing
	succeeded  = cafev1alpha1.AppSucceeded
	failed     = cafev1alpha1.AppFailed
	waitingRB  = cafev1alpha1.AppWaitingForRollback
	rollingRB  = cafev1alpha1.AppRollingBack
	rolledBack = cafev1alpha1.AppRolledBack
)

// chain is the order: a → b → c, and d independent.
var chain = []cafev1alpha1.ReleaseOrderApp{app("a"), app("b", "a"), app("c", "b"), app("d")}

func TestStartable(t *testing.T) {
	tests := []struct {
		name   string
		status []cafev1alpha1.ReleaseOrderAppStatus
		want   []string
	}{
		{"at first the roots start together: a and the independent d", nil, []string{"a", "d"}},
		{"b waits while a releases", at("a", releasing, "b", pending, "c", pending, "d", releasing), nil},
		{"b starts once a succeeded, c still waits for b", at("a", succeeded, "b", pending, "c", pending, "d", releasing), []string{"b"}},
		{"c starts once b succeeded", at("a", succeeded, "b", succeeded, "c", pending, "d", succeeded), []string{"c"}},
		{"nothing starts after a failure of a dependency", at("a", failed, "b", pending, "c", pending, "d", succeeded), nil},
		{"started apps are not started again", at("a", publishing, "b", pending, "c", pending, "d", pending), []string{"d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(startable(chain, tt.status)).To(Equal(tt.want))
		})
	}
}

func TestRollbackStartable(t *testing.T) {
	tests := []struct {
		name   string
		status []cafev1alpha1.ReleaseOrderAppStatus
		want   []string
	}{
		{"the last of the chain and the independent app go first", at("a", waitingRB, "b", waitingRB, "c", waitingRB, "d", waitingRB), []string{"c", "d"}},
		{"b waits while c rolls back", at("a", waitingRB, "b", waitingRB, "c", rollingRB, "d", rolledBack), nil},
		{"b goes once c is rolled back", at("a", waitingRB, "b", waitingRB, "c", rolledBack, "d", rolledBack), []string{"b"}},
		{"a goes last", at("a", waitingRB, "b", rolledBack, "c", rolledBack, "d", rolledBack), []string{"a"}},
		{"an app never started does not hold its dependencies back", at("a", waitingRB, "b", waitingRB, "c", pending, "d", pending), []string{"b"}},
		{"a waits for c even when b, between them, was never changed", at("a", waitingRB, "b", pending, "c", waitingRB, "d", pending), []string{"c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(rollbackStartable(chain, tt.status)).To(Equal(tt.want))
		})
	}
}
