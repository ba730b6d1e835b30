//go:build race

package acl

// raceEnabled shrinks the brute-force tests, which run on one goroutine
// and so gain nothing from the race detector but its tenfold slowdown.
const raceEnabled = true
