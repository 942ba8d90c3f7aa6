package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/iam"
	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/internal/manager"
	"github.com/cafe-io/cafe/internal/objectdirectory"
)

// The IAM scenario's shape (issue 17): 1,000 users in 50 groups of 20,
// 100 namespaces in 10 teams of 10.
const (
	iamKey            = "iam"
	iamUsers          = 1000
	iamGroups         = 50
	iamNamespaces     = 100
	iamTeams          = 10
	iamChangeRepeats  = 5
	iamChangeTarget   = 5 * time.Second
	iamSampledUsers   = 100
	iamTeamLabel      = "bench.cafe.io/team"
	iamBankLabel      = "bench.cafe.io/bank"
	iamWriteWorkers   = 8
	iamListedPerTools = 5
)

func iamUserName(i int) string  { return fmt.Sprintf("user-%04d", i) }
func iamGroupName(g int) string { return fmt.Sprintf("group-%02d", g) }
func iamNamespace(i int) string { return fmt.Sprintf("iam-ns-%03d", i) }
func iamTeam(k int) string      { return fmt.Sprintf("team-%d", k) }

// iamGroupMembers are group g's users: 20 consecutive ones.
func iamGroupMembers(g int) []string {
	per := iamUsers / iamGroups
	out := make([]string, 0, per)
	for i := g * per; i < (g+1)*per; i++ {
		out = append(out, iamUserName(i))
	}
	return out
}

// iamRoles are the bank's roles: CAFE's permissions, includes, and plain
// rules.
func iamRoles() []*cafev1alpha1.IAMRole {
	role := func(name string, perms []cafev1alpha1.IAMPermission, includes ...string) *cafev1alpha1.IAMRole {
		return &cafev1alpha1.IAMRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: cafev1alpha1.IAMRoleSpec{Permissions: perms, Includes: includes}}
	}
	roles := []*cafev1alpha1.IAMRole{
		role("viewer", []cafev1alpha1.IAMPermission{cafev1alpha1.PermAppsView, cafev1alpha1.PermReleasesView}),
		role("developer", []cafev1alpha1.IAMPermission{cafev1alpha1.PermAppsEdit, cafev1alpha1.PermReleasesRequest}, "viewer"),
		role("approver", []cafev1alpha1.IAMPermission{cafev1alpha1.PermReleasesApprove}, "viewer"),
		role("operator", []cafev1alpha1.IAMPermission{cafev1alpha1.PermReleasesOperate, cafev1alpha1.PermDeploymentsOperate}, "viewer"),
		role("traffic", []cafev1alpha1.IAMPermission{cafev1alpha1.PermTrafficEdit}, "operator"),
		role("auditor", []cafev1alpha1.IAMPermission{cafev1alpha1.PermAuditRead}),
	}
	for k := range 4 {
		r := role(fmt.Sprintf("tools-%d", k), nil, "developer")
		r.Spec.Rules = []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}}}
		roles = append(roles, r)
	}
	return roles
}

// iamTeamRoles are what each group does in its team, by group number.
var iamTeamRoles = []string{"developer", "approver", "operator", "traffic"}

// iamBindings grant the roles: each group its role in its team's
// namespaces (selector), five groups at a time read-only everywhere
// (selector over the bank's namespaces), two groups audit the cluster, and
// four tool roles in listed namespaces.
func iamBindings() []*cafev1alpha1.IAMRoleBinding {
	group := func(gs ...int) []cafev1alpha1.IAMSubject {
		out := make([]cafev1alpha1.IAMSubject, 0, len(gs))
		for _, g := range gs {
			out = append(out, cafev1alpha1.IAMSubject{Kind: cafev1alpha1.IAMSubjectGroup, Name: iamGroupName(g)})
		}
		return out
	}
	selector := func(key, value string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{key: value}}
	}
	binding := func(name, role string, subjects []cafev1alpha1.IAMSubject, scope cafev1alpha1.IAMScope) *cafev1alpha1.IAMRoleBinding {
		return &cafev1alpha1.IAMRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: cafev1alpha1.IAMRoleBindingSpec{Role: role, Subjects: subjects, Scope: scope}}
	}
	var out []*cafev1alpha1.IAMRoleBinding
	for g := range iamGroups {
		out = append(out, binding(fmt.Sprintf("team-%02d", g), iamTeamRoles[g%len(iamTeamRoles)], group(g),
			cafev1alpha1.IAMScope{NamespaceSelector: selector(iamTeamLabel, iamTeam(g%iamTeams))}))
	}
	for k := range iamGroups / 5 {
		out = append(out, binding(fmt.Sprintf("viewers-%d", k), "viewer", group(5*k, 5*k+1, 5*k+2, 5*k+3, 5*k+4),
			cafev1alpha1.IAMScope{NamespaceSelector: selector(iamBankLabel, "yes")}))
	}
	out = append(out, binding("auditors", "auditor", group(iamGroups-2, iamGroups-1), cafev1alpha1.IAMScope{Cluster: true}))
	for k := range 4 {
		var listed []string
		for i := range iamListedPerTools {
			listed = append(listed, iamNamespace(k*iamListedPerTools+i))
		}
		out = append(out, binding(fmt.Sprintf("tools-%d", k), fmt.Sprintf("tools-%d", k), group(10*k), cafev1alpha1.IAMScope{Namespaces: listed}))
	}
	return out
}

// iamWait is what a change waits for: cond over the objects of list's
// kind that opts select, watched (watchUntil).
type iamWait struct {
	list client.ObjectList
	cond func([]client.Object) bool
	opts []client.ListOption
}

// managedRBAC selects the RBAC objects CAFE projects.
var managedRBAC = client.MatchingLabels{cafev1alpha1.IAMManagedLabel: cafev1alpha1.IAMManagedValue}

// iamChange is one kind of IAM change, timed from its write until the RBAC
// objects show it.
type iamChange struct {
	Kind string
	// What the change writes and what is waited for.
	What string
	Took []time.Duration
}

// iamReport is the IAM scenario's outcome.
type iamReport struct {
	Started  time.Time
	Duration time.Duration

	Users, Groups, Namespaces, Roles, Bindings int
	// ClusterRoles, ClusterRoleBindings and RoleBindings CAFE projected.
	ClusterRoles, ClusterRoleBindings, RoleBindings int
	// PerUserBindings is how many bindings one per user, namespace and
	// role would take (the Rancher pattern the issue cites).
	PerUserBindings int
	// Converged is the time from the first IAMRole written until every
	// RBAC object is there and every role and binding says Ready.
	Converged time.Duration
	// CAFE's CPU seconds and share of the machine's busy CPU during the
	// convergence, and its peak RSS over the scenario.
	ConvergeCPU, ConvergeShare float64
	ChangesCPU                 float64
	PeakRSS                    int64
	// ManagerQPS is CAFE's client rate limit (its writes bound the
	// convergence).
	ManagerQPS int

	Changes []iamChange
	// Asked and Agreed count the sampled SubjectAccessReviews whose answer
	// equals the IAM tables'.
	Asked, Agreed, Allowed int
}

// benchmarkIAM runs the IAM scenario on a control plane of its own.
func benchmarkIAM(ctx context.Context, o options, repoRoot, stateDir string) (_ *iamReport, err error) {
	started := time.Now()
	managerArgs := strings.Fields(o.ManagerArgs)
	c, err := startCluster(ctx, clusterOptions{RepoRoot: repoRoot, StateDir: stateDir, Nodes: 3, Zones: []string{"zone-a", "zone-b", "zone-c"}, ManagerArgs: managerArgs, Out: os.Stdout})
	if err != nil {
		return nil, err
	}
	defer c.stop()
	ctx, cancel := c.watchFailures(ctx)
	defer cancel()
	rep := &iamReport{Users: iamUsers, Groups: iamGroups, Namespaces: iamNamespaces, ManagerQPS: managerQPS(managerArgs)}
	r := &iamRunner{cluster: c, timeout: o.Timeout}
	if err := r.seed(ctx); err != nil {
		return nil, err
	}
	if err := r.project(ctx, rep); err != nil {
		return nil, err
	}
	if err := r.checkSample(ctx, rep); err != nil {
		return nil, err
	}
	if err := r.timeChanges(ctx, rep); err != nil {
		return nil, err
	}
	if rep.PeakRSS, err = peakRSS(c.manager.pid()); err != nil {
		return nil, err
	}
	rep.Started, rep.Duration = started, time.Since(started)
	return rep, nil
}

// managerQPS is the client rate limit cafe manager runs with.
func managerQPS(args []string) int {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--kube-api-qps="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return n
			}
		}
	}
	return manager.DefaultClientQPS
}

type iamRunner struct {
	cluster *cluster
	timeout time.Duration
	roles   []*cafev1alpha1.IAMRole
	binds   []*cafev1alpha1.IAMRoleBinding
}

func (r *iamRunner) logf(format string, args ...any) {
	fmt.Fprintf(r.cluster.out, "[%s] "+format+"\n", append([]any{iamKey}, args...)...)
}

// createAll creates objs with a few writers at once.
func (r *iamRunner) createAll(ctx context.Context, objs []client.Object) error {
	work := make(chan client.Object)
	errs := make(chan error, iamWriteWorkers)
	var wg sync.WaitGroup
	for range iamWriteWorkers {
		wg.Go(func() {
			for obj := range work {
				if err := r.cluster.client.Create(ctx, obj); err != nil {
					errs <- fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
					return
				}
			}
		})
	}
	var err error
feed:
	for _, obj := range objs {
		select {
		case work <- obj:
		case err = <-errs:
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil && len(errs) > 0 {
		err = <-errs
	}
	return err
}

// seed writes the people and the namespaces: IAMUsers (without password
// Secrets: logins are not what this measures) and IAMGroups, CAFE's own
// directory, and the team namespaces.
func (r *iamRunner) seed(ctx context.Context) error {
	var objs []client.Object
	for i := range iamNamespaces {
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: iamNamespace(i),
			Labels: map[string]string{iamTeamLabel: iamTeam(i % iamTeams), iamBankLabel: "yes"}}})
	}
	for i := range iamUsers {
		objs = append(objs, &cafev1alpha1.IAMUser{ObjectMeta: metav1.ObjectMeta{Name: iamUserName(i)},
			Spec: cafev1alpha1.IAMUserSpec{PasswordSecretName: iamUserName(i) + "-password"}})
	}
	for g := range iamGroups {
		objs = append(objs, &cafev1alpha1.IAMGroup{ObjectMeta: metav1.ObjectMeta{Name: iamGroupName(g)}, Spec: cafev1alpha1.IAMGroupSpec{Members: iamGroupMembers(g)}})
	}
	start := time.Now()
	if err := r.createAll(ctx, objs); err != nil {
		return err
	}
	r.logf("seeded %d namespaces, %d IAMUsers and %d IAMGroups in %s", iamNamespaces, iamUsers, iamGroups, time.Since(start).Round(time.Millisecond))
	return nil
}

// project writes the roles and bindings and waits until CAFE has projected
// them all, measuring the time and CAFE's CPU and memory.
func (r *iamRunner) project(ctx context.Context, rep *iamReport) error {
	r.roles, r.binds = iamRoles(), iamBindings()
	rep.Roles, rep.Bindings = len(r.roles), len(r.binds)
	var objs []client.Object
	for _, role := range r.roles {
		objs = append(objs, role)
	}
	for _, b := range r.binds {
		objs = append(objs, b)
	}
	pid := r.cluster.manager.pid()
	if err := resetPeakRSS(pid); err != nil {
		return err
	}
	before, err := r.cluster.cpuSeconds()
	if err != nil {
		return err
	}
	want := r.expectedCounts()
	waits := r.projectionWaits(want)
	ats := make([]time.Time, len(waits))
	errs := make([]error, len(waits))
	waitCtx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, w := range waits {
		wg.Go(func() { ats[i], errs[i] = watchUntil(waitCtx, r.cluster.client, w.list, w.cond, w.opts...) })
	}
	// Roles one by one, each after those it includes (the webhook refuses
	// an include of a role that does not exist yet), then the bindings.
	start := time.Now()
	for _, role := range r.roles {
		if err := r.cluster.client.Create(ctx, role); err != nil {
			return fmt.Errorf("creating IAMRole %s: %w", role.Name, err)
		}
	}
	if err := r.createAll(ctx, objs[len(r.roles):]); err != nil {
		return err
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("waiting for the projection (%d ClusterRoles, %d ClusterRoleBindings, %d RoleBindings, every role and binding Ready): %w", want[0], want[1], want[2], err)
	}
	rep.Converged = slices.MaxFunc(ats, time.Time.Compare).Sub(start)
	after, err := r.cluster.cpuSeconds()
	if err != nil {
		return err
	}
	rep.ConvergeCPU = after[cafeProcess] - before[cafeProcess]
	if busy := after[machineBusy] - before[machineBusy]; busy > 0 {
		rep.ConvergeShare = rep.ConvergeCPU / busy
	}
	rep.ClusterRoles, rep.ClusterRoleBindings, rep.RoleBindings = want[0], want[1], want[2]
	rep.PerUserBindings = r.perUserBindings()
	r.logf("projected %d ClusterRoles, %d ClusterRoleBindings and %d RoleBindings in %s; CAFE used %.1f s of CPU", want[0], want[1], want[2], rep.Converged.Round(time.Millisecond), rep.ConvergeCPU)
	return nil
}

// projectionWaits hold once every RBAC object is there and every role and
// binding says Ready for its generation.
func (r *iamRunner) projectionWaits(want [3]int) []iamWait {
	count := func(n int) func([]client.Object) bool {
		return func(objs []client.Object) bool { return len(objs) == n }
	}
	allReady := func(n int) func([]client.Object) bool {
		return func(objs []client.Object) bool {
			return len(objs) == n && !slices.ContainsFunc(objs, func(o client.Object) bool {
				return !readyFor(iamConditions(o), o.GetGeneration())
			})
		}
	}
	return []iamWait{
		{list: &rbacv1.ClusterRoleList{}, opts: []client.ListOption{managedRBAC}, cond: count(want[0])},
		{list: &rbacv1.ClusterRoleBindingList{}, opts: []client.ListOption{managedRBAC}, cond: count(want[1])},
		{list: &rbacv1.RoleBindingList{}, opts: []client.ListOption{managedRBAC}, cond: count(want[2])},
		{list: &cafev1alpha1.IAMRoleList{}, cond: allReady(len(r.roles))},
		{list: &cafev1alpha1.IAMRoleBindingList{}, cond: allReady(len(r.binds))},
	}
}

// expectedCounts is what the IAM tables call for: one ClusterRole per
// role, one ClusterRoleBinding per cluster-wide binding, one RoleBinding
// per other binding and namespace it covers.
func (r *iamRunner) expectedCounts() [3]int {
	m := r.model(nil)
	want := [3]int{len(r.roles), 0, 0}
	for _, b := range r.binds {
		if b.Spec.Scope.Cluster {
			want[1]++
			continue
		}
		for ns := range m.Namespaces {
			if m.Covers(b.Spec.Scope, ns) {
				want[2]++
			}
		}
	}
	return want
}

// model is the IAM tables over the scenario's namespaces (labels as
// written, or as given).
func (r *iamRunner) model(labelsOf map[string]map[string]string) iam.Model {
	m := iam.Model{Roles: map[string]*cafev1alpha1.IAMRole{}, Namespaces: labelsOf}
	for _, role := range r.roles {
		m.Roles[role.Name] = role
	}
	for _, b := range r.binds {
		m.Bindings = append(m.Bindings, *b)
	}
	if m.Namespaces == nil {
		m.Namespaces = map[string]map[string]string{}
		for i := range iamNamespaces {
			m.Namespaces[iamNamespace(i)] = map[string]string{iamTeamLabel: iamTeam(i % iamTeams), iamBankLabel: "yes"}
		}
	}
	return m
}

// perUserBindings counts the bindings a per-user projection would need:
// for each binding, its users times the namespaces it covers (one for
// cluster scope).
func (r *iamRunner) perUserBindings() int {
	m := r.model(nil)
	total := 0
	for _, b := range r.binds {
		users := len(b.Spec.Subjects) * (iamUsers / iamGroups)
		scopes := 1
		if !b.Spec.Scope.Cluster {
			scopes = 0
			for ns := range m.Namespaces {
				if m.Covers(b.Spec.Scope, ns) {
					scopes++
				}
			}
		}
		total += users * scopes
	}
	return total
}

// iamConditions are an IAMRole's or IAMRoleBinding's conditions.
func iamConditions(o client.Object) []metav1.Condition {
	switch x := o.(type) {
	case *cafev1alpha1.IAMRole:
		return x.Status.Conditions
	case *cafev1alpha1.IAMRoleBinding:
		return x.Status.Conditions
	}
	return nil
}

func readyFor(conds []metav1.Condition, generation int64) bool {
	c := meta.FindStatusCondition(conds, cafev1alpha1.IAMReadyCondition)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == generation
}

// checkSample asks the API server, for a sample of users, whether they may
// do what the IAM tables say, with the groups CAFE's login would put in
// their credential (read from the IAMGroups as the login service reads
// them); every answer must agree.
func (r *iamRunner) checkSample(ctx context.Context, rep *iamReport) error {
	dir := objectdirectory.Directory{Objects: r.cluster.client, Secrets: r.cluster.client, Namespace: install.Namespace}
	m := r.model(nil)
	step := iamUsers / iamSampledUsers
	for i := 0; i < iamUsers; i += step {
		id, err := dir.Lookup(ctx, iamUserName(i))
		if err != nil {
			return fmt.Errorf("looking up %s: %w", iamUserName(i), err)
		}
		for j, q := range iamQuestions(i) {
			req := iam.Request{User: id.Name, Groups: id.Groups, Verb: q[0], APIGroup: cafev1alpha1.GroupVersion.Group, Resource: q[1], Namespace: iamNamespace((i + j*7) % iamNamespaces)}
			got, err := r.subjectAccess(ctx, req)
			if err != nil {
				return err
			}
			rep.Asked++
			if got {
				rep.Allowed++
			}
			if got == m.Allows(req) {
				rep.Agreed++
			} else {
				r.logf("disagreement: %+v: API server says %v", req, got)
			}
		}
	}
	if rep.Agreed != rep.Asked {
		return fmt.Errorf("%d of %d sampled SubjectAccessReviews disagree with the IAM tables", rep.Asked-rep.Agreed, rep.Asked)
	}
	r.logf("%d sampled SubjectAccessReviews agree with the IAM tables (%d allowed)", rep.Asked, rep.Allowed)
	return nil
}

// iamQuestions are the (verb, resource) pairs asked of each sampled user.
func iamQuestions(int) [][2]string {
	return [][2]string{{"create", "releaseorders"}, {"approve", "releaseorders"}, {"start", "releaseorders"}, {"get", "cafedeployments"}, {"create", "trafficanalyses"}}
}

func (r *iamRunner) subjectAccess(ctx context.Context, q iam.Request) (bool, error) {
	groups := make([]string, 0, len(q.Groups))
	for _, g := range q.Groups {
		groups = append(groups, cafev1alpha1.DirectoryPrefix+g)
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: cafev1alpha1.DirectoryPrefix + q.User, Groups: groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: q.Namespace, Verb: q.Verb, Group: q.APIGroup, Resource: q.Resource},
	}}
	if err := r.cluster.client.Create(ctx, sar); err != nil {
		return false, fmt.Errorf("asking the API server: %w", err)
	}
	return sar.Status.Allowed, nil
}

// timeChanges makes each kind of IAM change iamChangeRepeats times, undoing
// it in between, and times each from its write until the RBAC objects show
// it. CAFE's CPU over all of them is reported too.
func (r *iamRunner) timeChanges(ctx context.Context, rep *iamReport) error {
	before, err := r.cluster.cpuSeconds()
	if err != nil {
		return err
	}
	kinds := []struct {
		kind, what string
		do         func(ctx context.Context, on bool) (iamWait, error)
	}{
		{"a role changes", "add (then remove) traffic.edit to role viewer: the ClusterRoles of viewer and of the roles that include it, directly (developer, approver, operator) or through developer (tools-0 to tools-3), grant it (stop granting it)", r.toggleRolePermission},
		{"a group joins a binding", "add (then remove) group-49 to binding viewers-0: its 100 RoleBindings name dir:group-49", r.toggleBindingSubject},
		{"a namespace changes team", "relabel iam-ns-000 from team-0 to team-1 (and back): the RoleBindings of team-0's five bindings leave it, team-1's arrive", r.toggleNamespaceTeam},
		{"a binding is removed and recreated", "delete (then recreate) binding team-00: its 10 RoleBindings go (come back)", r.toggleBinding},
	}
	for _, k := range kinds {
		change := iamChange{Kind: k.kind, What: k.what}
		for i := range 2 * iamChangeRepeats {
			start := time.Now()
			w, err := k.do(ctx, i%2 == 0)
			if err != nil {
				return fmt.Errorf("%s: %w", k.kind, err)
			}
			waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
			at, err := watchUntil(waitCtx, r.cluster.client, w.list, w.cond, w.opts...)
			cancel()
			if err != nil {
				return fmt.Errorf("%s (step %d): waiting for the RBAC objects: %w", k.kind, i+1, err)
			}
			change.Took = append(change.Took, at.Sub(start))
		}
		slices.Sort(change.Took)
		r.logf("%s: median %s, max %s", k.kind, change.Took[len(change.Took)/2].Round(time.Millisecond), change.Took[len(change.Took)-1].Round(time.Millisecond))
		rep.Changes = append(rep.Changes, change)
	}
	after, err := r.cluster.cpuSeconds()
	if err != nil {
		return err
	}
	rep.ChangesCPU = after[cafeProcess] - before[cafeProcess]
	return nil
}

// toggleRolePermission adds traffic.edit to viewer (on) or removes it,
// and waits until every ClusterRole whose role includes viewer agrees.
func (r *iamRunner) toggleRolePermission(ctx context.Context, on bool) (iamWait, error) {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		role := &cafev1alpha1.IAMRole{}
		if err := r.cluster.client.Get(ctx, client.ObjectKey{Name: "viewer"}, role); err != nil {
			return err
		}
		perms := slices.DeleteFunc(role.Spec.Permissions, func(p cafev1alpha1.IAMPermission) bool { return p == cafev1alpha1.PermTrafficEdit })
		if on {
			perms = append(perms, cafev1alpha1.PermTrafficEdit)
		}
		role.Spec.Permissions = perms
		return r.cluster.client.Update(ctx, role)
	})
	if err != nil {
		return iamWait{}, err
	}
	affected := []string{"viewer", "developer", "approver", "operator", "tools-0", "tools-1", "tools-2", "tools-3"}
	return iamWait{list: &rbacv1.ClusterRoleList{}, opts: []client.ListOption{managedRBAC}, cond: func(objs []client.Object) bool {
		for _, name := range affected {
			cr, ok := find[*rbacv1.ClusterRole](objs, iam.ClusterRoleName(name))
			if !ok || grantsTrafficEdit(cr.Rules) != on {
				return false
			}
		}
		return true
	}}, nil
}

func grantsTrafficEdit(rules []rbacv1.PolicyRule) bool {
	return slices.ContainsFunc(rules, func(rule rbacv1.PolicyRule) bool {
		return slices.Contains(rule.Resources, "trafficanalyses") && slices.Contains(rule.Verbs, "create")
	})
}

// toggleBindingSubject adds group-49 to viewers-0 (on) or removes it.
func (r *iamRunner) toggleBindingSubject(ctx context.Context, on bool) (iamWait, error) {
	const binding = "viewers-0"
	extra := cafev1alpha1.IAMSubject{Kind: cafev1alpha1.IAMSubjectGroup, Name: iamGroupName(iamGroups - 1)}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		b := &cafev1alpha1.IAMRoleBinding{}
		if err := r.cluster.client.Get(ctx, client.ObjectKey{Name: binding}, b); err != nil {
			return err
		}
		b.Spec.Subjects = slices.DeleteFunc(b.Spec.Subjects, func(s cafev1alpha1.IAMSubject) bool { return s == extra })
		if on {
			b.Spec.Subjects = append(b.Spec.Subjects, extra)
		}
		return r.cluster.client.Update(ctx, b)
	})
	if err != nil {
		return iamWait{}, err
	}
	name := cafev1alpha1.DirectoryPrefix + extra.Name
	return iamWait{list: &rbacv1.RoleBindingList{}, opts: projectedFrom(binding), cond: func(objs []client.Object) bool {
		if len(objs) != iamNamespaces {
			return false
		}
		for _, o := range objs {
			rb := o.(*rbacv1.RoleBinding)
			if slices.ContainsFunc(rb.Subjects, func(s rbacv1.Subject) bool { return s.Name == name }) != on {
				return false
			}
		}
		return true
	}}, nil
}

// toggleNamespaceTeam moves iam-ns-000 to team-1 (on) or back to team-0.
func (r *iamRunner) toggleNamespaceTeam(ctx context.Context, on bool) (iamWait, error) {
	ns := iamNamespace(0)
	from, to := iamTeam(0), iamTeam(1)
	if !on {
		from, to = to, from
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n := &corev1.Namespace{}
		if err := r.cluster.client.Get(ctx, client.ObjectKey{Name: ns}, n); err != nil {
			return err
		}
		n.Labels[iamTeamLabel] = to
		return r.cluster.client.Update(ctx, n)
	})
	if err != nil {
		return iamWait{}, err
	}
	teamOf := func(team string) []string {
		var names []string
		for g := range iamGroups {
			if iamTeam(g%iamTeams) == team {
				names = append(names, iam.BindingName(fmt.Sprintf("team-%02d", g)))
			}
		}
		return names
	}
	gone, arrived := teamOf(from), teamOf(to)
	return iamWait{list: &rbacv1.RoleBindingList{}, opts: []client.ListOption{client.InNamespace(ns), managedRBAC}, cond: func(objs []client.Object) bool {
		for _, n := range gone {
			if _, ok := find[*rbacv1.RoleBinding](objs, n); ok {
				return false
			}
		}
		for _, n := range arrived {
			if _, ok := find[*rbacv1.RoleBinding](objs, n); !ok {
				return false
			}
		}
		return true
	}}, nil
}

// toggleBinding deletes team-00 (on) or recreates it.
func (r *iamRunner) toggleBinding(ctx context.Context, on bool) (iamWait, error) {
	b := iamBindings()[0]
	var err error
	if on {
		err = r.cluster.client.Delete(ctx, b)
	} else {
		err = r.cluster.client.Create(ctx, b)
	}
	if err != nil {
		return iamWait{}, err
	}
	want := 0
	if !on {
		want = iamNamespaces / iamTeams
	}
	return iamWait{list: &rbacv1.RoleBindingList{}, opts: projectedFrom(b.Name), cond: func(objs []client.Object) bool { return len(objs) == want }}, nil
}

// projectedFrom selects the RoleBindings projected from an IAMRoleBinding.
func projectedFrom(binding string) []client.ListOption {
	return []client.ListOption{client.MatchingLabels{cafev1alpha1.IAMManagedLabel: cafev1alpha1.IAMManagedValue, cafev1alpha1.IAMBindingLabel: binding}}
}
