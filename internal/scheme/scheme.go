// Package scheme holds the runtime scheme every CAFE client uses: the
// Kubernetes built-in kinds, CAFE's own, and the Gateway API's (v1), which
// the gateway traffic provider reads. A kind in the scheme costs nothing
// until someone reads it: a cluster without the Gateway API CRDs is fine
// as long as the gateway provider is off. It is a leaf so that the CLI,
// the tests and the manager share one scheme without importing each other.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// New returns a scheme with the Kubernetes built-in kinds, CAFE's and the
// Gateway API's.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(cafev1alpha1.AddToScheme(s))
	utilruntime.Must(gatewayv1.Install(s))
	return s
}
