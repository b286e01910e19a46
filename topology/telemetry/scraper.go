package telemetry

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"
)

// maxBodyBytes bounds what one scrape reads; a dcgm-exporter page for eight
// GPUs is tens of KiB.
const maxBodyBytes = 16 << 20

// acceptHeader asks for the text format, which every exporter serves.
const acceptHeader = "text/plain;version=0.0.4;q=1,*/*;q=0.1"

// Scraper fetches its targets' metrics and keeps the latest good sample of
// each, with when it was taken. It is safe for concurrent use.
type Scraper struct {
	client        *http.Client
	maxConcurrent int

	mu      sync.Mutex
	targets []string
	samples Samples
	errs    map[string]error // the latest scrape's error by target; nil after success
}

// NewScraper returns a scraper whose every request is cut off after
// timeout and which runs at most maxConcurrent requests at once.
func NewScraper(timeout time.Duration, maxConcurrent int) *Scraper {
	return &Scraper{
		client:        &http.Client{Timeout: timeout},
		maxConcurrent: max(maxConcurrent, 1),
		samples:       Samples{},
		errs:          map[string]error{},
	}
}

// SetTargets replaces the URLs to scrape; samples of dropped ones go.
func (s *Scraper) SetTargets(urls []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targets = slices.Clone(urls)
	keep := func(url string) bool { return slices.Contains(urls, url) }
	maps.DeleteFunc(s.samples, func(url string, _ Sample) bool { return !keep(url) })
	maps.DeleteFunc(s.errs, func(url string, _ error) bool { return !keep(url) })
}

// Scrape fetches every target once, concurrently, and returns when all
// have answered, failed or timed out.
func (s *Scraper) Scrape(ctx context.Context) {
	s.mu.Lock()
	targets := slices.Clone(s.targets)
	s.mu.Unlock()
	slots := make(chan struct{}, s.maxConcurrent)
	var wg sync.WaitGroup
	for _, url := range targets {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			metrics, err := s.fetch(ctx, url)
			s.record(url, metrics, err, time.Now())
		})
	}
	wg.Wait()
}

func (s *Scraper) fetch(ctx context.Context, url string) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", acceptHeader)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	metrics, err := ParseText(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return metrics, nil
}

// record keeps a scrape's result unless its target was dropped meanwhile.
func (s *Scraper) record(url string, metrics Metrics, err error, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.targets, url) {
		return
	}
	s.errs[url] = err
	if err == nil {
		s.samples[url] = Sample{At: at, Metrics: metrics}
	}
}

// Samples returns the latest good sample of each target that has one.
func (s *Scraper) Samples() Samples {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.samples)
}

// Errors returns the error of each target whose latest scrape failed.
func (s *Scraper) Errors() map[string]error {
	s.mu.Lock()
	defer s.mu.Unlock()
	failing := maps.Clone(s.errs)
	maps.DeleteFunc(failing, func(_ string, err error) bool { return err == nil })
	return failing
}
