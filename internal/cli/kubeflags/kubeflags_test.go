package kubeflags

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/scheme"
)

var cafeDeployments = Kind{
	Name: "CafeDeployment", Plural: "CafeDeployments", ListCommand: "kubectl get cafedeployments",
	NewList: func() client.ObjectList { return &cafev1alpha1.CafeDeploymentList{} },
}

func cafeDeployment(ns, name string) *cafev1alpha1.CafeDeployment {
	return &cafev1alpha1.CafeDeployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

// options reach a fake API server holding objs, in namespace ns.
func options(ns string, objs ...client.Object) *Options {
	flags := genericclioptions.NewConfigFlags(false)
	flags.Namespace = &ns
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	return &Options{
		IOStreams:   streams,
		ConfigFlags: flags,
		Client:      fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objs...).Build(),
	}
}

func TestNamesWithPrefix(t *testing.T) {
	list := &cafev1alpha1.CafeDeploymentList{Items: []cafev1alpha1.CafeDeployment{
		*cafeDeployment("shop", "web"), *cafeDeployment("shop", "web-canary"), *cafeDeployment("shop", "api"),
	}}
	tests := []struct {
		name, prefix string
		want         []string
	}{
		{name: "an empty prefix completes every name", prefix: "", want: []string{"web", "web-canary", "api"}},
		{name: "a prefix keeps only the names it starts", prefix: "web-", want: []string{"web-canary"}},
		{name: "a prefix no name starts with completes nothing", prefix: "x", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := namesWithPrefix(list, tt.prefix)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestCompletionsNameTheObjectsOfTheNamespace(t *testing.T) {
	g := NewWithT(t)
	o := options("shop", cafeDeployment("shop", "web"), cafeDeployment("shop", "web-canary"), cafeDeployment("shop", "api"), cafeDeployment("other", "web-other"))
	complete := o.CompleteNames(cafeDeployments)

	names, directive := complete(&cobra.Command{}, nil, "we")
	g.Expect(names).To(ConsistOf("web", "web-canary"))
	g.Expect(directive).To(Equal(cobra.ShellCompDirectiveNoFileComp))

	names, directive = complete(&cobra.Command{}, []string{"web"}, "")
	g.Expect(names).To(BeEmpty(), "a verb takes one name")
	g.Expect(directive).To(Equal(cobra.ShellCompDirectiveNoFileComp))
}

func TestGetSaysHowToListWhatExists(t *testing.T) {
	g := NewWithT(t)
	o := options("shop", cafeDeployment("shop", "web"))

	cd := &cafev1alpha1.CafeDeployment{}
	_, err := o.Get(context.Background(), cafeDeployments, cd, "web")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cd.Name).To(Equal("web"))

	_, err = o.Get(context.Background(), cafeDeployments, &cafev1alpha1.CafeDeployment{}, "api")
	g.Expect(err).To(MatchError("CafeDeployment shop/api not found: check the name and --namespace (list them with: kubectl get cafedeployments -n shop)"))
}

func TestListReadsTheNamespaceOfTheFlags(t *testing.T) {
	g := NewWithT(t)
	o := options("shop", cafeDeployment("shop", "web"), cafeDeployment("other", "api"))

	list := &cafev1alpha1.CafeDeploymentList{}
	ns, err := o.List(context.Background(), cafeDeployments, list)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ns).To(Equal("shop"))
	g.Expect(list.Items).To(HaveLen(1))
	g.Expect(list.Items[0].Name).To(Equal("web"))
}

func TestGetObjectReturnsTheClientAndANewObject(t *testing.T) {
	g := NewWithT(t)
	o := options("shop", cafeDeployment("shop", "web"))

	c, cd, err := GetObject[cafev1alpha1.CafeDeployment](context.Background(), o, cafeDeployments, "web")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c).To(BeIdenticalTo(o.Client))
	g.Expect(cd.Namespace + "/" + cd.Name).To(Equal("shop/web"))

	c, cd, err = GetObject[cafev1alpha1.CafeDeployment](context.Background(), o, cafeDeployments, "api")
	g.Expect(err).To(MatchError(ContainSubstring("CafeDeployment shop/api not found")))
	g.Expect(c).To(BeNil())
	g.Expect(cd).To(BeNil())
}
