// Package testpoll waits, in tests, for a condition that running code makes
// true. It polls; its deadline only turns a hang into a failure. It is for
// tests only.
package testpoll

import (
	"testing"
	"time"
)

const (
	hangGuard = 30 * time.Second
	interval  = 5 * time.Millisecond
)

// Until polls ok until it holds, and fails the test, naming what it waited
// for, if it never does.
func Until(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(interval)
	}
}
