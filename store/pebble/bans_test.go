package pebble_test

import (
	"testing"

	"github.com/coolpy7/coolpy7/store/storetest"
)

func TestBans(t *testing.T) {
	storetest.RunBans(t, open, true)
}
