// Package classicset runs ClassicSets: an app's instances on classic hosts
// (VMs), the counterpart of an InPlaceSet for pods.
//
// Placement. An instance goes to a Ready, schedulable ClassicHost of the
// set's zone (and cell) that runs no instance of the set yet (one per
// host, as an app runs once per VM), has room under spec.capacity.instances
// and whose artifact port is free; among those, the emptiest first. An
// instance is named after its host (<set>-<hash of the host name>), so a
// create repeated after a crash or from a stale cache finds the instance
// already there instead of making a second one.
//
// The lossless protocol, on the instance itself (spec.trafficGate, the
// counterpart of a pod's cafe.io/traffic-ready condition):
//
//  1. set the gate to DrainForUpdate (or DrainForDelete): CAFE's
//     EndpointSlices stop listing the instance as ready or serving, and
//     through them the gateway;
//  2. wait until no CAFE EndpointSlice lists it as ready or serving (read
//     from the API server, not the cache) and no traffic.cafe.io/*
//     finalizer remains on it;
//  3. change its package (or delete it);
//  4. once its host's agent reports the new package healthy for the new
//     spec and minReadySeconds have passed, open the gate.
//
// All state is on the instances (gate, revision label, spec), so the
// controller resumes where it was after a crash. Nothing waits on a timer
// except minReadySeconds, which is measured from the Ready condition's
// transition time.
package classicset
