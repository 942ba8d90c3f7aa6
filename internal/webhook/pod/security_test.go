package pod_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/config"
	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/test/framework"
)

// Review finding 2a: `kubectl drain` (the Eviction API) deleted serving
// pods without delete admission. Now the eviction is refused with 429 — the
// answer kubectl drain retries — and recorded as a drain request; CAFE
// drains the pod, deletes and replaces it; the retried eviction finds it
// gone. Lossless on the watch stream.
func TestSecurityF2a_EvictionWaitsForDrain(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	servingSet(ctx, t, g, ns, "web", 3)
	erin := as(ctx, t, g, ns, "erin", editor)
	rec := suite.Record(ctx, t, g, ns)

	victim := pods(ctx, g, ns, "web")[0]
	evict := func() error {
		return erin.SubResource("eviction").Create(ctx, &victim, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: victim.Name}})
	}
	err := evict()
	g.Expect(apierrors.IsTooManyRequests(err)).To(BeTrue(), "a serving pod's eviction is answered 429 so evicters retry; got %v", err)
	g.Expect(err).To(MatchError(ContainSubstring("a drain was requested")))
	g.Expect(drainRequestedBy(ctx, g, &victim)).To(Equal("erin"), "the drain request records the authenticated evicter")

	replacedAndServing(ctx, g, ns, "web", &victim, 3)
	g.Expect(apierrors.IsNotFound(evict())).To(BeTrue(), "kubectl drain's retry finds the pod gone: done")
	framework.ExpectLossless(ctx, g, rec)
}

// Review finding 2b: any `edit` user had cafe.io/force-delete honoured. Now
// the annotation counts only for a user RBAC grants verb force-delete on
// pods in group cafe.io (a SubjectAccessReview on the deleting user): an
// editor who annotates and deletes gets a drain; a break-glass user
// deletes at once.
func TestSecurityF2b_ForceDeleteNeedsRBACVerb(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	servingSet(ctx, t, g, ns, "web", 3)
	mallory := as(ctx, t, g, ns, "mallory", editor)
	rec := suite.Record(ctx, t, g, ns)

	victim := pods(ctx, g, ns, "web")[0]
	g.Expect(mallory.Patch(ctx, &victim, forceDeletePatch())).To(Succeed(), "an editor may annotate a pod")
	g.Expect(mallory.Delete(ctx, &victim)).To(MatchError(ContainSubstring("a drain was requested")), "the annotation alone forces nothing")
	g.Expect(drainRequestedBy(ctx, g, &victim)).To(Equal("mallory"))
	replacedAndServing(ctx, g, ns, "web", &victim, 3)
	framework.ExpectLossless(ctx, g, rec)

	breakGlass := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "cafe-test-force-delete-"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{cafev1alpha1.GroupVersion.Group}, Resources: []string{"pods"}, Verbs: []string{"force-delete"}}},
	}
	g.Expect(suite.Client.Create(ctx, breakGlass)).To(Succeed())
	t.Cleanup(func() { _ = suite.Client.Delete(context.Background(), breakGlass) })
	oscar := as(ctx, t, g, ns, "oscar", editor, breakGlass.Name)
	forced := pods(ctx, g, ns, "web")[0]
	g.Expect(oscar.Delete(ctx, &forced)).To(MatchError(ContainSubstring("a drain was requested")), "the verb without the annotation drains too")
	g.Expect(oscar.Patch(ctx, &forced, forceDeletePatch())).To(Succeed())
	// The authorizer learns of the new role through a watch: retry.
	g.Eventually(func() error { return oscar.Delete(ctx, &forced) }).Should(Succeed(), "annotation and verb: deleted at once")
}

func forceDeletePatch() client.Patch {
	return client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"`+cafev1alpha1.ForceDeleteAnnotation+`":"true"}}}`))
}

// Review finding 2c: removing the cafe.io/inplaceset label took a pod out
// of the webhook's objectSelector, so it could then be deleted undrained.
// Now changing or removing CAFE's labels, or releasing a serving pod from
// its set, is refused; other label changes are not.
func TestSecurityF2c_LabelRemovalRefused(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	servingSet(ctx, t, g, ns, "web", 2)
	mallory := as(ctx, t, g, ns, "mallory", editor)
	victim := pods(ctx, g, ns, "web")[0]

	patches := map[string]string{
		"remove the label":  `{"metadata":{"labels":{"cafe.io/inplaceset":null}}}`,
		"change the label":  `{"metadata":{"labels":{"cafe.io/inplaceset":"other"}}}`,
		"orphan the pod":    `{"metadata":{"ownerReferences":null}}`,
		"remove both marks": `{"metadata":{"labels":{"cafe.io/inplaceset":null,"cafe.io/cafedeployment":null},"ownerReferences":null}}`,
	}
	for what, patch := range patches {
		err := mallory.Patch(ctx, victim.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(patch)))
		g.Expect(err).To(MatchError(ContainSubstring("managed by CAFE")), what)
	}
	g.Expect(mallory.Patch(ctx, victim.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"team":"blue"}}}`)))).To(Succeed(), "other labels stay the user's")

	current := &corev1.Pod{}
	g.Expect(suite.Client.Get(ctx, client.ObjectKeyFromObject(&victim), current)).To(Succeed())
	g.Expect(current.Labels).To(HaveKeyWithValue(cafev1alpha1.InPlaceSetLabel, "web"))
	g.Expect(metav1.GetControllerOf(current)).NotTo(BeNil())
	g.Expect(mallory.Delete(ctx, current)).To(MatchError(ContainSubstring("a drain was requested")), "the pod is still guarded")
}

// The drain request names who asked for a pod's drain, in the record: only
// CAFE's webhook writes it, from the authenticated identity of the delete.
// An editor can neither forge it (a drain in someone else's name) nor
// rewrite or remove a recorded one.
func TestSecurityF2c_DrainRequestRecordedOnlyByCAFE(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	servingSet(ctx, t, g, ns, "web", 2)
	mallory := as(ctx, t, g, ns, "mallory", editor)
	victim := pods(ctx, g, ns, "web")[0]
	annotate := func(value string) error {
		patch := `{"metadata":{"annotations":{"` + cafev1alpha1.DrainRequestedByAnnotation + `":` + value + `}}}`
		return mallory.Patch(ctx, victim.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(patch)))
	}
	g.Expect(annotate(`"bob"`)).To(MatchError(ContainSubstring("metadata.annotations[" + cafev1alpha1.DrainRequestedByAnnotation + "]: only CAFE records")))
	g.Expect(drainRequestedBy(ctx, g, &victim)).To(BeEmpty())

	g.Expect(mallory.Delete(ctx, victim.DeepCopy())).To(MatchError(ContainSubstring("a drain was requested")))
	g.Expect(drainRequestedBy(ctx, g, &victim)).To(Equal("mallory"), "CAFE records the authenticated deleter")
	g.Expect(annotate(`"bob"`)).To(MatchError(ContainSubstring("only CAFE records")), "a recorded request cannot be rewritten")
	g.Expect(annotate(`null`)).To(MatchError(ContainSubstring("only CAFE records")), "nor removed")
	g.Expect(drainRequestedBy(ctx, g, &victim)).To(Equal("mallory"))
}

// Review finding 2d: deletes by the garbage collector and the ReplicaSet
// and StatefulSet controllers always passed, so deleting an InPlaceSet (or
// scaling a CafeDeployment's native ReplicaSet down) dropped serving pods.
// Now those controllers' deletes of a serving pod are refused and turned
// into drain requests, and a deleted InPlaceSet stays (finalizer) until
// CAFE has drained and deleted its pods, one serving pod at a time
// (maxUnavailable 1). Lossless on the watch stream.
func TestSecurityF2d_DeletingPodSetDrainsFirst(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	set := servingSet(ctx, t, g, ns, "web", 3)
	rec := suite.Record(ctx, t, g, ns)

	for _, controller := range []string{"generic-garbage-collector", "replicaset-controller", "statefulset-controller"} {
		c := as(ctx, t, g, ns, "system:serviceaccount:kube-system:"+controller, editor)
		victim := pods(ctx, g, ns, "web")[0]
		g.Expect(c.Delete(ctx, &victim)).To(MatchError(ContainSubstring("a drain was requested")), controller)
	}

	g.Expect(as(ctx, t, g, ns, "erin", editor).Delete(ctx, set)).To(Succeed())
	g.Eventually(func(g Gomega) {
		draining := 0
		for _, p := range pods(ctx, g, ns, "web") {
			if !framework.Serving(&p) && p.DeletionTimestamp.IsZero() {
				draining++
			}
		}
		g.Expect(draining).To(BeNumerically("<=", 1), "at most maxUnavailable pods drain at a time")
		serving(ctx, g, ns, "web")
		g.Expect(pods(ctx, g, ns, "web")).To(BeEmpty())
		err := suite.Client.Get(ctx, client.ObjectKeyFromObject(set), &cafev1alpha1.InPlaceSet{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the set goes once its pods are gone")
	}).Should(Succeed())
	framework.ExpectLossless(ctx, g, rec)
}

// Review finding 2e: the pod-delete guard failed open (failurePolicy
// Ignore), so while CAFE was down any pod could be deleted undrained. The
// shipped pod webhooks now fail closed, and only for CAFE's pods: with
// them pointed at a server that does not answer, deleting or relabelling a
// CAFE pod is refused while an ordinary pod of the same namespace is
// deleted as usual.
func TestSecurityF2e_FailsClosedForCafePodsOnly(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	servingSet(ctx, t, g, ns, "web", 1)
	plain := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plain", Labels: map[string]string{"app": "plain"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:v1"}}},
	}
	g.Expect(suite.Client.Create(ctx, plain)).To(Succeed())

	// A delete that CAFE's webhook, when up, lets through (a force-delete
	// by an admin), and an update it judges: refused for want of an answer.
	cafePod := pods(ctx, g, ns, "web")[0]
	g.Expect(suite.Client.Patch(ctx, &cafePod, forceDeletePatch())).To(Succeed())
	// A pod of CAFE's whose deletion is already under way (a finalizer
	// holds it; its first delete was allowed, it has no owner).
	going := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "going", Finalizers: []string{"cafe.io/test-hold"},
			Labels: map[string]string{cafev1alpha1.InPlaceSetLabel: "web", cafev1alpha1.RevisionHashLabel: "v1"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:v1"}}},
	}
	g.Expect(suite.Client.Create(ctx, going)).To(Succeed())
	g.Expect(suite.Client.Delete(ctx, going)).To(Succeed())
	down := shippedPodWebhooksDown(ctx, t, g, ns)
	g.Expect(down).To(ConsistOf("pods.cafe.io", "native-pods.cafe.io"))
	// The API server learns of webhook configurations through a watch: wait
	// on dry runs (the webhooks see those too), which delete nothing.
	g.Eventually(func() error { return suite.Client.Delete(ctx, &cafePod, client.DryRunAll) }).Should(MatchError(ContainSubstring("failed calling webhook")))
	g.Expect(suite.Client.Delete(ctx, &cafePod)).To(MatchError(ContainSubstring("failed calling webhook")), "a CAFE pod cannot be deleted while CAFE is down")
	// An ownership change the guard, when up, allows (a second owner that
	// does not control the pod) is refused for want of an answer.
	extraOwner := `[{"op":"add","path":"/metadata/ownerReferences/-","value":` +
		`{"apiVersion":"v1","kind":"ConfigMap","name":"audit","uid":"6a3f0c1e-0000-4000-8000-000000000001"}}]`
	g.Expect(suite.Client.Patch(ctx, cafePod.DeepCopy(), client.RawPatch(types.JSONPatchType, []byte(extraOwner)))).
		To(MatchError(ContainSubstring("failed calling webhook")), "an ownership change is judged, so it waits for CAFE")
	// Releasing the serving pod from its set is refused either way: the
	// API server reports whichever of the two webhooks answers first.
	g.Expect(suite.Client.Patch(ctx, cafePod.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"ownerReferences":null}}`)))).
		To(MatchError(Or(ContainSubstring("failed calling webhook"), ContainSubstring("cannot be released from its controller"))), "nor released from its set")
	// Updates that change nothing the guard judges (a release's image
	// patch, a user's label or annotation) are not sent to it at all
	// (matchConditions): they go through while it cannot answer.
	for _, patch := range []string{
		`{"metadata":{"labels":{"team":"blue"}}}`,
		`{"metadata":{"annotations":{"note":"on call: blue"}}}`,
		`{"spec":{"containers":[{"name":"app","image":"example.com/app:v9"}]}}`,
	} {
		g.Expect(suite.Client.Patch(ctx, cafePod.DeepCopy(), client.RawPatch(types.StrategicMergePatchType, []byte(patch)))).To(Succeed(), patch)
	}
	g.Expect(suite.Client.Delete(ctx, plain)).To(Succeed(), "other pods are not CAFE's business")
	// Deleting a pod already going (the kubelet's final delete) is not sent
	// to the guard either: its answer would always be yes.
	g.Expect(suite.Client.Delete(ctx, going)).To(Succeed(), "a pod whose deletion is under way may be deleted again")
	g.Expect(suite.Client.Patch(ctx, going, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`)))).To(Succeed())

	// Evictions: their webhook sees every eviction in the cluster (its
	// object is the Eviction, so no objectSelector narrows it), so it fails
	// open; the set's PodDisruptionBudget is what refuses by itself. A pod
	// with the set's label that the webhook lets through (no owner) shows
	// the API server alone refusing a Ready pod and evicting a not-Ready one.
	g.Eventually(func() error {
		return suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &policyv1.PodDisruptionBudget{})
	}).Should(Succeed(), "each InPlaceSet has a PodDisruptionBudget")
	stray := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stray", Labels: map[string]string{cafev1alpha1.InPlaceSetLabel: "web", cafev1alpha1.RevisionHashLabel: "v1"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:v1"}}},
	}
	g.Expect(suite.Client.Create(ctx, stray)).To(Succeed())
	suite.Kubelet.RunContainers(ctx, g, stray, time.Now())
	g.Eventually(func(g Gomega) {
		g.Expect(suite.Client.Get(ctx, client.ObjectKeyFromObject(stray), stray)).To(Succeed())
		g.Expect(framework.PodCondition(stray, corev1.PodReady)).To(HaveField("Status", corev1.ConditionTrue))
	}).Should(Succeed())
	evict := func() error { return evictOnce(ctx, g, stray) }
	err := evict()
	g.Expect(apierrors.IsTooManyRequests(err)).To(BeTrue(), "a Ready pod of a CAFE set is not evicted, webhook or not; got %v", err)
	g.Expect(err).To(MatchError(ContainSubstring("disruption budget")))
	g.Expect(framework.PatchPodStatus(ctx, suite.Client, stray, map[string]any{
		"conditions": []corev1.PodCondition{{Type: corev1.ContainersReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.Now()}},
	})).To(Succeed())
	g.Eventually(evict).Should(Succeed(), "a pod that is not Ready serves nobody: evicted")
}

// evictOnce asks the API server once to evict pod: client-go would wait
// out a PodDisruptionBudget's Retry-After (10 s) up to ten times itself.
func evictOnce(ctx context.Context, g Gomega, pod *corev1.Pod) error {
	cs, err := kubernetes.NewForConfig(suite.Config)
	g.Expect(err).NotTo(HaveOccurred())
	body, err := json.Marshal(&policyv1.Eviction{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "Eviction"},
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name},
	})
	g.Expect(err).NotTo(HaveOccurred())
	return cs.CoreV1().RESTClient().Post().Namespace(pod.Namespace).Resource("pods").Name(pod.Name).SubResource("eviction").
		MaxRetries(0).Body(body).SetHeader("Content-Type", "application/json").Do(ctx).Error()
}

// shippedPodWebhooksDown installs a copy of the shipped pod webhooks
// (config/webhook, as `kubectl apply -k` installs them) whose server does
// not answer, narrowed to namespace ns so that other tests are unaffected,
// and returns the names of the webhooks it copied.
func shippedPodWebhooksDown(ctx context.Context, t *testing.T, g Gomega, ns string) []string {
	objs, err := config.Webhooks()
	g.Expect(err).NotTo(HaveOccurred())
	down := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "cafe-down-" + ns}}
	var names []string
	for _, obj := range objs {
		if obj.GetName() != install.ValidatingWebhookName {
			continue
		}
		shipped := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, shipped)).To(Succeed())
		for _, w := range shipped.Webhooks {
			if w.ObjectSelector == nil || !rulesPods(w.Rules) {
				continue
			}
			names = append(names, w.Name)
			w.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:1/down")}
			w.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}}
			down.Webhooks = append(down.Webhooks, w)
		}
	}
	g.Expect(suite.Client.Create(ctx, down)).To(Succeed())
	t.Cleanup(func() { _ = suite.Client.Delete(context.Background(), down) })
	return names
}

func rulesPods(rules []admissionregistrationv1.RuleWithOperations) bool {
	for _, r := range rules {
		for _, res := range r.Resources {
			if res == "pods" {
				return true
			}
		}
	}
	return false
}

// Review finding 2d, native pod sets: `kubectl scale` of a CafeDeployment's
// ReplicaSet made the replicaset-controller delete serving pods. Its
// deletes of serving pods are now refused (above), and CAFE puts the
// replicas it chose back; each unit has its PodDisruptionBudget too.
func TestSecurityF2d_NativeReplicaSetScaleDownIsUndone(t *testing.T) {
	ctx, g, ns := suite.Setup(t)
	labels := map[string]string{"app": "shop"}
	cd := &cafev1alpha1.CafeDeployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
		Spec: cafev1alpha1.CafeDeploymentSpec{
			Replicas:   ptr.To[int32](2),
			PodSetType: cafev1alpha1.PodSetTypeReplicaSet,
			Selector:   &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:v1"}}},
			},
			Topology: cafev1alpha1.Topology{Values: []string{"zone-a"}},
		},
	}
	g.Expect(suite.Client.Create(ctx, cd)).To(Succeed())
	rs := &appsv1.ReplicaSet{}
	g.Eventually(func(g Gomega) {
		list := &appsv1.ReplicaSetList{}
		g.Expect(suite.Client.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		g.Expect(list.Items).To(HaveLen(1))
		*rs = list.Items[0]
		g.Expect(rs.Spec.Replicas).To(HaveValue(BeEquivalentTo(2)))
	}).Should(Succeed())
	g.Eventually(func() error {
		return suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-zone-a"}, &policyv1.PodDisruptionBudget{})
	}).Should(Succeed(), "each native unit has a PodDisruptionBudget")

	editorRS := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rs.Name}}
	g.Expect(suite.Client.Patch(ctx, editorRS, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"replicas":0}}`)))).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(suite.Client.Get(ctx, client.ObjectKeyFromObject(rs), rs)).To(Succeed())
		g.Expect(rs.Spec.Replicas).To(HaveValue(BeEquivalentTo(2)), "CAFE puts its replicas back")
	}).Should(Succeed())
}
