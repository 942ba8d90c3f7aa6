// Package podemu is an EMULATION of the containers of the local control
// plane's simulated pods: it answers HTTP on a pod's IP and declared
// container ports the way a small real application would, so that what
// CAFE does to a pod (start it, update its image in place, drain and
// delete it) can be observed from the outside as traffic. Nothing here
// runs a container or anything from an image: the local control plane has
// no container runtime, only kwok, which writes the status a kubelet would.
//
// The emulator follows the pods as the API server reports them (an
// informer; see docs/pod-emulator.md for the lifecycle table):
//
//   - A container port listens while its pod has an IP, is Running and not
//     terminating, and its container's status says running with the image
//     its spec asks for.
//   - It stops gracefully (the listener closes at once, requests in flight
//     finish within the pod's grace period, at most Options.MaxGracePeriod)
//     as soon as that no longer holds: the pod has a deletionTimestamp, its
//     spec image differs from its status image (the kubelet is restarting
//     the container), the container is no longer running, or the pod is
//     gone. A new restartCount, image or pod UID is a new process: the old
//     one stops and a new one starts.
//   - Its answers depend on the image tag (ParseImage): the tag is the
//     version it reports; a tag ending in -fail answers 500, one ending in
//     -slow answers after Options.SlowLatency.
//
// Invariants:
//
//   - The only state is a cache of what the API server says, keyed by pod
//     UID, container and port: a restarted emulator rebuilds it from its
//     informer, and a pod recreated with the same name or IP is another
//     process.
//   - Listeners are opened only on addresses inside Options.PodCIDR, through
//     Options.Listen (in production podnet.Network.Listen, inside the pod
//     network namespace): the project sends and receives traffic on
//     loopback or inside its own namespaces only.
package podemu
