package v1alpha1

import "strings"

// Bounds on what a CAFE object may ask for. The CRDs enforce them with
// markers and CEL rules (which need literals: keep the numbers there equal
// to these, TestBoundsMatchTheCRDs checks it), and the controllers and the
// planner enforce them again, so an object admitted by an older CRD, or
// written with validation off, still cannot make CAFE allocate in proportion
// to a number nobody checked.
const (
	// MaxReplicas bounds spec.replicas (and an InPlaceSet's partition). CAFE
	// is sized for 10,000 pods per app; 100,000 leaves ten times that and
	// still is below the 150,000 pods a whole Kubernetes cluster is tested
	// for, so no one object can ask for more pods than a cluster can run.
	MaxReplicas = 100000

	// MaxReleaseGroups is the number of groups status.release.groups holds.
	// A spec that would need more is refused at admission (see
	// ReleaseGroupsUpperBound), and the planner refuses it too.
	MaxReleaseGroups = 512

	// MaxPodSetNameLength bounds the name of a pod set (an InPlaceSet, the
	// StatefulSet or ReplicaSet prefix <cafedeployment>-<unit>): pods carry
	// it as a label value, at most 63 characters.
	MaxPodSetNameLength = 63

	// MaxStatefulSetNameLength bounds <cafedeployment>-<unit> in StatefulSet
	// mode: the StatefulSet controller labels each pod with
	// controller-revision-hash=<name>-<hash of up to 10 characters>, a label
	// value of at most 63 characters.
	MaxStatefulSetNameLength = 52

	// MaxRevisionNumber bounds an AppRevision's spec.number: a billion
	// revisions is beyond any app's life, and a forged revision cannot push
	// the next number past what an int64 (and a name) holds.
	MaxRevisionNumber = 1000000000

	// ReservedAnnotationPrefix is the prefix of the annotations CAFE acts on
	// (drain, migration, force delete, in-place update state). A pod
	// template may not carry them: every pod would be born asking for an
	// operation.
	ReservedAnnotationPrefix = "cafe.io/"
)

// IsReservedAnnotation reports whether key is one of CAFE's own control
// annotations, which pod templates may not carry.
func IsReservedAnnotation(key string) bool {
	return strings.HasPrefix(key, ReservedAnnotationPrefix)
}

// ReleaseGroupsUpperBound is how many release groups a spec with replicas
// pods and an integer batch size of batch pods may need at most: the beta
// group (when beta) takes at least one pod, the rest go in batches, and in
// UnitByUnit order over units units a batch stops at the end of its unit,
// which adds at most one group per unit but the last (a sum of ceilings
// exceeds the ceiling of the sum by less than the number of terms). The
// CRD's CEL rule on spec.strategy.batchSize computes the same; the planner
// never needs more. Custom groups (at most 64, each split at most once per
// unit) and percentages (at most 100 batches) always fit in
// MaxReleaseGroups.
func ReleaseGroupsUpperBound(replicas, batch int64, beta, unitByUnit bool, units int) int64 {
	if replicas <= 0 {
		return 0
	}
	batch = max(batch, 1)
	var n int64
	if beta {
		n = 1 + (replicas-1+batch-1)/batch
	} else {
		n = (replicas + batch - 1) / batch
	}
	if unitByUnit && units > 1 {
		n += int64(units - 1)
	}
	return n
}
