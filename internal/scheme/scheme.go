// Package scheme holds the runtime scheme every CAFE client uses: the
// Kubernetes built-in kinds and CAFE's own. It is a leaf so that the CLI,
// the tests and the manager share one scheme without importing each other.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// New returns a scheme with the Kubernetes built-in kinds and CAFE's.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(cafev1alpha1.AddToScheme(s))
	return s
}
