// Package install applies CAFE's own manifests (namespace, CRDs, RBAC) to a
// cluster with server-side apply, and waits until the CRDs are served. It
// is how `cafe dev up` and the tests install what `kubectl apply -k
// config/default` would, minus the manager Deployment.
package install

import (
	"context"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cafe-io/cafe/config"
)

// FieldOwner is the server-side-apply field manager of installed objects.
const FieldOwner = client.FieldOwner("cafe-install")

// Namespace is where CAFE's controller manager and its objects live.
const Namespace = "cafe-system"

// Names of CAFE's webhook configurations and of the Secret holding their
// serving certificate, as in config/webhook.
const (
	MutatingWebhookName   = "cafe-mutating-webhook"
	ValidatingWebhookName = "cafe-validating-webhook"
	WebhookSecretName     = "cafe-webhook-certs"
)

// CAFE applies the namespace, CRDs and RBAC, then waits for every CRD to be
// Established so clients can use the kinds at once.
func CAFE(ctx context.Context, cfg *rest.Config) error {
	objs, err := config.InstallObjects()
	if err != nil {
		return fmt.Errorf("reading embedded manifests: %w", err)
	}
	return ApplyAndWait(ctx, cfg, objs)
}

// ApplyAndWait applies objs and waits for the CRDs among them to be
// Established.
func ApplyAndWait(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured) error {
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("building client: %w", err)
	}
	if err := Apply(ctx, c, objs); err != nil {
		return err
	}
	return WaitEstablished(ctx, c, crdNames(objs))
}

// GatewayAPI applies the Gateway API CRDs (standard channel) and waits until
// they are Established. Only for a cluster without a gateway: the local
// control plane, whose gateway (Traefik) does not install them.
func GatewayAPI(ctx context.Context, cfg *rest.Config) error {
	objs, err := config.GatewayAPICRDs()
	if err != nil {
		return fmt.Errorf("reading embedded Gateway API CRDs: %w", err)
	}
	return ApplyAndWait(ctx, cfg, objs)
}

// Apply server-side-applies objs in order, forcing ownership of the fields
// they set (an installer owns its manifests).
func Apply(ctx context.Context, c client.Client, objs []*unstructured.Unstructured) error {
	for _, obj := range objs {
		obj = obj.DeepCopy()
		obj.SetManagedFields(nil)
		obj.SetResourceVersion("")
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), FieldOwner, client.ForceOwnership); err != nil {
			return fmt.Errorf("applying %s %s: %w", obj.GetKind(), client.ObjectKeyFromObject(obj), err)
		}
	}
	return nil
}

// WaitEstablished waits until each named CRD has condition Established=True.
func WaitEstablished(ctx context.Context, c client.Client, names []string) error {
	for _, name := range names {
		err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := c.Get(ctx, types.NamespacedName{Name: name}, crd); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("waiting for CRD %s to be established: %w", name, err)
		}
	}
	return nil
}

var crdGroupKind = schema.GroupKind{Group: apiextensionsv1.GroupName, Kind: "CustomResourceDefinition"}

func crdNames(objs []*unstructured.Unstructured) []string {
	var names []string
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() == crdGroupKind {
			names = append(names, o.GetName())
		}
	}
	return names
}

// pollInterval bounds how quickly a newly Established CRD is noticed.
const pollInterval = 100 * time.Millisecond
