package sim

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultMaxConcurrency is how many requests run at once when Config leaves
// MaxConcurrency at zero.
const DefaultMaxConcurrency = 16

// Config is what one simulated model instance does.
type Config struct {
	// ID names the instance in every reply.
	ID string
	// Models are the model names served; requests for others get 404 / NOT_FOUND.
	Models []string
	// HTTPAddress and GRPCAddress are listen addresses (port 0 picks a free
	// port); an empty GRPCAddress disables gRPC.
	HTTPAddress string
	GRPCAddress string
	// Latency is added to every inference request while it holds a slot.
	Latency time.Duration
	// MaxConcurrency bounds requests running at once; the rest wait.
	MaxConcurrency int
	// Failure is the failure injected from the start (zero value: healthy).
	Failure Failure
	// ExitAfter, when positive, makes the instance answer this many inference
	// requests and crash on the next one (see Server.Crashed).
	ExitAfter int
}

// ParseModels splits a comma-separated list of model names, dropping blanks.
func ParseModels(list string) []string {
	var models []string
	for _, m := range strings.Split(list, ",") {
		if m = strings.TrimSpace(m); m != "" {
			models = append(models, m)
		}
	}
	return models
}

// Validate reports every problem in the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("instance id is empty"))
	}
	if len(c.Models) == 0 {
		errs = append(errs, errors.New("no model names"))
	}
	if c.HTTPAddress == "" {
		errs = append(errs, errors.New("http address is empty"))
	}
	if c.Latency < 0 {
		errs = append(errs, fmt.Errorf("latency %v is negative", c.Latency))
	}
	if c.MaxConcurrency < 0 {
		errs = append(errs, fmt.Errorf("max concurrency %d is negative", c.MaxConcurrency))
	}
	if c.ExitAfter < 0 {
		errs = append(errs, fmt.Errorf("exit-after %d is negative", c.ExitAfter))
	}
	errs = append(errs, c.Failure.Validate())
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.MaxConcurrency == 0 {
		c.MaxConcurrency = DefaultMaxConcurrency
	}
	c.Failure = c.Failure.withDefaults()
	return c
}
