package iam

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// Errors of Expand; both name the roles concerned.
var (
	// ErrCycle: a role includes itself, directly or through others.
	ErrCycle = errors.New("roles include each other in a cycle")
	// ErrMissingRole: a role includes one that does not exist.
	ErrMissingRole = errors.New("an included role does not exist")
)

// Expand is the effective rules of role name: its permissions' rules, its
// own rules and those of every role it includes, transitively, merged and
// sorted (the same spec always gives the same rules). roles holds every
// IAMRole by name.
func Expand(name string, roles map[string]*cafev1alpha1.IAMRole) ([]rbacv1.PolicyRule, error) {
	var rules []rbacv1.PolicyRule
	if err := walk(name, roles, nil, map[string]bool{}, func(r *cafev1alpha1.IAMRole) {
		for _, p := range r.Spec.Permissions {
			rules = append(rules, PermissionRules(p)...)
		}
		for _, rule := range r.Spec.Rules {
			rules = append(rules, *rule.DeepCopy())
		}
	}); err != nil {
		return nil, err
	}
	return Merge(rules), nil
}

// walk visits role name and, depth first, every role it includes, once
// each; path is the chain of includes that led to name.
func walk(name string, roles map[string]*cafev1alpha1.IAMRole, path []string, done map[string]bool, visit func(*cafev1alpha1.IAMRole)) error {
	if i := slices.Index(path, name); i >= 0 {
		return fmt.Errorf("%w: %s", ErrCycle, strings.Join(append(slices.Clone(path[i:]), name), " → "))
	}
	if done[name] {
		return nil
	}
	r, ok := roles[name]
	if !ok {
		if len(path) == 0 {
			return fmt.Errorf("%w: %s", ErrMissingRole, name)
		}
		return fmt.Errorf("%w: %s includes %s", ErrMissingRole, path[len(path)-1], name)
	}
	path = append(path, name)
	for _, inc := range r.Spec.Includes {
		if err := walk(inc, roles, path, done, visit); err != nil {
			return err
		}
	}
	done[name] = true
	visit(r)
	return nil
}

// CycleThrough reports the cycle role would close if its spec were spec,
// given the other roles: the admission check of a create or update.
func CycleThrough(name string, spec cafev1alpha1.IAMRoleSpec, roles map[string]*cafev1alpha1.IAMRole) error {
	with := make(map[string]*cafev1alpha1.IAMRole, len(roles)+1)
	for k, v := range roles {
		with[k] = v
	}
	with[name] = &cafev1alpha1.IAMRole{Spec: spec}
	err := walk(name, with, nil, map[string]bool{}, func(*cafev1alpha1.IAMRole) {})
	if errors.Is(err, ErrCycle) {
		return err
	}
	return nil
}

// Merge joins rules that differ only in verbs, dedups verbs and sorts
// everything, so equal grants compare equal.
func Merge(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	byTarget := map[string]*rbacv1.PolicyRule{}
	var keys []string
	for _, r := range rules {
		r = normalized(r)
		k := strings.Join([]string{strings.Join(r.APIGroups, ","), strings.Join(r.Resources, ","), strings.Join(r.ResourceNames, ","), strings.Join(r.NonResourceURLs, ",")}, "|")
		if have, ok := byTarget[k]; ok {
			have.Verbs = sortedSet(append(have.Verbs, r.Verbs...))
			continue
		}
		byTarget[k] = &r
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]rbacv1.PolicyRule, 0, len(keys))
	for _, k := range keys {
		out = append(out, *byTarget[k])
	}
	return out
}

func normalized(r rbacv1.PolicyRule) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{
		APIGroups: sortedSet(r.APIGroups), Resources: sortedSet(r.Resources), ResourceNames: sortedSet(r.ResourceNames),
		NonResourceURLs: sortedSet(r.NonResourceURLs), Verbs: sortedSet(r.Verbs),
	}
}

func sortedSet(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// Includers are the roles whose effective rules depend on role name: those
// that include it, directly or through others (each once; cycles end the
// walk), sorted.
func Includers(name string, roles []cafev1alpha1.IAMRole) []string {
	byIncluded := map[string][]string{}
	for _, r := range roles {
		for _, inc := range r.Spec.Includes {
			byIncluded[inc] = append(byIncluded[inc], r.Name)
		}
	}
	seen := map[string]bool{name: true}
	var out []string
	queue := []string{name}
	for len(queue) > 0 {
		next := queue[0]
		queue = queue[1:]
		for _, r := range byIncluded[next] {
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
				queue = append(queue, r)
			}
		}
	}
	slices.Sort(out)
	return out
}
