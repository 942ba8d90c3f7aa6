package main

import (
	"strconv"
	"testing"

	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/memlimit"
)

// The benchmark gives cafe manager the soft memory limit the shipped
// manifest leads to, read from the manifest itself.
func TestInstalledMemoryArgs(t *testing.T) {
	root := repoRootForTest(t)
	limit, err := installedMemoryLimit(root)
	if err != nil {
		t.Fatal(err)
	}
	if limit < 64<<20 {
		t.Fatalf("manager container's memory limit %d bytes: read wrong", limit)
	}
	args, err := installedMemoryArgs(root, []string{"--kube-api-qps=300"})
	if err != nil {
		t.Fatal(err)
	}
	if len(args) != 1 || args[0] != "--memory-limit="+strconv.FormatInt(memlimit.Share(limit), 10) {
		t.Errorf("args %q, want --memory-limit at memlimit.Share of %d", args, limit)
	}
	if args, _ := installedMemoryArgs(root, []string{"--memory-limit=none"}); len(args) != 0 {
		t.Errorf("args %q added to a command line that sets its own limit", args)
	}
}

func repoRootForTest(t *testing.T) string {
	t.Helper()
	root, err := controlplane.FindRepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}
