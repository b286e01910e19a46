package testpoll

import (
	"sync/atomic"
	"testing"
)

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	var calls atomic.Int32
	Until(t, "the third call", func() bool { return calls.Add(1) == 3 })
	if got := calls.Load(); got != 3 {
		t.Errorf("ok called %d times, want 3 (none after it held)", got)
	}
}
