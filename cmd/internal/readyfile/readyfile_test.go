package readyfile

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteLeavesOnlyTheCompleteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ready.json")
	if err := Write(path, map[string]string{"address": "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(data, &got); err != nil || got["address"] != "127.0.0.1:1" {
		t.Errorf("ready file = %q (%v)", data, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the ready file", len(entries))
	}
}

func TestWriteWithoutPathWritesNothing(t *testing.T) {
	if err := Write("", struct{}{}); err != nil {
		t.Fatal(err)
	}
}

func TestWriteReportsAMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "ready.json")
	if err := Write(path, struct{}{}); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}
