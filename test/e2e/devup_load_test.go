package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/cafe-io/cafe/internal/devenv"
)

// loadManifest is a CafeDeployment whose InPlaceSets keep CAFE's
// controllers creating pods for minutes.
const loadManifest = `apiVersion: cafe.io/v1alpha1
kind: CafeDeployment
metadata:
  name: load
  namespace: default
spec:
  replicas: 30000
  selector:
    matchLabels: {app: load}
  template:
    metadata:
      labels: {app: load}
    spec:
      containers:
      - name: app
        image: example.com/load:v1
  topology:
    values: [zone-a, zone-b, zone-c]
`

// Issue 12 ("one kubectl scale swamps the cluster"): `cafe dev up`
// ignored Ctrl-C while its controllers were busy with a huge CafeDeployment.
// Now, while the controllers create pods as fast as they may, one Ctrl-C
// stops it within the manager's shutdown bound plus the children's grace,
// and no process is left.
func TestDevUpStopsOnCtrlCUnderLoad(t *testing.T) {
	g := NewWithT(t)
	up := startDevUp(t, "--nodes", "3", "--traffic=false")
	manifest := filepath.Join(t.TempDir(), "load.yaml")
	g.Expect(os.WriteFile(manifest, []byte(loadManifest), 0o600)).To(Succeed())
	kubectl(t, up.kubeconfig, "apply", "-f", manifest)

	// Wait on state: the controllers are busy creating pods.
	g.Eventually(func() int {
		out := kubectl(t, up.kubeconfig, "get", "inplacesets", "-n", "default", "-o", "jsonpath={.items[*].status.replicas}")
		total := 0
		for _, f := range strings.Fields(out) {
			n, _ := strconv.Atoi(f)
			total += n
		}
		return total
	}).WithTimeout(5*time.Minute).WithPolling(2*time.Second).Should(BeNumerically(">=", 300), "pods being created")

	bound := devenv.ManagerShutdownTimeout + 50*time.Second // + 10 s of grace for each of five children
	start := time.Now()
	g.Expect(up.cmd.Process.Signal(os.Interrupt)).To(Succeed())
	select {
	case <-up.done:
	case <-time.After(bound):
		t.Fatalf("cafe dev up did not exit within %s of Ctrl-C under load\n%s", bound, up.stderr.String())
	}
	g.Expect(up.exitErr).NotTo(HaveOccurred(), up.stderr.String())
	t.Logf("stopped %s after Ctrl-C", time.Since(start).Round(time.Second))
	g.Expect(processesUsing(up.stateDir)).To(BeEmpty(), "Ctrl-C left processes behind")
}
