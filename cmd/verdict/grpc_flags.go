package main

import (
	"fmt"
	"net"

	"github.com/spf13/pflag"
)

// grpcOptions configure Envoy's external authorization over gRPC
// (envoy.service.auth.v3.Authorization/Check). Callers are read with the
// --authz-* flags, as GET /v1/authz reads them.
type grpcOptions struct {
	addr         string
	actionHeader string
}

func (g *grpcOptions) register(f *pflag.FlagSet) {
	f.StringVar(&g.addr, "grpc-addr", "", "serve Envoy ext_authz (gRPC v3) and the gRPC health service on this address, e.g. 127.0.0.1:9191 (off when empty); callers are read with the --authz-* flags")
	f.StringVar(&g.actionHeader, "grpc-action-header", "", "ext_authz: on an allow, pass the decided action to the upstream in this header, e.g. X-Verdict-Action (off when empty)")
}

// listen opens the gRPC listener, or returns nil when --grpc-addr is empty.
func (g *grpcOptions) listen() (net.Listener, error) {
	if g.addr == "" {
		if g.actionHeader != "" {
			return nil, fmt.Errorf("--grpc-action-header needs --grpc-addr")
		}
		return nil, nil
	}
	ln, err := net.Listen("tcp", g.addr)
	if err != nil {
		return nil, fmt.Errorf("--grpc-addr: %w", err)
	}
	return ln, nil
}
