package controlplane

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
)

// Review finding 13: `cafe dev down` signals the PID in state.json only if
// that process is the one that wrote it (same start time): a PID recycled
// by another process is left alone, and the directory is still removed.
func TestSecurityF13_DevDownSignalsOnlyItsOwnProcess(t *testing.T) {
	writeState := func(g *WithT, dir string, s state) {
		data, err := json.Marshal(s)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(os.WriteFile(filepath.Join(dir, "state.json"), data, 0o600)).To(Succeed())
	}
	start := func(g *WithT) (*exec.Cmd, <-chan error) {
		cmd := exec.Command("sleep", "300")
		g.Expect(cmd.Start()).To(Succeed())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		return cmd, done
	}

	t.Run("someone else's process behind a recycled pid", func(t *testing.T) {
		g := NewWithT(t)
		cmd, done := start(g)
		defer func() { _ = cmd.Process.Kill(); <-done }()
		dir := t.TempDir()
		writeState(g, dir, state{PID: cmd.Process.Pid, PIDStart: processStartTime(cmd.Process.Pid) + 1})
		stopped, err := Down(t.Context(), dir)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(stopped).To(BeZero())
		g.Expect(processAlive(cmd.Process.Pid)).To(BeTrue(), "an unrelated process was signalled")
		g.Expect(dir).NotTo(BeADirectory())
	})
	t.Run("the process that wrote the state", func(t *testing.T) {
		g := NewWithT(t)
		cmd, done := start(g)
		dir := t.TempDir()
		writeState(g, dir, state{PID: cmd.Process.Pid, PIDStart: processStartTime(cmd.Process.Pid)})
		g.Expect(processStartTime(cmd.Process.Pid)).NotTo(BeZero())
		// Down waits for the pid to disappear; start's Wait reaps it.
		stopped, err := Down(t.Context(), dir)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(stopped).To(Equal(cmd.Process.Pid))
		g.Expect(<-done).To(HaveOccurred(), "ended by SIGTERM")
	})
}
