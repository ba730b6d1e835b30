package store

import "time"

// Ban is one entry of the broker's ban list as a store keeps it. The key it
// is kept under names what is banned (the broker's choice of encoding: an
// address range or a client ID).
type Ban struct {
	// Until is when the ban lapses; zero for never.
	Until time.Time
	// Reason is for the operator.
	Reason string
}

// Bans keeps the ban list, so that bans outlive a restart. A store keeps
// lapsed bans until they are overwritten or deleted, but never returns
// them.
type Bans interface {
	// Put adds or replaces the ban under key.
	Put(key string, b Ban) error
	// Delete removes the ban under key, if any.
	Delete(key string) error
	// Range calls fn for each ban in force at the store's clock, in key
	// order, until fn returns false.
	Range(fn func(key string, b Ban) bool) error
}

// BanStore is a Store that keeps a ban list. It is an interface of its own
// so that the Store interface, and its other implementations, need not
// change for it.
type BanStore interface {
	Bans() Bans
}
