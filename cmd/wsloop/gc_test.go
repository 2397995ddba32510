package main

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestGCPercentDefault(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	if v, ok := os.LookupEnv("GOGC"); ok {
		defer os.Setenv("GOGC", v)
	}

	os.Unsetenv("GOGC")
	if got := applyGCPercent(); got != "50" {
		t.Errorf("GOGC unset: applyGCPercent() = %q, want 50", got)
	}
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("GOGC unset: GC percent %d, want %d", got, defaultGCPercent)
	}

	os.Setenv("GOGC", "80")
	defer os.Unsetenv("GOGC")
	if got := applyGCPercent(); got != "80 (GOGC)" {
		t.Errorf("GOGC=80: applyGCPercent() = %q, want \"80 (GOGC)\"", got)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC=80: the command changed the GC percent to %d; the runtime owns GOGC", got)
	}
}
