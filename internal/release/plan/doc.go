// Package plan decides, from a CafeDeployment's spec alone, the ordered
// release groups of a release and how many pods of each topology unit run
// the update revision once group k is done. The CafeDeployment controller
// steps each unit's pod set (an InPlaceSet's spec.updateStrategy.partition)
// from [Partition]; the validating webhook calls [New] to reject specs whose
// custom groups cannot cover every replica. Nothing here reads the API or a
// clock: a [Plan] is a pure function of the spec, recomputed on every
// reconcile.
//
// # How a plan is built
//
// [New] applies the API defaults to a copy of the spec, splits
// spec.replicas over spec.topology.values with
// [cafev1alpha1.SplitReplicas] (units keep the order of topology.values),
// then forms the groups:
//
//   - upgradeType Beta (the default) opens with the beta group: one pod of
//     every unit that has replicas (Interleaved), or one pod of the first
//     unit that has replicas (UnitByUnit; see below).
//   - The pods left are released by spec.strategy.groups when set, else in
//     groups of spec.strategy.batchSize pods (an integer, or a percentage of
//     spec.replicas rounded up; at least 1; unset means every pod left in
//     one group).
//   - A custom group's replicas is an integer or a percentage of
//     spec.replicas, rounded up (so percentages adding up to 100% always
//     cover every replica), at least 1. Its units, when set, restrict the
//     units it takes pods from. A group is clipped to the pods still left in
//     its units; a group that finds none is skipped, so the groups of a
//     [Plan] need not map one to one onto spec.strategy.groups (the beta
//     group, skipped groups and UnitByUnit splits shift the indexes). Groups
//     that ask for more pods than are left are therefore fine: the last one
//     is clipped and the ones after it vanish. Groups that leave pods
//     unplanned are an error naming spec.strategy.groups.
//
// spec.strategy.groupOrder decides how a group's pods are taken from units:
//
//   - Interleaved (the default): from every unit it may use, in proportion
//     to each unit's pods not yet planned, by largest remainder; ties go to
//     the unit listed first in topology.values.
//   - UnitByUnit: from one unit only. The unit is the one already started
//     and not finished, else the first unit (in topology.values order) with
//     pods left. A batch that would cross the end of a unit is cut there,
//     and the next batch starts at the next unit with a full batchSize. A
//     custom group that would cross it is split there instead, its other
//     pods forming the next group(s), so that every pod the user listed is
//     still covered. The beta group is one pod of the first unit only: a
//     beta group of one pod per unit would touch every zone at once, which
//     UnitByUnit exists to forbid; the other units' first pods are simply
//     the first pods of their unit's first batch. Because every group,
//     the beta group included, draws from a single unit and a started unit
//     is always finished first (unless a custom group's units name other
//     units), the release never runs two units at once.
//
// For example, 12 replicas over zones a, b, c with batchSize 3 ([Plan.String]):
//
//	Beta, Interleaved:   g0(beta) a=1 b=1 c=1 | g1 a=1 b=1 c=1 | g2 a=1 b=1 c=1 | g3 a=1 b=1 c=1
//	Beta, UnitByUnit:    g0(beta) a=1 | g1 a=3 | g2 b=3 | g3 b=1 | g4 c=3 | g5 c=1
//
// # Invariants
//
// Every Plan returned without error satisfies:
//   - Units is spec.topology.values, UnitReplicas has an entry for each of
//     them, and [Plan.Total] is spec.replicas.
//   - Zero replicas give no groups.
//   - Every group has at least one pod; Group.Pods only lists units with
//     pods in the group, so a unit with no replicas never appears there.
//   - Group.Cumulative has an entry for every unit; it is non-decreasing per
//     unit from group to group, never exceeds the unit's replicas, and after
//     the last group equals UnitReplicas.
//   - In UnitByUnit order every group has pods of exactly one unit.
//   - The same spec always gives the same Plan (no map iteration order
//     leaks into it), and [New] never mutates its argument.
package plan
