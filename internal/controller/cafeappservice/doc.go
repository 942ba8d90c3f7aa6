// Package cafeappservice is the CafeAppService controller. For each app it:
//
//   - records an immutable AppRevision (<app>-r<N>) whenever the content of
//     template, service and config is new, and re-uses the revision that
//     already holds a content an edit returns to ([decideRevision]);
//   - snapshots each revision's config into an immutable ConfigMap that the
//     revision's pods read; revisions with the same config contents share
//     the ConfigMap of the first of them, so an image-only release keeps
//     the pods in place;
//   - keeps the app's Service, whose selector (cafe.io/app) selects the
//     pods of every revision, so its identity and ClusterIP never change;
//   - publishes spec.publishedRevision by applying the owned CafeDeployment
//     with that revision's pod template ([desiredCafeDeployment]) and the
//     app's workload settings; the CafeDeployment controller releases it
//     group by group through the lossless protocol;
//   - follows the CafeDeployment's release and records each revision's
//     outcome (Releasing, Succeeded, Failed, RolledBack, Superseded) and
//     who published it ([transition], [observeRelease]);
//   - garbage-collects revisions beyond spec.revisionHistoryLimit, never
//     the published, the last successful, the latest or a held one
//     ([revisionsToDelete]).
//
// A reconcile observes the app (defaulted) and its revisions, then
// decides and writes in three stages, each deciding purely from what was
// read and from what the stage before wrote:
//
//  1. [decideRevision] finds or names the revision of the app's content;
//     a new one is created with its ConfigMap (the rest needs its UID and
//     creation time).
//  2. [decidePublish] picks the published revision, the Service's source
//     and a fast release; the Service is applied, then the CafeDeployment,
//     which is read back as applied.
//  3. [decideApp] decides, from that CafeDeployment, each revision's status
//     (the publish's [transition] and the release's outcome together), the
//     events, the revisions to collect and the app's status. They are
//     written in that order: one status write per changed revision, the
//     events, the deletions, and last the app's status ([appPlan.report]
//     adds what the writes left: the Service's name, the remaining
//     revisions, observedGeneration when every write succeeded).
//
// Invariants:
//   - Publishing is only ever an act on spec.publishedRevision; editing the
//     template never changes what runs.
//   - Only a revision that exists, belongs to this app (controller
//     reference) and is named <app>-r<N> is handed to the CafeDeployment;
//     the admission webhook refuses the others, and this controller ignores
//     them (condition Ready=False, reason InvalidPublishedRevision) should
//     one get past it.
//   - The revision statuses are written before the app's status records
//     the publish, so a crash in between repeats the publish's transition
//     (which is idempotent).
//   - The decisions are pure functions of what was read; the Reconciler
//     only reads and writes.
package cafeappservice
