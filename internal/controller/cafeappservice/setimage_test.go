package cafeappservice_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	appcli "github.com/cafe-io/cafe/internal/cli/app"
)

// cafeApp runs `cafe app <args> -n ns` against the suite's API server and
// returns what it printed.
func cafeApp(ctx context.Context, ns string, args ...string) (string, error) {
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	o := appcli.NewOptions(streams)
	o.Client = suite.Client
	cmd := appcli.NewCmdWithOptions(o)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(append(args, "--namespace="+ns))
	err := cmd.ExecuteContext(ctx)
	return out.String() + errOut.String(), err
}

// The issue's "documented image change recreates every pod": `cafe app
// set image` changes the image and nothing else, so the container keeps
// its ports, `cafe app diff --images-only` agrees, and the release updates
// the pods in place (same UIDs). A JSON merge patch of the containers, as
// docs/apps.md used to show, drops the ports, and diff says so.
func TestAppSetImageKeepsOtherFields(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	app := newApp(ns, "shop", "example.com/shop:v1")
	app.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "example.com/migrate:v1"}}
	createApp(ctx, t, g, app)
	g.Expect(waitForLatest(ctx, g, app).Name).To(Equal("shop-r1"))
	publish(ctx, g, app, "shop-r1")
	waitForOutcome(ctx, g, ns, "shop-r1", cafev1alpha1.ReleaseOutcomeSucceeded)
	before := podIdentities(listPods(ctx, g, ns))
	g.Expect(before).To(HaveLen(3))
	stored := getApp(ctx, g, app)

	out, err := cafeApp(ctx, ns, "set", "image", "shop", "sidecar=example.com/x:v1")
	g.Expect(err).To(MatchError(ContainSubstring(`has no container "sidecar" (containers: app; init containers: migrate)`)))
	out, err = cafeApp(ctx, ns, "set", "image", "shop", "app")
	g.Expect(err).To(MatchError(ContainSubstring(`"app" is not CONTAINER=IMAGE`)), out)
	// The controller may still write the app's status meanwhile: compare
	// what the command would write, not the resourceVersion.
	refused := getApp(ctx, g, app)
	g.Expect(refused.Generation).To(Equal(stored.Generation), "a refused command writes nothing")
	g.Expect(refused.Annotations).To(Equal(stored.Annotations), "a refused command writes nothing")

	out, err = cafeApp(ctx, ns, "set", "image", "shop", "app=example.com/shop:v2")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring("app example.com/shop:v1 → example.com/shop:v2"))
	g.Expect(out).To(ContainSubstring("revision to be: shop-r2"))
	changed := getApp(ctx, g, app)
	g.Expect(changed.Spec.Template.Spec.Containers[0].Ports).To(Equal(stored.Spec.Template.Spec.Containers[0].Ports), "ports kept")
	want := stored.Spec.Template.DeepCopy()
	want.Spec.Containers[0].Image = "example.com/shop:v2"
	g.Expect(changed.Spec.Template).To(Equal(*want), "nothing but the image changed")

	out, err = cafeApp(ctx, ns, "diff", "shop", "--images-only")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(HavePrefix("only images differ: app example.com/shop:v1 → example.com/shop:v2"))

	g.Expect(waitForLatest(ctx, g, app).Name).To(Equal("shop-r2"))
	publish(ctx, g, app, "shop-r2")
	waitForOutcome(ctx, g, ns, "shop-r2", cafev1alpha1.ReleaseOutcomeSucceeded)
	pods := listPods(ctx, g, ns)
	g.Expect(podIdentities(pods)).To(Equal(before), "updated in place: same pods, same UIDs")
	for _, p := range pods {
		g.Expect(p.Spec.Containers[0].Image).To(Equal("example.com/shop:v2"))
		g.Expect(p.Spec.Containers[0].Ports).To(ConsistOf(HaveField("ContainerPort", int32(8080))))
	}

	// The old documented way: a merge patch of the container list.
	patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"example.com/shop:v3"}]}}}}`)
	g.Expect(suite.Client.Patch(ctx, getApp(ctx, g, app), client.RawPatch("application/merge-patch+json", patch))).To(Succeed())
	out, err = cafeApp(ctx, ns, "diff", "shop", "--images-only")
	g.Expect(err).To(MatchError(ContainSubstring("differs in more than images: containers[0].ports removed")), out)
	g.Expect(out).To(HavePrefix("differs in more than images: containers[0].ports removed"))
}
