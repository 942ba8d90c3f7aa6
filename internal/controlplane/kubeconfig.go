package controlplane

import (
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// contextName is the kubeconfig context every generated kubeconfig uses.
const contextName = "cafe-local"

// writeKubeconfig writes a kubeconfig for id with its certificate embedded,
// so the file stays valid when copied elsewhere.
func writeKubeconfig(path, server string, p PKI, id Identity) error {
	ca, err := os.ReadFile(p.CACert())
	if err != nil {
		return fmt.Errorf("reading CA for kubeconfig: %w", err)
	}
	cert, err := os.ReadFile(p.ClientCert(id))
	if err != nil {
		return fmt.Errorf("reading %s certificate: %w", id.Name, err)
	}
	key, err := os.ReadFile(p.ClientKey(id))
	if err != nil {
		return fmt.Errorf("reading %s key: %w", id.Name, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[contextName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos[id.Name] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts[contextName] = &clientcmdapi.Context{Cluster: contextName, AuthInfo: id.Name, Namespace: "default"}
	cfg.CurrentContext = contextName
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}

// RESTConfigFromKubeconfig loads a client configuration from a kubeconfig file.
func RESTConfigFromKubeconfig(path string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}
