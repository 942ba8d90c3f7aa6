package framework

import (
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func TestEnvtestWaitsLongerThanItsDefaultForTheControlPlane(t *testing.T) {
	t.Setenv(envtestStartTimeoutEnv, "")
	env := &envtest.Environment{}
	applyStartTimeout(env)
	if env.ControlPlaneStartTimeout != envtestStartTimeout {
		t.Fatalf("start timeout = %v, want %v (envtest's own default is 20 s)", env.ControlPlaneStartTimeout, envtestStartTimeout)
	}
}

func TestEnvtestStartTimeoutChosenElsewhereIsKept(t *testing.T) {
	t.Setenv(envtestStartTimeoutEnv, "")
	env := &envtest.Environment{ControlPlaneStartTimeout: 7 * time.Second}
	applyStartTimeout(env)
	if env.ControlPlaneStartTimeout != 7*time.Second {
		t.Fatalf("the builder's 7 s became %v", env.ControlPlaneStartTimeout)
	}

	t.Setenv(envtestStartTimeoutEnv, "45s")
	env = &envtest.Environment{}
	applyStartTimeout(env)
	if env.ControlPlaneStartTimeout != 0 {
		t.Fatalf("with %s set, the bound is envtest's to read from it, got %v", envtestStartTimeoutEnv, env.ControlPlaneStartTimeout)
	}
}
