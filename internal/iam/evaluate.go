package iam

import (
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Request is one question to the IAM model: may this directory user, a
// member of these directory groups, do verb on resource (of API group) in
// namespace (empty: cluster-scoped)?
type Request struct {
	User      string
	Groups    []string
	Verb      string
	APIGroup  string
	Resource  string
	Namespace string
}

// Model is the IAM tables: roles by name, bindings, and the labels of
// every namespace that exists.
type Model struct {
	Roles      map[string]*cafev1alpha1.IAMRole
	Bindings   []cafev1alpha1.IAMRoleBinding
	Namespaces map[string]map[string]string
}

// Allows answers a Request from the IAM tables alone, as the bank's IAM
// means them. CAFE never authorizes with it (the API server decides, on
// the projected RBAC); it states what the projection must give, and the
// property test holds the two to the same answers.
func (m Model) Allows(r Request) bool {
	for i := range m.Bindings {
		b := &m.Bindings[i]
		if !names(b, r) || !m.Covers(b.Spec.Scope, r.Namespace) {
			continue
		}
		rules, err := Expand(b.Spec.Role, m.Roles)
		if err != nil {
			continue
		}
		if slices.ContainsFunc(rules, func(rule rbacv1.PolicyRule) bool { return grants(rule, r) }) {
			return true
		}
	}
	return false
}

// names: the binding names the user or one of their groups.
func names(b *cafev1alpha1.IAMRoleBinding, r Request) bool {
	return slices.ContainsFunc(b.Spec.Subjects, func(s cafev1alpha1.IAMSubject) bool {
		if s.Kind == cafev1alpha1.IAMSubjectUser {
			return s.Name == r.User
		}
		return slices.Contains(r.Groups, s.Name)
	})
}

// Covers reports whether scope grants in namespace ns (a cluster-scoped
// request, ns empty, only under cluster scope).
func (m Model) Covers(scope cafev1alpha1.IAMScope, ns string) bool {
	if scope.Cluster {
		return true
	}
	nsLabels, exists := m.Namespaces[ns]
	if ns == "" || !exists {
		return false
	}
	if scope.NamespaceSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(scope.NamespaceSelector)
		return err == nil && sel.Matches(labels.Set(nsLabels))
	}
	return slices.Contains(scope.Namespaces, ns)
}

// grants: the rule allows the request (which names no object: a rule
// restricted to resourceNames does not).
func grants(rule rbacv1.PolicyRule, r Request) bool {
	return len(rule.ResourceNames) == 0 && len(rule.NonResourceURLs) == 0 &&
		matches(rule.Verbs, r.Verb) && matches(rule.APIGroups, r.APIGroup) && matches(rule.Resources, r.Resource)
}

func matches(set []string, v string) bool {
	return slices.Contains(set, v) || slices.Contains(set, rbacv1.VerbAll)
}
