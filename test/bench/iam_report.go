package main

import (
	"fmt"
	"strings"
	"time"
)

// iamHeading opens the IAM part of the page.
const iamHeading = "## IAM projection at scale: 1,000 users, 50 groups, 100 namespaces (issue 17)"

// writeIAM renders the IAM scenario's section; nothing when it did not run.
func (r report) writeIAM(b *strings.Builder) {
	t := r.IAM
	if t == nil {
		return
	}
	fmt.Fprintf(b, "%s\n\n", iamHeading)
	m := r.Machine
	fmt.Fprintf(b, "Measured on %s; the scenario took %s of the run. Machine: %s, %d CPUs, %s of memory, Linux %s, %s; control plane etcd %s, Kubernetes %s; %s.\n\n",
		t.Started.UTC().Format("2006-01-02 15:04 MST"), t.Duration.Round(time.Second), m.CPUModel, m.CPUs, m.MemTotal, m.Kernel, m.Go, m.Etcd, m.Kubernetes, m.Source)
	t.writeMethod(b)
	fmt.Fprintf(b, "### Results\n\n")
	t.writeTables(b)
	t.writeMeaning(b)
}

// iamSummary is the scenario's part of the console summary.
func (r report) iamSummary(b *strings.Builder) {
	if r.IAM == nil {
		return
	}
	fmt.Fprintf(b, "IAM projection (%d users, %d groups, %d namespaces):\n\n", r.IAM.Users, r.IAM.Groups, r.IAM.Namespaces)
	r.IAM.writeTables(b)
}

func (t *iamReport) writeMethod(b *strings.Builder) {
	fmt.Fprintf(b, "### Method\n\n")
	fmt.Fprintf(b, "- A control plane of its own (3 kwok nodes; no pods), CAFE's CRDs, RBAC and webhooks installed, `cafe manager` as a separate process (client rate limit `--kube-api-qps` %d), as the release scenarios run it.\n", t.ManagerQPS)
	fmt.Fprintf(b, "- **People**: %d IAMUsers in %d IAMGroups of %d (CAFE's own directory, the source `--identity-source=objects` reads; no password Secrets, logins are not measured here), and %d namespaces in %d teams (label `bench.cafe.io/team`).\n",
		t.Users, t.Groups, t.Users/t.Groups, t.Namespaces, iamTeams)
	fmt.Fprintf(b, "- **IAM tables**: %d IAMRoles (viewer; developer, approver and operator including viewer; traffic including operator; auditor; four tool roles with a plain ConfigMap rule including developer) and %d IAMRoleBindings: each group its team role over its team's namespaces (a selector), ten bindings of five groups each as viewers over every namespace (a selector), the last two groups auditors cluster-wide, and four tool roles in five listed namespaces each.\n",
		t.Roles, t.Bindings)
	fmt.Fprintf(b, "- **Convergence**: the roles written one by one (each after those it includes: the webhook refuses an include that does not exist yet), then the bindings (eight writers at once), timed until the watch streams show every RBAC object CAFE should project (counted from the IAM tables: one ClusterRole per role, one ClusterRoleBinding per cluster-wide binding, one RoleBinding per other binding and namespace it covers) and every role and binding `Ready` for its generation. CAFE's CPU is its process's user+system time over that window; its share is of the whole machine's busy CPU in the same window; RSS is the peak (VmHWM) over the scenario.\n")
	fmt.Fprintf(b, "- **Agreement**: for every tenth user, the groups CAFE's login would put in their credential (read from the IAMGroups by the login service's own code, `objectdirectory.Lookup`), then five SubjectAccessReviews (create, approve and start releaseorders, get cafedeployments, create trafficanalyses, in a namespace chosen per user) answered by the API server on the projected RBAC, each compared with the IAM tables' answer (`iam.Model.Allows`). The run fails on any disagreement.\n")
	fmt.Fprintf(b, "- **Changes**: four kinds of IAM change, each made %d times and undone %d times (so %d timings each), timed from the write's response until a watch on the RBAC objects shows the whole effect. Target: every timing ≤ %s.\n\n",
		iamChangeRepeats, iamChangeRepeats, 2*iamChangeRepeats, iamChangeTarget)
}

func (t *iamReport) writeTables(b *strings.Builder) {
	fmt.Fprintf(b, "| RBAC objects CAFE projected | count |\n|---|---:|\n")
	fmt.Fprintf(b, "| ClusterRoles (one per IAMRole) | %d |\n| ClusterRoleBindings (cluster-wide bindings) | %d |\n| RoleBindings (bindings × namespaces covered) | %d |\n| **total** | **%d** |\n",
		t.ClusterRoles, t.ClusterRoleBindings, t.RoleBindings, t.ClusterRoles+t.ClusterRoleBindings+t.RoleBindings)
	fmt.Fprintf(b, "| one binding per user, namespace and role instead (the per-user pattern) | %d |\n\n", t.PerUserBindings)
	fmt.Fprintf(b, "| convergence | value |\n|---|---:|\n")
	fmt.Fprintf(b, "| time to converge (%d roles, then %d bindings written) | %s |\n", t.Roles, t.Bindings, t.Converged.Round(10*time.Millisecond))
	fmt.Fprintf(b, "| CAFE CPU during it | %.1f s (%.0f%% of the machine's busy CPU) |\n", t.ConvergeCPU, 100*t.ConvergeShare)
	fmt.Fprintf(b, "| CAFE CPU during the %d changes | %.1f s |\n", 2*iamChangeRepeats*len(t.Changes), t.ChangesCPU)
	fmt.Fprintf(b, "| CAFE peak RSS over the scenario | %s |\n", mib(t.PeakRSS))
	fmt.Fprintf(b, "| sampled SubjectAccessReviews agreeing with the IAM tables | %d of %d (%d allowed) |\n\n", t.Agreed, t.Asked, t.Allowed)
	fmt.Fprintf(b, "| IAM change | what is written, what is waited for | median | max | target (max ≤ %s) |\n|---|---|---:|---:|---|\n", iamChangeTarget)
	for _, c := range t.Changes {
		if len(c.Took) == 0 {
			continue
		}
		worst := c.Took[len(c.Took)-1]
		verdict := "PASS"
		if worst > iamChangeTarget {
			verdict = "FAIL"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", c.Kind, c.What, c.Took[len(c.Took)/2].Round(time.Millisecond), worst.Round(time.Millisecond), verdict)
	}
	fmt.Fprintln(b)
}

func (t *iamReport) writeMeaning(b *strings.Builder) {
	fmt.Fprintf(b, "What it means:\n\n")
	fmt.Fprintf(b, "- **Groups, not people.** The RBAC objects grow with roles and bindings × namespaces, not with users: %d objects for %d users, where one binding per user, namespace and role would take %d. A person joining or leaving a group changes no RBAC object at all (it reaches their next credential, within its lifetime; docs/iam.md).\n",
		t.ClusterRoles+t.ClusterRoleBindings+t.RoleBindings, t.Users, t.PerUserBindings)
	objects := t.ClusterRoles + t.ClusterRoleBindings + t.RoleBindings
	fmt.Fprintf(b, "- **Convergence is CAFE's write rate.** %d objects written through a client limited to %d QPS (burst twice that) take at least %.1f s at that rate, %s measured (the rest is the API server's and CAFE's CPU). A change writes only what it changes: the ClusterRoles of one role and its includers, the RoleBindings of one binding, the bindings that name, select or hold one namespace; a reconcile that would change nothing writes nothing (the cached object is compared first). The slowest kind, a group joining a binding over 100 namespaces, rewrites 100 RoleBindings.\n\n",
		objects, t.ManagerQPS, max(float64(objects-2*t.ManagerQPS), 0)/float64(t.ManagerQPS), t.Converged.Round(10*time.Millisecond))
}
