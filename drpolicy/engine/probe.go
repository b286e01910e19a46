// Package engine owns the DR reconcile loop's I/O: the probes that find
// failed instances and the checkpoints they serve.
package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/inferxds/inferxds/drpolicy/dr"
)

// Health is an instance's answer to GET /healthz.
type Health struct {
	Status     string         `json:"status"`
	Sleeping   bool           `json:"sleeping"`
	Checkpoint *dr.Checkpoint `json:"checkpoint,omitempty"`
}

// Serving reports whether the instance can take traffic.
func (h Health) Serving() bool { return h.Status == "serving" }

// maxHealthBody bounds how much of a /healthz reply is read.
const maxHealthBody = 64 << 10

// ProbeHealth asks the instance at addr (host:port) for GET /healthz. An
// answer that is not 200 still yields its parsed body, so a sleeping or
// loading instance reports its checkpoint; the error says why it is not
// serving.
func ProbeHealth(ctx context.Context, c *http.Client, addr string) (Health, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return Health{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return Health{}, err
	}
	defer resp.Body.Close()
	var h Health
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxHealthBody)).Decode(&h); err != nil {
		return Health{}, fmt.Errorf("healthz %s: HTTP %d, body: %w", addr, resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || !h.Serving() {
		return h, fmt.Errorf("healthz %s: HTTP %d, status %q", addr, resp.StatusCode, h.Status)
	}
	return h, nil
}
