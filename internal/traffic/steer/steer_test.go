package steer

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

var backends = Backends{App: "pay", Canary: "pay-canary", Stable: "pay-stable"}

func ref(name string, port int32) gatewayv1.HTTPBackendRef {
	return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{
		Name: gatewayv1.ObjectName(name), Port: ptr.To(gatewayv1.PortNumber(port)),
	}}}
}

func pathPrefix(p string) gatewayv1.HTTPRouteMatch {
	return gatewayv1.HTTPRouteMatch{Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To(p)}}
}

var canaryHeader = gatewayv1.HTTPHeaderMatch{Name: "x-cafe-canary", Value: "always"}

// A route of the app (/pay) beside another app's rule (/docs).
func route() []gatewayv1.HTTPRouteRule {
	return []gatewayv1.HTTPRouteRule{
		{Name: ptr.To[gatewayv1.SectionName]("pay"), Matches: []gatewayv1.HTTPRouteMatch{pathPrefix("/pay")}, BackendRefs: []gatewayv1.HTTPBackendRef{ref("pay", 8080)}},
		{Matches: []gatewayv1.HTTPRouteMatch{pathPrefix("/docs")}, BackendRefs: []gatewayv1.HTTPBackendRef{ref("docs", 80)}},
	}
}

func TestAWeightStepSplitsTheAppsRulesBetweenCanaryAndStable(t *testing.T) {
	g := NewWithT(t)
	original := route()
	rules, err := Rules(original, "shop", backends, Step{Weight: 10})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rules).To(HaveLen(2))
	g.Expect(rules[0].Matches).To(Equal(original[0].Matches))
	g.Expect(rules[0].BackendRefs).To(Equal([]gatewayv1.HTTPBackendRef{
		{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "pay-canary", Port: ptr.To(gatewayv1.PortNumber(8080))}, Weight: ptr.To[int32](10)}},
		{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "pay-stable", Port: ptr.To(gatewayv1.PortNumber(8080))}, Weight: ptr.To[int32](90)}},
	}))
	g.Expect(rules[1]).To(Equal(original[1]), "another app's rule is untouched")
	g.Expect(original).To(Equal(route()), "the original rules are not modified")

	none, err := Rules(original, "shop", backends, Step{Weight: 0})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*none[0].BackendRefs[0].Weight).To(BeEquivalentTo(0), "weight 0 sends nothing to the canary")
	g.Expect(*none[0].BackendRefs[1].Weight).To(BeEquivalentTo(100))
}

func TestAHeaderStepSendsOnlyMatchingRequestsToTheCanary(t *testing.T) {
	g := NewWithT(t)
	rules, err := Rules(route(), "shop", backends, Step{Headers: []gatewayv1.HTTPHeaderMatch{canaryHeader}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rules).To(HaveLen(3))

	canary, stable := rules[0], rules[1]
	g.Expect(*canary.Name).To(BeEquivalentTo("pay-canary"), "rule names stay unique")
	g.Expect(canary.Matches).To(HaveLen(1))
	g.Expect(canary.Matches[0].Path).To(Equal(pathPrefix("/pay").Path), "the rule's own match is kept")
	g.Expect(canary.Matches[0].Headers).To(ConsistOf(canaryHeader))
	g.Expect(canary.BackendRefs).To(HaveLen(1))
	g.Expect(string(canary.BackendRefs[0].Name)).To(Equal("pay-canary"))

	g.Expect(*stable.Name).To(BeEquivalentTo("pay"))
	g.Expect(stable.Matches).To(Equal(route()[0].Matches))
	g.Expect(stable.BackendRefs).To(HaveLen(1))
	g.Expect(string(stable.BackendRefs[0].Name)).To(Equal("pay-stable"))
	g.Expect(rules[2]).To(Equal(route()[1]))

	// A rule that matches every request gets a match of the headers alone.
	catchAll := []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{ref("pay", 8080)}}}
	rules, err = Rules(catchAll, "shop", backends, Step{Headers: []gatewayv1.HTTPHeaderMatch{canaryHeader}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rules[0].Matches).To(Equal([]gatewayv1.HTTPRouteMatch{{Headers: []gatewayv1.HTTPHeaderMatch{canaryHeader}}}))
	g.Expect(rules[0].Name).To(BeNil())
	g.Expect(rules[1].Matches).To(BeEmpty())
}

func TestRoutesThatCannotBeSteeredSayWhy(t *testing.T) {
	g := NewWithT(t)
	other := route()[1:]
	_, err := Rules(other, "shop", backends, Step{Weight: 10})
	g.Expect(err).To(MatchError(ErrNoRuleToSteer))

	// A Service of the same name in another namespace is not the app's.
	elsewhere := route()
	elsewhere[0].BackendRefs[0].Namespace = ptr.To[gatewayv1.Namespace]("other")
	_, err = Rules(elsewhere, "shop", backends, Step{Weight: 10})
	g.Expect(err).To(MatchError(ErrNoRuleToSteer))

	shared := route()
	shared[0].BackendRefs = append(shared[0].BackendRefs, ref("legacy-pay", 8080))
	_, err = Rules(shared, "shop", backends, Step{Weight: 10})
	g.Expect(err).To(MatchError(ErrSharedRule))
	g.Expect(err.Error()).To(HavePrefix("rule 0: "))

	var many []gatewayv1.HTTPRouteRule
	for range 9 {
		many = append(many, route()[0])
	}
	_, err = Rules(many, "shop", backends, Step{Weight: 10})
	g.Expect(err).NotTo(HaveOccurred(), "a weight step adds no rule")
	_, err = Rules(many, "shop", backends, Step{Headers: []gatewayv1.HTTPHeaderMatch{canaryHeader}})
	g.Expect(err).To(MatchError(ErrTooManyRules), "18 rules")
}
