package deploy

import (
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// KubeFlags are kubectl's connection flags (--kubeconfig, --context,
// --namespace, --server, --token, ...). *genericclioptions.ConfigFlags
// satisfies it.
type KubeFlags interface {
	AddFlags(flags *pflag.FlagSet)
	ToRESTConfig() (*rest.Config, error)
	ToRawKubeConfigLoader() clientcmd.ClientConfig
}

// newKubeFlags returns kubectl's connection flags, bound through clientcmd
// with kubectl's names and defaults.
//
// It stands in for genericclioptions.NewConfigFlags(true): importing
// k8s.io/cli-runtime/pkg/genericclioptions pulls in kustomize, diskv and
// other modules that go.sum does not list yet. Once it does, return
// genericclioptions.NewConfigFlags(true) here; nothing else changes.
func newKubeFlags() KubeFlags {
	return &kubeFlags{overrides: clientcmd.ConfigOverrides{ClusterDefaults: clientcmd.ClusterDefaults}}
}

type kubeFlags struct {
	kubeconfig string
	overrides  clientcmd.ConfigOverrides
}

func (f *kubeFlags) AddFlags(flags *pflag.FlagSet) {
	flags.StringVar(&f.kubeconfig, clientcmd.RecommendedConfigPathFlag, "", "Path to the kubeconfig file to use for CLI requests.")
	clientcmd.BindOverrideFlags(&f.overrides, flags, clientcmd.RecommendedConfigOverrideFlags(""))
}

func (f *kubeFlags) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	overrides := f.overrides
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &overrides)
}

func (f *kubeFlags) ToRESTConfig() (*rest.Config, error) {
	return f.ToRawKubeConfigLoader().ClientConfig()
}
