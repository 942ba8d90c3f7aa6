// Package deploy implements `cafe deploy` (also `kubectl cafe deploy`): the
// operator's verbs for the release of a CafeDeployment — status, confirm,
// pause, resume, rollback and history.
//
// Invariants:
//
//   - Every write is a JSON merge patch computed from the object read
//     ([sigs.k8s.io/controller-runtime/pkg/client.MergeFrom]), never a
//     hand-written patch string. The writes whose meaning depends on what was
//     read (confirm: which group is awaited; rollback: which revision is the
//     update revision) carry the object's resourceVersion and are re-read and
//     retried on a conflict ([k8s.io/client-go/util/retry.RetryOnConflict]).
//   - The CLI never sends a user name. Who confirmed, paused, resumed or
//     released is stamped by CAFE's admission webhook from the user the API
//     server authenticated (the *-by annotations of
//     [github.com/cafe-io/cafe/api/v1alpha1]); the CLI only reports what the
//     server recorded.
//   - The revision history is read, never written: the CafeDeployment
//     controller keeps it as ControllerRevisions labelled
//     [github.com/cafe-io/cafe/api/v1alpha1.DeploymentLabel], and a rollback
//     only puts an old template back into spec.template.
//   - Nothing is global: every command gets an [Options] with its streams
//     and kubectl flags; tests inject [Options.Client].
//
// The cobra wiring is in cmd.go; each verb's logic is in its own file.
package deploy
