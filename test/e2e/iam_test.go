package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/iam"
	"github.com/cafe-io/cafe/internal/token"
	"github.com/cafe-io/cafe/test/framework"
)

// cafeLogin runs `cafe login` for user with password on stdin, writing a
// kubeconfig into dir; it returns the kubeconfig, the command's output and
// its error.
func cafeLogin(ctx context.Context, t *testing.T, dir, user, password string) (string, string, error) {
	out := filepath.Join(dir, user+".kubeconfig")
	cmd := exec.CommandContext(ctx, cafeBinary(t), "login", "--server", env.LoginServer(), "--certificate-authority", env.LoginCAFile(),
		"--user", user, "--password-stdin", "--kubeconfig", env.ControlPlane.KubeconfigPath(), "--output", out, "--cache-dir", filepath.Join(dir, "cache"))
	cmd.Stdin = strings.NewReader(password + "\n")
	combined, err := cmd.CombinedOutput()
	return out, string(combined), err
}

// kubectlCanI is `kubectl auth can-i` with kubeconfig: "yes" or "no".
func kubectlCanI(ctx context.Context, g Gomega, kubeconfig string, args ...string) string {
	cmd := exec.CommandContext(ctx, filepath.Join(framework.BinDir(), "kubectl"), append([]string{"--kubeconfig", kubeconfig, "auth", "can-i"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	answer := strings.TrimSpace(string(out))
	if err != nil && answer != "no" {
		g.Expect(err).NotTo(HaveOccurred(), "kubectl auth can-i %s: %s", strings.Join(args, " "), stderr.String())
	}
	return answer
}

// alice logs in with her directory password (`cafe login`): kubectl with
// the kubeconfig it writes is dir:alice in dir:app-dev, with exactly the
// rights the IAM binding of app-dev gives in her team's namespaces; taken
// out of app-dev in the directory (nobody touches Kubernetes), she loses
// them within a token's lifetime; eve, disabled, cannot log in.
func TestADirectoryUserLogsInAndLosesRightsWhenRemovedFromTheGroup(t *testing.T) {
	runsBesideOthers(t)
	g := NewWithT(t)
	ctx := testContextWithin(t, 4*time.Minute)
	team, other := framework.CreateNamespace(t, k8sClient), framework.CreateNamespace(t, k8sClient)
	label := team + "-team"
	g.Expect(update(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: team}}, func(n *corev1.Namespace) {
		n.Labels["team"] = label
	})).To(Succeed())
	role := &cafev1alpha1.IAMRole{ObjectMeta: metav1.ObjectMeta{Name: team + "-dev"}, Spec: cafev1alpha1.IAMRoleSpec{
		Permissions: []cafev1alpha1.IAMPermission{cafev1alpha1.PermAppsEdit, cafev1alpha1.PermReleasesRequest},
	}}
	g.Expect(k8sClient.Create(ctx, role)).To(Succeed())
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), role) })
	binding := &cafev1alpha1.IAMRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: team + "-app-dev"}, Spec: cafev1alpha1.IAMRoleBindingSpec{
		Role: role.Name, Subjects: []cafev1alpha1.IAMSubject{{Kind: cafev1alpha1.IAMSubjectGroup, Name: "app-dev"}},
		Scope: cafev1alpha1.IAMScope{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": label}}},
	}}
	g.Expect(k8sClient.Create(ctx, binding)).To(Succeed())
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), binding) })
	g.Eventually(func(g Gomega) {
		got := &cafev1alpha1.IAMRoleBinding{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(binding), got)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, cafev1alpha1.IAMReadyCondition)).To(BeTrue())
	}).WithContext(ctx).Should(Succeed())

	dir := t.TempDir()
	password, err := env.ControlPlane.DirectoryPassword("alice")
	g.Expect(err).NotTo(HaveOccurred())
	kubeconfig, out, err := cafeLogin(ctx, t, dir, "alice", password)
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring("logged in as dir:alice (groups: app-dev)"))

	// The API server trusts CAFE's issuer once it has reloaded its
	// configuration (at the control plane's start).
	g.Eventually(func(g Gomega) {
		g.Expect(kubectlCanI(ctx, g, kubeconfig, "create", "releaseorders.cafe.io", "-n", team)).To(Equal("yes"))
	}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(time.Second).Should(Succeed())
	whoami := kubectl(t, kubeconfig, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}")
	g.Expect(whoami).To(HavePrefix("dir:alice "))
	g.Expect(whoami).To(ContainSubstring("dir:app-dev"))
	g.Expect(kubectlCanI(ctx, g, kubeconfig, "create", "cafeappservices.cafe.io", "-n", team)).To(Equal("yes"))
	g.Expect(kubectlCanI(ctx, g, kubeconfig, "approve", "releaseorders.cafe.io", "-n", team)).To(Equal("no"), "not her role's")
	g.Expect(kubectlCanI(ctx, g, kubeconfig, "create", "releaseorders.cafe.io", "-n", other)).To(Equal("no"), "not her team's namespace")
	g.Expect(kubectlCanI(ctx, g, kubeconfig, "get", "secrets", "-n", team)).To(Equal("no"))

	admin, err := env.ControlPlane.DirectoryAdmin()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(admin.RemoveMember(ctx, "app-dev", "alice")).To(Succeed())
	t.Cleanup(func() { _ = admin.AddMember(context.Background(), "app-dev", "alice") })
	removed := time.Now()
	g.Eventually(func(g Gomega) {
		g.Expect(kubectlCanI(ctx, g, kubeconfig, "create", "releaseorders.cafe.io", "-n", team)).To(Equal("no"))
	}).WithContext(ctx).WithTimeout(2 * token.DefaultLifetime).WithPolling(2 * time.Second).Should(Succeed())
	took := time.Since(removed)
	t.Logf("alice lost the right %v after leaving app-dev in the directory", took.Round(time.Second))
	g.Expect(took).To(BeNumerically("<=", token.DefaultLifetime+15*time.Second), "the revocation bound: a token's lifetime, plus the plugin's renewal and a poll")
	whoami = kubectl(t, kubeconfig, "auth", "whoami", "-o", "jsonpath={.status.userInfo.groups}")
	g.Expect(whoami).NotTo(ContainSubstring("dir:app-dev"))

	evePassword, err := env.ControlPlane.DirectoryPassword("eve")
	g.Expect(err).NotTo(HaveOccurred())
	_, out, err = cafeLogin(ctx, t, dir, "eve", evePassword)
	g.Expect(err).To(HaveOccurred())
	g.Expect(out).To(ContainSubstring("login refused"))
}

// demoTable is the IAM table of docs/iam.md ("The demo's IAM table"):
// each directory group's role, by permissions, and whether its binding is
// cluster-wide (otherwise: the team's namespaces).
var demoTable = []struct {
	group       string
	permissions []cafev1alpha1.IAMPermission
	cluster     bool
}{
	{"app-dev", []cafev1alpha1.IAMPermission{cafev1alpha1.PermAppsEdit, cafev1alpha1.PermReleasesRequest}, false},
	{"release-approvers", []cafev1alpha1.IAMPermission{cafev1alpha1.PermAppsView, cafev1alpha1.PermReleasesApprove}, false},
	{"auditors", []cafev1alpha1.IAMPermission{cafev1alpha1.PermAuditRead}, true},
}

// canIList is `kubectl auth can-i --list` in ns as kubeconfig's user, the
// rows of the cafe.io group and of ConfigMaps, as "resource[names]" →
// sorted verbs.
func canIList(t *testing.T, kubeconfig, ns string) map[string]string {
	out := kubectl(t, kubeconfig, "auth", "can-i", "--list", "-n", ns, "--no-headers")
	row := regexp.MustCompile(`^(\S+)\s+\[(.*?)\]\s+\[(.*?)\]\s+\[(.*)\]$`)
	rights := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		m := row.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil || !(strings.HasSuffix(m[1], ".cafe.io") || m[1] == "configmaps") {
			continue
		}
		verbs := strings.Fields(m[4])
		slices.Sort(verbs)
		key := m[1]
		if m[3] != "" {
			key += "[" + m[3] + "]"
		}
		rights[key] = strings.Join(slices.Compact(append(strings.Fields(rights[key]), verbs...)), " ")
	}
	return rights
}

// expectedRights is what the table's permissions grant, in canIList's
// form.
func expectedRights(groups ...string) map[string]string {
	verbsOf := map[string][]string{}
	for _, row := range demoTable {
		if !slices.Contains(groups, row.group) {
			continue
		}
		for _, p := range row.permissions {
			for _, rule := range iam.PermissionRules(p) {
				for _, res := range rule.Resources {
					key := res
					if len(rule.APIGroups) == 1 && rule.APIGroups[0] == "cafe.io" {
						key += ".cafe.io"
					}
					if len(rule.ResourceNames) > 0 {
						key += "[" + strings.Join(rule.ResourceNames, " ") + "]"
					}
					verbsOf[key] = append(verbsOf[key], rule.Verbs...)
				}
			}
		}
	}
	out := map[string]string{}
	for key, verbs := range verbsOf {
		slices.Sort(verbs)
		out[key] = strings.Join(slices.Compact(verbs), " ")
	}
	return out
}

// The demo's IAM table projected: each of alice (app-dev), bob
// (release-approvers) and carol (auditors), logged in with `cafe login`,
// gets from `kubectl auth can-i --list` in the team's namespace exactly the
// cafe.io rights (and the audit key ConfigMap) the table's permissions
// grant, nothing more.
func TestTheIAMTableGivesEachDirectoryUserExactlyTheirRights(t *testing.T) {
	g := NewWithT(t)
	ctx := testContextWithin(t, 4*time.Minute)
	team := framework.CreateNamespace(t, k8sClient)
	label := team + "-team"
	g.Expect(update(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: team}}, func(n *corev1.Namespace) {
		n.Labels["team"] = label
	})).To(Succeed())
	for _, row := range demoTable {
		role := &cafev1alpha1.IAMRole{ObjectMeta: metav1.ObjectMeta{Name: team + "-" + row.group}, Spec: cafev1alpha1.IAMRoleSpec{Permissions: row.permissions}}
		scope := cafev1alpha1.IAMScope{Cluster: row.cluster}
		if !row.cluster {
			scope.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": label}}
		}
		binding := &cafev1alpha1.IAMRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: team + "-" + row.group}, Spec: cafev1alpha1.IAMRoleBindingSpec{
			Role: role.Name, Subjects: []cafev1alpha1.IAMSubject{{Kind: cafev1alpha1.IAMSubjectGroup, Name: row.group}}, Scope: scope,
		}}
		for _, obj := range []client.Object{role, binding} {
			g.Expect(k8sClient.Create(ctx, obj)).To(Succeed())
			t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), obj) })
		}
	}
	dir := t.TempDir()
	kubeconfigs := map[string]string{}
	for user, groups := range map[string][]string{"alice": {"app-dev"}, "bob": {"release-approvers"}, "carol": {"auditors"}} {
		password, err := env.ControlPlane.DirectoryPassword(user)
		g.Expect(err).NotTo(HaveOccurred())
		kubeconfig, out, err := cafeLogin(ctx, t, dir, user, password)
		g.Expect(err).NotTo(HaveOccurred(), out)
		want := expectedRights(groups...)
		g.Eventually(func(g Gomega) {
			g.Expect(canIList(t, kubeconfig, team)).To(Equal(want), user)
		}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(time.Second).Should(Succeed())
		t.Logf("%s: %v", user, want)
		kubeconfigs[user] = kubeconfig
	}
	theTableAtWork(ctx, t, g, team, kubeconfigs["alice"], kubeconfigs["bob"], kubeconfigs["carol"])
}

// theTableAtWork has the demo's people use their rights with `cafe`, each
// logged in as the directory user: alice requests a release order for her
// team's app and cannot approve it; bob cannot request one and approves
// hers; carol can neither, and reads, exports and verifies the order's
// audit trail, which names dir:alice and dir:bob, with their directory
// groups, as the API server authenticated them.
func theTableAtWork(ctx context.Context, t *testing.T, g *WithT, team, alice, bob, carol string) {
	orderApp(ctx, g, team, "pay", nil)
	out, err := cafeCLI(ctx, t, team, bob, "release", "create", "bobs", "--title", "not bob's to ask", "--app", "pay=r2")
	g.Expect(err).To(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring("forbidden"))
	out, err = cafeCLI(ctx, t, team, alice, "release", "create", "weekly", "--title", "weekly release", "--ticket", "CHG-17", "--app", "pay=r2", "--approvals", "1")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring("recorded as requested by dir:alice"))
	// alice may write actions (to cancel her orders) but RBAC grants her no
	// approve; carol may not even write an action.
	out, err = cafeCLI(ctx, t, team, alice, "release", "approve", "weekly")
	g.Expect(err).To(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring(`dir:alice may not approve ReleaseOrder ` + team + `/weekly: RBAC grants no verb "approve"`))
	out, err = cafeCLI(ctx, t, team, carol, "release", "approve", "weekly")
	g.Expect(err).To(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring(`"dir:carol" cannot create resource "releaseactions"`))
	out, err = cafeCLI(ctx, t, team, bob, "release", "approve", "weekly", "--comment", "diff reviewed")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring("ReleaseOrder weekly is Approved"))
	order := waitForOrder(ctx, g, team, "weekly", phaseIs(cafev1alpha1.OrderApproved))
	g.Expect(order.Spec.RequestedBy).To(Equal("dir:alice"))
	g.Expect(order.Spec.RequestedByGroups).To(ContainElement("dir:app-dev"))
	g.Expect(order.Status.Approvals).To(HaveLen(1))
	g.Expect(order.Status.Approvals[0].User).To(Equal("dir:bob"))

	out, err = cafeCLI(ctx, t, team, carol, "audit", "verify", "weekly")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring("OK   ReleaseOrder " + team + "/weekly"))
	export, err := cafeCLI(ctx, t, team, carol, "audit", "export", "weekly")
	g.Expect(err).NotTo(HaveOccurred(), export)
	g.Expect(export).To(MatchRegexp(`"actor":"dir:alice","actorGroups":\[[^\]]*"dir:app-dev"[^\n]*"action":"Create"`))
	g.Expect(export).To(MatchRegexp(`"actor":"dir:bob","actorGroups":\[[^\]]*"dir:release-approvers"[^\n]*"action":"Approve"`))
	exported := filepath.Join(t.TempDir(), "weekly.jsonl")
	g.Expect(os.WriteFile(exported, []byte(export), 0o600)).To(Succeed())
	out, err = cafeCLI(ctx, t, team, carol, "audit", "verify", "-f", exported)
	g.Expect(err).NotTo(HaveOccurred(), out)
	t.Logf("carol verified the trail of %s/weekly as dir:carol: %s", team, strings.TrimSpace(out))
}
