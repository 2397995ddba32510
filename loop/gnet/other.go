//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

// Package gnet registers the "gnet" engine where gnet runs (Linux, the
// BSDs and macOS); elsewhere importing it registers nothing.
package gnet
