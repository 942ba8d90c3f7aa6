package pod_test

// The pod webhooks on a real kube-apiserver: envtest installs
// config/webhook's configurations pointed at the suite's manager, which
// runs every CAFE controller and serves the webhooks, its certificates
// issued by CAFE as in a cluster. Users are impersonated, so the identity
// the webhooks see is the API server's. The tests play the kubelet
// (framework.Kubelet, GateKubelet) and the endpointslice controller
// (followSlice).

import (
	"context"
	"fmt"
	"os"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/scheme"
	"github.com/cafe-io/cafe/test/framework"
)

var suite = framework.ControllerSuite{Webhooks: true, Prepare: createEditorRole}

// editor is a ClusterRole with what the built-in `edit` role grants on
// pods and InPlaceSets: envtest runs no clusterrole-aggregation controller,
// so its own `edit` has no rules.
const editor = "cafe-test-editor"

func createEditorRole(ctx context.Context, c client.Client) error {
	return c.Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: editor},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}},
			{APIGroups: []string{""}, Resources: []string{"pods/eviction"}, Verbs: []string{"create"}},
			{APIGroups: []string{cafev1alpha1.GroupVersion.Group}, Resources: []string{"inplacesets"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
		},
	})
}

func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }

// as is a client acting as user name, bound in ns to the given
// ClusterRoles. It waits until RBAC lets the user list pods there: the
// authorizer learns of new bindings through a watch.
func as(ctx context.Context, t *testing.T, g Gomega, ns, name string, clusterRoles ...string) client.Client {
	t.Helper()
	for _, role := range clusterRoles {
		g.Expect(suite.Client.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: role + "-" + name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}},
		})).To(Succeed())
	}
	cfg := rest.CopyConfig(suite.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: name, Groups: []string{"system:authenticated"}}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())
	if len(clusterRoles) > 0 {
		g.Eventually(func() error { return c.List(ctx, &corev1.PodList{}, client.InNamespace(ns)) }).Should(Succeed())
	}
	return c
}

// servingSet creates an InPlaceSet of n pods (maxUnavailable 1) selected
// by app=name, and an EndpointSlice for them, and waits until every pod
// serves and the slice lists each ready.
func servingSet(ctx context.Context, t *testing.T, g *WithT, ns, name string, n int32) *cafev1alpha1.InPlaceSet {
	t.Helper()
	labels := map[string]string{"app": name}
	set := &cafev1alpha1.InPlaceSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cafev1alpha1.InPlaceSetSpec{
			Replicas: ptr.To(n),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:v1"}}},
			},
		},
	}
	g.Expect(suite.Client.Create(ctx, set)).To(Succeed())
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	g.Expect(suite.Client.Create(ctx, slice)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(serving(ctx, g, ns, name)).To(HaveLen(int(n)))
	}).Should(Succeed())
	return set
}

// serving plays the kubelet and the endpointslice controller one round,
// then returns the pods of app name that serve (gate open, Ready) and that
// the slice lists ready.
func serving(ctx context.Context, g Gomega, ns, name string) []corev1.Pod {
	suite.Kubelet.CatchUp(ctx, g, ns)
	listed := followSlice(ctx, g, ns, name)
	var out []corev1.Pod
	for _, p := range pods(ctx, g, ns, name) {
		if p.DeletionTimestamp.IsZero() && framework.Serving(&p) && listed[p.Name] {
			out = append(out, p)
		}
	}
	return out
}

func pods(ctx context.Context, g Gomega, ns, name string) []corev1.Pod {
	list := &corev1.PodList{}
	g.Expect(suite.Client.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{"app": name})).To(Succeed())
	return list.Items
}

// followSlice rewrites the slice of app name as the endpointslice
// controller would: one endpoint per live pod, ready and serving as the
// pod's Ready condition says. It returns the pods it lists ready.
func followSlice(ctx context.Context, g Gomega, ns, name string) map[string]bool {
	ready := map[string]bool{}
	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		slice := &discoveryv1.EndpointSlice{}
		if err := suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, slice); err != nil {
			return err
		}
		slice.Endpoints = nil
		for i, p := range pods(ctx, g, ns, name) {
			if !p.DeletionTimestamp.IsZero() {
				continue
			}
			c := framework.PodCondition(&p, corev1.PodReady)
			isReady := c != nil && c.Status == corev1.ConditionTrue
			ready[p.Name] = isReady
			slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{fmt.Sprintf("10.0.0.%d", i+1)},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: p.Name, UID: p.UID},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(isReady), Serving: ptr.To(isReady), Terminating: ptr.To(false)},
			})
		}
		return suite.Client.Update(ctx, slice)
	})).To(Succeed())
	return ready
}

// replacedAndServing waits until victim is gone and n pods of app name
// serve again (its set replaced it), playing kubelet and slices meanwhile.
func replacedAndServing(ctx context.Context, g *WithT, ns, name string, victim *corev1.Pod, n int) {
	g.Eventually(func(g Gomega) {
		live := serving(ctx, g, ns, name)
		g.Expect(live).To(HaveLen(n))
		for _, p := range pods(ctx, g, ns, name) {
			g.Expect(p.UID).NotTo(Equal(victim.UID), "pod %s must be gone", victim.Name)
		}
	}).Should(Succeed())
}

// drainRequestedBy returns who the pod's drain request names ("" if none
// or the pod is gone).
func drainRequestedBy(ctx context.Context, g Gomega, pod *corev1.Pod) string {
	current := &corev1.Pod{}
	if err := suite.Client.Get(ctx, client.ObjectKeyFromObject(pod), current); err != nil || current.UID != pod.UID {
		return ""
	}
	return current.Annotations[cafev1alpha1.DrainRequestedByAnnotation]
}
