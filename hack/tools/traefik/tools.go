//go:build tools

// Package tools records the Traefik binary this module builds: the Gateway
// API implementation of the local control plane (issue 13).
package tools

import _ "github.com/traefik/traefik/v3/cmd/traefik"
