// Package releaseorder is the ReleaseOrder controller. A ReleaseOrder
// releases several apps, each to a named AppRevision, in dependency order,
// after the approvals its spec requires and inside its window. People act on
// an order by creating ReleaseActions (approve, reject, start, pause,
// resume, confirm, cancel, rollback); the controller processes each exactly
// once, publishes each app's revision through its spec.publishedRevision,
// follows the app's release, applies the order's failure policy (hold,
// roll back the failed app, roll back everything in reverse dependency
// order) and keeps a signed audit trail of every change, with a signed
// head (count and last hash) it checks before appending: it never chains
// onto a trail that does not lead to its head, and never signs with a key
// that is not the published current one (condition AuditIntact). A
// finished order is deleted once the cluster's retention (Retention,
// lengthened by the order's spec.retentionDays) has passed.
//
// One reconcile is:
//
//   - gather: the order, read uncached (a decision is only ever made from
//     its latest status), its unprocessed actions and what each of its apps
//     shows ([Reconciler.readApp]);
//   - decide: the pure function [decide] advances the order's status one
//     step and appends one signed audit entry per change and per action;
//   - write: the status, with its audit entries, in one update locked on the
//     resourceVersion read, so a concurrent write fails instead of losing
//     entries;
//   - effects: [Reconciler.applyEffects] makes the apps, their
//     CafeDeployments and the held AppRevisions match the written status.
//     Every effect is derived from the status alone and is idempotent, so a
//     restart resumes where the order stood.
//
// Files: controller.go gathers and writes, decide.go decides, dag.go orders
// the apps (which may start, which may roll back), effects.go acts on the
// apps and metrics.go measures the written statuses.
package releaseorder
