package e2e

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/internal/controlplane"
	"github.com/cafe-io/cafe/internal/scheme"
)

// userWithRole returns a client authenticated as user (a real client
// certificate of the control plane, in group), bound to role in its
// namespace (role is created unless it exists), and the kubeconfig the
// client was built from.
func userWithRole(t *testing.T, ctx context.Context, user, group string, role *rbacv1.Role) (client.Client, string) {
	t.Helper()
	g := NewWithT(t)
	kubeconfig, err := env.ControlPlane.UserKubeconfig(user, group)
	g.Expect(err).NotTo(HaveOccurred())
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: role.Namespace, Name: role.Name + "-" + user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	g.Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, role))).To(Succeed())
	g.Expect(k8sClient.Create(ctx, binding)).To(Succeed())
	return kubeconfigClient(t, kubeconfig), kubeconfig
}

// kubeconfigClient is a client with CAFE's scheme, authenticated by
// kubeconfig.
func kubeconfigClient(t *testing.T, kubeconfig string) client.Client {
	t.Helper()
	cfg, err := controlplane.RESTConfigFromKubeconfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
