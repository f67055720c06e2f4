package proxyauth_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/decision/proxyauth"
	"github.com/verdict-authz/verdict/internal/testjwt"
)

func TestIdentify(t *testing.T) {
	signer := testjwt.NewSigner(t)
	token := signer.Sign(t, "user_a", time.Now().Add(time.Hour), nil)
	headerOnly := proxyauth.NewIdentifier(proxyauth.Options{MemberHeader: "X-User", IPHeader: "X-Real-IP"})
	fixed := proxyauth.NewIdentifier(proxyauth.Options{Tenant: "bank", JWKS: signer.JWKS})
	withFRN := proxyauth.NewIdentifier(proxyauth.Options{Tenant: "bank", FRNHeader: "X-Verdict-FRN"})
	optedIn := proxyauth.NewIdentifier(proxyauth.Options{Tenant: "bank", JWKS: signer.JWKS, MemberHeader: "X-User", AllowMemberHeaderWithoutJWT: true})
	tests := []struct {
		name    string
		id      *proxyauth.Identifier
		headers http.Header
		want    proxyauth.Caller
		wantErr any
	}{
		{"default headers", headerOnly,
			http.Header{"X-Verdict-Tenant": {"bank"}, "Key": {"k1"}, "X-Verdict-Service": {"portfolios"}, "X-User": {"user_a"}, "X-Real-Ip": {" ::ffff:10.0.0.1 "}},
			proxyauth.Caller{Tenant: "bank", Key: "k1", Service: "portfolios", Member: "user_a", IP: "10.0.0.1"}, nil},
		{"IP header missing", headerOnly, http.Header{"X-User": {"user_a"}}, proxyauth.Caller{}, new(*proxyauth.HeaderError)},
		{"IP header a list", headerOnly, http.Header{"X-Real-Ip": {"10.0.0.1, 10.0.0.2"}}, proxyauth.Caller{}, new(*proxyauth.HeaderError)},
		{"configured tenant wins", fixed, http.Header{"X-Verdict-Tenant": {"fineract"}, "Authorization": {"bearer " + token}},
			proxyauth.Caller{Tenant: "bank", Member: "user_a"}, nil},
		{"a forged token", fixed, http.Header{"Authorization": {"Bearer " + testjwt.NewSigner(t).Sign(t, "admin", time.Now().Add(time.Hour), nil)}},
			proxyauth.Caller{}, new(*proxyauth.TokenError)},
		{"the member header is not read unless configured", proxyauth.NewIdentifier(proxyauth.Options{Tenant: "bank"}), http.Header{"X-User": {"admin"}},
			proxyauth.Caller{Tenant: "bank"}, nil},
		{"the object's FRN", withFRN, http.Header{"X-Verdict-Frn": {" frn:finmars:portfolios:portfolio:bonds "}},
			proxyauth.Caller{Tenant: "bank", FRN: "frn:finmars:portfolios:portfolio:bonds"}, nil},
		{"the FRN header given twice", withFRN, http.Header{"X-Verdict-Frn": {"frn:finmars:a:b:c", "frn:finmars:a:b:d"}},
			proxyauth.Caller{}, new(*proxyauth.RepeatedHeaderError)},
		{"the FRN header is not read unless configured", fixed, http.Header{"X-Verdict-Frn": {"frn:finmars:a:b:c"}, "Authorization": {"Bearer " + token}},
			proxyauth.Caller{Tenant: "bank", Member: "user_a"}, nil},
		{"with a JWKS a token is required", fixed, http.Header{"X-User": {"admin"}}, proxyauth.Caller{}, new(*proxyauth.TokenError)},
		{"with a JWKS and the header fallback, no token reads the header", optedIn, http.Header{"X-User": {"admin"}, "Authorization": {"Basic YTpi"}},
			proxyauth.Caller{Tenant: "bank", Member: "admin"}, nil},
		{"with the header fallback, a token still wins", optedIn, http.Header{"X-User": {"admin"}, "Authorization": {"Bearer " + token}},
			proxyauth.Caller{Tenant: "bank", Member: "user_a"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.id.Identify(tt.headers, proxyauth.SeparateHeaders)
			switch target := tt.wantErr.(type) {
			case **proxyauth.RepeatedHeaderError:
				if !errors.As(err, target) {
					t.Fatalf("error %v, want a RepeatedHeaderError", err)
				}
			case nil:
				if err != nil {
					t.Fatalf("error %v", err)
				}
			case **proxyauth.HeaderError:
				if !errors.As(err, target) {
					t.Fatalf("error %v, want a HeaderError", err)
				}
			case **proxyauth.TokenError:
				if !errors.As(err, target) {
					t.Fatalf("error %v, want a TokenError", err)
				}
			}
			if got != tt.want {
				t.Errorf("caller %+v, want %+v", got, tt.want)
			}
		})
	}
}

// A header the caller is read from, given twice (or, where Envoy joins the
// copies with ",", holding a comma), is refused, naming the header: verdict
// must not read one copy while a proxy or service reads another.
func TestIdentifyRefusesRepeatedHeaders(t *testing.T) {
	signer := testjwt.NewSigner(t)
	token := signer.Sign(t, "user_a", time.Now().Add(time.Hour), nil)
	all := proxyauth.NewIdentifier(proxyauth.Options{MemberHeader: "X-User", IPHeader: "X-Real-IP", FRNHeader: "X-Verdict-FRN"})
	withJWKS := proxyauth.NewIdentifier(proxyauth.Options{Tenant: "bank", JWKS: signer.JWKS, IPHeader: "X-Real-IP"})
	base := func() http.Header {
		return http.Header{"X-Verdict-Tenant": {"bank"}, "Key": {"k1"}, "X-Verdict-Service": {"portfolios"},
			"X-User": {"user_a"}, "X-Real-Ip": {"10.0.0.1"}, "X-Verdict-Frn": {"frn:finmars:a:b:c"}, "Authorization": {"Bearer " + token}}
	}
	tests := []struct {
		name   string
		id     *proxyauth.Identifier
		header string
		values []string
		form   proxyauth.HeaderForm
	}{
		{"key twice", all, "key", []string{"k1", "k2"}, proxyauth.SeparateHeaders},
		{"tenant twice", all, "X-Verdict-Tenant", []string{"bank", "fineract"}, proxyauth.SeparateHeaders},
		{"service twice", all, "X-Verdict-Service", []string{"portfolios", "admin"}, proxyauth.SeparateHeaders},
		{"member twice", all, "X-User", []string{"user_a", "admin"}, proxyauth.SeparateHeaders},
		{"IP twice", all, "X-Real-IP", []string{"10.0.0.1", "203.0.113.66"}, proxyauth.SeparateHeaders},
		{"FRN twice", all, "X-Verdict-FRN", []string{"frn:finmars:a:b:c", "frn:finmars:a:b:d"}, proxyauth.SeparateHeaders},
		{"the same value twice", all, "key", []string{"k1", "k1"}, proxyauth.SeparateHeaders},
		{"Authorization twice", withJWKS, "Authorization", []string{"Bearer " + token, "Bearer " + token}, proxyauth.SeparateHeaders},
		{"Authorization with a comma", withJWKS, "Authorization", []string{"Basic YTpi,Bearer " + token}, proxyauth.SeparateHeaders},
		{"joined key", all, "key", []string{"k1,k2"}, proxyauth.CommaJoinedHeaders},
		{"joined member", all, "X-User", []string{"user_a,admin"}, proxyauth.CommaJoinedHeaders},
		{"joined tenant", all, "X-Verdict-Tenant", []string{"bank,fineract"}, proxyauth.CommaJoinedHeaders},
		{"joined FRN", all, "X-Verdict-FRN", []string{"frn:finmars:a:b:c,frn:finmars:a:b:d"}, proxyauth.CommaJoinedHeaders},
		{"joined IP", all, "X-Real-IP", []string{"10.0.0.1,203.0.113.66"}, proxyauth.CommaJoinedHeaders},
		{"joined Authorization", withJWKS, "Authorization", []string{"Bearer " + token + ",Bearer " + token}, proxyauth.CommaJoinedHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := base()
			h[http.CanonicalHeaderKey(tt.header)] = tt.values
			_, err := tt.id.Identify(h, tt.form)
			var repeated *proxyauth.RepeatedHeaderError
			if !errors.As(err, &repeated) || repeated.Header != tt.header {
				t.Fatalf("error %v, want a RepeatedHeaderError naming %s", err, tt.header)
			}
		})
	}
	// Each header once: read as it is, a comma included where copies are
	// not joined (a member's name may hold one).
	h := base()
	h["X-User"] = []string{"Doe, Jane"}
	if c, err := all.Identify(h, proxyauth.SeparateHeaders); err != nil || c.Member != "Doe, Jane" {
		t.Fatalf("each header once: %+v %v", c, err)
	}
	// Headers not read under the options may repeat: with a fixed tenant,
	// the tenant header; without a JWKS, Authorization.
	h = base()
	h["X-Verdict-Tenant"] = []string{"a", "b"}
	if _, err := withJWKS.Identify(h, proxyauth.SeparateHeaders); err != nil {
		t.Fatalf("an unread tenant header given twice: %v", err)
	}
	h = base()
	h["Authorization"] = []string{"Basic a", "Basic b"}
	if _, err := all.Identify(h, proxyauth.SeparateHeaders); err != nil {
		t.Fatalf("an unread Authorization given twice: %v", err)
	}
}

func TestBearerToken(t *testing.T) {
	for _, tt := range []struct {
		header string
		want   string
		ok     bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer  abc ", "abc", true},
		{"Basic abc", "", false},
		{"Bearer ", "", false},
		{"", "", false},
	} {
		got, ok := proxyauth.BearerToken(http.Header{"Authorization": {tt.header}})
		if got != tt.want || ok != tt.ok {
			t.Errorf("BearerToken(%q) = %q %v, want %q %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}
