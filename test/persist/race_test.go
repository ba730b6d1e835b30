//go:build race

package persist

// Under -race the broker binary is built with the race detector too, so
// that these tests check the persistence paths for races end to end.
func init() { buildFlags = append(buildFlags, "-race") }
