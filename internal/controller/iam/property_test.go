package iam_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/iam"
	"github.com/cafe-io/cafe/test/framework"
)

// generatedRequests is how many requests the property test asks.
const generatedRequests = 600

// world is a generated IAM: namespaces with team labels, directory users
// in groups, roles including earlier ones, bindings of every scope.
type world struct {
	tag        string
	namespaces map[string]map[string]string
	users      map[string][]string
	roles      []*cafev1alpha1.IAMRole
	bindings   []*cafev1alpha1.IAMRoleBinding
}

func pick[T any](rng *rand.Rand, s []T) T { return s[rng.IntN(len(s))] }

func some[T any](rng *rand.Rand, s []T, lo, hi int) []T {
	n := lo + rng.IntN(hi-lo+1)
	out := make([]T, 0, n)
	for _, i := range rng.Perm(len(s))[:min(n, len(s))] {
		out = append(out, s[i])
	}
	return out
}

var (
	verbs      = []string{"get", "list", "watch", "create", "update", "patch", "delete", "approve", "reject", "start", "cancel", "rollback", "purge", "escalate"}
	resources  = []string{"cafeappservices", "apprevisions", "cafedeployments", "releaseorders", "releaseactions", "trafficanalyses", "configmaps"}
	extraRules = []rbacv1.PolicyRule{
		{APIGroups: []string{"cafe.io"}, Resources: []string{"releaseorders"}, Verbs: []string{"*"}},
		{APIGroups: []string{"cafe.io"}, Resources: []string{"*"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"only-this-one"}, Verbs: []string{"get"}},
	}
)

func generate(ctx context.Context, t *testing.T, g *WithT, rng *rand.Rand, tag string) *world {
	w := &world{tag: tag, namespaces: map[string]map[string]string{}, users: map[string][]string{}}
	teams := []string{tag + "-red", tag + "-blue", tag + "-green"}
	for range 6 {
		ns := framework.CreateNamespace(t, suite.Client)
		labels := map[string]string{}
		if rng.IntN(4) > 0 {
			labels["team"] = pick(rng, teams)
		}
		g.Expect(framework.Update(ctx, suite.Client, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, func(n *corev1.Namespace) {
			if n.Labels == nil {
				n.Labels = map[string]string{}
			}
			for k, v := range labels {
				n.Labels[k] = v
			}
		})).To(Succeed())
		w.namespaces[ns] = labels
	}
	nsNames := slices.Sorted(maps.Keys(w.namespaces))
	groups := []string{tag + "-g0", tag + "-g1", tag + "-g2", tag + "-g3", tag + "-g4"}
	for i := range 8 {
		w.users[fmt.Sprintf("%s-u%d", tag, i)] = some(rng, groups, 0, 2)
	}
	userNames := slices.Sorted(maps.Keys(w.users))
	perms := iam.Permissions()
	slices.Sort(perms)
	for i := range 6 {
		spec := cafev1alpha1.IAMRoleSpec{Permissions: some(rng, perms, 1, 3)}
		if rng.IntN(3) == 0 {
			spec.Rules = []rbacv1.PolicyRule{pick(rng, extraRules)}
		}
		if i > 0 && rng.IntN(2) == 0 {
			// Only earlier roles: no cycle.
			spec.Includes = []string{w.roles[rng.IntN(i)].Name}
		}
		w.roles = append(w.roles, &cafev1alpha1.IAMRole{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-r%d", tag, i)}, Spec: spec})
	}
	for i := range 8 {
		var subjects []cafev1alpha1.IAMSubject
		for _, grp := range some(rng, groups, 1, 2) {
			subjects = append(subjects, cafev1alpha1.IAMSubject{Kind: cafev1alpha1.IAMSubjectGroup, Name: grp})
		}
		if rng.IntN(4) == 0 {
			subjects = append(subjects, cafev1alpha1.IAMSubject{Kind: cafev1alpha1.IAMSubjectUser, Name: pick(rng, userNames)})
		}
		var scope cafev1alpha1.IAMScope
		switch n := rng.IntN(10); {
		case n == 0:
			scope.Cluster = true
		case n < 5:
			scope.Namespaces = some(rng, nsNames, 1, 3)
		default:
			scope.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": pick(rng, teams)}}
		}
		w.bindings = append(w.bindings, &cafev1alpha1.IAMRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-b%d", tag, i)},
			Spec:       cafev1alpha1.IAMRoleBindingSpec{Role: pick(rng, w.roles).Name, Subjects: subjects, Scope: scope},
		})
	}
	return w
}

func (w *world) model() iam.Model {
	m := iam.Model{Roles: map[string]*cafev1alpha1.IAMRole{}, Namespaces: w.namespaces}
	for _, r := range w.roles {
		m.Roles[r.Name] = r
	}
	for _, b := range w.bindings {
		m.Bindings = append(m.Bindings, *b)
	}
	return m
}

// projected: every role and binding Ready for its generation, each binding
// covering as many namespaces as the model says.
func (w *world) projected(ctx context.Context, g Gomega) {
	m := w.model()
	for _, r := range w.roles {
		got := &cafev1alpha1.IAMRole{}
		g.Expect(suite.Client.Get(ctx, client.ObjectKeyFromObject(r), got)).To(Succeed())
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, cafev1alpha1.IAMReadyCondition)).To(BeTrue(), r.Name)
	}
	for _, b := range w.bindings {
		got := &cafev1alpha1.IAMRoleBinding{}
		g.Expect(suite.Client.Get(ctx, client.ObjectKeyFromObject(b), got)).To(Succeed())
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		want := 0
		for ns := range w.namespaces {
			if !b.Spec.Scope.Cluster && m.Covers(b.Spec.Scope, ns) {
				want++
			}
		}
		g.Expect(got.Status.NamespaceCount).To(BeEquivalentTo(want), b.Name)
	}
}

// For 600 generated requests (directory user, verb, resource, namespace),
// the API server's SubjectAccessReview on the RBAC CAFE projected answers
// exactly as the IAM tables do.
func TestTheProjectionAnswersAsTheIAMTablesForGeneratedRequests(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	tag := "p" + strings.TrimPrefix(ns, "cafe-test-")
	w := generate(ctx, t, g, rng, tag)
	for _, r := range w.roles {
		create(ctx, g, t, r)
	}
	for _, b := range w.bindings {
		create(ctx, g, t, b)
	}
	g.Eventually(func(g Gomega) { w.projected(ctx, g) }).Should(Succeed())

	m := w.model()
	userNames := append(slices.Sorted(maps.Keys(w.users)), tag+"-stranger")
	nsNames := append(slices.Sorted(maps.Keys(w.namespaces)), "", tag+"-no-such-namespace")
	requests := make([]iam.Request, 0, generatedRequests)
	for i := range generatedRequests {
		r, ok := iam.Request{}, false
		if i%2 == 0 {
			// Half aimed at what some binding grants, so that the table
			// holds many allowed requests and not only denials.
			r, ok = w.aimed(rng, m, nsNames)
		}
		if !ok {
			u := pick(rng, userNames)
			res := pick(rng, resources)
			r = iam.Request{User: u, Groups: w.users[u], Verb: pick(rng, verbs), APIGroup: apiGroupOf(res), Resource: res, Namespace: pick(rng, nsNames)}
		}
		requests = append(requests, r)
	}
	// The API server's RBAC authorizer follows the projection through its
	// own informers: wait until every answer agrees (a wrong projection
	// never does).
	var allowed int
	g.Eventually(func(g Gomega) {
		var mismatches []string
		allowed = 0
		for _, r := range requests {
			want, got := m.Allows(r), sar(ctx, g, r)
			if got {
				allowed++
			}
			if want != got {
				mismatches = append(mismatches, fmt.Sprintf("%s %v may %s %s/%s in %q: IAM %t, API server %t", r.User, r.Groups, r.Verb, r.APIGroup, r.Resource, r.Namespace, want, got))
			}
		}
		g.Expect(mismatches).To(BeEmpty())
	}).WithTimeout(time.Minute).Should(Succeed())
	t.Logf("%d requests: %d allowed, %d denied, every answer the same", len(requests), allowed, len(requests)-allowed)
	g.Expect(allowed).To(BeNumerically(">=", 100), "the table holds allowed requests, not only denials")
	g.Expect(len(requests) - allowed).To(BeNumerically(">=", 100))
}

func apiGroupOf(resource string) string {
	if resource == "configmaps" {
		return ""
	}
	return "cafe.io"
}

// aimed is a request some binding's rule names: a member of one of its
// subjects, a verb and resource of its role, a namespace it covers. The
// model may still deny it (a rule restricted to names); ok is false when
// the chosen binding has no member or covers nothing.
func (w *world) aimed(rng *rand.Rand, m iam.Model, nsNames []string) (iam.Request, bool) {
	b := pick(rng, w.bindings)
	rules, err := iam.Expand(b.Spec.Role, m.Roles)
	if err != nil || len(rules) == 0 {
		return iam.Request{}, false
	}
	rule := pick(rng, rules)
	var members []string
	for u, groups := range w.users {
		for _, s := range b.Spec.Subjects {
			if (s.Kind == cafev1alpha1.IAMSubjectUser && s.Name == u) || (s.Kind == cafev1alpha1.IAMSubjectGroup && slices.Contains(groups, s.Name)) {
				members = append(members, u)
				break
			}
		}
	}
	var covered []string
	for _, ns := range nsNames {
		if m.Covers(b.Spec.Scope, ns) {
			covered = append(covered, ns)
		}
	}
	if len(members) == 0 || len(covered) == 0 || len(rule.Resources) == 0 {
		return iam.Request{}, false
	}
	slices.Sort(members)
	slices.Sort(covered)
	verb, res := pick(rng, rule.Verbs), pick(rng, rule.Resources)
	if verb == "*" {
		verb = pick(rng, verbs)
	}
	if res == "*" {
		res = pick(rng, resources)
	}
	u := pick(rng, members)
	return iam.Request{User: u, Groups: w.users[u], Verb: verb, APIGroup: apiGroupOf(res), Resource: res, Namespace: pick(rng, covered)}, true
}

func sar(ctx context.Context, g Gomega, r iam.Request) bool {
	var groups []string
	for _, grp := range r.Groups {
		groups = append(groups, cafev1alpha1.DirectoryPrefix+grp)
	}
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: cafev1alpha1.DirectoryPrefix + r.User, Groups: groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: r.Namespace, Verb: r.Verb, Group: r.APIGroup, Resource: r.Resource},
	}}
	g.Expect(suite.Client.Create(ctx, review)).To(Succeed())
	return review.Status.Allowed
}
