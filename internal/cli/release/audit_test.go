package release

// Finding 4 of the security review, on a real kube-apiserver (envtest with
// CAFE's CRDs, no controller): each test writes a trail as CAFE's
// controller does (signed entries and head, through the status
// subresource), tampers with it as a `releaseorders/status` patcher would,
// and runs `cafe audit` as an auditor.

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/audit"
	"github.com/cafe-io/cafe/test/framework"
)

var k8sClient client.WithWatch

func TestMain(m *testing.M) { os.Exit(framework.EnvtestClientMain(m, &k8sClient)) }

// auditTest is a namespace for the orders and one for CAFE's keys, with
// CAFE's signer created there.
func auditTest(t *testing.T) (context.Context, *WithT, string, string, audit.Signer) {
	t.Helper()
	framework.RequireAPIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	g := NewWithT(t)
	ns, cafeNS := framework.CreateNamespace(t, k8sClient), framework.CreateNamespace(t, k8sClient)
	signer, _, err := audit.EnsureSigner(ctx, k8sClient, cafeNS)
	g.Expect(err).NotTo(HaveOccurred())
	return ctx, g, ns, cafeNS, signer
}

// auditRun runs `cafe audit <args> --namespace=ns` with k8sClient.
func auditRun(ctx context.Context, ns string, args ...string) (string, error) {
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	o := NewOptions(streams)
	o.Client = k8sClient
	cmd := NewAuditCmdWithOptions(o)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	cmd.SetArgs(append(args, "--namespace="+ns))
	err := cmd.ExecuteContext(ctx)
	return out.String() + errOut.String(), err
}

// signedOrder creates an order and writes its status as CAFE's controller
// would: n entries, the head, a phase.
func signedOrder(ctx context.Context, g Gomega, s audit.Signer, ns, name string, n int) *cafev1alpha1.ReleaseOrder {
	ro := &cafev1alpha1.ReleaseOrder{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: cafev1alpha1.ReleaseOrderSpec{
		Title: name, RequestedBy: "alice", Apps: []cafev1alpha1.ReleaseOrderApp{{Name: "a", Revision: "a-r2"}},
	}}
	g.Expect(k8sClient.Create(ctx, ro)).To(Succeed())
	subject := audit.SubjectOf(ro)
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for i := range n {
		ro.Status.Audit = s.Append(subject, ro.Status.Audit, cafev1alpha1.AuditEntry{
			Time: metav1.NewMicroTime(at.Add(time.Duration(i) * time.Minute)), Actor: "bob", Action: "Approve",
			Target: "releaseorder/" + name, Before: "PendingApproval", After: "Approved", Reason: "entry " + string(rune('1'+i)),
		})
	}
	ro.Status.AuditHead = s.Head(subject, ro.Status.Audit)
	ro.Status.Phase = cafev1alpha1.OrderSucceeded
	g.Expect(k8sClient.Status().Update(ctx, ro)).To(Succeed())
	return ro
}

// jsonPatchStatus sends a JSON patch to the order's status subresource,
// as `kubectl patch ro X --subresource=status --type=json -p ...`.
func jsonPatchStatus(ctx context.Context, ro *cafev1alpha1.ReleaseOrder, patch string) error {
	return k8sClient.Status().Patch(ctx, ro.DeepCopy(), client.RawPatch(types.JSONPatchType, []byte(patch)))
}

// exportFile writes `cafe audit export` of the namespace to a file.
func exportFile(ctx context.Context, t *testing.T, g Gomega, ns string) (string, []string) {
	out, err := auditRun(ctx, ns, "export")
	g.Expect(err).NotTo(HaveOccurred(), out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return filepath.Join(t.TempDir(), "audit.jsonl"), lines
}

func writeLines(g Gomega, file string, lines []string) {
	g.Expect(os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600)).To(Succeed())
}

// The review's probe: on a 6-entry trail, remove /status/audit/5 through
// the status subresource; `cafe audit verify` said OK.
func TestSecurityF4_TruncatedTrailFails(t *testing.T) {
	ctx, g, ns, cafeNS, s := auditTest(t)
	ro := signedOrder(ctx, g, s, ns, "weekly", 6)

	// The API server refuses it (the trail is append-only), however the
	// head is patched along.
	err := jsonPatchStatus(ctx, ro, `[{"op":"remove","path":"/status/audit/5"}]`)
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("status.audit: Invalid value"))
	g.Expect(err.Error()).To(ContainSubstring("status.audit is append-only"))
	err = jsonPatchStatus(ctx, ro, `[{"op":"remove","path":"/status/audit/5"},{"op":"remove","path":"/status/auditHead"}]`)
	g.Expect(err).To(MatchError(ContainSubstring("status.auditHead only moves forward")))
	err = jsonPatchStatus(ctx, ro, `[{"op":"remove","path":"/status/audit/5"},{"op":"replace","path":"/status/auditHead/count","value":5},{"op":"replace","path":"/status/auditHead/hash","value":"`+ro.Status.Audit[4].Hash+`"}]`)
	g.Expect(err).To(MatchError(ContainSubstring("status.auditHead only moves forward")))
	out, err := auditRun(ctx, ns, "verify", "weekly", "--cafe-namespace", cafeNS)
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring("OK   ReleaseOrder " + ns + "/weekly: 6 entries"))

	// Shortened where the API server's rules do not reach (an export, or
	// etcd), the trail falls short of its signed head.
	file, lines := exportFile(ctx, t, g, ns)
	g.Expect(lines).To(HaveLen(7), "6 entries and the head line")
	writeLines(g, file, append(lines[:5:5], lines[6]))
	out, err = auditRun(ctx, ns, "verify", "-f", file, "--cafe-namespace", cafeNS)
	g.Expect(err).To(MatchError(ErrVerifyFailed))
	g.Expect(out).To(ContainSubstring("FAIL ReleaseOrder " + ns + "/weekly: trail: the signed head counts 6 entries but the trail has 5: the trail was truncated (entries 6 to 6 are missing)"))
	writeLines(g, file, lines[:5])
	out, err = auditRun(ctx, ns, "verify", "-f", file, "--cafe-namespace", cafeNS)
	g.Expect(err).To(MatchError(ErrVerifyFailed))
	g.Expect(out).To(ContainSubstring("trail: 5 entries but no signed head"))
}

func TestSecurityF4_EmptiedTrailFails(t *testing.T) {
	ctx, g, ns, cafeNS, s := auditTest(t)
	ro := signedOrder(ctx, g, s, ns, "weekly", 6)
	for _, patch := range []string{
		`[{"op":"remove","path":"/status/audit"}]`,
		`[{"op":"remove","path":"/status/audit"},{"op":"remove","path":"/status/auditHead"}]`,
		`[{"op":"replace","path":"/status","value":{"phase":"Succeeded"}}]`,
		`[{"op":"remove","path":"/status"}]`,
	} {
		err := jsonPatchStatus(ctx, ro, patch)
		g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%s: %v", patch, err)
	}

	// Emptied past the API server: the entries gone, the head kept; or both
	// gone from an order that shows it progressed.
	file, lines := exportFile(ctx, t, g, ns)
	head := lines[6]
	writeLines(g, file, []string{head})
	out, err := auditRun(ctx, ns, "verify", "-f", file, "--cafe-namespace", cafeNS)
	g.Expect(err).To(MatchError(ErrVerifyFailed))
	g.Expect(out).To(ContainSubstring("the signed head counts 6 entries but the trail has 0"))
	var l ExportLine
	g.Expect(json.Unmarshal([]byte(head), &l)).To(Succeed())
	l.Head = nil
	data, err := json.Marshal(l)
	g.Expect(err).NotTo(HaveOccurred())
	writeLines(g, file, []string{string(data)})
	out, err = auditRun(ctx, ns, "verify", "-f", file, "--cafe-namespace", cafeNS)
	g.Expect(err).To(MatchError(ErrVerifyFailed))
	g.Expect(out).To(ContainSubstring("FAIL ReleaseOrder " + ns + "/weekly: trail: the object has progressed but its trail is empty and has no signed head: the trail was emptied"))
}

func TestSecurityF4_ReorderedTrailFails(t *testing.T) {
	ctx, g, ns, cafeNS, s := auditTest(t)
	ro := signedOrder(ctx, g, s, ns, "weekly", 6)
	// Entries 3 and 4 swapped and renumbered: the API server's rules keep
	// only the trail's length and last entry, the chain catches the rest.
	swapped := ro.Status.Audit[3]
	swapped.Seq = 3
	third := ro.Status.Audit[2]
	third.Seq = 4
	entry := func(e cafev1alpha1.AuditEntry) string { b, _ := json.Marshal(e); return string(b) }
	// Moving the last entry is refused by the API server outright.
	err := jsonPatchStatus(ctx, ro, `[{"op":"move","from":"/status/audit/5","path":"/status/audit/4"}]`)
	g.Expect(err).To(MatchError(ContainSubstring("status.audit is append-only: entries cannot be removed, replaced or reordered")))
	g.Expect(jsonPatchStatus(ctx, ro, `[{"op":"replace","path":"/status/audit/2","value":`+entry(swapped)+`},{"op":"replace","path":"/status/audit/3","value":`+entry(third)+`}]`)).To(Succeed())
	out, err := auditRun(ctx, ns, "verify", "weekly", "--cafe-namespace", cafeNS)
	g.Expect(err).To(MatchError(ErrVerifyFailed))
	g.Expect(out).To(ContainSubstring("FAIL ReleaseOrder " + ns + "/weekly: entry 3 (seq 3): its prevHash does not match the previous entry's hash: an entry was removed, inserted or reordered"))
}

func TestSecurityF4_TransplantedTrailFails(t *testing.T) {
	ctx, g, ns, cafeNS, s := auditTest(t)
	good := signedOrder(ctx, g, s, ns, "good", 6)
	// A new order gets the other order's whole record: trail, head, phase.
	forged := &cafev1alpha1.ReleaseOrder{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "forged"}, Spec: good.Spec}
	g.Expect(k8sClient.Create(ctx, forged)).To(Succeed())
	forged.Status = good.Status
	g.Expect(k8sClient.Status().Update(ctx, forged)).To(Succeed())
	// And the same order, deleted and recreated under its name.
	g.Expect(k8sClient.Delete(ctx, good)).To(Succeed())
	again := &cafev1alpha1.ReleaseOrder{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "good"}, Spec: good.Spec}
	g.Expect(k8sClient.Create(ctx, again)).To(Succeed())
	again.Status = good.Status
	g.Expect(k8sClient.Status().Update(ctx, again)).To(Succeed())

	out, err := auditRun(ctx, ns, "verify", "--cafe-namespace", cafeNS)
	g.Expect(err).To(MatchError(ErrVerifyFailed))
	for _, name := range []string{"forged", "good"} {
		g.Expect(out).To(ContainSubstring("FAIL ReleaseOrder " + ns + "/" + name + ": entry 1 (seq 1): its content does not match its hash: the entry was altered, or copied from another object's trail"))
	}
}

// `cafe audit verify` trusted whatever key the cluster published now;
// someone who replaced the key Secret and the ConfigMap could sign a trail
// of their own. Keys pinned at install time catch it, and verify says which
// key signed what.
func TestSecurityF4_PinnedKeyVerify(t *testing.T) {
	ctx, g, ns, cafeNS, s := auditTest(t)
	signedOrder(ctx, g, s, ns, "weekly", 6)
	keys, err := auditRun(ctx, ns, "export-keys", "--cafe-namespace", cafeNS)
	g.Expect(err).NotTo(HaveOccurred(), keys)
	g.Expect(keys).To(HavePrefix("# CAFE audit key " + s.ID() + " (current)\n-----BEGIN PUBLIC KEY-----"))
	pinned := filepath.Join(t.TempDir(), "keys.pem")
	g.Expect(os.WriteFile(pinned, []byte(keys), 0o600)).To(Succeed())
	out, err := auditRun(ctx, ns, "verify", "weekly", "--public-key", pinned, "--cafe-namespace", cafeNS)
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(out).To(Equal("OK   ReleaseOrder " + ns + "/weekly: 6 entries, chain, signatures and signed head verified; key " + s.ID() + ": entries 1-6; head: key " + s.ID() + "\n"))

	// The cafe-system admin replaces both the Secret and the published keys
	// and signs an order of their own.
	for _, o := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: cafeNS, Name: audit.SigningKeySecret}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: cafeNS, Name: audit.PublicKeyConfig}},
	} {
		g.Expect(k8sClient.Delete(ctx, o)).To(Succeed())
	}
	mallory, _, err := audit.EnsureSigner(ctx, k8sClient, cafeNS)
	g.Expect(err).NotTo(HaveOccurred())
	signedOrder(ctx, g, mallory, ns, "forged", 3)

	out, err = auditRun(ctx, ns, "verify", "forged", "--cafe-namespace", cafeNS)
	g.Expect(err).NotTo(HaveOccurred(), "the cluster's keys are now mallory's: %s", out)
	out, err = auditRun(ctx, ns, "verify", "--public-key", pinned, "--cafe-namespace", cafeNS)
	g.Expect(err).To(MatchError(ErrVerifyFailed))
	g.Expect(out).To(ContainSubstring("OK   ReleaseOrder " + ns + "/weekly"))
	g.Expect(out).To(ContainSubstring("FAIL ReleaseOrder " + ns + "/forged: entry 1 (seq 1): signed by key \"" + mallory.ID() + "\", which is not among the trusted keys (trusted: " + s.ID() + ")"))
}
