package main

import "testing"

func TestHealthcheckURL(t *testing.T) {
	for _, tt := range []struct {
		addr, url, want string
		wantErr         bool
	}{
		{addr: "127.0.0.1:8181", want: "http://127.0.0.1:8181/health/ready"},
		{addr: "0.0.0.0:9000", want: "http://127.0.0.1:9000/health/ready"},
		{addr: ":9000", want: "http://127.0.0.1:9000/health/ready"},
		{addr: "[::]:9000", want: "http://[::1]:9000/health/ready"},
		{addr: "[2001:db8::1]:9000", want: "http://[2001:db8::1]:9000/health/ready"},
		{url: "http://10.0.0.1:8181", want: "http://10.0.0.1:8181/health/ready"},
		{url: "http://10.0.0.1:8181/", want: "http://10.0.0.1:8181/health/ready"},
		{url: "https://verdict.local/health", want: "https://verdict.local/health"},
		{url: "10.0.0.1:8181", wantErr: true},
	} {
		got, err := healthcheckURL(tt.addr, tt.url)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("healthcheckURL(%q, %q) = %q, %v; want %q (error %v)", tt.addr, tt.url, got, err, tt.want, tt.wantErr)
		}
	}
}
