// Command inferxds is the control plane binary: it serves xDS to an Envoy
// fleet and proxyless gRPC clients, and validates, previews and inspects what
// it serves. Subcommands live one per file; main only hands over.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
