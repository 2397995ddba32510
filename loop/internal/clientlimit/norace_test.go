//go:build !race

package clientlimit

const raceEnabled = false
