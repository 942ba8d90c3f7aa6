package releaseorder

import (
	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// phases maps each app to its phase in the order's status (Pending when
// it has none yet).
func phases(status []cafev1alpha1.ReleaseOrderAppStatus) map[string]cafev1alpha1.ReleaseOrderAppPhase {
	out := map[string]cafev1alpha1.ReleaseOrderAppPhase{}
	for _, s := range status {
		out[s.Name] = s.Phase
	}
	return out
}

// startable returns, in spec order, the Pending apps every dependency of
// which has Succeeded: the apps a running order may start now. Independent
// apps are startable together, so they release in parallel.
func startable(apps []cafev1alpha1.ReleaseOrderApp, status []cafev1alpha1.ReleaseOrderAppStatus) []string {
	ph := phases(status)
	var out []string
	for _, a := range apps {
		if p := ph[a.Name]; p != "" && p != cafev1alpha1.AppPending {
			continue
		}
		ready := true
		for _, d := range a.DependsOn {
			if ph[d] != cafev1alpha1.AppSucceeded {
				ready = false
				break
			}
		}
		if ready {
			out = append(out, a.Name)
		}
	}
	return out
}

// rollbackStartable returns, in spec order, the apps WaitingForRollback
// that may start rolling back now: the reverse of the release order, so an
// app rolls back only once every app of the order that depends on it
// (directly or not) is no longer waiting for or under a rollback. Apps
// that depend on each other through an app that was never changed are
// ordered all the same.
func rollbackStartable(apps []cafev1alpha1.ReleaseOrderApp, status []cafev1alpha1.ReleaseOrderAppStatus) []string {
	ph := phases(status)
	dependents := map[string][]string{}
	for _, a := range apps {
		for _, d := range a.DependsOn {
			dependents[d] = append(dependents[d], a.Name)
		}
	}
	// blocked reports whether any app depending on n, transitively, still
	// has a rollback to do.
	var blocked func(n string, seen map[string]bool) bool
	blocked = func(n string, seen map[string]bool) bool {
		for _, dep := range dependents[n] {
			if seen[dep] {
				continue
			}
			seen[dep] = true
			if p := ph[dep]; p == cafev1alpha1.AppWaitingForRollback || p == cafev1alpha1.AppRollingBack {
				return true
			}
			if blocked(dep, seen) {
				return true
			}
		}
		return false
	}
	var out []string
	for _, a := range apps {
		if ph[a.Name] != cafev1alpha1.AppWaitingForRollback {
			continue
		}
		if !blocked(a.Name, map[string]bool{}) {
			out = append(out, a.Name)
		}
	}
	return out
}

// changedByOrder reports whether the order has touched (or is about to touch) an
// app in this phase, so that a full rollback must return it.
func changedByOrder(p cafev1alpha1.ReleaseOrderAppPhase) bool {
	switch p {
	case cafev1alpha1.AppPublishing, cafev1alpha1.AppReleasing, cafev1alpha1.AppSucceeded, cafev1alpha1.AppFailed:
		return true
	}
	return false
}
