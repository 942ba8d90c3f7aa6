package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// ReleaseOrderPhase is where a release order stands.
// +kubebuilder:validation:Enum=PendingApproval;Approved;Scheduled;Running;Paused;RollingBack;Succeeded;Failed;RolledBack;Cancelled
type ReleaseOrderPhase string

const (
	// OrderPendingApproval: the order waits for spec.approval.required
	// distinct approvals.
	OrderPendingApproval ReleaseOrderPhase = "PendingApproval"
	// OrderApproved: approved; it waits for someone to start it.
	OrderApproved ReleaseOrderPhase = "Approved"
	// OrderScheduled: started, waiting for its window to open.
	OrderScheduled ReleaseOrderPhase = "Scheduled"
	// OrderRunning: apps are being released in dependency order.
	OrderRunning ReleaseOrderPhase = "Running"
	// OrderPaused: no app starts and the apps being released are held
	// before their next pod operation (a person paused it, an app failed
	// under failurePolicy Pause, or the window closed).
	OrderPaused ReleaseOrderPhase = "Paused"
	// OrderRollingBack: the apps the order changed are being returned to
	// their previous revisions, in reverse dependency order.
	OrderRollingBack ReleaseOrderPhase = "RollingBack"
	// OrderSucceeded: every app runs its revision.
	OrderSucceeded ReleaseOrderPhase = "Succeeded"
	// OrderFailed: an app failed and the order ended without rolling back
	// every app (failurePolicy RollbackFailed, or a rollback that could not
	// be done).
	OrderFailed ReleaseOrderPhase = "Failed"
	// OrderRolledBack: every app the order changed runs its previous
	// revision again.
	OrderRolledBack ReleaseOrderPhase = "RolledBack"
	// OrderCancelled: cancelled or rejected; apps not started never start.
	OrderCancelled ReleaseOrderPhase = "Cancelled"
)

// ReleaseOrderAppPhase is where one app of an order stands.
// +kubebuilder:validation:Enum=Pending;Publishing;Releasing;Succeeded;Failed;WaitingForRollback;RollingBack;RolledBack
type ReleaseOrderAppPhase string

const (
	// AppPending: not started (its dependencies have not all succeeded, or
	// the order does not run).
	AppPending ReleaseOrderAppPhase = "Pending"
	// AppPublishing: the order recorded the app's current revision and is
	// publishing the new one.
	AppPublishing ReleaseOrderAppPhase = "Publishing"
	// AppReleasing: published; the app's CafeDeployment releases it.
	AppReleasing ReleaseOrderAppPhase = "Releasing"
	// AppSucceeded: the revision runs on every pod.
	AppSucceeded ReleaseOrderAppPhase = "Succeeded"
	// AppFailed: the release failed, made no progress within the progress
	// deadline, or the app was changed outside the order.
	AppFailed ReleaseOrderAppPhase = "Failed"
	// AppWaitingForRollback: to be rolled back once every app depending on
	// it is rolled back.
	AppWaitingForRollback ReleaseOrderAppPhase = "WaitingForRollback"
	// AppRollingBack: its previous revision is being published again.
	AppRollingBack ReleaseOrderAppPhase = "RollingBack"
	// AppRolledBack: its previous revision runs on every pod again.
	AppRolledBack ReleaseOrderAppPhase = "RolledBack"
)

// FailurePolicy says what an order does when one of its apps fails.
// +kubebuilder:validation:Enum=Pause;RollbackFailed;RollbackAll
type FailurePolicy string

const (
	// FailurePause pauses the order for a person to decide (resume to give
	// the app more time, rollback, or cancel).
	FailurePause FailurePolicy = "Pause"
	// FailureRollbackFailed rolls back the failed app, starts no other app,
	// and fails the order once the apps under way have finished.
	FailureRollbackFailed FailurePolicy = "RollbackFailed"
	// FailureRollbackAll rolls back every app the order changed, in reverse
	// dependency order.
	FailureRollbackAll FailurePolicy = "RollbackAll"
)

// ReleaseOrder condition types and reasons.
const (
	// OrderApprovedCondition is True once the order has its approvals.
	OrderApprovedCondition = "Approved"
	// OrderProgressingCondition is True while apps are released or rolled
	// back; its reason says why not otherwise.
	OrderProgressingCondition = "Progressing"
	// OrderAuditIntactCondition is False while CAFE refuses to sign the
	// order's trail: its signing key is not the published one, or the trail
	// does not chain to its signed head. The order does not progress then:
	// no change goes unrecorded.
	OrderAuditIntactCondition = "AuditIntact"

	AuditReasonIntact                 = "Intact"
	AuditReasonSigningKeyNotPublished = "SigningKeyNotPublished"
	AuditReasonTrailTampered          = "TrailTampered"

	OrderReasonPendingApproval = "PendingApproval"
	OrderReasonApproved        = "Approved"
	OrderReasonRejected        = "Rejected"
	OrderReasonNotStarted      = "NotStarted"
	OrderReasonWindowNotOpen   = "WindowNotOpen"
	OrderReasonWindowClosed    = "WindowClosed"
	OrderReasonPausedByUser    = "PausedByUser"
	OrderReasonAppFailed       = "AppFailed"
	OrderReasonReleasing       = "Releasing"
	OrderReasonRollingBack     = "RollingBack"
	OrderReasonFinished        = "Finished"
	OrderReasonNoRequester     = "NoRequester"
	// OrderReasonIdentityUnverified: the requester's stamp carries no
	// valid seal of CAFE's admission webhook.
	OrderReasonIdentityUnverified = "IdentityUnverified"
	// OrderReasonNoProgress: an app's publish or rollback made no progress
	// within the progress deadline.
	OrderReasonNoProgress = "NoProgress"
	// OrderReasonExpired: the order changed no app and nobody acted on it
	// for the cluster's idle timeout (cafe manager
	// --release-order-idle-timeout); CAFE cancelled it so that it no longer
	// holds its apps against other orders.
	OrderReasonExpired = "Expired"
)

// Defaults of a ReleaseOrder's spec (also the CRD defaults).
const (
	DefaultRequiredApprovals       int32 = 1
	DefaultProgressDeadlineSeconds int32 = 1800
)

// Notes on the CEL rules of this file (kept out of the doc comments, which
// become the CRD's descriptions): every list is bounded so the rules stay
// within the API server's cost budget; a dependency cycle, an app or a
// revision that does not exist, and two open orders changing one app need
// more than the object and are judged by the validating webhook.

// ReleaseOrder (发布单) is the record of one release: who asked, who
// approved, which revisions of which apps, in which dependency order, within
// which window, and every step with its outcome, in a signed audit trail.
// Its spec cannot change once created; people act on it by creating
// ReleaseActions.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=releaseorders,scope=Namespaced,shortName=ro,categories=cafe
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.status) || !has(oldSelf.status.audit) || size(oldSelf.status.audit) == 0 || (has(self.status) && has(self.status.audit) && size(self.status.audit) >= size(oldSelf.status.audit) && self.status.audit[size(oldSelf.status.audit) - 1].hash == oldSelf.status.audit[size(oldSelf.status.audit) - 1].hash)",message="status.audit is append-only: entries cannot be removed, replaced or reordered",fieldPath=".status.audit"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.status) || !has(oldSelf.status.auditHead) || (has(self.status) && has(self.status.auditHead) && (self.status.auditHead.count > oldSelf.status.auditHead.count || self.status.auditHead == oldSelf.status.auditHead))",message="status.auditHead only moves forward: it cannot be removed, its count cannot decrease, and it changes only when entries are appended",fieldPath=".status.auditHead"
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Title",type=string,JSONPath=`.spec.title`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Apps",type=integer,JSONPath=`.status.appCount`
// +kubebuilder:printcolumn:name="Done",type=integer,JSONPath=`.status.appsSucceeded`
// +kubebuilder:printcolumn:name="Approvals",type=string,JSONPath=`.status.approvalSummary`
// +kubebuilder:printcolumn:name="Requester",type=string,JSONPath=`.spec.requestedBy`
// +kubebuilder:printcolumn:name="Ticket",type=string,JSONPath=`.spec.changeTicket`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="oldSelf.hasValue() || self.metadata.name.size() <= 63",optionalOldSelf=true,message="metadata.name: at most 63 characters, so that it fits the label and annotation keys CAFE derives from it"
type ReleaseOrder struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the order releases; it cannot change after creation.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable: what was approved is what runs; cancel the order and create a new one"
	Spec ReleaseOrderSpec `json:"spec,omitzero"`

	// status is the record of the order.
	// +optional
	Status ReleaseOrderStatus `json:"status,omitzero"`
}

// ReleaseOrderSpec is what a release order releases and under which rules.
//
// +kubebuilder:validation:XValidation:rule="self.apps.all(a, !has(a.dependsOn) || a.dependsOn.all(d, self.apps.exists(b, b.name == d)))",message="spec.apps[].dependsOn: every dependency must name another entry of spec.apps",fieldPath=".apps"
// +kubebuilder:validation:XValidation:rule="self.apps.all(a, !has(a.dependsOn) || !(a.name in a.dependsOn))",message="spec.apps[].dependsOn: an app cannot depend on itself",fieldPath=".apps"
type ReleaseOrderSpec struct {
	// title says in one line what the release is.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Title string `json:"title"`

	// description explains the change, for reviewers and approvers.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Description string `json:"description,omitempty"`

	// changeTicket refers to the change in an external change system.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	ChangeTicket string `json:"changeTicket,omitempty"`

	// requestedBy is the user who created the order, as the API server
	// authenticated them. CAFE's admission webhook sets it; a client
	// cannot.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	RequestedBy string `json:"requestedBy,omitempty"`

	// requestedByGroups are the requester's groups at creation.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=256
	RequestedByGroups []string `json:"requestedByGroups,omitempty"`

	// seal is CAFE's admission webhook's HMAC-SHA256, with a key only CAFE
	// holds, over the namespace and this spec (seal left out): the
	// controller progresses no order whose seal does not verify, so a
	// cluster without CAFE's webhooks cannot forge a requester. CAFE's
	// admission webhook sets it; a client cannot.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Seal string `json:"seal,omitempty"`

	// apps are the apps to release, each to one AppRevision, in dependency
	// order: an app starts only after every app it dependsOn succeeded;
	// independent apps run in parallel.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Apps []ReleaseOrderApp `json:"apps"`

	// approval says how many distinct people must approve, and who may.
	// +optional
	// +kubebuilder:default={}
	Approval ReleaseApproval `json:"approval,omitzero"`

	// window is when the order may release. Outside it no app starts; an
	// order still running when it closes pauses.
	// +optional
	Window *ReleaseWindow `json:"window,omitempty"`

	// failurePolicy is what happens when an app fails: Pause (default),
	// RollbackFailed or RollbackAll.
	// +optional
	// +kubebuilder:default=Pause
	FailurePolicy FailurePolicy `json:"failurePolicy,omitempty"`

	// progressDeadlineSeconds is how long an app's release may make no
	// progress (no pod updated, no group finished) before the app counts as
	// failed. Time spent waiting for a confirmation or paused does not
	// count.
	// +optional
	// +kubebuilder:default=1800
	// +kubebuilder:validation:Minimum=5
	// +kubebuilder:validation:Maximum=86400
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`

	// retentionDays can only lengthen how long a finished order is kept:
	// retention is the cluster's policy (the manager's
	// --release-order-retention; unset there keeps orders forever), and CAFE
	// deletes a finished order only once both have passed. An open order
	// cannot be deleted; a finished one only by CAFE's retention or by an
	// identity RBAC grants the verb `purge` on releaseorders.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=36500
	RetentionDays *int32 `json:"retentionDays,omitempty"`
}

// ReleaseOrderApp is one app of an order.
//
// +kubebuilder:validation:XValidation:rule="self.revision.startsWith(self.name + '-r')",message="spec.apps[].revision must be a revision of the app: <name>-r<N>",fieldPath=".revision"
type ReleaseOrderApp struct {
	// name is a CafeAppService in the order's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// revision is the AppRevision to release (<name>-r<N>).
	// +required
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?-r[1-9][0-9]*$`
	Revision string `json:"revision"`

	// dependsOn names other apps of this order that must succeed before
	// this one starts.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=40
	DependsOn []string `json:"dependsOn,omitempty"`

	// strategy overrides the app's release strategy for this release. The
	// app's own values come back once the app's part of the order ends.
	// +optional
	Strategy *ReleaseOrderAppStrategy `json:"strategy,omitempty"`
}

// ReleaseOrderAppStrategy overrides parts of an app's release strategy.
type ReleaseOrderAppStrategy struct {
	// batchSize is the number of pods per group (integer or percentage).
	// +optional
	BatchSize *intstr.IntOrString `json:"batchSize,omitempty"`

	// groups lists the groups explicitly (as the app's strategy.groups).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Groups []ReleaseGroup `json:"groups,omitempty"`

	// needWaitingForConfirm holds each next group until someone confirms
	// (`cafe release confirm`).
	// +optional
	NeedWaitingForConfirm *bool `json:"needWaitingForConfirm,omitempty"`

	// pause holds the app's release before its first pod operation until
	// someone resumes the order (`cafe release resume`).
	// +optional
	Pause *bool `json:"pause,omitempty"`
}

// ReleaseApproval says who must approve.
type ReleaseApproval struct {
	// required is the number of distinct approvals, none from the
	// requester.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	Required *int32 `json:"required,omitempty"`

	// approverGroups, when set, limits approvals to members of one of
	// these groups (as the API server authenticates them).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=256
	ApproverGroups []string `json:"approverGroups,omitempty"`
}

// ReleaseWindow is a change window.
//
// +kubebuilder:validation:XValidation:rule="!has(self.start) || !has(self.end) || self.end > self.start",message="spec.window.end must be after spec.window.start",fieldPath=".end"
type ReleaseWindow struct {
	// start is when the order may begin releasing (RFC 3339).
	// +optional
	Start *metav1.Time `json:"start,omitempty"`

	// end is when the order must stop starting new groups (RFC 3339).
	// +optional
	End *metav1.Time `json:"end,omitempty"`
}

// ReleaseOrderStatus is the record of an order.
//
// +kubebuilder:validation:XValidation:rule="has(self.auditHead) ? (has(self.audit) && size(self.audit) == self.auditHead.count && self.audit[size(self.audit) - 1].hash == self.auditHead.hash) : (!has(self.audit) || size(self.audit) == 0)",message="status.auditHead must count the entries of status.audit and name the last one's hash",fieldPath=".auditHead"
type ReleaseOrderStatus struct {
	// conditions are Approved, Progressing and, once CAFE refused to sign
	// the trail, AuditIntact.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// phase is where the order stands.
	// +optional
	Phase ReleaseOrderPhase `json:"phase,omitempty"`

	// message says, in a sentence, why the order is in its phase and what
	// comes next.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`

	// observedGeneration is the generation this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// approvals are the approvals given, from the authenticated users who
	// gave them.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Approvals []ReleaseApprovalRecord `json:"approvals,omitempty"`

	// approvalSummary is "<given>/<required>", for kubectl get.
	// +optional
	// +kubebuilder:validation:MaxLength=16
	ApprovalSummary string `json:"approvalSummary,omitempty"`

	// startedBy is the user whose start action started the order.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	StartedBy string `json:"startedBy,omitempty"`

	// approvedAt, startedAt and finishedAt mark the order's life.
	// +optional
	ApprovedAt *metav1.Time `json:"approvedAt,omitempty"`
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`

	// appCount and appsSucceeded count the order's apps, for kubectl get.
	// +optional
	AppCount int32 `json:"appCount,omitempty"`
	// +optional
	AppsSucceeded int32 `json:"appsSucceeded,omitempty"`

	// apps is where each app stands.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Apps []ReleaseOrderAppStatus `json:"apps,omitempty"`

	// actions are the ReleaseActions processed, in order, each exactly
	// once, with their result.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	Actions []ReleaseActionRecord `json:"actions,omitempty"`

	// actionsCompacted counts the processed actions whose records left
	// status.actions (which keeps the latest ones); their audit entries
	// stay in the trail.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ActionsCompacted int32 `json:"actionsCompacted,omitempty"`

	// actionsCompactedThrough is the latest place, in the order actions
	// are processed by, of the records compacted away: an action at or
	// before it that has no record in status.actions was processed.
	// +optional
	ActionsCompactedThrough *ReleaseActionMark `json:"actionsCompactedThrough,omitempty"`

	// audit is the order's signed, hash-chained audit trail: one entry per
	// state change and per action (`cafe audit verify`).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=2048
	Audit []AuditEntry `json:"audit,omitempty"`

	// auditHead is CAFE's signed statement of the trail's length and last
	// hash. The API server keeps the trail append-only and the head moving
	// forward, so a trail shorter than its head, or an order that has
	// progressed without one, fails verification.
	// +optional
	AuditHead *AuditHead `json:"auditHead,omitempty"`
}

// ReleaseApprovalRecord is one approval.
type ReleaseApprovalRecord struct {
	// user is the authenticated approver.
	// +required
	// +kubebuilder:validation:MaxLength=256
	User string `json:"user"`
	// time is when the approval was processed.
	// +required
	Time metav1.Time `json:"time"`
	// comment is what the approver wrote.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Comment string `json:"comment,omitempty"`
	// action is the ReleaseAction that carried it.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Action string `json:"action,omitempty"`
}

// ReleaseOrderAppStatus is where one app of an order stands.
type ReleaseOrderAppStatus struct {
	// name of the app.
	// +required
	// +kubebuilder:validation:MaxLength=40
	Name string `json:"name"`

	// phase of the app within the order.
	// +optional
	Phase ReleaseOrderAppPhase `json:"phase,omitempty"`

	// fromRevision is the revision the app had published when the order
	// started it (empty: none), the target of a rollback.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	FromRevision string `json:"fromRevision,omitempty"`

	// toRevision is the revision the order releases.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	ToRevision string `json:"toRevision,omitempty"`

	// publishedGeneration is the app's generation once the order's publish
	// (or rollback) landed: the app's status describes the order's revision
	// only from this generation on.
	// +optional
	PublishedGeneration int64 `json:"publishedGeneration,omitempty"`

	// startedAt and finishedAt bound the app's release; rollbackStartedAt
	// and rolledBackAt its rollback.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
	// +optional
	RollbackStartedAt *metav1.Time `json:"rollbackStartedAt,omitempty"`
	// +optional
	RolledBackAt *metav1.Time `json:"rolledBackAt,omitempty"`

	// groupsDone and totalGroups come from the app's CafeDeployment.
	// +optional
	GroupsDone int32 `json:"groupsDone,omitempty"`
	// +optional
	TotalGroups int32 `json:"totalGroups,omitempty"`

	// releasePhase is the CafeDeployment's release phase.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	ReleasePhase string `json:"releasePhase,omitempty"`

	// progress fingerprints the release's progress; lastProgressAt is when
	// it last changed (or the release last waited for a person).
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Progress string `json:"progress,omitempty"`
	// +optional
	LastProgressAt *metav1.Time `json:"lastProgressAt,omitempty"`

	// waitingSince is when the release began waiting for a confirmation
	// (empty while it does not wait).
	// +optional
	WaitingSince *metav1.Time `json:"waitingSince,omitempty"`

	// confirmGroup is the group the order confirmed on behalf of a
	// confirm action; CAFE sets it on the CafeDeployment.
	// +optional
	ConfirmGroup *int32 `json:"confirmGroup,omitempty"`

	// lastOutsideChange is the time of the latest change made to the app
	// or its CafeDeployment by someone else than the order (a direct
	// confirmation, a fast-release request, a strategy change) that the
	// order recorded in its audit trail.
	// +optional
	LastOutsideChange *metav1.MicroTime `json:"lastOutsideChange,omitempty"`

	// held is true while the order holds the app's CafeDeployment paused.
	// +optional
	Held bool `json:"held,omitempty"`

	// strategyOverridden is true while the app's spec.workload.strategy
	// carries the order's overrides; originalStrategy is what comes back
	// (the app's batchSize, groups and needWaitingForConfirm, as JSON).
	// +optional
	StrategyOverridden bool `json:"strategyOverridden,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxLength=8192
	OriginalStrategy string `json:"originalStrategy,omitempty"`

	// message explains the phase.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// ReleaseActionRecord is a processed ReleaseAction.
type ReleaseActionRecord struct {
	// name of the ReleaseAction.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// action is what was asked.
	// +required
	Action ReleaseActionType `json:"action"`
	// actor is the authenticated user who asked.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Actor string `json:"actor,omitempty"`
	// time is when CAFE processed it.
	// +required
	Time metav1.Time `json:"time"`
	// admittedAt is when CAFE's admission webhook admitted it (its
	// creation time when it carried no valid seal): the order in which
	// actions are processed.
	// +optional
	AdmittedAt *metav1.MicroTime `json:"admittedAt,omitempty"`
	// result is Accepted or Refused.
	// +required
	// +kubebuilder:validation:Enum=Accepted;Refused
	Result string `json:"result"`
	// message explains a refusal.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// ReleaseActionMark is a place in the order actions are processed by:
// admission time, then name.
type ReleaseActionMark struct {
	// admittedAt is the action's admission time (its creation time when it
	// carried no valid seal).
	// +required
	AdmittedAt metav1.MicroTime `json:"admittedAt"`
	// name of the ReleaseAction, which orders actions admitted at the same
	// time.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// Results of a processed action.
const (
	ActionAccepted = "Accepted"
	ActionRefused  = "Refused"
)

// ReleaseOrderList is a list of ReleaseOrders.
//
// +kubebuilder:object:root=true
type ReleaseOrderList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the ReleaseOrders.
	Items []ReleaseOrder `json:"items"`
}

func init() {
	objectTypes = append(objectTypes, &ReleaseOrder{}, &ReleaseOrderList{})
}
