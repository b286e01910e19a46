package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/inferxds/inferxds/cmd/modelsim/sim"
)

// sender sends one inference request for model and returns the instance
// that answered.
type sender func(ctx context.Context, model string) (string, error)

// requestTimeout bounds one request of the drill traffic; a request that
// hangs longer counts as failed.
const requestTimeout = 15 * time.Second

// drillInput is what every drill request asks the model to echo; an
// answer with another output is a wrong answer (a corrupted model) and
// counts as failed.
const drillInput = `"hello"`

// envoySender sends predict requests through an Envoy listener at addr,
// routed by the model-name header (and the model's default path prefix);
// modelsim names itself in a response header.
func envoySender(addr string) sender {
	client := &http.Client{Timeout: requestTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	return func(ctx context.Context, model string) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost,
			"http://"+addr+"/v1/models/"+model+"/predict", strings.NewReader(`{"input":`+drillInput+`}`))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("model-name", model)
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return resp.Header.Get(sim.HeaderInstance), checkEcho(body)
	}
}

// checkEcho fails a predict answer whose output is not the drill's input.
func checkEcho(body []byte) error {
	var got sim.PredictResponse
	if err := json.Unmarshal(body, &got); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	if !bytes.Equal(bytes.TrimSpace(got.Output), []byte(drillInput)) {
		return fmt.Errorf("wrong answer %s", got.Output)
	}
	return nil
}

// traffic is a bounded open-loop load: per model, one request every
// Interval whatever the answers' latency (so requests stuck on a dead
// instance do not hold back the ones that would find a live one), at most
// InFlight at once (a request due while that many are out is not sent),
// every outcome kept in a tally.
type traffic struct {
	Send     sender
	Models   []string
	Interval time.Duration
	InFlight int
	Tally    *tally
}

// start runs the load until the returned stop is called; stop sends no
// more and waits for the requests out, which requestTimeout bounds, so
// that each is counted. Cancelling ctx cuts them instead, uncounted.
func (tr traffic) start(ctx context.Context) (stop func()) {
	sending, stopSending := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, model := range tr.Models {
		wg.Go(func() { tr.send(sending, ctx, model, &wg) })
	}
	return func() {
		stopSending()
		wg.Wait()
	}
}

// send issues model's requests until sending ends; each runs in its own
// goroutine under ctx, added to wg.
func (tr traffic) send(sending, ctx context.Context, model string, wg *sync.WaitGroup) {
	slots := make(chan struct{}, tr.InFlight)
	tick := time.NewTicker(tr.Interval)
	defer tick.Stop()
	for {
		select {
		case <-sending.Done():
			return
		case <-tick.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			continue // InFlight requests out already
		}
		wg.Go(func() {
			defer func() { <-slots }()
			instance, err := tr.Send(ctx, model)
			if ctx.Err() != nil {
				return // cut by Ctrl-C, not a failure of the fleet
			}
			if err != nil {
				instance = ""
			}
			tr.Tally.record(model, outcome{At: time.Now(), Instance: instance})
		})
	}
}
