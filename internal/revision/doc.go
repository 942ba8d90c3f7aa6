// Package revision names pod-template revisions. Every component that must
// agree on what "the same revision" means — the InPlaceSet and
// CafeDeployment controllers, the app controller, the webhooks and the CLI —
// takes the name from here, so no one has to predict another's hash.
package revision
