// Package envoyproc owns what every caller that runs an Envoy of its own
// (the demo, the end-to-end tests) needs to know about starting one: the
// command line, and how to tell from Envoy's admin that its ingress
// listener is bound and where. It neither starts nor stops processes.
package envoyproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/inferxds/inferxds/snapshot"
)

// Args is the Envoy command line for the bootstrap file config, writing its
// admin address to adminFile, followed by extra flags.
func Args(config, adminFile string, extra ...string) []string {
	return append([]string{"-c", config, "--admin-address-path", adminFile,
		"--disable-hot-restart", "--log-level", "warn"}, extra...)
}

// Listening returns Envoy's admin address, read from adminFile, and the
// 127.0.0.1 address its ingress listener is bound to, asked of the admin
// with client. It fails until Envoy has written the file and bound the
// listener: callers poll it.
func Listening(client *http.Client, adminFile string) (admin, ingress string, err error) {
	data, err := os.ReadFile(adminFile)
	if err != nil || len(strings.TrimSpace(string(data))) == 0 {
		return "", "", fmt.Errorf("no admin address yet: %v", err)
	}
	admin = strings.TrimSpace(string(data))
	ingress, err = ingressAddress(client, admin)
	return admin, ingress, err
}

// ingressAddress asks Envoy's admin where its socket listener bound.
func ingressAddress(client *http.Client, admin string) (string, error) {
	resp, err := client.Get("http://" + admin + "/listeners?format=json")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var listeners struct {
		ListenerStatuses []struct {
			Name         string `json:"name"`
			LocalAddress struct {
				SocketAddress struct {
					PortValue uint32 `json:"port_value"`
				} `json:"socket_address"`
			} `json:"local_address"`
		} `json:"listener_statuses"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&listeners); err != nil {
		return "", err
	}
	for _, l := range listeners.ListenerStatuses {
		if l.Name == snapshot.SocketListenerName && l.LocalAddress.SocketAddress.PortValue != 0 {
			return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(l.LocalAddress.SocketAddress.PortValue))), nil
		}
	}
	return "", errors.New("no ingress listener yet")
}
