package objectdirectory_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/directory"
	"github.com/cafe-io/cafe/internal/login"
	"github.com/cafe-io/cafe/internal/objectdirectory"
	"github.com/cafe-io/cafe/internal/token"
	"github.com/cafe-io/cafe/test/framework"
)

var k8sClient client.WithWatch

func TestMain(m *testing.M) { os.Exit(framework.EnvtestClientMain(m, &k8sClient)) }

// account creates an IAMUser and, unless hash is nil, its password Secret
// in ns.
func account(ctx context.Context, t *testing.T, g *WithT, ns, name string, hash []byte) {
	secret := name + "-password"
	if hash != nil {
		g.Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secret},
			Data: map[string][]byte{cafev1alpha1.IAMPasswordHashKey: hash}})).To(Succeed())
	}
	u := &cafev1alpha1.IAMUser{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: cafev1alpha1.IAMUserSpec{PasswordSecretName: secret}}
	g.Expect(k8sClient.Create(ctx, u)).To(Succeed())
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), u) })
}

func group(ctx context.Context, t *testing.T, g *WithT, name string, members ...string) {
	grp := &cafev1alpha1.IAMGroup{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: cafev1alpha1.IAMGroupSpec{Members: members}}
	g.Expect(k8sClient.Create(ctx, grp)).To(Succeed())
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), grp) })
}

func post(g Gomega, url string, req login.Request) (int, login.Response) {
	body, err := json.Marshal(req)
	g.Expect(err).NotTo(HaveOccurred())
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var out login.Response
	if resp.StatusCode == http.StatusOK {
		g.Expect(json.NewDecoder(resp.Body).Decode(&out)).To(Succeed())
	}
	return resp.StatusCode, out
}

// Users and groups declared as objects in a real API server answer the
// login service as the LDAP directory does: a login carries the groups
// that list the user; a wrong password, an unknown user, a user without a
// password Secret or with a malformed hash, an over-long password and a
// disabled account are refused alike; a refresh reads the objects again, so
// a removed membership is gone from the next credential and a disabled
// account gets nothing more.
func TestObjectsAnswerTheLoginServiceAsADirectory(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx := context.Background()
	ns := framework.CreateNamespace(t, k8sClient)
	hash, err := objectdirectory.HashPassword([]byte("alice-secret"))
	g.Expect(err).NotTo(HaveOccurred())
	cost, err := bcrypt.Cost(hash)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cost).To(Equal(objectdirectory.HashCost))

	account(ctx, t, g, ns, "alice", hash)
	account(ctx, t, g, ns, "frank", nil)
	account(ctx, t, g, ns, "mallory", []byte("not a bcrypt hash"))
	group(ctx, t, g, "app-dev", "alice", "frank")
	group(ctx, t, g, "release-approvers", "alice")
	group(ctx, t, g, "auditors", "ghost")

	key, err := token.NewKey()
	g.Expect(err).NotTo(HaveOccurred())
	access := &token.Issuer{URL: "https://cafe.example", Audience: "cafe", Key: key}
	dir := objectdirectory.Directory{Objects: k8sClient, Secrets: k8sClient, Namespace: ns}
	srv := httptest.NewServer((&login.Service{Directory: dir, Access: access, Log: logr.Discard()}).Handler())
	t.Cleanup(srv.Close)

	code, resp := post(g, srv.URL+login.LoginPath, login.Request{User: "alice", Password: "alice-secret"})
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(resp.Groups).To(Equal([]string{"app-dev", "release-approvers"}))
	claims, err := access.Verify(resp.Token)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(claims.Subject).To(Equal("alice"))
	g.Expect(claims.Groups).To(Equal([]string{"app-dev", "release-approvers"}))

	long := make([]byte, objectdirectory.MaxPasswordLength+1)
	for i := range long {
		long[i] = 'a'
	}
	for _, bad := range []login.Request{
		{User: "alice", Password: "wrong"},
		{User: "alice"},
		{User: "alice", Password: string(long)},
		{User: "nobody", Password: "x"},
		{User: "ghost", Password: "x"},
		{User: "frank", Password: "x"},
		{User: "mallory", Password: "not a bcrypt hash"},
		{User: "Alice", Password: "alice-secret"},
	} {
		code, _ := post(g, srv.URL+login.LoginPath, bad)
		g.Expect(code).To(Equal(http.StatusUnauthorized), "%+v", bad.User)
	}

	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		grp := &cafev1alpha1.IAMGroup{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Name: "app-dev"}, grp); err != nil {
			return err
		}
		grp.Spec.Members = []string{"frank"}
		return k8sClient.Update(ctx, grp)
	})).To(Succeed())
	code, refreshed := post(g, srv.URL+login.RefreshPath, login.Request{RefreshToken: resp.RefreshToken})
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(refreshed.Groups).To(Equal([]string{"release-approvers"}), "the groups the objects give now")

	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u := &cafev1alpha1.IAMUser{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Name: "alice"}, u); err != nil {
			return err
		}
		u.Spec.Disabled = true
		return k8sClient.Update(ctx, u)
	})).To(Succeed())
	code, _ = post(g, srv.URL+login.RefreshPath, login.Request{RefreshToken: resp.RefreshToken})
	g.Expect(code).To(Equal(http.StatusUnauthorized), "a disabled account gets nothing more")
	code, _ = post(g, srv.URL+login.LoginPath, login.Request{User: "alice", Password: "alice-secret"})
	g.Expect(code).To(Equal(http.StatusUnauthorized), "nor a new login")

	g.Expect(k8sClient.Delete(ctx, &cafev1alpha1.IAMUser{ObjectMeta: metav1.ObjectMeta{Name: "alice"}})).To(Succeed())
	_, err = dir.Lookup(ctx, "alice")
	g.Expect(err).To(MatchError(directory.ErrInvalidCredentials), "a deleted user is unknown")
}

// The schema refuses names that cannot be directory names, a user without
// a password Secret, and members that cannot be users, naming the field.
func TestTheSchemaRefusesBadUsersAndGroups(t *testing.T) {
	framework.RequireAPIServer(t)
	g := NewWithT(t)
	ctx := context.Background()
	for _, c := range []struct {
		obj  client.Object
		want string
	}{
		{&cafev1alpha1.IAMUser{ObjectMeta: metav1.ObjectMeta{Name: "1alice"}, Spec: cafev1alpha1.IAMUserSpec{PasswordSecretName: "p"}}, "metadata.name: a directory name"},
		{&cafev1alpha1.IAMUser{ObjectMeta: metav1.ObjectMeta{Name: "bob"}}, "spec: Required value"},
		{&cafev1alpha1.IAMUser{ObjectMeta: metav1.ObjectMeta{Name: "bob"}, Spec: cafev1alpha1.IAMUserSpec{DisplayName: "Bob"}}, "spec.passwordSecretName: Invalid value: \"\": spec.passwordSecretName in body should be at least 1 chars long"},
		{&cafev1alpha1.IAMUser{ObjectMeta: metav1.ObjectMeta{Name: "bob"}, Spec: cafev1alpha1.IAMUserSpec{PasswordSecretName: "Bad_Name"}}, "spec.passwordSecretName"},
		{&cafev1alpha1.IAMGroup{ObjectMeta: metav1.ObjectMeta{Name: "ops"}, Spec: cafev1alpha1.IAMGroupSpec{Members: []string{"alice", "Bob"}}}, "spec.members[1]"},
		{&cafev1alpha1.IAMGroup{ObjectMeta: metav1.ObjectMeta{Name: "ops"}, Spec: cafev1alpha1.IAMGroupSpec{Members: []string{"alice", "alice"}}}, "spec.members[1]: Duplicate value"},
	} {
		g.Expect(k8sClient.Create(ctx, c.obj)).To(MatchError(ContainSubstring(c.want)), "%T %s", c.obj, c.obj.GetName())
	}
}

// HashPassword refuses what bcrypt would silently mishandle.
func TestHashPasswordRefusesEmptyAndOverlongPasswords(t *testing.T) {
	g := NewWithT(t)
	_, err := objectdirectory.HashPassword(nil)
	g.Expect(err).To(MatchError(ContainSubstring("empty")))
	_, err = objectdirectory.HashPassword(make([]byte, objectdirectory.MaxPasswordLength+1))
	g.Expect(err).To(MatchError(ContainSubstring("longer than 72 bytes")))
}
