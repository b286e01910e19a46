package sim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// OpenAIReply is what one OpenAI-style HTTP call got back.
type OpenAIReply struct {
	Status      int
	Instance    string // the X-Modelsim-Instance header; empty if no instance answered
	ContentType string
	Body        []byte
	// Events are the data payloads of a text/event-stream reply, in order,
	// the final [DONE] included.
	Events []string
}

// Done reports whether a streamed reply ended with data: [DONE].
func (r OpenAIReply) Done() bool {
	return len(r.Events) > 0 && r.Events[len(r.Events)-1] == sseDone
}

// CallOpenAI sends body (nil for a GET) to baseURL+path the way an OpenAI
// client does: JSON, the model only in the body, no routing header.
func CallOpenAI(ctx context.Context, c *http.Client, baseURL, path string, body any) (OpenAIReply, error) {
	method, reader := http.MethodGet, io.Reader(nil)
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return OpenAIReply{}, err
		}
		method, reader = http.MethodPost, bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, baseURL+path, reader)
	if err != nil {
		return OpenAIReply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return OpenAIReply{}, err
	}
	defer resp.Body.Close()
	reply := OpenAIReply{Status: resp.StatusCode, Instance: resp.Header.Get(HeaderInstance), ContentType: resp.Header.Get("Content-Type")}
	reply.Body, err = io.ReadAll(resp.Body)
	if strings.HasPrefix(reply.ContentType, "text/event-stream") {
		reply.Events = sseData(reply.Body)
	}
	return reply, err
}

// sseData returns the payload of every "data: " line of an event stream.
func sseData(stream []byte) []string {
	var events []string
	lines := bufio.NewScanner(bytes.NewReader(stream))
	for lines.Scan() {
		if data, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
			events = append(events, data)
		}
	}
	return events
}
