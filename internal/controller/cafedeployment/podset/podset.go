package podset

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/lossless"
	"github.com/cafe-io/cafe/internal/ownwrites"
)

// UnitSettings is what the release decides for one unit's pod set.
type UnitSettings struct {
	Replicas  int32
	Partition int32
	// MaxUnavailable is the unit's share of the unavailability budget.
	MaxUnavailable int32
	// MaxSurge is how many pods above Replicas the replace modes may run.
	MaxSurge int32
}

// UnitReport is what one unit's pod set reports to the release, whatever
// its kind.
type UnitReport struct {
	// Exists is false until the unit's pod set was created.
	Exists bool
	// SpecReplicas is the replicas the pod set was last told to run.
	SpecReplicas int32
	// Replicas, Ready and Available count the unit's pods (available: ready,
	// gate open, minReadySeconds passed).
	Replicas, Ready, Available int32
	// Updated and UpdatedAvailable count pods on the update revision.
	Updated, UpdatedAvailable int32
	// Observed is false while the pod set has not yet seen its latest spec,
	// so its counts cannot be trusted.
	Observed bool
	// DeleteRequested counts pods of a native pod set whose deletion was
	// requested: the unit needs a share of the budget to drain them.
	DeleteRequested int32
	// HeldDrain, when set, says which pod's drain a traffic system has held
	// for longer than a normal drain takes (the unit's operations wait).
	// HeldDrainIn, when positive, is how soon a younger drain would count
	// as held: the report should be read again then.
	HeldDrain   string
	HeldDrainIn time.Duration
	// Share, when set, is the share of the unavailability budget the pod
	// set runs under now (an InPlaceSet's spec.updateStrategy.maxUnavailable)
	// and ShareObserved whether it has acted on it: a pod set drains on its
	// own, so the budget one gives up may be handed to another only once it
	// saw its smaller share. Nil for the native pod sets, whose drains the
	// controller runs itself under the share it decides.
	Share         *int32
	ShareObserved bool
}

// ErrPodCacheBehind is returned by Load when the cache does not yet show a
// pod write the controller made: decide again shortly, not from it.
var ErrPodCacheBehind = errors.New("the pod cache has not caught up with the controller's own gate writes")

// Sets is one reconcile's reading of a CafeDeployment's pod sets, and the
// way to move each unit's towards its settings. There is one implementation
// per spec.podSetType.
type Sets interface {
	// Reports returns what each unit's pod set reports, by unit.
	Reports() map[string]UnitReport
	// Apply makes the unit's pod set follow the settings (create or update
	// it, and for the native kinds run the next steps of the lossless
	// protocol on its pods).
	Apply(ctx context.Context, unit string, s UnitSettings) error
}

// Env is what the drivers need of the controller that runs them: its
// client, and the scheme that owner references are set with.
type Env struct {
	Client client.Client
	// Slices reads the EndpointSlices that list a draining pod.
	Slices *lossless.Slices
	Scheme *runtime.Scheme
	// PodWrites remembers the gate writes the controller made to native
	// pods: a reconcile whose cache has not caught up with them would count
	// a pod it just closed as available and give its budget away twice
	// (ErrPodCacheBehind). Nil: not tracked.
	PodWrites *ownwrites.Tracker
	// Now is the reconcile's clock: how long a drain has been held is
	// measured against it.
	Now time.Time
}

// driver is one podSetType: how to read a CafeDeployment's pod sets of
// that kind, and the object it creates per unit (the controller owns, so
// watches, it: its status is what finishes a group).
type driver struct {
	load  func(ctx context.Context, env Env, cd *cafev1alpha1.CafeDeployment, updateRevision string) (Sets, error)
	owned client.Object
}

// drivers has one entry per podSetType; a type without one runs
// InPlaceSets.
var drivers = map[cafev1alpha1.PodSetType]driver{
	cafev1alpha1.PodSetTypeInPlaceSet:  {loadInPlaceSets, &cafev1alpha1.InPlaceSet{}},
	cafev1alpha1.PodSetTypeReplicaSet:  {loadReplicaSets, &appsv1.ReplicaSet{}},
	cafev1alpha1.PodSetTypeStatefulSet: {loadStatefulSets, &appsv1.StatefulSet{}},
}

// Load reads the CafeDeployment's pod sets of its podSetType, and its
// ClassicSets when spec.classic names classic units. updateRevision is the
// pod template's hash (the pods' revision label).
func Load(ctx context.Context, env Env, cd *cafev1alpha1.CafeDeployment, updateRevision string) (Sets, error) {
	d, ok := drivers[cd.Spec.PodSetType]
	if !ok {
		d = drivers[cafev1alpha1.PodSetTypeInPlaceSet]
	}
	pods, err := d.load(ctx, env, cd, updateRevision)
	if err != nil || cd.Spec.Classic == nil {
		return pods, err
	}
	classic, err := loadClassicSets(ctx, env, cd)
	if err != nil {
		return nil, err
	}
	return mixedSets{pods: pods, classic: classic}, nil
}

// OwnedTypes are the kinds of object the drivers create, in a stable order,
// for the controller to own.
func OwnedTypes() []client.Object {
	types := make([]cafev1alpha1.PodSetType, 0, len(drivers))
	for t := range drivers {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool { return types[i] < types[j] })
	out := make([]client.Object, 0, len(types)+1)
	for _, t := range types {
		out = append(out, drivers[t].owned.DeepCopyObject().(client.Object))
	}
	return append(out, &cafev1alpha1.ClassicSet{})
}

// forEachControlled lists the objects labelled with the CafeDeployment's
// name into list (what names them in an error) and calls each with every
// one the CafeDeployment controls, and the unit it is of.
func forEachControlled[T client.Object](ctx context.Context, c client.Client, cd *cafev1alpha1.CafeDeployment, list client.ObjectList, what string, each func(unit string, obj T)) error {
	if err := c.List(ctx, list, client.InNamespace(cd.Namespace), client.MatchingLabels{cafev1alpha1.DeploymentLabel: cd.Name}); err != nil {
		return fmt.Errorf("listing %s: %w", what, err)
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return fmt.Errorf("listing %s: %w", what, err)
	}
	for _, item := range items {
		obj, ok := item.(T)
		if ok && metav1.IsControlledBy(obj, cd) {
			each(obj.GetLabels()[cafev1alpha1.UnitLabel], obj)
		}
	}
	return nil
}

// podSetName is the name of a unit's pod set (for a ReplicaSet, the prefix
// of its revisions' names).
func podSetName(cd *cafev1alpha1.CafeDeployment, unit string) string {
	return cd.Name + "-" + unit
}

// unitSelector is the CafeDeployment's selector narrowed to one unit.
func unitSelector(cd *cafev1alpha1.CafeDeployment, unit string) *metav1.LabelSelector {
	selector := cd.Spec.Selector.DeepCopy()
	selector.MatchLabels = withLabel(selector.MatchLabels, cafev1alpha1.UnitLabel, unit)
	return selector
}

// withLabel returns a copy of labels (which may be nil) with key set to
// value, so a template's or selector's map shared with the spec is never
// written to.
func withLabel(labels map[string]string, key, value string) map[string]string {
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	out[key] = value
	return out
}
