// Package appanswer is how CAFE's demo application answers HTTP, whether
// it is emulated in a simulated pod (internal/podemu) or runs as a real
// process from a package on a classic host (examples/demo-app): both
// answer with the same headers and JSON body, so that a client, a gateway
// or a test cannot tell them apart, only which instance and version
// answered.
//
// It imports only the standard library: the demo app links it without
// pulling in the Kubernetes client packages podemu needs.
package appanswer
