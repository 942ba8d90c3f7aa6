package controllerqueue

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/client-go/util/workqueue"

	"github.com/cafe-io/cafe/test/framework/managermetrics"
)

// metric returns the named workqueue metric of queue name (nil if absent).
func metric(g Gomega, family, name string) *dto.Metric {
	return managermetrics.Series(g, family, map[string]string{"name": name})
}

func TestQueueKeepsTheWorkqueueMetrics(t *testing.T) {
	g := NewWithT(t)
	// A name of its own per run: the registry outlives a test (-count).
	name := fmt.Sprintf("controllerqueue-test-%d", time.Now().UnixNano())
	q := New[string](name, workqueue.DefaultTypedControllerRateLimiter[string]())
	defer q.ShutDown()

	q.Add("a")
	q.Add("a") // deduplicated: one add
	g.Expect(metric(g, "workqueue_adds_total", name).GetCounter().GetValue()).To(Equal(1.0))
	g.Expect(metric(g, "workqueue_depth", name).GetGauge().GetValue()).To(Equal(1.0))

	item, _ := q.Get()
	g.Expect(item).To(Equal("a"))
	g.Expect(metric(g, "workqueue_queue_duration_seconds", name).GetHistogram().GetSampleCount()).To(Equal(uint64(1)))
	g.Expect(metric(g, "workqueue_depth", name).GetGauge().GetValue()).To(BeZero())

	// The unfinished-work gauges follow the item in process on the shared
	// ticker.
	g.Eventually(func(g Gomega) {
		g.Expect(metric(g, "workqueue_unfinished_work_seconds", name).GetGauge().GetValue()).To(BeNumerically(">", 0))
		g.Expect(metric(g, "workqueue_longest_running_processor_seconds", name).GetGauge().GetValue()).To(BeNumerically(">", 0))
	}).WithTimeout(5 * time.Second).Should(Succeed())
	q.Done(item)
	g.Expect(metric(g, "workqueue_work_duration_seconds", name).GetHistogram().GetSampleCount()).To(Equal(uint64(1)))
	g.Eventually(func(g Gomega) {
		g.Expect(metric(g, "workqueue_unfinished_work_seconds", name).GetGauge().GetValue()).To(BeZero())
	}).WithTimeout(5 * time.Second).Should(Succeed())

	q.AddRateLimited("b")
	g.Expect(metric(g, "workqueue_retries_total", name).GetCounter().GetValue()).To(Equal(1.0))
	g.Eventually(q.Len).Should(Equal(1), "a rate-limited item comes due")
}

func TestQueuesShareTheirTickers(t *testing.T) {
	g := NewWithT(t)
	before := Shared.(*sharedClock).running()
	var queues []workqueue.TypedRateLimitingInterface[string]
	for i := range 5 {
		queues = append(queues, New[string]("controllerqueue-share-"+string(rune('a'+i)), workqueue.DefaultTypedControllerRateLimiter[string]()))
	}
	// Each queue has a ticker for its unfinished-work gauges (started by
	// a goroutine of its own) and one for its delaying heartbeat: two
	// timers, whatever the number of queues.
	g.Eventually(Shared.(*sharedClock).running).Should(Equal(2))
	g.Consistently(Shared.(*sharedClock).running, 200*time.Millisecond).Should(Equal(2))
	for _, q := range queues {
		q.ShutDown()
	}
	g.Eventually(Shared.(*sharedClock).running).Should(Equal(before))
}
