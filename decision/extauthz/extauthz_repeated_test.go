package extauthz_test

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc/codes"

	"github.com/verdict-authz/verdict/decision/extauthz"
	"github.com/verdict-authz/verdict/decision/proxyauth"
)

// TestCheckRefusesRepeatedHeaders is a regression test: a header naming the
// caller, sent twice, was read as its first copy (raw header_map) or as
// one value with the copies joined by "," (the headers map), so a service
// reading another copy disagreed with verdict about who asked:
// "x-user: admin" then "x-user: user_a" was judged for admin and allowed a
// delete. Now it is a denied 400 with x-verdict-reason request.invalid
// naming the header, in both forms Envoy sends headers in.
func TestCheckRefusesRepeatedHeaders(t *testing.T) {
	c := demoClient(t, proxyauth.Options{MemberHeader: "X-User", FRNHeader: "X-Verdict-FRN"})
	const detail = "/api/v1/portfolios/portfolio/7/"
	once := map[string]string{"x-verdict-tenant": "bank", "x-user": "admin"}
	// raw is the check with the headers as Envoy's header_map (with
	// encode_raw_headers), where a header sent twice is two entries.
	raw := func(name string, values ...string) answer {
		req := checkRequest("DELETE", detail, nil, nil)
		m := &corev3.HeaderMap{}
		for k, v := range once {
			if k != name {
				m.Headers = append(m.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
			}
		}
		for _, v := range values {
			m.Headers = append(m.Headers, &corev3.HeaderValue{Key: name, RawValue: []byte(v)})
		}
		req.GetAttributes().GetRequest().GetHttp().HeaderMap = m
		return check(t, c, req)
	}
	// joined is the check with the headers map, where Envoy joins the
	// copies of a header with ",".
	joined := func(name, value string) answer {
		h := map[string]string{name: value}
		for k, v := range once {
			if k != name {
				h[k] = v
			}
		}
		return check(t, c, checkRequest("DELETE", detail, h, nil))
	}
	tests := []struct {
		name   string
		answer answer
		header string
	}{
		{"member twice", raw("x-user", "admin", "user_a"), "X-User"},
		{"tenant twice", raw("x-verdict-tenant", "bank", "fineract"), "X-Verdict-Tenant"},
		{"key twice", raw("key", tnt3Key, "other"), "key"},
		{"service twice", raw("x-verdict-service", "portfolios", "other"), "X-Verdict-Service"},
		{"FRN twice", raw("x-verdict-frn", "frn:finmars:portfolios:portfolio:a", "frn:finmars:portfolios:portfolio:b"), "X-Verdict-FRN"},
		{"member joined", joined("x-user", "admin,user_a"), "X-User"},
		{"tenant joined", joined("x-verdict-tenant", "bank,fineract"), "X-Verdict-Tenant"},
		{"FRN joined", joined("x-verdict-frn", "frn:finmars:portfolios:portfolio:a,frn:finmars:portfolios:portfolio:b"), "X-Verdict-FRN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.answer
			if a.code != codes.InvalidArgument || a.httpStatus != 400 || a.headers[extauthz.HeaderReason] != extauthz.ReasonRequestInvalid {
				t.Fatalf("code %v status %d reason %q body %v; want a denied 400 %s", a.code, a.httpStatus, a.headers[extauthz.HeaderReason], a.body, extauthz.ReasonRequestInvalid)
			}
			if a.body["code"] != "invalid_request" || a.body["field"] != tt.header {
				t.Errorf("body %v, want invalid_request naming %s", a.body, tt.header)
			}
		})
	}
	// Each header once, in either form: decided.
	for name, a := range map[string]answer{"raw": raw("x-user", "admin"), "joined": joined("x-user", "admin")} {
		if a.code != codes.OK {
			t.Errorf("%s, each header once: code %v status %d body %v, want an allow", name, a.code, a.httpStatus, a.body)
		}
	}
}
