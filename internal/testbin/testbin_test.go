package testbin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildAllBuildsEachCommandAndRemovesThem(t *testing.T) {
	bins, remove, err := BuildAll("testbin-", "github.com/inferxds/inferxds/cmd/modelsim")
	if err != nil {
		t.Fatal(err)
	}
	if len(bins) != 1 || filepath.Base(bins[0]) != "modelsim" {
		t.Fatalf("BuildAll = %v, want one executable named modelsim", bins)
	}
	if st, err := os.Stat(bins[0]); err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("%s: %v, mode %v; want an executable", bins[0], err, st)
	}
	remove()
	if _, err := os.Stat(filepath.Dir(bins[0])); !os.IsNotExist(err) {
		t.Errorf("after remove, %s: %v; want it gone", filepath.Dir(bins[0]), err)
	}
}

func TestBuildAllNamesThePackageThatFails(t *testing.T) {
	const missing = "github.com/inferxds/inferxds/cmd/no-such-command"
	if _, _, err := BuildAll("testbin-", "github.com/inferxds/inferxds/cmd/modelsim", missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("BuildAll with %s = %v, want an error naming it", missing, err)
	}
}
