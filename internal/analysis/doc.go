// Package analysis judges a release step's traffic with a TrafficAnalysis:
// it asks a real Prometheus for each metric's value (Prometheus), compares
// the values with their thresholds (Measure), and decides the analysis
// from its measurements so far (Judge). A value that cannot be had —
// Prometheus unreachable, no data, a query that does not give one number —
// makes a measurement inconclusive: it counts neither way, so missing data
// never passes a release.
package analysis
