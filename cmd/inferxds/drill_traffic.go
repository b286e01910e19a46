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

// traffic is a bounded load: Workers goroutines per model, each sending
// one request at a time with Pause between requests, every outcome kept in
// a tally.
type traffic struct {
	Send    sender
	Models  []string
	Workers int
	Pause   time.Duration
	Tally   *tally
}

// start runs the load until the returned stop is called; stop waits for
// every worker.
func (tr traffic) start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, model := range tr.Models {
		for range tr.Workers {
			wg.Go(func() { tr.work(ctx, model) })
		}
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

func (tr traffic) work(ctx context.Context, model string) {
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-pause.C:
		}
		instance, err := tr.Send(ctx, model)
		if ctx.Err() != nil {
			return // cut by the stop, not a failure of the fleet
		}
		if err != nil {
			instance = ""
		}
		tr.Tally.record(model, outcome{At: time.Now(), Instance: instance})
		pause.Reset(tr.Pause)
	}
}
