package cafedeployment_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/controller/cafedeployment"
)

// appRoute creates the app's Service (selecting the pods of builders'
// CafeDeployment) and an HTTPRoute with a rule for the app and one for
// another app, and returns the route's rules as created.
func appRoute(ctx context.Context, g *WithT, ns, app string) []gatewayv1.HTTPRouteRule {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": app}, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	g.Expect(suite.Client.Create(ctx, svc)).To(Succeed())
	route := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "gw"}}},
			Rules: []gatewayv1.HTTPRouteRule{
				{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(app), Port: ptr.To[gatewayv1.PortNumber](80)}}}}},
				{
					Matches:     []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To("/docs")}}},
					BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "docs", Port: ptr.To[gatewayv1.PortNumber](80)}}}},
				},
			},
		},
	}
	g.Expect(suite.Client.Create(ctx, route)).To(Succeed())
	return getRoute(ctx, g, ns, app).Spec.Rules
}

func getRoute(ctx context.Context, g Gomega, ns, name string) *gatewayv1.HTTPRoute {
	r := &gatewayv1.HTTPRoute{}
	g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, r)).To(Succeed())
	return r
}

// backendsOf names each backendRef of a rule with its weight.
func backendsOf(rule gatewayv1.HTTPRouteRule) map[string]int32 {
	out := map[string]int32{}
	for _, b := range rule.BackendRefs {
		out[string(b.Name)] = ptr.Deref(b.Weight, 1)
	}
	return out
}

func trafficDeployment(ns string, step cafev1alpha1.TrafficStep) *cafev1alpha1.CafeDeployment {
	cd := newCafeDeployment(ns, "shop", "app:v1")
	cd.Spec.Strategy.NeedWaitingForConfirm = ptr.To(false)
	cd.Spec.Strategy.Traffic = &cafev1alpha1.TrafficStrategy{Route: "shop", Service: "shop", Steps: []cafev1alpha1.TrafficStep{step}}
	return cd
}

func TestATrafficStepSteersTheRouteAfterItsGroupUntilConfirmedThenRestoresIt(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	original := appRoute(ctx, g, ns, "shop")
	cd := trafficDeployment(ns, cafev1alpha1.TrafficStep{Group: 0, Weight: ptr.To[int32](10)})
	releasedAt(ctx, t, g, cd)
	g.Expect(getRoute(ctx, g, ns, "shop").Spec.Rules).To(Equal(original), "no step runs outside a release")

	releaseImage(ctx, g, cd, "app:v2")
	// While the beta group's pods are updated (no kubelet reports them yet),
	// the updated pods get nothing: the step alone decides their share.
	g.Eventually(func(g Gomega) {
		g.Expect(getDeployment(ctx, g, cd).Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseProgressing))
		g.Expect(backendsOf(getRoute(ctx, g, ns, "shop").Spec.Rules[0])).To(Equal(map[string]int32{"shop-canary": 0, "shop-stable": 100}))
	}).Should(Succeed())
	var st cafev1alpha1.CafeDeploymentStatus
	g.Eventually(func(g Gomega) {
		suite.Kubelet.CatchUp(ctx, g, ns)
		got := getDeployment(ctx, g, cd)
		st = got.Status
		g.Expect(st.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseVerifying))
		g.Expect(st.Release.CurrentGroup).To(HaveValue(BeEquivalentTo(0)))
		g.Expect(st.Release.Groups[0].Traffic).NotTo(BeNil())
		g.Expect(st.Release.Groups[0].Traffic.StartTime).NotTo(BeNil())
		c := meta.FindStatusCondition(got.Status.Conditions, cafev1alpha1.CafeDeploymentTrafficStepCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Message).To(Equal("group 0: 10% to shop-canary, until group 0 is confirmed (cafe deploy confirm shop)"))
	}).Should(Succeed())
	g.Expect(st.Release.Groups[0].Traffic.Split).To(Equal("10% to shop-canary"))
	g.Expect(st.Release.TrafficStep).To(Equal("group 0: 10% to shop-canary"), "the Step column")
	g.Expect(st.Release.Verdict).To(BeEmpty(), "a step without analysis has no verdict")

	// The canary and stable Services select the app's pods of each revision.
	for name, rev := range map[string]string{"shop-canary": st.UpdateRevision, "shop-stable": st.CurrentRevision} {
		svc := &corev1.Service{}
		g.Expect(suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, svc)).To(Succeed())
		g.Expect(svc.Spec.Selector).To(Equal(map[string]string{"app": "shop", cafev1alpha1.RevisionHashLabel: rev}), name)
		g.Expect(svc.Spec.Ports).To(HaveLen(1))
		g.Expect(svc.Spec.Ports[0].TargetPort).To(Equal(intstr.FromInt32(8080)))
		g.Expect(metav1.IsControlledBy(svc, cd)).To(BeTrue(), "%s is the CafeDeployment's", name)
	}
	g.Expect(st.UpdateRevision).NotTo(Equal(st.CurrentRevision))

	// The route splits the app's rule, leaves the other, keeps its original.
	route := getRoute(ctx, g, ns, "shop")
	g.Expect(route.Spec.Rules).To(HaveLen(2))
	g.Expect(backendsOf(route.Spec.Rules[0])).To(Equal(map[string]int32{"shop-canary": 10, "shop-stable": 90}))
	g.Expect(route.Spec.Rules[1]).To(Equal(original[1]))
	g.Expect(route.Annotations).To(HaveKey(cafedeployment.OriginalRulesAnnotation))

	// The step is a barrier: nothing past the beta group is released.
	g.Consistently(func(g Gomega) {
		suite.Kubelet.CatchUp(ctx, g, ns)
		got := getDeployment(ctx, g, cd)
		g.Expect(got.Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseVerifying))
		g.Expect(got.Status.UpdatedReplicas).To(HaveValue(BeEquivalentTo(3)), "one pod per zone: the beta group")
	}).WithTimeout(2 * time.Second).Should(Succeed())

	// A pause stops pod operations, not the step: the route stays split.
	updateDeployment(ctx, g, cd, func(cd *cafev1alpha1.CafeDeployment) { cd.Spec.Strategy.Pause = true })
	g.Eventually(func(g Gomega) {
		g.Expect(getDeployment(ctx, g, cd).Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhasePaused))
	}).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(backendsOf(getRoute(ctx, g, ns, "shop").Spec.Rules[0])).To(Equal(map[string]int32{"shop-canary": 10, "shop-stable": 90}))
	}).WithTimeout(2 * time.Second).Should(Succeed())
	updateDeployment(ctx, g, cd, func(cd *cafev1alpha1.CafeDeployment) { cd.Spec.Strategy.Pause = false })

	confirm(ctx, g, cd, 0, "alice")
	g.Eventually(func(g Gomega) {
		suite.Kubelet.CatchUp(ctx, g, ns)
		got := getDeployment(ctx, g, cd)
		g.Expect(got.Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseCompleted))
		g.Expect(got.Status.Release.Groups[0].ConfirmedBy).To(Equal("alice"))
		g.Expect(got.Status.Release.Groups[0].Traffic.EndTime).NotTo(BeNil())
		g.Expect(meta.IsStatusConditionFalse(got.Status.Conditions, cafev1alpha1.CafeDeploymentTrafficStepCondition)).To(BeTrue())
		route := getRoute(ctx, g, ns, "shop")
		g.Expect(route.Spec.Rules).To(Equal(original), "the route is plain again")
		g.Expect(route.Annotations).NotTo(HaveKey(cafedeployment.OriginalRulesAnnotation))
	}).Should(Succeed())
}

func TestAHeaderStepWithADurationEndsByItself(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	original := appRoute(ctx, g, ns, "shop")
	cd := trafficDeployment(ns, cafev1alpha1.TrafficStep{Group: 0, DurationSeconds: ptr.To[int32](3),
		Headers: []cafev1alpha1.TrafficHeader{{Name: "x-cafe-canary", Value: "always"}}})
	releasedAt(ctx, t, g, cd)

	releaseImage(ctx, g, cd, "app:v2")
	g.Eventually(func(g Gomega) {
		suite.Kubelet.CatchUp(ctx, g, ns)
		g.Expect(getDeployment(ctx, g, cd).Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseVerifying))
		rules := getRoute(ctx, g, ns, "shop").Spec.Rules
		g.Expect(rules).To(HaveLen(3))
		g.Expect(rules[0].Matches).To(HaveLen(1))
		g.Expect(rules[0].Matches[0].Headers).To(ConsistOf(HaveField("Name", gatewayv1.HTTPHeaderName("x-cafe-canary"))))
		g.Expect(backendsOf(rules[0])).To(HaveKey("shop-canary"))
		g.Expect(backendsOf(rules[1])).To(HaveKey("shop-stable"))
	}).Should(Succeed())

	// No one confirms: the step ends after its 3 seconds.
	g.Eventually(func(g Gomega) {
		suite.Kubelet.CatchUp(ctx, g, ns)
		got := getDeployment(ctx, g, cd)
		g.Expect(got.Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseCompleted))
		tr := got.Status.Release.Groups[0].Traffic
		g.Expect(tr.EndTime.Sub(tr.StartTime.Time)).To(BeNumerically(">=", 3*time.Second))
		g.Expect(getRoute(ctx, g, ns, "shop").Spec.Rules).To(Equal(original))
	}).WithTimeout(time.Minute).Should(Succeed())
}

func TestATrafficStepWithoutItsRouteSaysSoAndHoldsTheRelease(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	g.Expect(suite.Client.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "shop"}, Ports: []corev1.ServicePort{{Port: 80}}},
	})).To(Succeed())
	cd := trafficDeployment(ns, cafev1alpha1.TrafficStep{Group: 0, Weight: ptr.To[int32](10), DurationSeconds: ptr.To[int32](1)})
	releasedAt(ctx, t, g, cd)
	releaseImage(ctx, g, cd, "app:v2")
	g.Eventually(func(g Gomega) {
		suite.Kubelet.CatchUp(ctx, g, ns)
		got := getDeployment(ctx, g, cd)
		c := meta.FindStatusCondition(got.Status.Conditions, cafev1alpha1.CafeDeploymentTrafficStepCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(cafev1alpha1.CafeDeploymentTrafficErrorReason))
		g.Expect(c.Message).To(ContainSubstring("spec.strategy.traffic.route: reading HTTPRoute shop"))
		g.Expect(got.Status.Release.Phase).To(Equal(cafev1alpha1.ReleasePhaseVerifying))
		g.Expect(got.Status.Release.Groups[0].Traffic.StartTime).To(BeNil(), "the step's time does not run while the route is not steered")
	}).Should(Succeed())
}
