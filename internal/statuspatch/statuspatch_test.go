package statuspatch_test

import (
	"context"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/internal/statuspatch"
)

func podStatus(p *corev1.Pod) any { return p.Status }

// newClient serves pod (when not nil) and counts status patches.
func newClient(pod *corev1.Pod, patches *atomic.Int32) client.Client {
	b := fake.NewClientBuilder().WithScheme(scheme.New()).WithStatusSubresource(&corev1.Pod{}).
		WithInterceptorFuncs(interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			patches.Add(1)
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		}})
	if pod != nil {
		b = b.WithObjects(pod)
	}
	return b.Build()
}

func TestIfChangedWritesOnlyAChangedStatus(t *testing.T) {
	ctx := context.Background()
	stored := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-0"}, Status: corev1.PodStatus{Phase: corev1.PodPending}}
	var patches atomic.Int32
	c := newClient(stored.DeepCopy(), &patches)

	before := &corev1.Pod{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(stored), before); err != nil {
		t.Fatal(err)
	}
	same := before.DeepCopy()
	same.Labels = map[string]string{"only": "metadata"}
	wrote, err := statuspatch.IfChanged(ctx, c, before, same, podStatus)
	if err != nil || wrote || patches.Load() != 0 {
		t.Fatalf("unchanged status: wrote=%v err=%v patches=%d, want no request", wrote, err, patches.Load())
	}

	changed := before.DeepCopy()
	changed.Status.Phase = corev1.PodRunning
	wrote, err = statuspatch.IfChanged(ctx, c, before, changed, podStatus)
	if err != nil || !wrote || patches.Load() != 1 {
		t.Fatalf("changed status: wrote=%v err=%v patches=%d, want one patch", wrote, err, patches.Load())
	}
	after := &corev1.Pod{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(stored), after); err != nil {
		t.Fatal(err)
	}
	if after.Status.Phase != corev1.PodRunning {
		t.Fatalf("stored phase %q, want Running", after.Status.Phase)
	}
	if changed.ResourceVersion != after.ResourceVersion {
		t.Fatalf("the object carries resourceVersion %q, the server stored %q", changed.ResourceVersion, after.ResourceVersion)
	}
}

func TestIfChangedIgnoresAnObjectDeletedMeanwhile(t *testing.T) {
	var patches atomic.Int32
	c := newClient(nil, &patches)
	before := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "gone"}}
	changed := before.DeepCopy()
	changed.Status.Phase = corev1.PodRunning
	wrote, err := statuspatch.IfChanged(context.Background(), c, before, changed, podStatus)
	if err != nil || wrote || patches.Load() != 1 {
		t.Fatalf("deleted object: wrote=%v err=%v patches=%d, want one attempt, no error, nothing written", wrote, err, patches.Load())
	}
}
