package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/verdict-authz/verdict/decision"
)

// AuthzOptions configures GET /v1/authz, the endpoint for nginx's
// auth_request (and other proxies' forward-auth).
type AuthzOptions struct {
	// Tenant, when set, is the tenant of every request, whatever its
	// headers say: TenantHeader is not read, and a key in KeyHeader must
	// belong to this tenant (else the decision is key.invalid). The
	// operator's setting wins, so that a client cannot pick a tenant by
	// sending a header that the proxy passes on.
	Tenant string
	// TenantHeader names the tenant (default X-Verdict-Tenant) when Tenant
	// is not set. The proxy must set or clear it: a client-sent value
	// that reaches verdict picks the tenant.
	TenantHeader string
	// KeyHeader carries the tenant key (default "key", as in SOAJS). With
	// neither Tenant nor TenantHeader, the key names its tenant.
	KeyHeader string
	// ServiceHeader optionally names the service whose routes apply
	// (default X-Verdict-Service).
	ServiceHeader string
	// MemberHeader, when set, is a header the proxy sets and verdict trusts
	// to name the member (e.g. X-User). Never set it unless the proxy
	// strips that header from client requests.
	MemberHeader string
	// IPHeader, when set, is a header the proxy sets to the client's
	// address (nginx: proxy_set_header X-Real-IP $remote_addr); its value
	// becomes the decision's context.ip, which extension rules read. The
	// header must carry exactly one IP address (not a list such as an
	// X-Forwarded-For chain), else the request is a 400. Unset, the
	// decision has no context. Never set it unless the proxy overwrites
	// that header: a client-sent value would let a client choose its IP.
	IPHeader string
	// JWKS, when set, verifies "Authorization: Bearer <JWT>"; the member is
	// the token's MemberClaim (default "sub"). A bad token is a 401.
	JWKS        jwk.Set
	MemberClaim string
	// Issuer, when set, is the "iss" a bearer token must carry; Audience,
	// when set, is a value its "aud" (a string or an array of strings)
	// must contain. A token missing either, or carrying another value, is
	// refused like an expired or forged one (401 token.invalid). Unset,
	// neither claim is checked. Both apply to JWKS-verified tokens only:
	// without JWKS no token is read (the CLI refuses them without
	// --authz-jwks-file).
	Issuer   string
	Audience string

	// parseOptions verify and validate a bearer token (built by withDefaults).
	parseOptions []jwt.ParseOption
}

func (o *AuthzOptions) withDefaults() *AuthzOptions {
	out := *o
	if out.TenantHeader == "" {
		out.TenantHeader = "X-Verdict-Tenant"
	}
	if out.KeyHeader == "" {
		out.KeyHeader = "key"
	}
	if out.ServiceHeader == "" {
		out.ServiceHeader = "X-Verdict-Service"
	}
	if out.MemberClaim == "" {
		out.MemberClaim = "sub"
	}
	if out.JWKS != nil {
		out.parseOptions = []jwt.ParseOption{jwt.WithKeySet(out.JWKS), jwt.WithValidate(true)}
		if out.Issuer != "" {
			out.parseOptions = append(out.parseOptions, jwt.WithIssuer(out.Issuer))
		}
		if out.Audience != "" {
			out.parseOptions = append(out.parseOptions, jwt.WithAudience(out.Audience))
		}
	}
	return &out
}

// Headers of an authz answer.
const (
	HeaderDecisionID = "X-Verdict-Decision-Id"
	HeaderReason     = "X-Verdict-Reason"
	HeaderStatus     = "X-Verdict-Status"
)

// ReasonRequestInvalid is the X-Verdict-Reason of a 403 for an original
// URI that verdict refuses to translate (route.CanonicalPath): an encoded
// separator or dot, a dot segment, a backslash, a control byte.
const ReasonRequestInvalid = "request.invalid"

// handleAuthz answers an auth_request subrequest: 200 to let the original
// request through, 401 or 403 to stop it, with the decision id and the
// deciding reason in headers. Other statuses (404 for an unknown route or
// tenant) become 403, since auth_request understands only these three.
func (s *Server) handleAuthz(w http.ResponseWriter, r *http.Request) {
	o := s.authz
	method := r.Header.Get("X-Original-Method")
	uri := r.Header.Get("X-Original-URI")
	if method == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "X-Original-Method", "the proxy must set X-Original-Method (nginx: proxy_set_header X-Original-Method $request_method)")
		return
	}
	if uri == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "X-Original-URI", "the proxy must set X-Original-URI (nginx: proxy_set_header X-Original-URI $request_uri)")
		return
	}
	req := &decision.Request{
		// The operator's tenant wins over any header; a key must then
		// belong to it.
		Tenant:  o.Tenant,
		Key:     r.Header.Get(o.KeyHeader),
		Request: &decision.HTTPRequest{Method: method, Path: uri, Service: r.Header.Get(o.ServiceHeader)},
	}
	if req.Tenant == "" {
		req.Tenant = r.Header.Get(o.TenantHeader)
	}
	if o.IPHeader != "" {
		ip, err := authzClientIP(r, o.IPHeader)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", o.IPHeader, err.Error())
			return
		}
		req.Context = map[string]any{"ip": ip}
	}
	member, err := s.authzMember(r)
	if err != nil {
		w.Header().Set(HeaderReason, "token.invalid")
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "token_invalid", "Authorization", err.Error())
		return
	}
	req.Member = member
	d, err := s.engine.Decide(r.Context(), req)
	if err != nil {
		var inErr *decision.InputError
		if errors.As(err, &inErr) {
			field := inErr.Field
			switch field {
			case "tenant":
				field = o.TenantHeader + " or " + o.KeyHeader
			case "request.method":
				field = "X-Original-Method"
			case "request.path":
				// The client wrote the path: refusing it is a deny
				// (nginx fails the request on any other status than
				// 2xx, 401 and 403), not a sign of a misconfigured proxy.
				w.Header().Set(HeaderReason, ReasonRequestInvalid)
				writeError(w, http.StatusForbidden, "invalid_request", "X-Original-URI", inErr.Message)
				return
			case "context.ip":
				field = o.IPHeader
			}
			writeError(w, http.StatusBadRequest, "invalid_request", field, inErr.Message)
			return
		}
		writeError(w, http.StatusInternalServerError, "internal", "", err.Error())
		return
	}
	status := http.StatusForbidden
	switch {
	case d.Allow:
		status = http.StatusOK
	case d.Status == http.StatusUnauthorized:
		status = http.StatusUnauthorized
	}
	w.Header().Set(HeaderDecisionID, d.DecisionID)
	w.Header().Set(HeaderStatus, strconv.Itoa(d.Status))
	if reason := decidingReason(d); reason != "" {
		w.Header().Set(HeaderReason, reason)
	}
	writeJSON(w, status, d)
}

// authzClientIP reads the client's address from the header the proxy sets:
// exactly one value holding one IP address, returned in its canonical form
// (an IPv4-mapped IPv6 address as IPv4, so that ::ffff:203.0.113.66 is
// 203.0.113.66 to the rules).
func authzClientIP(r *http.Request, header string) (string, error) {
	values := r.Header.Values(header)
	switch {
	case len(values) == 0 || strings.TrimSpace(values[0]) == "":
		return "", fmt.Errorf("the proxy must set %s to the client's address (nginx: proxy_set_header %s $remote_addr)", header, header)
	case len(values) > 1:
		return "", fmt.Errorf("%s is given %d times; the proxy must set it once, overwriting what the client sent", header, len(values))
	}
	addr, err := netip.ParseAddr(strings.TrimSpace(values[0]))
	if err != nil {
		return "", fmt.Errorf("%s must be one IP address, set by the proxy (not a list such as an X-Forwarded-For chain): %q", header, values[0])
	}
	return addr.Unmap().String(), nil
}

// decidingReason is the code of the first deny, or of the first grant.
func decidingReason(d *decision.Decision) string {
	for _, r := range d.Reasons {
		if r.Effect == "deny" {
			return r.Code
		}
	}
	if len(d.Reasons) > 0 {
		return d.Reasons[0].Code
	}
	return ""
}

// authzMember finds the member: from a verified bearer JWT when a JWKS is
// configured and a token is present, else from the trusted header.
func (s *Server) authzMember(r *http.Request) (string, error) {
	o := s.authz
	if o.JWKS != nil {
		if token, ok := bearerToken(r); ok {
			tok, err := jwt.Parse([]byte(token), o.parseOptions...)
			switch {
			case err == nil:
			case errors.Is(err, jwt.InvalidIssuerError()):
				return "", fmt.Errorf("the bearer token's issuer (claim \"iss\") is missing or is not %q: %w", o.Issuer, err)
			case errors.Is(err, jwt.InvalidAudienceError()):
				return "", fmt.Errorf("the bearer token's audience (claim \"aud\") is missing or does not include %q: %w", o.Audience, err)
			default:
				return "", fmt.Errorf("the bearer token is not valid: %w", err)
			}
			var member string
			if o.MemberClaim == "sub" {
				member, _ = tok.Subject()
			} else if err := tok.Get(o.MemberClaim, &member); err != nil {
				return "", fmt.Errorf("the bearer token has no string claim %q", o.MemberClaim)
			}
			if member == "" {
				return "", fmt.Errorf("the bearer token's claim %q is empty", o.MemberClaim)
			}
			return member, nil
		}
	}
	if o.MemberHeader != "" {
		return r.Header.Get(o.MemberHeader), nil
	}
	return "", nil
}

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// LoadJWKS reads a JSON Web Key Set file.
func LoadJWKS(path string) (jwk.Set, error) {
	set, err := jwk.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read JWKS %s: %w", path, err)
	}
	return set, nil
}
