//go:build race

package broker

// raceEnabled skips allocation counts: under the race detector sync.Pool
// drops items on purpose, so pooled objects are made again.
const raceEnabled = true
