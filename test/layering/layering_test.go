// Package layering checks the direction of CAFE's imports:
//
//	api ← leaf mechanisms ← controllers / webhooks ← manager ← devenv ← cli ← cmd
//
// with nothing pointing back up. Controllers and webhooks are independent
// of each other (each reads shared rules from api/v1alpha1 or a leaf
// package), so a controller can be changed, tested or moved to another
// binary alone, and the CLI links no controller it does not start.
package layering

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/cafe-io/cafe/"

// pkg is what `go list -json` says of one of the module's packages
// (imports of non-test files only: tests may reach anything).
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// rank orders the layers: a package may import only packages of a lower
// rank, or of its own rank where sameRankAllowed says so.
func rank(path string) int {
	switch {
	case path == "api" || strings.HasPrefix(path, "api/") || path == "config":
		return 0
	case strings.HasPrefix(path, "internal/controller/"), strings.HasPrefix(path, "internal/webhook/"):
		return 2
	case path == "internal/manager":
		return 3
	case path == "internal/devenv":
		return 4
	case path == "internal/cli" || strings.HasPrefix(path, "internal/cli/"):
		return 5
	case strings.HasPrefix(path, "cmd/"):
		return 6
	case strings.HasPrefix(path, "test/"):
		return 7
	default: // internal/<mechanism>: lossless, revision, scheme, audit, ...
		return 1
	}
}

// component is the unit within which packages of rank 2 may import each
// other: internal/controller/<name> and its subpackages, or
// internal/webhook/<name>.
func component(path string) string {
	parts := strings.SplitN(path, "/", 4)
	if len(parts) < 3 {
		return path
	}
	return strings.Join(parts[:3], "/")
}

// cliEntryPoints start controllers (cafe manager, cafe dev up) and so may
// link them; every other CLI package talks to the API server only.
var cliEntryPoints = []string{"internal/cli", "internal/cli/managercmd", "internal/cli/dev"}

// managerImporters are the only non-test packages that build the manager.
var managerImporters = []string{"internal/devenv", "internal/cli/managercmd"}

func sameRankAllowed(from, to string) bool {
	switch rank(from) {
	case 2:
		return component(from) == component(to)
	default:
		return true
	}
}

// violations lists every edge of pkgs (paths relative to the module) that
// breaks the layering.
func violations(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		from := p.ImportPath
		for _, to := range p.Imports {
			switch {
			case rank(to) > rank(from):
				out = append(out, fmt.Sprintf("%s imports %s, a higher layer", from, to))
			case rank(to) == rank(from) && !sameRankAllowed(from, to):
				out = append(out, fmt.Sprintf("%s imports %s: controllers and webhooks do not import each other; move the shared rule to api/v1alpha1 or a leaf package", from, to))
			case to == "internal/manager" && !slices.Contains(managerImporters, from) && rank(from) < 7:
				out = append(out, fmt.Sprintf("%s imports internal/manager: only %s build the manager", from, strings.Join(managerImporters, ", ")))
			}
		}
		linksControllers := !strings.HasPrefix(from, "internal/controller/") && (strings.HasPrefix(from, "internal/webhook/") ||
			(rank(from) == 5 && !slices.Contains(cliEntryPoints, from)))
		for _, dep := range p.Deps {
			switch {
			case linksControllers && strings.HasPrefix(dep, "internal/controller/"):
				out = append(out, fmt.Sprintf("%s links %s (through its imports)", from, dep))
			case strings.HasPrefix(from, "internal/controller/") && strings.HasPrefix(dep, "internal/controller/") && component(dep) != component(from):
				out = append(out, fmt.Sprintf("%s links another controller, %s (through its imports)", from, dep))
			}
		}
	}
	return out
}

// listModule runs `go list -json ./...` and keeps the module's own
// packages and imports, relative to the module path.
func listModule(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("go list: %v\n%s", err, exit.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	own := func(paths []string) []string {
		var kept []string
		for _, p := range paths {
			if rel, ok := strings.CutPrefix(p, module); ok {
				kept = append(kept, rel)
			}
		}
		return kept
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		p.ImportPath = strings.TrimPrefix(p.ImportPath, module)
		p.Imports, p.Deps = own(p.Imports), own(p.Deps)
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestImportsPointDownTheLayers(t *testing.T) {
	pkgs := listModule(t)
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages: not the whole module", len(pkgs))
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// The rules catch each kind of edge the layering forbids.
func TestViolationsNameEachForbiddenEdge(t *testing.T) {
	tests := []struct {
		name string
		pkg  pkg
		want string
	}{
		{"a controller importing another controller", pkg{ImportPath: "internal/controller/cafedeployment", Imports: []string{"internal/controller/inplaceset"}}, "controllers and webhooks do not import each other"},
		{"a controller linking another through a subpackage", pkg{ImportPath: "internal/controller/cafedeployment/podset", Deps: []string{"internal/controller/inplaceset"}}, "links another controller"},
		{"a webhook importing a controller", pkg{ImportPath: "internal/webhook/releaseorder", Imports: []string{"internal/controller/releaseorder"}}, "do not import each other"},
		{"a webhook linking a controller", pkg{ImportPath: "internal/webhook/pod", Deps: []string{"internal/controller/inplaceset"}}, "links internal/controller/inplaceset"},
		{"a CLI verb linking a controller", pkg{ImportPath: "internal/cli/deploy", Deps: []string{"internal/controller/inplaceset"}}, "links internal/controller/inplaceset"},
		{"a CLI verb importing the manager", pkg{ImportPath: "internal/cli/kubeflags", Imports: []string{"internal/manager"}}, "only internal/devenv"},
		{"a leaf mechanism importing a controller", pkg{ImportPath: "internal/lossless", Imports: []string{"internal/controller/inplaceset"}}, "a higher layer"},
		{"the API importing anything internal", pkg{ImportPath: "api/v1alpha1", Imports: []string{"internal/revision"}}, "a higher layer"},
		{"a controller importing the manager", pkg{ImportPath: "internal/controller/releaseorder", Imports: []string{"internal/manager"}}, "a higher layer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := violations([]pkg{tt.pkg})
			if len(got) != 1 || !strings.Contains(got[0], tt.want) {
				t.Fatalf("violations = %q, want one containing %q", got, tt.want)
			}
		})
	}
	allowed := []pkg{
		{ImportPath: "internal/controller/cafedeployment", Imports: []string{"internal/controller/cafedeployment/podset", "internal/lossless", "api/v1alpha1"}},
		{ImportPath: "internal/cli/managercmd", Imports: []string{"internal/manager"}, Deps: []string{"internal/controller/inplaceset"}},
		{ImportPath: "internal/devenv", Imports: []string{"internal/manager"}},
		{ImportPath: "test/e2e", Imports: []string{"internal/manager", "internal/controller/inplaceset"}},
	}
	if got := violations(allowed); len(got) > 0 {
		t.Fatalf("allowed edges reported: %q", got)
	}
}
