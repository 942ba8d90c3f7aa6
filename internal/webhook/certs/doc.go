// Package certs lets CAFE run its admission webhooks without cert-manager: it
// keeps a self-signed CA and a serving certificate in one Secret, hands the
// serving certificate to controller-runtime's webhook server as files, and
// injects the CA into the caBundle of CAFE's webhook configurations.
//
// [Ensure] does one pass and [Rotator] repeats it on every replica (it does
// not need leader election, because every replica serves webhooks from its
// own files). Call [Ensure] once before starting the manager, since the
// webhook server reads the files when it starts, then add a [Rotator] to the
// manager. Give both a client that reads from the API server rather than from
// the manager's cache: a cached read of one Secret would watch every Secret
// in the cluster.
//
// The Secret (type kubernetes.io/tls) holds:
//
//	tls.crt, tls.key  the serving certificate and its key
//	ca.key            the key of the signing CA
//	ca.crt            the signing CA, followed by the earlier CAs that have not
//	                  expired yet; this whole bundle is the caBundle
//
// Guarantees:
//   - Stable CA. The CA is kept as long as it is usable and more than
//     [Options.RenewBefore] away from expiry, so caBundles, once patched,
//     do not change when only the serving certificate is re-issued. When the
//     CA is replaced, the old one stays in ca.crt (and so in the caBundle)
//     until it expires, so a replica still serving a certificate signed by it
//     keeps being trusted until it picks up the new one.
//   - Renewal window. The serving certificate is re-issued when it is missing
//     or unreadable, does not match its key, is not signed by the stored CA,
//     is not yet valid, expires within [Options.RenewBefore], or its SANs
//     differ from [Options.DNSNames] and [Options.IPAddresses] (as sets). It
//     never outlives its CA.
//   - Idempotence. A pass over a Secret, files and configurations already in
//     the desired state writes nothing: no Secret update, no patch, no file
//     rewrite (so the webhook server does not reload for nothing).
//   - Safe under races. Replicas may run [Ensure] at the same time: the
//     Secret is created once (the losers adopt the winner's content) and
//     every update or patch carries a resourceVersion, so a conflicting write
//     is retried on a fresh read instead of overwriting another replica's.
//   - Trust before serving. The caBundles are patched before the files are
//     written; if patching fails, the files are still written when that
//     cannot break trust (nothing on disk yet, or the certificate on disk is
//     signed by the same CA), and kept otherwise.
//   - Files are replaced atomically (temporary file and rename), so the
//     webhook server never reads a half-written file.
//
// Webhook configurations that do not exist yet are skipped without error and
// patched by a later pass.
package certs
