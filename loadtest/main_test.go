package loadtest

import (
	"os"
	"testing"
)

// TestMain lets Run re-execute the test binary as a worker process.
func TestMain(m *testing.M) {
	if IsWorker() {
		os.Exit(WorkerMain())
	}
	os.Exit(m.Run())
}
