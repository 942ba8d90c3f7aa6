// Package iam turns the bank's roles into Kubernetes RBAC, purely: CAFE's
// named permissions and the rules each grants (the catalog), a role's
// effective rules through the roles it includes (cycles and missing roles
// named), and the RBAC objects an IAMRole and an IAMRoleBinding project
// onto: one ClusterRole per role, one binding per namespace in scope (or
// one ClusterRoleBinding), each naming the directory's groups, so the
// number of RBAC objects grows with roles × scopes, never with people.
package iam
