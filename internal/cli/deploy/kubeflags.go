package deploy

import (
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// KubeFlags are kubectl's connection flags (--kubeconfig, --context,
// --namespace, --server, --token, ...), as *genericclioptions.ConfigFlags
// provides them; an interface so tests can substitute their own.
type KubeFlags interface {
	AddFlags(flags *pflag.FlagSet)
	ToRESTConfig() (*rest.Config, error)
	ToRawKubeConfigLoader() clientcmd.ClientConfig
}

// newKubeFlags returns kubectl's own connection flags.
func newKubeFlags() KubeFlags {
	return genericclioptions.NewConfigFlags(true)
}
