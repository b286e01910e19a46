package sim

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
)

// Failure is an injected fault. The zero value is healthy. Setting any field
// turns failure on, and the unset fields default to HTTP 503, gRPC
// UNAVAILABLE and a rate of 1 (every request fails).
type Failure struct {
	// HTTPStatus is the status failing HTTP predict requests get (400..599).
	HTTPStatus int
	// GRPCCode is the code failing ModelInfer calls get.
	GRPCCode codes.Code
	// Rate is the fraction of inference requests that fail, 0..1. Failures
	// are spread evenly by request count, not drawn at random: request k
	// (counted from when the failure was set) fails when floor(k*Rate)
	// grows, so 0.5 fails every 2nd request and 0.25 every 4th.
	Rate float64
}

// ParseGRPCCode reads a gRPC status code by name (UNAVAILABLE, any case) or
// number; the empty string is OK, meaning no gRPC failure.
func ParseGRPCCode(s string) (codes.Code, error) {
	var c codes.Code
	if s == "" {
		return codes.OK, nil
	}
	text := strings.ToUpper(strings.TrimSpace(s))
	if _, err := strconv.Atoi(text); err != nil {
		text = strconv.Quote(text)
	}
	if err := c.UnmarshalJSON([]byte(text)); err != nil {
		return codes.OK, fmt.Errorf("grpc code %q: %w", s, err)
	}
	return c, nil
}

// Validate reports every out-of-range field.
func (f Failure) Validate() error {
	var errs []error
	if f.HTTPStatus != 0 && (f.HTTPStatus < 400 || f.HTTPStatus > 599) {
		errs = append(errs, fmt.Errorf("fail http status %d is not in 400..599", f.HTTPStatus))
	}
	if f.GRPCCode > codes.Unauthenticated {
		errs = append(errs, fmt.Errorf("fail grpc code %d is not a gRPC code", f.GRPCCode))
	}
	if f.Rate < 0 || f.Rate > 1 || math.IsNaN(f.Rate) {
		errs = append(errs, fmt.Errorf("fail rate %v is not in 0..1", f.Rate))
	}
	return errors.Join(errs...)
}

// Active reports whether any request can fail.
func (f Failure) Active() bool {
	return f.HTTPStatus != 0 || f.GRPCCode != codes.OK || f.Rate > 0
}

// Total reports whether every request fails; only then do the health checks
// fail too, so a partly failing instance looks healthy to probes, as a real
// flaky server does.
func (f Failure) Total() bool {
	return f.Active() && f.withDefaults().Rate >= 1
}

func (f Failure) withDefaults() Failure {
	if !f.Active() {
		return f
	}
	if f.HTTPStatus == 0 {
		f.HTTPStatus = 503
	}
	if f.GRPCCode == codes.OK {
		f.GRPCCode = codes.Unavailable
	}
	if f.Rate == 0 {
		f.Rate = 1
	}
	return f
}

// injector decides, request by request, which requests fail.
type injector struct {
	mu   sync.Mutex
	mode Failure
	seen uint64 // inference requests counted since mode was set
}

func (in *injector) set(f Failure) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.mode = f.withDefaults()
	in.seen = 0
}

func (in *injector) current() Failure {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.mode
}

// decide counts one inference request and reports whether it fails.
func (in *injector) decide() (Failure, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.mode.Active() {
		return Failure{}, false
	}
	in.seen++
	k := float64(in.seen)
	fails := math.Floor(k*in.mode.Rate) > math.Floor((k-1)*in.mode.Rate)
	return in.mode, fails
}
