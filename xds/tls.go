package xds

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"

	"google.golang.org/grpc/credentials"
)

// TLSFiles name the PEM files of the server's mutual TLS: its certificate
// chain and key, and the CA bundle client certificates must chain to.
type TLSFiles struct {
	Cert, Key, ClientCA string
}

// ServerTLS returns transport credentials for mutual TLS from files. Each
// handshake uses the files' latest content: a rotated certificate or CA
// serves the next connection, while connections already up keep theirs. A
// change that does not load (a key written before its certificate, say)
// is logged and the last good material kept.
func ServerTLS(files TLSFiles, logger *slog.Logger) (credentials.TransportCredentials, error) {
	r := &tlsReloader{files: files, logger: logger}
	if _, err := r.config(); err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return r.config() },
	}), nil
}

// tlsReloader holds the latest good TLS material and the file contents it
// was built from.
type tlsReloader struct {
	files  TLSFiles
	logger *slog.Logger

	mu       sync.Mutex
	loaded   [][]byte // cert, key, CA as last loaded
	rejected [][]byte // contents last refused, logged once
	current  *tls.Config
}

func (r *tlsReloader) config() (*tls.Config, error) {
	raw, err := r.read()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil && sameFiles(raw, r.loaded) {
		return r.current, nil
	}
	var cfg *tls.Config
	if err == nil {
		cfg, err = r.parse(raw)
	}
	switch {
	case err == nil:
		if r.current != nil {
			r.logger.Info("TLS certificate, key or client CA reloaded", "cert", r.files.Cert, "clientCA", r.files.ClientCA)
		}
		r.loaded, r.current, r.rejected = raw, cfg, nil
		return cfg, nil
	case r.current == nil:
		return nil, err
	}
	if !sameFiles(raw, r.rejected) {
		r.rejected = raw
		r.logger.Error("TLS files changed but do not load; still serving the previous ones", "error", err)
	}
	return r.current, nil
}

func (r *tlsReloader) read() ([][]byte, error) {
	var out [][]byte
	for _, name := range []string{r.files.Cert, r.files.Key, r.files.ClientCA} {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		out = append(out, data)
	}
	return out, nil
}

func (r *tlsReloader) parse(raw [][]byte) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(raw[0], raw[1])
	if err != nil {
		return nil, fmt.Errorf("tls: certificate %s with key %s: %w", r.files.Cert, r.files.Key, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw[2]) {
		return nil, errors.New("tls: client CA " + r.files.ClientCA + ": no PEM certificate in it")
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}, nil
}

func sameFiles(a, b [][]byte) bool { return slices.EqualFunc(a, b, bytes.Equal) }
