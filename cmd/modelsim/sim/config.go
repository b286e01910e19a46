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
	// ColdLoadTime is how long the instance is "loading" after Start before
	// it serves (or sleeps, with StartAsleep).
	ColdLoadTime time.Duration
	// WarmLoadTime is how long a wake-up from sleep takes.
	WarmLoadTime time.Duration
	// StartAsleep starts a warm standby: loaded into host memory, asleep
	// until woken.
	StartAsleep bool
	// Checkpoint is the checkpoint the weights come from; nil when unknown.
	Checkpoint *Checkpoint
	// Corrupt starts the instance corrupted: inference answers wrongly.
	Corrupt bool
}

// Checkpoint names the weights an instance serves and when they were saved.
type Checkpoint struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
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
	if c.ColdLoadTime < 0 {
		errs = append(errs, fmt.Errorf("cold load time %v is negative", c.ColdLoadTime))
	}
	if c.WarmLoadTime < 0 {
		errs = append(errs, fmt.Errorf("warm load time %v is negative", c.WarmLoadTime))
	}
	if c.Checkpoint != nil && (c.Checkpoint.ID == "" || c.Checkpoint.Time.IsZero()) {
		errs = append(errs, errors.New("checkpoint needs both an id and a time"))
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
