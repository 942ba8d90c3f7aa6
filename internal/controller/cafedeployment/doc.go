// Package cafedeployment is the CafeDeployment controller. It splits the
// replicas over the topology units (moving some out of a unit whose pods
// cannot be scheduled: reschedule.go), plans the release groups (package
// release/plan), and decides before it writes: advanceRelease and the pure
// stepRelease step the release record in status (phase, current group,
// per-group times and the authenticated user who confirmed it) from what the
// unit's pod sets report (release.go), and unitSettingsFor gives each unit's
// pod set its replicas, its partition (how many of its pods stay on the old
// revision until the release reaches the next group) and its share of the
// unavailability budget, so ready pods never fall below minAvailable
// (units.go). Then it writes, in crash-safe order: the revision history
// (history.go, before any status names a new revision), the pod sets
// (through package podset, one driver per spec.podSetType), and the status
// (status.go).
//
// The lossless pod operations themselves are the InPlaceSet controller's,
// or, for the native pod-set types, package podset's.
package cafedeployment
