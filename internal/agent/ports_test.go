package agent

import (
	"context"
	"os/exec"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// An instance told PortBusy is reconciled as soon as the agent reaps the
// process that held its port, not a health period later; one waiting for
// another port is not. Real processes; a fake client for the status.
func TestAProcessExitWakesTheInstanceWaitingForItsPort(t *testing.T) {
	g := NewWithT(t)
	leaving, arriving, elsewhere := instanceNamed("leaving"), instanceNamed("arriving"), instanceNamed("elsewhere")
	r := hostWith(t, nil, leaving, arriving, elsewhere)
	r.period = time.Hour // only the exit can wake the waiter within the test

	holder := exec.Command("sleep", "60")
	g.Expect(holder.Start()).To(Succeed())
	t.Cleanup(func() { _ = holder.Process.Kill() })
	held := &child{rec: &processRecord{PID: holder.Process.Pid, Port: 18080}, exited: make(chan struct{})}
	r.children["team/leaving"] = held
	go r.reap(leaving, held, holder)

	res, _ := r.startChild(context.Background(), arriving, launchSpec{Key: "team/arriving", Port: 18080}, 0)
	g.Expect(res.RequeueAfter).To(Equal(time.Hour), "PortBusy: retried a period later at the latest")
	r.mu.Lock()
	r.addPortWaiter(18081, client.ObjectKeyFromObject(elsewhere))
	r.mu.Unlock()
	g.Consistently(r.exits).WithTimeout(200*time.Millisecond).ShouldNot(Receive(), "nothing exited yet")

	g.Expect(holder.Process.Kill()).To(Succeed())
	woken := map[string]bool{}
	for range 2 {
		var ev event.TypedGenericEvent[*cafev1alpha1.ClassicInstance]
		g.Eventually(r.exits).WithTimeout(10 * time.Second).Should(Receive(&ev))
		woken[ev.Object.Name] = true
	}
	g.Expect(woken).To(Equal(map[string]bool{"leaving": true, "arriving": true}), "the exited instance and the one waiting for its port")
	g.Consistently(r.exits).WithTimeout(200*time.Millisecond).ShouldNot(Receive(), "the instance waiting for another port sleeps on")
	g.Expect(r.portFreed(18080)).To(BeEmpty(), "a waiter is woken once")
}

func instanceNamed(name string) *cafev1alpha1.ClassicInstance {
	return &cafev1alpha1.ClassicInstance{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name},
		Spec:       cafev1alpha1.ClassicInstanceSpec{HostName: "vm-1"},
	}
}
