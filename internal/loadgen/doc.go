// Package loadgen sends HTTP requests at a fixed rate to a gateway on
// loopback and counts, per second, what came back. CAFE's e2e tests run it
// for a whole release to prove the release lossless with real requests.
//
// Invariants:
//
//   - Open model: request i is sent at start + i/Rate whatever the earlier
//     requests are doing. A slow backend grows the number of requests in
//     flight; it never slows the schedule. When the pacer falls behind (a
//     stalled process), it catches up at once, so Sent stays Rate per second.
//   - Nothing is skipped silently: a request that would exceed MaxInFlight
//     is counted as Dropped in the second it was due.
//   - Loopback only: [Config.URL] must name a loopback IP literal or
//     "localhost", checked before anything is sent; the dialer resolves no
//     names ("localhost" dials 127.0.0.1) and refuses any non-loopback
//     address before connect(2). Redirects are not followed: a 3xx is a
//     non-2xx answer.
//   - Each request is attributed to the second it was due in (its index
//     since the start), not the second it finished in; a second is
//     [Second.Served] when it had at least one 2xx answer and no failure.
//   - [Run] returns only after every request has finished (each is bounded
//     by [Config.Timeout]) and every [Config.OnSecond] call has returned.
package loadgen
