package main

import (
	"strings"
	"testing"
	"time"
)

// The IAM section counts the projection, compares it with per-user
// bindings, and judges each change against the target: a change slower
// than it fails its row.
func TestIAMSectionJudgesEachChange(t *testing.T) {
	rep := report{IAM: &iamReport{
		Started: time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC), Duration: 2 * time.Minute,
		Users: 1000, Groups: 50, Namespaces: 100, Roles: 10, Bindings: 65,
		ClusterRoles: 10, ClusterRoleBindings: 1, RoleBindings: 1520, PerUserBindings: 111440,
		Converged: 17 * time.Second, ConvergeCPU: 4.2, ConvergeShare: 0.21, PeakRSS: 90 << 20, ManagerQPS: 100,
		Asked: 500, Agreed: 500, Allowed: 140,
		Changes: []iamChange{
			{Kind: "a role changes", What: "w", Took: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}},
			{Kind: "a group joins a binding", What: "w", Took: []time.Duration{time.Second, 6 * time.Second}},
		},
	}}
	page := rep.markdown()
	for _, want := range []string{
		iamHeading,
		"| **total** | **1531** |",
		"| one binding per user, namespace and role instead (the per-user pattern) | 111440 |",
		"| time to converge (10 roles, then 65 bindings written) | 17s |",
		"| CAFE CPU during it | 4.2 s (21% of the machine's busy CPU) |",
		"| CAFE peak RSS over the scenario | 90 MiB |",
		"| 500 of 500 (140 allowed) |",
		"| a role changes | w | 200ms | 300ms | PASS |",
		"| a group joins a binding | w | 6s | 6s | FAIL |",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the section lacks %q:\n%s", want, page)
		}
	}
	if partOf(iamHeading+"\n") != partIAM {
		t.Errorf("the heading opens part %q", partOf(iamHeading))
	}
}
