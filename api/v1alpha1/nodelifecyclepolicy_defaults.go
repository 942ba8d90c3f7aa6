package v1alpha1

import "slices"

// DefaultNodeLifecyclePolicySpec returns the spec the API server defaults an
// empty NodeLifecyclePolicy to (the kubebuilder markers of
// NodeLifecyclePolicySpec), so the controller judges the same way when the
// policy has not been created yet.
func DefaultNodeLifecyclePolicySpec() NodeLifecyclePolicySpec {
	s := NodeLifecyclePolicySpec{
		RecoverySeconds: 60,
		Migration:       MigrationSpec{OtherPodsAfterSeconds: 30},
		ZoneGuard:       ZoneGuardSpec{MaxUnhealthyPercent: 50, WindowSeconds: 120},
	}
	s.Default()
	return s
}

// Default fills unset fields whose zero value means "unset" with their
// defaults (fields where zero is meaningful, such as recoverySeconds, are
// left as they are: the API server defaults those when they are omitted).
func (s *NodeLifecyclePolicySpec) Default() {
	if s.Mode == "" {
		s.Mode = NodeLifecycleEnforce
	}
	if len(s.Signals) == 0 {
		s.Signals = slices.Clone(AllNodeSignals)
	}
	if s.LeaseStaleSeconds == 0 {
		s.LeaseStaleSeconds = 20
	}
	if s.NodeConditions == nil {
		s.NodeConditions = []BadNodeCondition{{Type: "KernelDeadlock", Status: "True"}, {Type: "ReadonlyFilesystem", Status: "True"}, {Type: "NetworkUnavailable", Status: "True"}}
	}
	for i := range s.NodeConditions {
		if s.NodeConditions[i].Status == "" {
			s.NodeConditions[i].Status = "True"
		}
	}
	if s.Probe.PeriodSeconds == 0 {
		s.Probe.PeriodSeconds = 5
	}
	if s.Probe.TimeoutSeconds == 0 {
		s.Probe.TimeoutSeconds = 2
	}
	if s.Probe.FailureThreshold == 0 {
		s.Probe.FailureThreshold = 3
	}
	if s.Suspect.MinSignals == 0 {
		s.Suspect = VerdictThreshold{MinSignals: 1, ForSeconds: 10}
	}
	if s.Failed.MinSignals == 0 {
		s.Failed = VerdictThreshold{MinSignals: 2, ForSeconds: 10}
	}
	if s.Migration.MaxPodsPerMinute == 0 {
		s.Migration.MaxPodsPerMinute = 30
	}
	if s.Migration.MaxNewTaintsPerMinute == 0 {
		s.Migration.MaxNewTaintsPerMinute = 10
	}
	if s.ZoneGuard.WindowSeconds == 0 {
		s.ZoneGuard.WindowSeconds = 120
	}
	if s.Migration.FreshLease == "" {
		s.Migration.FreshLease = FreshLeaseNever
	}
}

// SignalEnabled reports whether the policy counts the signal.
func (s *NodeLifecyclePolicySpec) SignalEnabled(sig NodeSignal) bool {
	return slices.Contains(s.Signals, sig)
}
