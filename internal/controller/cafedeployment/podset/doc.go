// Package podset holds the CafeDeployment's pod-set drivers, one per
// spec.podSetType, behind the one interface the release steps through:
// Load reads a CafeDeployment's pod sets into a Sets, whose Reports say
// what each unit's pod set runs and whose Apply moves a unit's pod set to
// the UnitSettings the release decided. inplaceset.go creates one
// InPlaceSet per unit and leaves the pods to the InPlaceSet controller; the
// native drivers, replicaset.go (one ReplicaSet per unit and revision) and
// statefulset.go (one OnDelete StatefulSet per unit), run the lossless
// protocol on the pods themselves (nativepods.go), planned by the pure
// planReplace (replace.go) and planOnDelete (ondelete.go). A new kind is a
// new driver file and one entry in the drivers table (podset.go); apply.go
// writes the objects every driver owns.
package podset
