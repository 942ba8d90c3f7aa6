package framework

import (
	"context"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// updateBackoff outlasts a controller that writes an object's status many
// times a second in a release (client-go's DefaultRetry gives up after five
// tries within about 50 ms): about 10 s in all.
var updateBackoff = wait.Backoff{Steps: 20, Duration: 10 * time.Millisecond, Factor: 1.5, Jitter: 0.1, Cap: time.Second}

// Update re-reads obj, applies mutate and writes it back, retrying on
// conflicts with the controllers' own writes; obj ends up as stored. Pass a
// copy to leave the caller's object alone.
func Update[T client.Object](ctx context.Context, c client.Client, obj T, mutate func(T)) error {
	return retry.RetryOnConflict(updateBackoff, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mutate(obj)
		return c.Update(ctx, obj)
	})
}

// Get reads the stored state of obj (by namespace and name) into a new
// object, leaving obj alone.
func Get[T any, PT interface {
	*T
	client.Object
}](ctx context.Context, g Gomega, c client.Client, obj PT) PT {
	out := PT(new(T))
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(obj), out)).To(Succeed())
	return out
}
