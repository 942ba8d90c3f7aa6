/*
Package watchrec records the watch stream of one namespace and checks CAFE's release
invariants on it, from what the API server said alone.

A [Recorder] lists and then watches the Pods and the discovery.k8s.io/v1 EndpointSlices
of a namespace and appends every notification, as an [Event], to one in-memory log. The
checkers are pure functions over that log, so they can be unit-tested with synthetic
streams and do not care how the log was obtained:

	rec, err := watchrec.Start(ctx, cfg, ns)
	...
	defer rec.Stop()
	// ... run the release under test ...
	g.Expect(rec.WaitForSync(ctx)).To(Succeed())
	events := rec.Events()
	if vs := watchrec.CheckLossless(events); len(vs) > 0 {
		t.Fatal(watchrec.Report(vs))
	}

# Invariants

[CheckLossless] checks the lossless pod-operation protocol (PRODUCT.md): no pod's spec
changes, and no pod's deletion begins, while at that point of the stream

  - an EndpointSlice of the namespace lists the pod (by targetRef: kind Pod, name, and
    uid when set) with conditions.ready or conditions.serving true or unset (the
    EndpointSlice API says that nil means true for both), or
  - the pod carries a finalizer with the prefix [TrafficFinalizerPrefix]
    ("traffic.cafe.io/"), meaning a traffic provider has not deregistered it yet.

"Spec changes" compares .spec with the previous recorded version of the same pod (same
UID), so a status update delivered in the same MODIFIED event does not hide or fake one.
The scheduler's binding (spec.nodeName going from empty to a node) is not an operation on
a serving pod and is not counted. "Deletion begins" is the first version with
metadata.deletionTimestamp set, or a DELETED notification whose previous version had none.

[CheckWaterLevel] checks that, once at least minReady pods matching a selector have been
Ready (condition Ready=True and not being deleted) at the same time, their number never
falls below minReady again. Before that first moment the workload is warming up (being
created or scaled up) and being below the level is not a violation; a workload that never
reaches the level is therefore never reported, so tests assert readiness separately (for
example with [ReadyPods]).

Both checkers report a violation for every gap (an [EventType] of [Gap]): when the watch
expired and the recorder had to re-list, the events in between are unknown, and nothing
can be proven about them.

# Ordering assumption

Pods and EndpointSlices arrive on two independent watches, so arrival order says nothing
about which change happened first. The recorder orders the merged log by
metadata.resourceVersion parsed as an unsigned integer. Kubernetes documents resource
versions as opaque strings that clients must not compare; with an etcd-backed API server,
however, every resource version is the etcd revision of the write, and revisions are one
global, strictly increasing sequence across all keys. This package relies on that, which
holds for the local control plane (real etcd and kube-apiserver) that CAFE's tests start
themselves; do not point it at an API server backed by something else. [Start] fails if a
list's resource version is not an unsigned integer.

The checkers evaluate each event against the state built from the events with a lower
resource version. What existed before recording started is state, not history: the
objects of the initial lists, and the watch events up to the later of the two lists, are
recorded as Synthetic and never judged. A log is complete up to a point only when both watches have delivered
everything up to it, which is what [Recorder.WaitForSync] waits for; check after it.
*/
package watchrec
