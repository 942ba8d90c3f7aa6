// Package app is `cafe app`: list and inspect CafeAppServices and their
// AppRevisions, diff two revisions (config contents included), publish a
// revision and roll back to an earlier successful one.
//
// Invariants:
//   - Publishing and rolling back are one write of spec.publishedRevision
//     (and, for --fast, the cafe.io/fast-release annotation), locked on the
//     resourceVersion the command read. Of concurrent publishes exactly one
//     wins; the others fail with the winner's revision and user, never
//     overwrite it.
//   - Who published is recorded by CAFE's admission webhook from the
//     authenticated user; the CLI never sends a name.
//   - The cobra wiring (cmd.go) is apart from the logic; every command
//     writes only to the streams of its Options.
package app
