package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/install"
	"github.com/cafe-io/cafe/test/framework"
)

// managerSA is the identity CAFE's controllers run as, here and in a
// cluster (config/rbac binds it).
const managerSA = "system:serviceaccount:" + install.Namespace + ":cafe-controller-manager"

// access is one `kubectl auth can-i` question.
type access struct {
	verb, group, resource, subresource, namespace, name string
}

func (a access) String() string {
	r := a.resource
	if a.subresource != "" {
		r += "/" + a.subresource
	}
	if a.group != "" {
		r += "." + a.group
	}
	return fmt.Sprintf("%s %s %s/%s", a.verb, r, a.namespace, a.name)
}

// canI asks the API server whether user (with groups) may do a.
func canI(ctx context.Context, g Gomega, user string, groups []string, a access) bool {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource, Namespace: a.namespace, Name: a.name,
		},
	}}
	g.Expect(k8sClient.Create(ctx, sar)).To(Succeed())
	return sar.Status.Allowed
}

// Review finding 6: the manager runs as its ServiceAccount bound to the
// shipped config/rbac (as in every e2e test), works end to end — an app
// with config gets its ConfigMap and runs, node heartbeats are read, the
// webhooks serve with the certificate it issued — and may not touch
// Secrets, ConfigMaps, Leases or webhook configurations that are not its
// own.
func TestSecurityF6_ManagerRoleLeastPrivilege(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + install.Namespace, "system:authenticated"}
	denied := []access{
		{verb: "update", resource: "configmaps", namespace: "kube-system", name: "aws-auth"},
		{verb: "get", resource: "secrets", namespace: "default", name: "any"},
		{verb: "list", resource: "secrets", namespace: "kube-system"},
		{verb: "create", resource: "secrets", namespace: "default"},
		{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: "kube-system", name: "kube-controller-manager"},
		{verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: "kube-node-lease"},
		{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: "kube-node-lease", name: "node-0"},
		{verb: "patch", group: "admissionregistration.k8s.io", resource: "validatingwebhookconfigurations", name: "someone-elses"},
		{verb: "patch", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", name: "someone-elses"},
		{verb: "list", group: "admissionregistration.k8s.io", resource: "validatingwebhookconfigurations"},
	}
	for _, a := range denied {
		g.Expect(canI(ctx, g, managerSA, groups, a)).To(BeFalse(), "the manager may %s", a)
	}
	// Patch on ConfigMaps is granted (a revision sharing a config joins
	// its owners), but the API server refuses it, by the shipped
	// admission policy, on a ConfigMap that is not an app's.
	awsAuth := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "aws-auth"}, Data: map[string]string{"mapRoles": "[]"}}
	g.Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, awsAuth))).To(Succeed())
	asManager := rest.CopyConfig(env.Admin)
	asManager.Impersonate = rest.ImpersonationConfig{UserName: managerSA, Groups: groups}
	manager, err := client.New(asManager, client.Options{})
	g.Expect(err).NotTo(HaveOccurred())
	patch := client.RawPatch(types.MergePatchType, []byte(`{"data":{"mapRoles":"- rolearn: attacker"}}`))
	g.Eventually(func() error {
		return manager.Patch(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "aws-auth"}}, patch)
	}).WithContext(ctx).WithTimeout(time.Minute).Should(MatchError(ContainSubstring("CAFE's controller writes only the config ConfigMaps of apps")))

	// What it must keep (or it could not work).
	allowed := []access{
		{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: install.Namespace, name: "cafe-controller-manager.cafe.io"},
		{verb: "get", resource: "secrets", namespace: install.Namespace, name: install.WebhookSecretName},
		{verb: "list", group: "coordination.k8s.io", resource: "leases", namespace: corev1.NamespaceNodeLease},
		{verb: "patch", group: "admissionregistration.k8s.io", resource: "validatingwebhookconfigurations", name: install.ValidatingWebhookName},
		{verb: "create", resource: "configmaps", namespace: "any-app-namespace"},
	}
	for _, a := range allowed {
		g.Expect(canI(ctx, g, managerSA, groups, a)).To(BeTrue(), "the manager may not %s", a)
	}

	// End to end under that identity: the app's config ConfigMap is
	// created in the app's namespace and its pods run; the node lifecycle
	// controller reads every node's Lease (a node without a readable Lease
	// would be judged bad).
	ns := framework.CreateNamespace(t, k8sClient)
	app := &cafev1alpha1.CafeAppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "least"},
		Spec: cafev1alpha1.CafeAppServiceSpec{
			Template: appTemplate(map[string]string{"tier": "web"}),
			Config:   cafev1alpha1.AppConfig{Env: map[string]string{"GREETING": "hello"}},
			Workload: cafev1alpha1.AppWorkload{
				Replicas: ptr.To[int32](3),
				Topology: cafev1alpha1.Topology{Values: []string{"zone-a", "zone-b", "zone-c"}},
			},
		},
	}
	g.Expect(k8sClient.Create(ctx, app)).To(Succeed())
	waitForApp(ctx, g, app, latestIs("least-r1"))
	g.Expect(editApp(ctx, app, func(a *cafev1alpha1.CafeAppService) { a.Spec.PublishedRevision = "least-r1" })).To(Succeed())
	releasedRevision(ctx, g, app, "least-r1")
	cm := &corev1.ConfigMap{}
	g.Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: cafev1alpha1.AppConfigMapName("least", 1)}, cm)).To(Succeed())
	g.Expect(cm.Data).To(HaveKeyWithValue("GREETING", "hello"))

	nodes := &corev1.NodeList{}
	g.Expect(k8sClient.List(ctx, nodes)).To(Succeed())
	g.Eventually(func() int32 {
		p := &cafev1alpha1.NodeLifecyclePolicy{}
		if k8sClient.Get(ctx, types.NamespacedName{Name: cafev1alpha1.NodeLifecyclePolicyName}, p) != nil {
			return -1
		}
		return p.Status.Healthy
	}).WithContext(ctx).WithTimeout(time.Minute).Should(BeNumerically(">=", len(nodes.Items)), "every node judged Healthy from its Lease")
}

// Review finding 6: the built-in edit and view roles, bound in a
// namespace, carry CAFE's kinds (aggregated ClusterRoles): an editor
// creates and scales a CafeDeployment, a viewer reads it; neither gets a
// protected verb (order decisions, status writes, revisions).
func TestSecurityF6_AggregatedRoles(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	ns := framework.CreateNamespace(t, k8sClient)
	bind := func(user, clusterRole string) client.Client {
		kubeconfig, err := env.ControlPlane.UserKubeconfig(user)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: clusterRole + "-" + user},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
		})).To(Succeed())
		return kubeconfigClient(t, kubeconfig)
	}
	editor := bind("erin-editor", "edit")
	bind("victor-viewer", "view")
	adminUser := "ada-admin"
	bind(adminUser, "admin")

	// The cluster role aggregation controller fills edit and view in the
	// background: the editor can create once it has.
	cd := cafeDeployment(ns, "agg", 3, map[string]string{"app": "agg"})
	g.Eventually(func() error { return editor.Create(ctx, cd.DeepCopy()) }).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())

	can := func(user string, a access) bool {
		a.namespace = ns
		return canI(ctx, g, user, []string{"system:authenticated"}, a)
	}
	for _, user := range []string{"erin-editor", adminUser} {
		for _, a := range []access{
			{verb: "patch", group: "cafe.io", resource: "cafedeployments", name: "agg"},
			{verb: "update", group: "cafe.io", resource: "cafedeployments", subresource: "scale", name: "agg"},
			{verb: "create", group: "cafe.io", resource: "cafeappservices"},
			{verb: "create", group: "cafe.io", resource: "releaseorders"},
			{verb: "create", group: "cafe.io", resource: "releaseactions"},
		} {
			g.Expect(can(user, a)).To(BeTrue(), "%s may not %s", user, a)
		}
	}
	g.Expect(can("victor-viewer", access{verb: "get", group: "cafe.io", resource: "cafedeployments", name: "agg"})).To(BeTrue())
	g.Expect(can("victor-viewer", access{verb: "create", group: "cafe.io", resource: "cafedeployments"})).To(BeFalse())

	protected := []access{
		{verb: "approve", group: "cafe.io", resource: "releaseorders", name: "o"},
		{verb: "reject", group: "cafe.io", resource: "releaseorders", name: "o"},
		{verb: "start", group: "cafe.io", resource: "releaseorders", name: "o"},
		{verb: "confirm", group: "cafe.io", resource: "releaseorders", name: "o"},
		{verb: "rollback", group: "cafe.io", resource: "releaseorders", name: "o"},
		{verb: "cancel", group: "cafe.io", resource: "releaseorders", name: "o"},
		{verb: "update", group: "cafe.io", resource: "cafedeployments", subresource: "status", name: "agg"},
		{verb: "patch", group: "cafe.io", resource: "releaseorders", subresource: "status", name: "o"},
		{verb: "patch", group: "cafe.io", resource: "inplacesets", subresource: "status", name: "i"},
		{verb: "create", group: "cafe.io", resource: "apprevisions"},
		{verb: "update", group: "cafe.io", resource: "apprevisions", name: "r"},
	}
	for _, user := range []string{"erin-editor", "victor-viewer", adminUser} {
		for _, a := range protected {
			g.Expect(can(user, a)).To(BeFalse(), "%s may %s", user, a)
		}
	}
}

// Review finding 13: the local control plane's etcd speaks only TLS and
// only to clients with a certificate of the control plane's CA, so a local
// user of the machine cannot reach the cluster's data through its port.
func TestSecurityF13_EtcdNeedsAClientCertificate(t *testing.T) {
	g := NewWithT(t)
	ctx := testContext(t)
	health := env.ControlPlane.EtcdURL() + "/health"
	get := func(tlsConfig *tls.Config, url string) error {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
	withCert, err := env.ControlPlane.PKI().EtcdClientTLS()
	g.Expect(err).NotTo(HaveOccurred())
	withoutCert := withCert.Clone()
	withoutCert.Certificates = nil

	g.Expect(get(nil, strings.Replace(health, "https://", "http://", 1))).To(HaveOccurred(), "etcd answers plain HTTP")
	g.Expect(get(withoutCert, health)).To(HaveOccurred(), "etcd answers a TLS client without a certificate")
	g.Expect(get(withCert, health)).To(Succeed(), "etcd refuses the API server's client certificate")
}
