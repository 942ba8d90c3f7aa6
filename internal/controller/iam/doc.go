// Package iam projects IAMRoles and IAMRoleBindings onto Kubernetes RBAC:
// one ClusterRole per role (its effective rules, includes resolved), and
// for each binding one ClusterRoleBinding or one RoleBinding per namespace
// in scope, naming the directory's groups. What it projects it applies
// server-side with force and watches (only its own, by label), so a hand
// edit or a deletion is undone within a reconcile; namespaces coming into
// or leaving a selector get or lose their binding.
package iam
