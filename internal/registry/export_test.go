package registry

import "time"

// SlowPublishing delays the publication of every table a consumer builds
// from watch events by d, until the test ends.
func SlowPublishing(t interface{ Cleanup(func()) }, d time.Duration) {
	beforePublish = func() { time.Sleep(d) }
	t.Cleanup(func() { beforePublish = nil })
}
