package pebble_test

import (
	"testing"

	"github.com/coolpy7/coolpy7/store"
	"github.com/coolpy7/coolpy7/store/pebble"
	"github.com/coolpy7/coolpy7/store/storetest"
)

func open(t *testing.T, dir string, o store.Options) store.Store {
	t.Helper()
	s, err := pebble.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, open, true)
}
