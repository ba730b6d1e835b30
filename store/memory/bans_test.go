package memory_test

import (
	"testing"

	"github.com/coolpy7/coolpy7/store"
	"github.com/coolpy7/coolpy7/store/memory"
	"github.com/coolpy7/coolpy7/store/storetest"
)

func TestBans(t *testing.T) {
	storetest.RunBans(t, func(_ *testing.T, _ string, o store.Options) store.Store { return memory.Open(o) }, false)
}
