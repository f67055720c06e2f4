package main

import "net"

// defaultListenAddr is the address `verdict run` serves on, and `verdict
// healthcheck` probes, when neither --addr, VERDICT_ADDR nor the --config
// file names one. Both commands read --addr through bindRunConfig, so a
// container's HEALTHCHECK probes the address verdict serves on.
const defaultListenAddr = "127.0.0.1:8181"

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
