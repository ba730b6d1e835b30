//go:build race

package topics

// raceEnabled turns off memory limits, which the race detector's own
// allocations would break.
const raceEnabled = true
