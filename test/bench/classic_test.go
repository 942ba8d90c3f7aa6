package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/devenv"
	"github.com/cafe-io/cafe/internal/loadgen"
)

func TestParseStatReadsParentAndCPUTimes(t *testing.T) {
	// A command name with spaces and parentheses: fields count from the
	// last ')'.
	raw := []byte("4242 (demo (app) x) S 77 4242 4242 0 -1 4194560 100 0 0 0 150 50 30 20 20 0 8 0 123 456 789")
	s, err := parseStat(raw)
	if err != nil {
		t.Fatal(err)
	}
	if s.PPID != 77 || s.Self != 200 || s.Children != 50 {
		t.Fatalf("got %+v, want parent 77, self 150+50, children 30+20", s)
	}
	if _, err := parseStat([]byte("1 (x) S 0 1")); err == nil {
		t.Fatal("a short line parsed")
	}
}

func TestParseMemoryReadsRSSAndPeak(t *testing.T) {
	m, err := parseMemory("Name:\tdemo-app\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t8\n")
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS != 10<<20 || m.Peak != 20<<20 {
		t.Fatalf("got %+v", m)
	}
	if _, err := parseMemory("Name:\tzombie\n"); err == nil {
		t.Fatal("a status without memory parsed")
	}
	pss, err := parsePSS("5615-7ffc ---p 00000000 00:00 0 [rollup]\nRss:   1696 kB\nPss:    634 kB\nPss_Dirty:  112 kB\n")
	if err != nil || pss != 634<<10 {
		t.Fatalf("Pss %d, %v", pss, err)
	}
}

func TestHostUsagesAreTheDifferenceOfTwoSamplesPerHost(t *testing.T) {
	hosts := devenv.ClassicHostPlan(3, []string{"zone-a", "zone-b"})
	from := procSample{Hosts: map[string]hostSample{
		"vm-zone-a-1": {AgentCPU: 10, InstancesCPU: 5, Instances: 10},
		"vm-zone-b-1": {AgentCPU: 2, InstancesCPU: 1, Instances: 10},
	}}
	to := procSample{Hosts: map[string]hostSample{
		"vm-zone-a-1": {AgentCPU: 11.5, InstancesCPU: 8, Instances: 10, InstancesRSS: 100 << 20, InstancesPSS: 40 << 20, InstancePeak: 12 << 20},
		"vm-zone-b-1": {AgentCPU: 2.5, InstancesCPU: 1.25, Instances: 9, InstancesRSS: 90 << 20, InstancePeak: 11 << 20},
		"vm-zone-a-2": {AgentCPU: 1},
	}}
	got := hostUsages(hosts, from, to, map[string]int64{"vm-zone-a-1": 40 << 20, "vm-zone-b-1": 30 << 20})
	if len(got) != 3 || got[0].Host != "vm-zone-a-1" || got[1].Host != "vm-zone-b-1" || got[2].Host != "vm-zone-a-2" {
		t.Fatalf("hosts out of order: %+v", got)
	}
	a := got[0]
	if a.Zone != "zone-a" || a.AgentCPU != 1.5 || a.InstancesCPU != 3 || a.AgentPeakRSS != 40<<20 || a.Instances != 10 || a.InstancesRSS != 100<<20 || a.InstancesPSS != 40<<20 || a.InstancePeakRSS != 12<<20 {
		t.Errorf("first host: %+v", a)
	}
	// A host missing from the first sample counts from zero.
	if got[2].AgentCPU != 1 {
		t.Errorf("third host: %+v", got[2])
	}
	want := hostTotal{AgentCPU: 3, InstancesCPU: 3.25, MostAgentRSS: 40 << 20, Instances: 19, InstancesRSS: 190 << 20, InstancesPSS: 40 << 20}
	if tot := hostTotals(got); tot != want {
		t.Errorf("totals %+v, want %+v", tot, want)
	}
}

func TestCPUDeltaAndSums(t *testing.T) {
	from := procSample{CPU: map[string]float64{"etcd": 1, "kube-apiserver": 10, cafeProcess: 3}}
	to := procSample{CPU: map[string]float64{"etcd": 2, "kube-apiserver": 14, cafeProcess: 4.5, controlplane.RegistryComponent: 0.5}}
	d := cpuDelta(from, to)
	if d["etcd"] != 1 || d["kube-apiserver"] != 4 || d[cafeProcess] != 1.5 || d[controlplane.RegistryComponent] != 0.5 {
		t.Fatalf("delta %v", d)
	}
	if got := sumOf(d, controlPlaneComponents); got != 5.5 {
		t.Fatalf("control plane %v, want 5.5 (CAFE not in it)", got)
	}
}

func instance(name string, mutate func(*cafev1alpha1.ClassicInstance)) *cafev1alpha1.ClassicInstance {
	in := &cafev1alpha1.ClassicInstance{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 2}}
	in.Spec.Artifact.SHA256 = "v2sum"
	in.Spec.TrafficGate = cafev1alpha1.ClassicTrafficGateOpen
	in.Status.ObservedGeneration = 2
	in.Status.Process = &cafev1alpha1.ClassicProcess{SHA256: "v2sum"}
	in.Status.Address = "198.19.224.1:8080"
	in.Status.Conditions = []metav1.Condition{{Type: cafev1alpha1.ClassicInstanceReadyCondition, Status: metav1.ConditionTrue}}
	if mutate != nil {
		mutate(in)
	}
	return in
}

func TestAnInstanceIsSettledOnlyRunningTheTargetReadyAndOpen(t *testing.T) {
	objs := []client.Object{
		instance("ok", nil),
		instance("old-process", func(i *cafev1alpha1.ClassicInstance) { i.Status.Process.SHA256 = "v1sum" }),
		instance("draining", func(i *cafev1alpha1.ClassicInstance) {
			i.Spec.TrafficGate = cafev1alpha1.ClassicTrafficGateDrainForUpdate
		}),
		instance("stale-status", func(i *cafev1alpha1.ClassicInstance) { i.Status.ObservedGeneration = 1 }),
		instance("deleting", func(i *cafev1alpha1.ClassicInstance) { i.DeletionTimestamp = ptr.To(metav1.Now()) }),
	}
	got := tallyInstances(objs, "v2sum")
	want := instanceTally{Total: 5, Deleting: 1, Ready: 3, OnTarget: 3, GateClosed: 1, Settled: 1}
	if got != want {
		t.Fatalf("tally %+v, want %+v", got, want)
	}
	if got.settled(1) || !tallyInstances(objs[:1], "v2sum").settled(1) {
		t.Fatal("settled")
	}
	if !strings.Contains(got.String(), "1 settled") {
		t.Errorf("String: %s", got)
	}
}

func TestEndpointSetsTellWantedFromTheAppsOthers(t *testing.T) {
	items := []cafev1alpha1.ClassicInstance{
		*instance("a", nil),
		*instance("b", func(i *cafev1alpha1.ClassicInstance) {
			i.Status.Address = "198.19.224.1:8081"
			i.Spec.TrafficGate = cafev1alpha1.ClassicTrafficGateDrainForUpdate
		}),
	}
	e := classicEndpoints(items, "v2sum")
	servers := []netip.AddrPort{netip.MustParseAddrPort("198.19.224.1:8080"), netip.MustParseAddrPort("198.19.224.1:8081"), netip.MustParseAddrPort("198.18.0.9:80")}
	if wanted, others := e.served(servers); wanted != 1 || others != 1 {
		t.Fatalf("wanted %d others %d: the same host's other app's port is the app's, the pod is not", wanted, others)
	}

	pod := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec:       corev1.PodSpec{Containers: classicContainers(3, imageV2)},
		Status: corev1.PodStatus{
			PodIP:             "198.18.0.9",
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: containerName, Image: imageV2, Ready: true}},
		},
	}
	pe := podEndpoints([]corev1.Pod{pod}, imageV2)
	if !pe.want[netip.MustParseAddrPort("198.18.0.9:8083")] || len(pe.all) != 1 {
		t.Fatalf("pod endpoints %+v: app 3's pod serves on its own port", pe)
	}
	if v1 := podEndpoints([]corev1.Pod{pod}, imageV1); len(v1.want) != 0 || len(v1.all) != 1 {
		t.Fatalf("a v2 pod is wanted at v1: %+v", v1)
	}
}

func TestDeploymentsDoneNeedsEveryAppCompleted(t *testing.T) {
	cd := func(name string, phase cafev1alpha1.ReleasePhase, updated int32) *cafev1alpha1.CafeDeployment {
		c := &cafev1alpha1.CafeDeployment{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 3}}
		c.Status.ObservedGeneration = 3
		c.Status.Release.Phase = phase
		c.Status.CurrentRevision, c.Status.UpdateRevision = "r", "r"
		c.Status.UpdatedReplicas, c.Status.AvailableReplicas = ptr.To(updated), ptr.To(int32(6))
		return c
	}
	done := []client.Object{cd("app-0", cafev1alpha1.ReleasePhaseCompleted, 6), cd("app-1", cafev1alpha1.ReleasePhaseCompleted, 6)}
	if ok, why := deploymentsDone(done, 2, 6); !ok {
		t.Fatalf("not done: %s", why)
	}
	if ok, why := deploymentsDone(done, 3, 6); ok || why != "2 CafeDeployments of 3" {
		t.Fatalf("a missing app: %v %q", ok, why)
	}
	mid := append(done[:1:1], cd("app-1", cafev1alpha1.ReleasePhaseCompleted, 3))
	if ok, why := deploymentsDone(mid, 2, 6); ok || !strings.HasPrefix(why, "app-1:") {
		t.Fatalf("an app half updated: %v %q", ok, why)
	}
}

func TestTheClassicAppsShareHostsOnDistinctPortsBehindOneRoute(t *testing.T) {
	route := classicRoute("ns")
	if len(route.Spec.Rules) != 1 || len(route.Spec.Rules[0].BackendRefs) != classicAppCount || route.Spec.Hostnames[0] != classicRouteHost {
		t.Fatalf("route %+v", route.Spec)
	}
	ports := map[int32]bool{}
	for i := range classicAppCount {
		cd := classicDeployment("ns", i, &cafev1alpha1.ClassicArtifact{Port: classicPort(i)})
		if cd.Spec.Classic == nil || len(cd.Spec.Classic.Units) != 3 || *cd.Spec.Replicas != classicReplicas {
			t.Fatalf("app %d: %+v", i, cd.Spec)
		}
		svc := classicService("ns", i)
		if svc.Spec.Ports[0].TargetPort.IntVal != cd.Spec.Classic.Artifact.Port || cd.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort != classicPort(i) {
			t.Fatalf("app %d: Service and artifact ports differ", i)
		}
		if svc.Spec.Selector[appLabel] != cd.Spec.Template.Labels[appLabel] || cd.Spec.Selector.MatchLabels[appLabel] != classicAppName(i) {
			t.Fatalf("app %d: selectors", i)
		}
		ports[classicPort(i)] = true
	}
	if len(ports) != classicAppCount {
		t.Fatalf("ports %v", ports)
	}
	if pods := classicDeployment("ns", 0, nil); pods.Spec.Classic != nil || pods.Spec.PodSetType != cafev1alpha1.PodSetTypeInPlaceSet {
		t.Fatalf("the pods' app: %+v", pods.Spec)
	}
	if got := classicWorkload().maxUnavailablePerUnit(); got != 1 {
		t.Fatalf("maxUnavailable per unit %d, want 1 (groups of one per zone)", got)
	}
}

// classicSample is a report of one instances' and one pods' release.
func classicSample() *classicReport {
	hosts := []hostUsage{
		{Host: "vm-zone-a-1", Zone: "zone-a", Address: "198.19.224.1", AgentCPU: 1.2, AgentPeakRSS: 60 << 20, InstancesCPU: 2, Instances: 10, InstancesRSS: 150 << 20, InstancesPSS: 50 << 20, InstancePeakRSS: 16 << 20},
		{Host: "vm-zone-b-1", Zone: "zone-b", Address: "198.19.224.2", AgentCPU: 0.8, AgentPeakRSS: 58 << 20, InstancesCPU: 1, Instances: 10, InstancesRSS: 140 << 20, InstancesPSS: 45 << 20, InstancePeakRSS: 15 << 20},
	}
	load := func(sent, failed int64, p99 time.Duration) loadgen.Summary {
		return loadgen.Summary{Seconds: 30, Counts: loadgen.Counts{Sent: sent, OK: sent - failed, Non2xx: failed}, Pods: map[string]int64{"a": 1, "b": 1}, Latency: loadgen.Latency{P99: p99}}
	}
	kinds := classicKinds()
	return &classicReport{
		Started: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC), Duration: 4 * time.Minute, Nodes: classicNodes, TargetRate: 200, Rate: 200, Baseline: 5 * time.Second,
		Hosts:    []classicHostInfo{{Name: "vm-zone-a-1", Zone: "zone-a", Address: "198.19.224.1"}, {Name: "vm-zone-b-1", Zone: "zone-b", Address: "198.19.224.2"}},
		Packages: []string{"`demo-app-v1.tar.gz`", "`demo-app-v2.tar.gz`"},
		Results: []classicResult{
			{Kind: kinds[0], Run: 1, Rate: 200, Completed: true, Settled: 20 * time.Second, StatusDone: 21 * time.Second, Wall: 21 * time.Second, GatewayDone: 23 * time.Second,
				loadOutcome: loadOutcome{Before: load(1000, 0, 5*time.Millisecond), During: load(4600, 0, 12*time.Millisecond), Total: load(5600, 0, 11*time.Millisecond)},
				Window:      23 * time.Second, CPU: map[string]float64{cafeProcess: 3, "kube-apiserver": 10, "etcd": 2, controlplane.TraefikComponent: 2.5}, Hosts: hosts},
			{Kind: kinds[1], Run: 1, Rate: 200, Completed: true, Settled: 10 * time.Second, StatusDone: 10500 * time.Millisecond, Wall: 10500 * time.Millisecond, GatewayDone: 12 * time.Second,
				loadOutcome: loadOutcome{Before: load(1000, 0, 4*time.Millisecond), During: load(2400, 3, 9*time.Millisecond), Total: load(3400, 3, 8*time.Millisecond)},
				Window:      12 * time.Second, CPU: map[string]float64{cafeProcess: 2, "kube-apiserver": 8, "kwok": 1, controlplane.PodEmulatorComponent: 0.7}, EmulatorPeakRSS: 40 << 20},
		},
	}
}

func TestTheClassicSectionShowsEveryKindAndEveryHost(t *testing.T) {
	var b strings.Builder
	report{Classic: classicSample(), Machine: machine{CPUModel: "AMD EPYC", CPUs: 2, MemTotal: "23.5 GiB", Kernel: "6.18", Go: "go1.26.8", Etcd: "v3.6.16", Kubernetes: "v1.37.2", Kwok: "v0.8.0", Source: "bin/cafe built from commit abc"}}.writeClassic(&b)
	page := b.String()
	for _, want := range []string{
		classicHeading + "\n\nMeasured on 2026-12-06 10:00 UTC; the scenario took 4m0s of the run. Machine: AMD EPYC, 2 CPUs, 23.5 GiB of memory, Linux 6.18, go1.26.8; control plane etcd v3.6.16, Kubernetes v1.37.2, kwok v0.8.0; bin/cafe built from commit abc.",
		"| classic instances on 6 hosts | 1 | 200 | 5600 | **0** | 0 | 0 of 30 | 5.0 ms | 12.0 ms | 2 | **21.0 s** | 20.0 s | 21.0 s | 23.0 s |",
		"| InPlaceSet pods on 6 nodes | 1 | 200 | 3400 | **3** (non-2xx 3) | 3 |",
		// CPU: control plane is etcd + apiserver (+ kwok for pods); agents
		// and instances summed over the hosts.
		"| classic instances on 6 hosts | 1 | 23.0 s | 3.0 | 12.0 | 2.5 | 2.0 | 3.0 | 0.0 |",
		"| InPlaceSet pods on 6 nodes | 1 | 12.0 s | 2.0 | 9.0 | 0.0 | – | – | 0.7 |",
		"| vm-zone-a-1 | zone-a | 198.19.224.1 | 1.20 s | 0.052 | 60 MiB | 10 | 2.00 s | 150 MiB | 50 MiB | 16 MiB |",
		"| **all 2 hosts** | | | 2.00 s | 0.087 | 60 MiB (largest) | 20 | 3.00 s | 290 MiB | 95 MiB | |",
		"kwok 1.0 s of CPU and the pod emulator 0.7 s (peak RSS 40 MiB)",
		"classic instances on 6 hosts: none of 5600 requests failed",
		"InPlaceSet pods on 6 nodes: 3 of 3400 requests failed",
		"Wall time: the 60 instances 21.0 s, the 60 pods 10.5 s (2.0×)",
		"**real processes**", "**emulated**",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the section lacks %q:\n%s", want, page)
		}
	}
}

func TestAClassicReleaseThatDidNotFinishIsShownWithItsProblem(t *testing.T) {
	c := classicSample()
	c.Results[0].Completed, c.Results[0].Problem = false, "waiting for 60 classic instances on v2"
	c.Results[1].Completed, c.Results[1].Total, c.Results[1].CPU = false, loadgen.Summary{}, nil
	var b strings.Builder
	report{Classic: c}.writeClassic(&b)
	page := b.String()
	for _, want := range []string{
		"| classic instances on 6 hosts | 1 | 200 | 5600 | **0** | 0 | 0 of 30 | 5.0 ms | 12.0 ms | 2 | did not finish (see below) |",
		"| InPlaceSet pods on 6 nodes | 1 | 200 | did not finish (see below) |",
		"#### classic instances on 6 hosts, run 1: did not finish\n\n```\nwaiting for 60 classic instances on v2\n```",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the section lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "Wall time:") {
		t.Errorf("compares wall times of releases that did not finish:\n%s", page)
	}
}

func TestTheClassicPartIsMergedAlone(t *testing.T) {
	if partOf(classicHeading+"\n") != partClassic {
		t.Fatalf("the classic heading opens part %q", partOf(classicHeading))
	}
	fresh := "# Benchmarks\n\nGenerated.\n\n## Machine\n\n| CPU | new |\n\n" + classicHeading + "\n\nnew classic\n"
	got := mergeParts(oldPage, fresh, []string{partClassic}, "Sections measured in a later run (classic): x.")
	for _, want := range []string{"- old method", "old node failure", "| CPU | AMD |", classicHeading + "\n\nnew classic\n", "Sections measured in a later run (classic): x."} {
		if !strings.Contains(got, want) {
			t.Errorf("merged page lacks %q:\n%s", want, got)
		}
	}
}
