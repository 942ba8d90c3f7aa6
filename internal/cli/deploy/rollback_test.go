package deploy

import (
	"bytes"
	"regexp"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

func TestRevisionsOf(t *testing.T) {
	cd := newCD().build()
	unlabelled := controllerRevision(5, "eee555", "app:v5")
	delete(unlabelled.Labels, cafev1alpha1.RevisionHashLabel)
	broken := controllerRevision(6, "fff666", "app:v6")
	broken.Data = runtime.RawExtension{Raw: []byte(`"not a template"`)}
	foreign := controllerRevision(7, "ggg777", "app:v7")
	foreign.OwnerReferences = []metav1.OwnerReference{{APIVersion: "cafe.io/v1alpha1", Kind: "CafeDeployment", Name: "web", UID: "uid-earlier-web", Controller: ptr.To(true)}}
	owned := controllerRevision(8, "hhh888", "app:v8")
	owned.OwnerReferences = []metav1.OwnerReference{{APIVersion: "cafe.io/v1alpha1", Kind: "CafeDeployment", Name: "web", UID: cd.UID, Controller: ptr.To(true)}}

	revs := revisionsOf(cd, []appsv1.ControllerRevision{
		controllerRevision(3, "ccc333", "app:v3"), owned, broken, controllerRevision(1, "aaa111", "app:v1"), unlabelled, foreign,
	})

	g := NewWithT(t)
	var numbers []int64
	for _, r := range revs {
		numbers = append(numbers, r.Number)
	}
	g.Expect(numbers).To(Equal([]int64{1, 3, 5, 6, 8}), "oldest first, without the revision another object controls")
	g.Expect(revs[0].Template.Spec.Containers[0].Image).To(Equal("app:v1"))
	g.Expect(revs[2].Hash).To(Equal("eee555"), "a revision without the hash label takes it from its name")
	g.Expect(revs[3].Err).To(MatchError(ContainSubstring(".data.raw is not a pod template")))
	g.Expect(revs[3].Template).To(BeNil())
}

func TestRollbackTarget(t *testing.T) {
	history := func(cd *cafev1alpha1.CafeDeployment, crs ...appsv1.ControllerRevision) []historyEntry {
		return revisionsOf(cd, crs)
	}
	r1, r2, r3 := controllerRevision(1, "aaa111", "app:v1"), controllerRevision(2, "bbb222", "app:v2"), controllerRevision(3, "ccc333", "app:v3")
	broken := controllerRevision(4, "ddd444", "app:v4")
	broken.Data = runtime.RawExtension{}
	digits := controllerRevision(5, "2", "app:v5")
	all := []appsv1.ControllerRevision{r1, r2, r3}
	// updating is on its way from bbb222 to ccc333; updated is done.
	updating := newCD().revisions("bbb222", "ccc333").build()
	updated := newCD().revisions("ccc333", "ccc333").build()

	tests := []struct {
		name     string
		cd       *cafev1alpha1.CafeDeployment
		crs      []appsv1.ControllerRevision
		to       string
		wantHash string
		wantErr  string
	}{
		{
			name: "by default the newest revision other than the update revision is restored",
			cd:   updating, crs: []appsv1.ControllerRevision{r1, r3, r2},
			wantHash: "bbb222",
		},
		{
			name: "by default the update revision is skipped even when it is not the newest",
			cd:   updating, crs: []appsv1.ControllerRevision{r1, r2, controllerRevision(9, "ccc333", "app:v3")},
			wantHash: "bbb222",
		},
		{
			name: "a revision number picks that revision",
			cd:   updating, crs: all, to: "1",
			wantHash: "aaa111",
		},
		{
			name: "a hash picks that revision",
			cd:   updating, crs: all, to: "aaa111",
			wantHash: "aaa111",
		},
		{
			name: "a ControllerRevision name picks that revision",
			cd:   updating, crs: all, to: "web-aaa111",
			wantHash: "aaa111",
		},
		{
			name: "the update revision is refused when asked for by number",
			cd:   updating, crs: all, to: "3",
			wantErr: "revision 3 (ccc333) is already the update revision of CafeDeployment shop/web: nothing to roll back to",
		},
		{
			name: "an unknown revision is refused with where to look",
			cd:   updating, crs: all, to: "42",
			wantErr: `CafeDeployment shop/web has no revision "42" in its history (a revision number or hash); see ` + "`cafe deploy history web -n shop`",
		},
		{
			name: "a history holding only the update revision is refused",
			cd:   updated, crs: []appsv1.ControllerRevision{r3},
			wantErr: "CafeDeployment shop/web has no revision to roll back to: its history (1 revisions) holds no revision other than the update revision ccc333",
		},
		{
			name:    "an empty history is refused",
			cd:      updated,
			wantErr: "has no revision to roll back to",
		},
		{
			name: "a revision whose template cannot be decoded is refused, naming the ControllerRevision",
			cd:   updated, crs: []appsv1.ControllerRevision{r3, broken},
			wantErr: "revision 4 (ddd444) of CafeDeployment shop/web cannot be restored: ControllerRevision web-ddd444: .data.raw is empty",
		},
		{
			name: "a value that is one revision's number and another's hash is refused as ambiguous",
			cd:   updated, crs: []appsv1.ControllerRevision{r1, r2, r3, digits}, to: "2",
			wantErr: "--to-revision 2 matches both revision 2 (bbb222) and revision 5 (2)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := rollbackTarget(tt.cd, history(tt.cd, tt.crs...), tt.to)
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got.Hash).To(Equal(tt.wantHash))
			g.Expect(got.Template).NotTo(BeNil())
		})
	}
}

func TestPrintHistory(t *testing.T) {
	cd := newCD().revisions("bbb222", "ccc333").build()
	broken := controllerRevision(4, "ddd444", "app:v4")
	broken.Data = runtime.RawExtension{}
	revs := revisionsOf(cd, []appsv1.ControllerRevision{
		controllerRevision(1, "aaa111", "app:v1"), controllerRevision(2, "bbb222", "app:v2"), controllerRevision(3, "ccc333", "app:v3"), broken,
	})
	same := newCD().revisions("ccc333", "ccc333").build()

	tests := []struct {
		name string
		cd   *cafev1alpha1.CafeDeployment
		want []string
	}{
		{
			name: "each revision shows its number, hash, creation time and images, oldest first",
			cd:   cd,
			want: []string{
				`^REVISION\s+HASH\s+CREATED\s+IMAGES\s+MARK\n1\s+aaa111\s+2026-08-01T10:00:00Z\s+app=app:v1\s+-\n`,
			},
		},
		{
			name: "the current and the update revision are marked",
			cd:   cd,
			want: []string{`(?m)^2\s+bbb222\s+\S+\s+app=app:v2\s+current$`, `(?m)^3\s+ccc333\s+\S+\s+app=app:v3\s+update$`},
		},
		{
			name: "a revision both current and update carries both marks",
			cd:   same,
			want: []string{`(?m)^3\s+ccc333\s+\S+\s+app=app:v3\s+current,update$`},
		},
		{
			name: "a revision that cannot be decoded says why instead of images",
			cd:   cd,
			want: []string{`(?m)^4\s+ddd444\s+\S+\s+<unreadable: .data.raw is empty>\s+-$`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			var out bytes.Buffer
			g.Expect(printHistory(&out, tt.cd, revs)).To(Succeed())
			for _, re := range tt.want {
				g.Expect(regexp.MustCompile(re).MatchString(out.String())).To(BeTrue(), "want %q in:\n%s", re, out.String())
			}
		})
	}
}
