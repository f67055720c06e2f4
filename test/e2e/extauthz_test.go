package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/verdict-authz/verdict/test/e2eutil"
)

// TestEnvoyExtAuthz runs `verdict run --grpc-addr` and calls it as Envoy's
// ext_authz filter does, with the generated gRPC client: an allow passes
// the decision id and the action upstream, a deny carries the decision's
// status and a JSON body, the health service answers SERVING, and SIGTERM
// stops both servers cleanly.
func TestEnvoyExtAuthz(t *testing.T) {
	grpcAddr, err := e2eutil.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "--bundle", demoBundle, "--grpc-addr", grpcAddr,
		"--authz-tenant", "bank", "--authz-member-header", "X-User", "--grpc-action-header", "X-Verdict-Action")
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	health, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
	if err != nil || health.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v, want SERVING\n%s", health.GetStatus(), err, s.Out.String())
	}

	client := authv3.NewAuthorizationClient(conn)
	ask := func(method, path, member string) *authv3.CheckResponse {
		t.Helper()
		resp, err := client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
				SocketAddress: &corev3.SocketAddress{Address: "10.0.0.7"},
			}}},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: method, Path: path, Headers: map[string]string{"x-user": member},
			}},
		}})
		if err != nil {
			t.Fatalf("Check %s %s: %v", method, path, err)
		}
		return resp
	}

	allowed := ask("GET", "/api/v1/portfolios/portfolio/?page=2", "user_a")
	if codes.Code(allowed.GetStatus().GetCode()) != codes.OK {
		t.Fatalf("user_a listing portfolios: %v", allowed)
	}
	upstream := map[string]string{}
	for _, h := range allowed.GetOkResponse().GetHeaders() {
		upstream[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	if upstream["x-verdict-decision-id"] == "" || upstream["x-verdict-action"] != "finmars:Portfolio:list" {
		t.Errorf("upstream headers %v, want the decision id and the action", upstream)
	}

	denied := ask("DELETE", "/api/v1/portfolios/portfolio/3/", "user_a")
	if codes.Code(denied.GetStatus().GetCode()) != codes.PermissionDenied || denied.GetDeniedResponse().GetStatus().GetCode() != 403 {
		t.Fatalf("user_a deleting a portfolio: %v", denied)
	}
	var body struct {
		Allow   bool `json:"allow"`
		Reasons []struct {
			Code string `json:"code"`
		} `json:"reasons"`
	}
	if err := json.Unmarshal([]byte(denied.GetDeniedResponse().GetBody()), &body); err != nil || body.Allow || len(body.Reasons) == 0 || body.Reasons[0].Code != "iam.no_allow" {
		t.Errorf("denied body %q (%v), want the decision with reason iam.no_allow", denied.GetDeniedResponse().GetBody(), err)
	}
	if got := ask("GET", "/nowhere", "user_a").GetDeniedResponse().GetStatus().GetCode(); got != 404 {
		t.Errorf("unknown route: HTTP status %d, want 404", got)
	}
	if got := ask("GET", "/api/v1/portfolios/portfolio/", "").GetDeniedResponse().GetStatus().GetCode(); got != 401 {
		t.Errorf("anonymous: HTTP status %d, want 401", got)
	}

	if err := s.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done:
	case <-time.After(15 * time.Second):
		t.Fatalf("verdict did not stop on SIGTERM:\n%s", s.Out.String())
	}
	var exit *exec.ExitError
	if errors.As(s.WaitErr, &exit) || s.WaitErr != nil {
		t.Fatalf("verdict run exited with %v after SIGTERM:\n%s", s.WaitErr, s.Out.String())
	}
	if !strings.Contains(s.Out.String(), "grpc_addr="+grpcAddr) {
		t.Errorf("the log does not say where ext_authz is served:\n%s", s.Out.String())
	}
}
