package controlplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"k8s.io/client-go/rest"
)

// restartGrace is how long a restarted component gets to stop after
// SIGTERM before it is killed.
const restartGrace = 10 * time.Second

// Restart stops one component of the running control plane ("etcd",
// "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok") as
// an operator restarting it would — SIGTERM, SIGKILL after 10 s — starts it
// again with the same arguments, data and ports, and returns once it passes
// the readiness check it passed at start. The other components are not
// told: their clients reconnect on their own, which is what a chaos test
// wants to see. The stop is not reported on Failed.
func (cp *ControlPlane) Restart(ctx context.Context, component string) error {
	cp.restartMu.Lock()
	defer cp.restartMu.Unlock()
	old, err := cp.component(component)
	if err != nil {
		return err
	}
	old.stop(restartGrace)
	p, err := startProcess(old.name, old.binary, old.args, old.env, old.logPath)
	if err != nil {
		return fmt.Errorf("restarting %s: %w", component, err)
	}
	p.ready = old.ready
	if !cp.replace(old, p) {
		p.stop(restartGrace)
		return fmt.Errorf("restarting %s: the control plane stopped meanwhile", component)
	}
	cp.watchChild(p)
	if err := cp.waitOrFail(ctx, p.ready); err != nil {
		return fmt.Errorf("waiting for the restarted %s to become ready: %w", component, err)
	}
	return cp.writeState()
}

// Kill SIGKILLs one component, as a crash would, and leaves it stopped
// until Restart starts it again. The exit is not reported on Failed: the
// test that kills a component is watching what the others do meanwhile.
func (cp *ControlPlane) Kill(component string) error {
	cp.restartMu.Lock()
	defer cp.restartMu.Unlock()
	p, err := cp.component(component)
	if err != nil {
		return err
	}
	p.kill()
	return nil
}

// AddAPIServer starts one more kube-apiserver on the same etcd and
// certificates, on a port of its own — as a highly available control plane
// runs several — and returns an admin client configuration for it. The
// other components keep talking to the first one, so a test can watch the
// cluster through this one while the first restarts. Calling stop, or
// stopping the control plane, stops it.
func (cp *ControlPlane) AddAPIServer(ctx context.Context) (cfg *rest.Config, stop func(), err error) {
	cp.restartMu.Lock()
	defer cp.restartMu.Unlock()
	ports, err := FreePorts(1)
	if err != nil {
		return nil, nil, err
	}
	admin, err := cp.AdminRESTConfig()
	if err != nil {
		return nil, nil, err
	}
	admin.Host = secureURL(ports[0])
	p := cp.ports
	p.APIServer = ports[0]
	cp.apiServers++
	name := "kube-apiserver-" + strconv.Itoa(cp.apiServers+1)
	proc, err := cp.runBinary(ctx, name, "kube-apiserver", cp.profiled(apiServerArgs(cp.layout, p, cp.pki)), func(ctx context.Context) error {
		return waitAPIServerReady(ctx, admin)
	})
	if proc != nil {
		cp.watchChild(proc)
		stop = func() { cp.remove(proc) }
	}
	if err == nil {
		err = cp.writeState()
	}
	if err != nil {
		if stop != nil {
			stop()
		}
		return nil, nil, err
	}
	return admin, stop, nil
}

// PID is the process id of a running component ("traefik",
// "pod-emulator", "kube-apiserver" …), e.g. to read its CPU time from /proc.
func (cp *ControlPlane) PID(component string) (int, error) {
	p, err := cp.component(component)
	if err != nil {
		return 0, err
	}
	return p.pid(), nil
}

// component returns the running process of a component.
func (cp *ControlPlane) component(name string) (*process, error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for _, p := range cp.procs {
		if p.name == name {
			return p, nil
		}
	}
	if cp.procs == nil {
		return nil, errors.New("the control plane is stopped")
	}
	return nil, fmt.Errorf("the control plane runs no component %q", name)
}

// replace puts p in old's place among the children, unless the control
// plane has stopped (and so no longer holds old).
func (cp *ControlPlane) replace(old, p *process) bool {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for i, q := range cp.procs {
		if q == old {
			cp.procs[i] = p
			return true
		}
	}
	return false
}

// remove stops p, if the control plane still runs it, and forgets it.
func (cp *ControlPlane) remove(p *process) {
	cp.mu.Lock()
	i := slices.Index(cp.procs, p)
	if i >= 0 {
		cp.procs = slices.Delete(cp.procs, i, i+1)
	}
	cp.mu.Unlock()
	if i >= 0 {
		p.stop(restartGrace)
	}
}
