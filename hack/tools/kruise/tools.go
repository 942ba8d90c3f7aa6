//go:build tools

// Package tools pins OpenKruise's kruise-manager, the peer `make bench`
// releases beside CAFE (a CloneSet with InPlaceIfPossible). It is built into
// bin/ only by the benchmark, never by `make test`.
package tools

import _ "github.com/openkruise/kruise"
