//go:build race

package clientlimit

// raceEnabled shortens the floods: the race detector makes each table probe
// about fifty times slower, and the flood's point (a bound that holds) is
// made after a few times the table's size.
const raceEnabled = true
