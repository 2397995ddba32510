// Package bench runs wsloop's benchmark matrix and writes BENCHMARKS.md.
//
// Every figure on that page comes from a run of this package: it builds the
// servers (wsloop with each engine, and the goroutine-per-connection
// baselines of the nested module bench/baseline), starts each one as a
// subprocess, drives it with cmd/wsload, reads the server's costs from
// /proc, and renders medians, spreads and same-run ratios to gorilla as
// Markdown tables and SVG charts. Runs of different servers are interleaved
// (A B C A B C ...) so that a noisy machine skews them alike; only ratios
// measured in the same run are compared.
package bench
