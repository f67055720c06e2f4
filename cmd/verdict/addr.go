package main

import (
	"net"
	"os"
)

// EnvAddr names the environment variable that, when set, is the default of
// --addr for `verdict run` and `verdict healthcheck` alike, so that a
// container's HEALTHCHECK probes the address verdict serves on.
const EnvAddr = "VERDICT_ADDR"

// defaultAddr is the address verdict serves on without --addr: VERDICT_ADDR,
// else 127.0.0.1:8181.
func defaultAddr() string {
	if a := os.Getenv(EnvAddr); a != "" {
		return a
	}
	return "127.0.0.1:8181"
}

// probeHost is where a local client reaches a server listening on addr: a
// wildcard or missing host (0.0.0.0, ::, ":8181") is reached on loopback.
func probeHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::", "[::]":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}
