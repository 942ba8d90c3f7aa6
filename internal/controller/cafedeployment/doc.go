// Package cafedeployment is the CafeDeployment controller. It splits the
// replicas over the topology units, plans the release groups (package
// release/plan), and drives one InPlaceSet per unit by server-side applying
// its replicas, its partition (how many of its pods stay on the old revision
// until the release reaches the next group) and its share of the
// unavailability budget (so ready pods never fall below minAvailable). The
// release record in status (phase, current group, per-group times and the
// authenticated user who confirmed it) is advanced by the pure function
// stepRelease from the pod sets' reported progress.
//
// The lossless pod operations themselves are the InPlaceSet controller's.
package cafedeployment
