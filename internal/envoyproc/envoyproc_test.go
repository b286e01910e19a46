package envoyproc

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/inferxds/inferxds/snapshot"
)

// fakeAdmin answers /listeners as Envoy's admin does, with the ingress
// listener on port (0: not bound yet).
func fakeAdmin(t *testing.T, port *atomic.Uint32) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"listener_statuses":[{"name":"admin-side","local_address":{"socket_address":{"port_value":1}}},`+
			`{"name":%q,"local_address":{"socket_address":{"port_value":%d}}}]}`, snapshot.SocketListenerName, port.Load())
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestListeningOnceTheAdminFileIsWrittenAndTheListenerBound(t *testing.T) {
	var port atomic.Uint32
	admin := fakeAdmin(t, &port)
	adminFile := filepath.Join(t.TempDir(), "admin-address")

	if _, _, err := Listening(http.DefaultClient, adminFile); err == nil {
		t.Error("Listening before the admin file was written succeeded")
	}
	if err := os.WriteFile(adminFile, []byte(admin+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Listening(http.DefaultClient, adminFile); err == nil {
		t.Error("Listening before the ingress listener was bound succeeded")
	}
	port.Store(10080)
	gotAdmin, ingress, err := Listening(http.DefaultClient, adminFile)
	if err != nil || gotAdmin != admin || ingress != "127.0.0.1:10080" {
		t.Errorf("Listening = %q, %q, %v; want %q, 127.0.0.1:10080", gotAdmin, ingress, err, admin)
	}
}
