// Package controllerqueue gives CAFE's controllers their work queues:
// client-go's rate-limiting queue, with the standard workqueue metrics,
// whose periodic bookkeeping shares one timer per period across the
// process.
//
// Every metered work queue refreshes its unfinished-work gauges on a ticker
// of its own (500 ms), and controller-runtime's priority queue offers no
// way to share it. With the manager's fourteen controllers that was some
// thirty wake-ups a second of an otherwise idle manager, over half of its CPU on a quiet
// cluster (measured: 3.5 ms/s with a ticker per queue, 1.7 ms/s without)
// and of the CPU it spends while another controller releases pods it does
// not manage. client-go's queue takes a clock; this package's clock hands
// every queue's ticker of one period the ticks of one shared timer, so the
// process wakes once per period, not once per queue.
//
// The priority queue's one difference, lower priority for objects the
// informers list at start-up than for changes, is given up: CAFE's
// reconcilers do not depend on the order.
package controllerqueue

import (
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// New is a controller's queue: named after the controller (the metrics'
// name label), rate-limited by rateLimiter, its tickers shared.
func New[T comparable](name string, rateLimiter workqueue.TypedRateLimiter[T]) workqueue.TypedRateLimitingInterface[T] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(rateLimiter, workqueue.TypedRateLimitingQueueConfig[T]{
		Name:  name,
		Clock: Shared,
	})
}

// Options returns o with the queue of this package: every controller of
// cafe manager and of cafe agent is built with it (builder.WithOptions).
func Options(o controller.Options) controller.Options {
	o.NewQueue = New[reconcile.Request]
	return o
}
