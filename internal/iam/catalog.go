package iam

import (
	rbacv1 "k8s.io/api/rbac/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

var (
	read = []string{"get", "list", "watch"}
	// releaseActions: every action on an order is a ReleaseAction, allowed
	// by CAFE's webhook only for the verb of the same name on the order.
	releaseActions = rbacv1.PolicyRule{APIGroups: []string{cafev1alpha1.GroupVersion.Group}, Resources: []string{"releaseactions"}, Verbs: []string{"get", "list", "watch", "create"}}
)

func cafeRule(resources []string, verbs ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{cafev1alpha1.GroupVersion.Group}, Resources: resources, Verbs: verbs}
}

// catalog is what each of CAFE's named permissions grants (docs/iam.md
// has the same table for people).
var catalog = map[cafev1alpha1.IAMPermission][]rbacv1.PolicyRule{
	cafev1alpha1.PermAppsView: {cafeRule([]string{"cafeappservices", "apprevisions", "cafedeployments"}, read...)},
	cafev1alpha1.PermAppsEdit: {
		cafeRule([]string{"cafeappservices"}, "get", "list", "watch", "create", "update", "patch"),
		cafeRule([]string{"apprevisions"}, "get", "list", "watch", "create"),
	},
	cafev1alpha1.PermReleasesView:    {cafeRule([]string{"releaseorders", "releaseactions"}, read...)},
	cafev1alpha1.PermReleasesRequest: {cafeRule([]string{"releaseorders"}, "get", "list", "watch", "create", "cancel"), releaseActions},
	cafev1alpha1.PermReleasesApprove: {cafeRule([]string{"releaseorders"}, "get", "list", "watch", "approve", "reject"), releaseActions},
	cafev1alpha1.PermReleasesOperate: {
		cafeRule([]string{"releaseorders"}, "get", "list", "watch", "start", "pause", "resume", "confirm", "cancel", "rollback"), releaseActions,
	},
	cafev1alpha1.PermAuditRead: {
		cafeRule([]string{"releaseorders", "releaseactions"}, read...),
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"cafe-audit-public-key"}, Verbs: []string{"get"}},
	},
	cafev1alpha1.PermDeploymentsOperate: {cafeRule([]string{"cafedeployments"}, "get", "list", "watch", "patch", "update")},
	cafev1alpha1.PermTrafficEdit:        {cafeRule([]string{"trafficanalyses"}, "get", "list", "watch", "create", "update", "patch", "delete")},
}

// PermissionRules are the rules permission p grants; nil for an unknown
// permission.
func PermissionRules(p cafev1alpha1.IAMPermission) []rbacv1.PolicyRule {
	rules := catalog[p]
	out := make([]rbacv1.PolicyRule, len(rules))
	for i := range rules {
		rules[i].DeepCopyInto(&out[i])
	}
	return out
}

// Permissions lists the named permissions there are.
func Permissions() []cafev1alpha1.IAMPermission {
	out := make([]cafev1alpha1.IAMPermission, 0, len(catalog))
	for p := range catalog {
		out = append(out, p)
	}
	return out
}
