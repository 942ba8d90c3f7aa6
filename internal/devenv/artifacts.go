package devenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"sigs.k8s.io/controller-runtime/pkg/log"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/artifact"
)

// DemoApp is the classic demo app's packages (examples/demo-app, versions
// v1, v2 and v3-fail) served by an artifact store on loopback: a plain
// HTTP file server, what a bank's artifact repository is to its VMs.
type DemoApp struct {
	// BaseURL is the store's address, http://127.0.0.1:<port>/.
	BaseURL  string
	Packages []artifact.Package
}

// ServeDemoApp builds the demo app's packages from demoBinary into dir and
// serves dir on 127.0.0.1 (an ephemeral port) until ctx ends.
func ServeDemoApp(ctx context.Context, demoBinary, dir string) (*DemoApp, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the artifact store's directory: %w", err)
	}
	pkgs, err := artifact.BuildDemoPackages(demoBinary, dir)
	if err != nil {
		return nil, fmt.Errorf("building the demo app's packages: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the artifact store: %w", err)
	}
	store := &artifact.Store{Dir: dir}
	go func() {
		if err := store.Serve(ctx, ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.FromContext(ctx).Error(err, "the artifact store stopped")
		}
	}()
	return &DemoApp{BaseURL: "http://" + ln.Addr().String() + "/", Packages: pkgs}, nil
}

// Artifact is the ClassicArtifact of the demo app's version (v1, v2,
// v3-fail) serving on port; nil if there is no such version.
func (d *DemoApp) Artifact(version string, port int32) *cafev1alpha1.ClassicArtifact {
	for _, p := range d.Packages {
		if p.Version == version {
			return &cafev1alpha1.ClassicArtifact{
				URL: d.BaseURL + filepath.Base(p.File), SHA256: p.SHA256,
				Command: []string{"bin/demo-app"}, Port: port, HealthPath: "/healthz",
			}
		}
	}
	return nil
}
