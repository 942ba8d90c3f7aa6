package certs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Ensure makes the Secret hold a valid CA and a serving certificate for
// exactly the SANs of opts, patches the caBundle of every webhook of the named
// configurations that do not carry the CA bundle yet (skipping the
// configurations that do not exist), and writes tls.crt and tls.key into
// opts.CertDir. The package documentation lists what it guarantees.
func Ensure(ctx context.Context, c client.Client, opts Options) error {
	o, err := opts.complete()
	if err != nil {
		return err
	}
	logger := log.FromContext(ctx).WithValues("Secret", klog.KRef(o.Namespace, o.SecretName))
	ctx = log.IntoContext(ctx, logger)

	secret, err := ensureSecret(ctx, c, o)
	if err != nil {
		return fmt.Errorf("ensuring webhook certificate Secret %s/%s: %w", o.Namespace, o.SecretName, err)
	}

	// Trust first: the caBundles must carry a new CA before this replica
	// serves a certificate it signed.
	patchErr := ensureCABundles(ctx, c, o, secret.Data[caCertKey])
	if patchErr != nil {
		ca, caErr := parseKeyPair(secret.Data[caCertKey], secret.Data[caKeyKey])
		onDisk, _ := os.ReadFile(filepath.Join(o.CertDir, corev1.TLSCertKey))
		if caErr != nil || !safeToServe(onDisk, ca.cert, o.Clock()) {
			logger.Info("Keeping the certificate files until the caBundles carry the new CA", "dir", o.CertDir)
			return patchErr
		}
	}
	wrote, err := writeCertFiles(o.CertDir, secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return errors.Join(patchErr, fmt.Errorf("writing the serving certificate of Secret %s/%s: %w", o.Namespace, o.SecretName, err))
	}
	if wrote {
		logger.Info("Wrote webhook serving certificate files", "dir", o.CertDir)
	}
	return patchErr
}

// ensureSecret creates or updates the Secret so it holds what planSecret
// wants, and returns it as stored.
func ensureSecret(ctx context.Context, c client.Client, o Options) (*corev1.Secret, error) {
	key := client.ObjectKey{Namespace: o.Namespace, Name: o.SecretName}
	var stored *corev1.Secret
	// A conflict means another replica wrote the Secret since we read it:
	// read it again and judge its content afresh, which usually means
	// adopting what that replica issued.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		now := o.Clock()
		secret := &corev1.Secret{}
		err := c.Get(ctx, key, secret)
		if apierrors.IsNotFound(err) {
			p, err := planSecret(nil, o, now)
			if err != nil {
				return err
			}
			secret = &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: o.SecretName},
				Type:       corev1.SecretTypeTLS,
				Data:       p.data,
			}
			err = c.Create(ctx, secret)
			if err == nil {
				logIssued(ctx, p)
				stored = secret
				return nil
			}
			if !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("creating: %w", err)
			}
			// Another replica created it between our read and our create:
			// read it and judge its content like any existing Secret.
			secret = &corev1.Secret{}
			if err := c.Get(ctx, key, secret); apierrors.IsNotFound(err) {
				// Created and deleted again since: start over from a fresh read.
				return apierrors.NewConflict(corev1.Resource("secrets"), o.SecretName, err)
			} else if err != nil {
				return fmt.Errorf("reading after a concurrent create: %w", err)
			}
		} else if err != nil {
			return fmt.Errorf("reading: %w", err)
		}
		p, err := planSecret(secret.Data, o, now)
		if err != nil {
			return err
		}
		if upToDate(secret.Data, p.data) {
			stored = secret
			return nil
		}
		if secret.Data == nil {
			secret.Data = map[string][]byte{}
		}
		for k, v := range p.data {
			secret.Data[k] = v
		}
		// Update carries the resourceVersion we read: a concurrent write
		// makes it fail with a conflict instead of being overwritten.
		if err := c.Update(ctx, secret); apierrors.IsNotFound(err) {
			// Deleted since we read it: start over, which creates it.
			return apierrors.NewConflict(corev1.Resource("secrets"), o.SecretName, err)
		} else if err != nil {
			return fmt.Errorf("updating: %w", err)
		}
		logIssued(ctx, p)
		stored = secret
		return nil
	})
	return stored, err
}

func logIssued(ctx context.Context, p plan) {
	logger := log.FromContext(ctx)
	if p.caReason != "" {
		logger.Info("Issued webhook CA", "reason", p.caReason)
	}
	if p.servingReason != "" {
		logger.Info("Issued webhook serving certificate", "reason", p.servingReason)
	}
}

// webhookConfiguration is one kind of admission webhook configuration.
type webhookConfiguration struct {
	kind string
	new  func() client.Object
}

var (
	mutatingConfigurations = webhookConfiguration{
		kind: "MutatingWebhookConfiguration",
		new:  func() client.Object { return &admissionregistrationv1.MutatingWebhookConfiguration{} },
	}
	validatingConfigurations = webhookConfiguration{
		kind: "ValidatingWebhookConfiguration",
		new:  func() client.Object { return &admissionregistrationv1.ValidatingWebhookConfiguration{} },
	}
)

// clientConfigs returns the clientConfig of every webhook of obj, for editing.
func clientConfigs(obj client.Object) []*admissionregistrationv1.WebhookClientConfig {
	var configs []*admissionregistrationv1.WebhookClientConfig
	switch o := obj.(type) {
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		for i := range o.Webhooks {
			configs = append(configs, &o.Webhooks[i].ClientConfig)
		}
	case *admissionregistrationv1.ValidatingWebhookConfiguration:
		for i := range o.Webhooks {
			configs = append(configs, &o.Webhooks[i].ClientConfig)
		}
	}
	return configs
}

// ensureCABundles patches every named configuration, going on past failures
// so one broken configuration does not keep the others untrusted.
func ensureCABundles(ctx context.Context, c client.Client, o Options, caBundle []byte) error {
	var errs []error
	for _, name := range o.MutatingWebhookConfigurations {
		errs = append(errs, ensureCABundle(ctx, c, mutatingConfigurations, name, caBundle))
	}
	for _, name := range o.ValidatingWebhookConfigurations {
		errs = append(errs, ensureCABundle(ctx, c, validatingConfigurations, name, caBundle))
	}
	return errors.Join(errs...)
}

// ensureCABundle sets caBundle on every webhook of one configuration that
// does not carry exactly it. A configuration that does not exist is skipped:
// it is patched by the first pass after it is created.
func ensureCABundle(ctx context.Context, c client.Client, kind webhookConfiguration, name string, caBundle []byte) error {
	logger := log.FromContext(ctx).WithValues(kind.kind, klog.KRef("", name))
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj := kind.new()
		if err := c.Get(ctx, client.ObjectKey{Name: name}, obj); err != nil {
			return err
		}
		base := obj.DeepCopyObject().(client.Object)
		changed := 0
		for _, cc := range clientConfigs(obj) {
			if !bytes.Equal(cc.CABundle, caBundle) {
				cc.CABundle = caBundle
				changed++
			}
		}
		if changed == 0 {
			return nil
		}
		// The merge patch replaces the whole webhooks list, so it must not
		// apply over a version we have not seen: the optimistic lock turns
		// that into a conflict, retried on a fresh read.
		if err := c.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return err
		}
		logger.Info("Patched caBundle", "webhooks", changed)
		return nil
	})
	if apierrors.IsNotFound(err) {
		logger.V(1).Info("Skipping webhook configuration that does not exist yet")
		return nil
	}
	if err != nil {
		return fmt.Errorf("patching caBundle of %s %s: %w", kind.kind, name, err)
	}
	return nil
}
