// Package topics holds the subscription trie, shared-subscription groups and
// the retained-message index.
package topics

// Options are one subscription's options.
type Options struct {
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	ID                uint32 // v5 subscription identifier, 0 for none
}
