//go:build tools

// Package tools records the Traefik binary this module builds: the Gateway
// API implementation the local control plane is to run (issue 13).
//
// v3.6.12, not the newest v3.7.x: the module proxy refuses 29 module
// versions v3.7.13 depends on (Traefik's go-http-auth fork among them), and
// v3.7 replaces a nested module that module zips omit. v3.6.12 resolves
// completely and builds here (`go build -ldflags "-s -w"` took 456 s on two
// idle cores with a warm module cache: 178 MB, with the kubernetesgateway
// provider). It pins sigs.k8s.io/gateway-api v1.4.0. Not yet built by
// `cafe dev build`: it is added to controlplane.Binaries with the gateway.
package tools

import _ "github.com/traefik/traefik/v3/cmd/traefik"
