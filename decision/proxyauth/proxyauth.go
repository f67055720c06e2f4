// Package proxyauth finds who a request that a proxy forwards for
// authorization is from: the tenant, key, member, service and client address
// it carries in headers the proxy sets, or in a verified bearer JWT. Every
// forward-auth door (GET /v1/authz for nginx, Envoy ext_authz over gRPC)
// reads a caller through it, so that all of them follow the same trust rules.
package proxyauth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/route"
)

// Options says which headers name the caller, and how bearer tokens are
// verified. The zero value reads the default headers and no token.
type Options struct {
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
	// strips that header from client requests. With JWKS, it is read only
	// when AllowMemberHeaderWithoutJWT is set.
	MemberHeader string
	// AllowMemberHeaderWithoutJWT, with JWKS and MemberHeader, lets a
	// request that carries no bearer token (no Authorization, or another
	// scheme such as Basic) name its member in MemberHeader. Unset, a JWKS
	// makes a valid bearer token required: a request without one is
	// refused (token.missing), whatever MemberHeader says.
	AllowMemberHeaderWithoutJWT bool
	// IPHeader, when set, is a header the proxy sets to the client's
	// address (nginx: proxy_set_header X-Real-IP $remote_addr); its value
	// becomes the decision's context.ip, which extension rules read. The
	// header must carry exactly one IP address (not a list such as an
	// X-Forwarded-For chain), else the request is refused. Never set it
	// unless the proxy overwrites that header: a client-sent value would
	// let a client choose its IP.
	IPHeader string
	// FRNHeader, when set, is a header the proxy sets to the FRN of the
	// object the request acts on, where the proxy can tell it from the URL
	// (nginx: a map of the decoded path, $uri); it becomes the decision's
	// resource.frn, so object-level and resource-group rules apply. Absent
	// or empty, the request names no object. Never set it unless the proxy
	// sets or clears that header on every request: a client-sent value
	// would let a client choose the object that is checked.
	FRNHeader string
	// JWKS, when set, verifies "Authorization: Bearer <JWT>"; the member is
	// the token's MemberClaim (default "sub"). Every request must then
	// carry a valid token (but see AllowMemberHeaderWithoutJWT): a missing
	// one is refused as token.missing, a bad one (forged, expired, without
	// "exp", not yet valid) as token.invalid.
	JWKS        jwk.Set
	MemberClaim string
	// Issuer, when set, is the "iss" a bearer token must carry; Audience,
	// when set, is a value its "aud" (a string or an array of strings)
	// must contain. A token missing either, or carrying another value, is
	// refused like an expired or forged one. Unset, neither claim is
	// checked. Both apply to JWKS-verified tokens only: without JWKS no
	// token is read (the CLI refuses them without --authz-jwks-file).
	Issuer   string
	Audience string
}

// withDefaults fills in the default header names and claim.
func (o Options) withDefaults() Options {
	if o.TenantHeader == "" {
		o.TenantHeader = "X-Verdict-Tenant"
	}
	if o.KeyHeader == "" {
		o.KeyHeader = "key"
	}
	if o.ServiceHeader == "" {
		o.ServiceHeader = "X-Verdict-Service"
	}
	if o.MemberClaim == "" {
		o.MemberClaim = "sub"
	}
	return o
}

// trustedHeaders lists the headers the caller is read from under o: the
// key and service headers, the tenant header unless Tenant is set, the
// member header when it can be read, Authorization with a JWKS, and the IP
// and FRN headers when set.
func (o Options) trustedHeaders() []string {
	h := []string{o.KeyHeader, o.ServiceHeader}
	if o.Tenant == "" {
		h = append(h, o.TenantHeader)
	}
	if o.MemberHeader != "" && (o.JWKS == nil || o.AllowMemberHeaderWithoutJWT) {
		h = append(h, o.MemberHeader)
	}
	if o.JWKS != nil {
		h = append(h, "Authorization")
	}
	for _, name := range []string{o.IPHeader, o.FRNHeader} {
		if name != "" {
			h = append(h, name)
		}
	}
	return h
}

// Identifier reads callers from request headers under one set of Options.
// It is safe for concurrent use.
type Identifier struct {
	opts Options
	// parseOptions verify and validate a bearer token (nil without JWKS).
	parseOptions []jwt.ParseOption
	// trusted are the headers Identify reads the caller from under opts:
	// each must be given at most once.
	trusted []string
}

// NewIdentifier returns an Identifier for o, with default header names
// filled in.
func NewIdentifier(o Options) *Identifier {
	id := &Identifier{opts: o.withDefaults()}
	id.trusted = id.opts.trustedHeaders()
	if o.JWKS != nil {
		// exp is required: a token without one would be valid for ever.
		// nbf and iat, when present, are checked as well; there is no
		// allowance for clock skew.
		id.parseOptions = []jwt.ParseOption{jwt.WithKeySet(o.JWKS), jwt.WithValidate(true), jwt.WithRequiredClaim(jwt.ExpirationKey)}
		if o.Issuer != "" {
			id.parseOptions = append(id.parseOptions, jwt.WithIssuer(o.Issuer))
		}
		if o.Audience != "" {
			id.parseOptions = append(id.parseOptions, jwt.WithAudience(o.Audience))
		}
	}
	return id
}

// Options returns the options in effect, default header names filled in.
func (id *Identifier) Options() Options { return id.opts }

// Caller is who a forwarded request is from, as its headers say.
type Caller struct {
	Tenant  string
	Key     string
	Member  string
	Service string
	// IP is the client's address from IPHeader, in canonical form; empty
	// when no IPHeader is configured.
	IP string
	// FRN is the object's FRN from FRNHeader; empty when none is given.
	FRN string
}

// HeaderError is a header the proxy had to set and did not set right; the
// request is malformed (400).
type HeaderError struct {
	Header  string
	Message string
}

func (e *HeaderError) Error() string { return e.Message }

// HeaderForm says how the headers of a forwarded request reach verdict.
type HeaderForm int

const (
	// SeparateHeaders: each copy of a header sent more than once is a
	// value of its own (HTTP; Envoy's header_map).
	SeparateHeaders HeaderForm = iota
	// CommaJoinedHeaders: the copies of a header are joined with "," into
	// one value (Envoy's CheckRequest headers map), so a comma in a value
	// may separate two copies.
	CommaJoinedHeaders
)

// RepeatedHeaderError is a request that gives a header the caller is read
// from more than once (or, with CommaJoinedHeaders, with a comma in it):
// verdict would read one copy, and a proxy or service reading another would
// disagree with verdict about who asked. The doors refuse it as
// request.invalid, a deny.
type RepeatedHeaderError struct {
	Header string
	// Count is how many times the header is given; 1 for one value that
	// holds a comma.
	Count int
}

func (e *RepeatedHeaderError) Error() string {
	if e.Count > 1 {
		return fmt.Sprintf("%s is given %d times; verdict and a proxy or service could each read another copy, so it must be given once", e.Header, e.Count)
	}
	return fmt.Sprintf("%s holds a comma, as the copies of a header given more than once are joined; verdict and a proxy or service could each read another copy, so it must be given once, without a comma", e.Header)
}

// single checks that every trusted header is given at most once: once in h
// and, in the comma-joined form or for Authorization (one credential, in
// which no comma can occur), without a comma.
func (id *Identifier) single(h http.Header, form HeaderForm) error {
	for _, name := range id.trusted {
		values := h.Values(name)
		switch {
		case len(values) > 1:
			return &RepeatedHeaderError{Header: name, Count: len(values)}
		case len(values) == 1 && (form == CommaJoinedHeaders || name == "Authorization") && strings.Contains(values[0], ","):
			return &RepeatedHeaderError{Header: name, Count: 1}
		}
	}
	return nil
}

// Reasons of a TokenError.
const (
	// ReasonTokenMissing: a JWKS is configured and the request carries no
	// bearer token (no Authorization, or another scheme).
	ReasonTokenMissing = "token.missing"
	// ReasonTokenInvalid: the bearer token cannot be used (forged, expired,
	// without exp, empty…).
	ReasonTokenInvalid = "token.invalid"
)

// TokenError is a request refused for its bearer token (401): Reason is
// ReasonTokenMissing or ReasonTokenInvalid.
type TokenError struct {
	Reason string
	Err    error
}

func (e *TokenError) Error() string { return e.Err.Error() }
func (e *TokenError) Unwrap() error { return e.Err }

// Challenge is the WWW-Authenticate value of the 401: without an error
// code when no token was sent (RFC 6750 §3.1), invalid_token otherwise.
func (e *TokenError) Challenge() string {
	if e.Reason == ReasonTokenMissing {
		return "Bearer"
	}
	return `Bearer error="invalid_token"`
}

// Identify reads the caller from the headers of a forwarded request, which
// reach verdict in form. The error is a *RepeatedHeaderError, a
// *HeaderError or a *TokenError.
func (id *Identifier) Identify(h http.Header, form HeaderForm) (Caller, error) {
	if err := id.single(h, form); err != nil {
		return Caller{}, err
	}
	o := &id.opts
	c := Caller{
		// The operator's tenant wins over any header; a key must then
		// belong to it.
		Tenant:  o.Tenant,
		Key:     h.Get(o.KeyHeader),
		Service: h.Get(o.ServiceHeader),
	}
	if c.Tenant == "" {
		c.Tenant = h.Get(o.TenantHeader)
	}
	if o.IPHeader != "" {
		ip, err := clientIP(h, o.IPHeader)
		if err != nil {
			return Caller{}, &HeaderError{Header: o.IPHeader, Message: err.Error()}
		}
		c.IP = ip
	}
	if o.FRNHeader != "" {
		c.FRN = strings.TrimSpace(h.Get(o.FRNHeader))
	}
	member, err := id.member(h)
	if err != nil {
		return Caller{}, err
	}
	c.Member = member
	return c, nil
}

// ObscuredPathError is a request for which the proxy named no object
// (FRNHeader is configured, and absent or empty) although its path
// percent-encodes an unreserved character (route.EncodesUnreserved), as
// .../portfolio/%73ecret-portfolio/ does: no client writes a path so, and
// a proxy that looks for the object in the raw URI would miss the one the
// service decodes, leaving the decision without an object that any Allow
// covers. The doors refuse it as request.invalid, a deny.
type ObscuredPathError struct {
	Path      string
	FRNHeader string
}

func (e *ObscuredPathError) Error() string {
	return fmt.Sprintf("the path %q percent-encodes a letter, digit or one of -._~, which no client needs to, and no %s names its object: the proxy may have missed the object the service decodes from it", e.Path, e.FRNHeader)
}

// CheckObscuredPath returns an *ObscuredPathError when FRNHeader is
// configured, c (from Identify) names no object and path (the original
// request's, as the client wrote it) percent-encodes an unreserved
// character; nil otherwise.
func (id *Identifier) CheckObscuredPath(c Caller, path string) error {
	if id.opts.FRNHeader == "" || c.FRN != "" || !route.EncodesUnreserved(path) {
		return nil
	}
	return &ObscuredPathError{Path: path, FRNHeader: id.opts.FRNHeader}
}

// clientIP reads the client's address from the header the proxy sets (given
// once, as Identify checks first): one IP address, returned in its
// canonical form (an IPv4-mapped IPv6 address as IPv4, so that
// ::ffff:203.0.113.66 is 203.0.113.66 to the rules).
func clientIP(h http.Header, header string) (string, error) {
	value := h.Get(header)
	if strings.TrimSpace(value) == "" {
		return "", fmt.Errorf("the proxy must set %s to the client's address (nginx: proxy_set_header %s $remote_addr)", header, header)
	}
	addr, err := ParseIP(value)
	if err != nil {
		return "", fmt.Errorf("%s must be one IP address, set by the proxy (not a list such as an X-Forwarded-For chain): %q", header, value)
	}
	return addr, nil
}

// ParseIP reads one IP address a proxy sent, surrounding spaces allowed,
// in its canonical form (acl.CanonicalIP, as context.ip is read).
func ParseIP(s string) (string, error) {
	return acl.CanonicalIP(strings.TrimSpace(s))
}

func tokenMissing(format string, args ...any) *TokenError {
	return &TokenError{Reason: ReasonTokenMissing, Err: fmt.Errorf(format, args...)}
}

func tokenInvalid(format string, args ...any) *TokenError {
	return &TokenError{Reason: ReasonTokenInvalid, Err: fmt.Errorf(format, args...)}
}

// member finds the member. With a JWKS, from the verified bearer JWT the
// request must carry, or, only when AllowMemberHeaderWithoutJWT is set and
// the request carries no bearer token at all, from the trusted header.
// Without a JWKS, from the trusted header (none: no member). The error is
// a *TokenError.
func (id *Identifier) member(h http.Header) (string, error) {
	o := &id.opts
	if o.JWKS == nil {
		if o.MemberHeader != "" {
			return h.Get(o.MemberHeader), nil
		}
		return "", nil
	}
	token, tokErr := requiredBearerToken(h)
	if tokErr != nil {
		if tokErr.Reason == ReasonTokenMissing && o.AllowMemberHeaderWithoutJWT && o.MemberHeader != "" {
			return h.Get(o.MemberHeader), nil
		}
		return "", tokErr
	}
	tok, err := jwt.Parse([]byte(token), id.parseOptions...)
	switch {
	case err == nil:
	case errors.Is(err, jwt.InvalidIssuerError()):
		return "", tokenInvalid("the bearer token's issuer (claim \"iss\") is missing or is not %q: %w", o.Issuer, err)
	case errors.Is(err, jwt.InvalidAudienceError()):
		return "", tokenInvalid("the bearer token's audience (claim \"aud\") is missing or does not include %q: %w", o.Audience, err)
	case errors.Is(err, jwt.MissingRequiredClaimError()):
		return "", tokenInvalid("the bearer token has no expiry (claim \"exp\"), and a token without one would never expire: %w", err)
	default:
		return "", tokenInvalid("the bearer token is not valid: %w", err)
	}
	var member string
	if o.MemberClaim == "sub" {
		member, _ = tok.Subject()
	} else if err := tok.Get(o.MemberClaim, &member); err != nil {
		return "", tokenInvalid("the bearer token has no string claim %q", o.MemberClaim)
	}
	if member == "" {
		return "", tokenInvalid("the bearer token's claim %q is empty", o.MemberClaim)
	}
	return member, nil
}

// requiredBearerToken is BearerToken for a request that must carry one
// (Authorization given at most once, as Identify checks first): a request
// without Authorization, or with another scheme (Basic), has no bearer
// token (token.missing); an empty Bearer credential is token.invalid.
func requiredBearerToken(h http.Header) (string, *TokenError) {
	value := h.Get("Authorization")
	if strings.TrimSpace(value) == "" {
		return "", tokenMissing("a bearer token is required: send Authorization: Bearer <JWT>")
	}
	if token, ok := BearerToken(h); ok {
		return token, nil
	}
	scheme, _, _ := strings.Cut(strings.TrimSpace(value), " ")
	if strings.EqualFold(scheme, "Bearer") {
		return "", tokenInvalid("the bearer token is empty")
	}
	return "", tokenMissing("a bearer token is required: Authorization carries a %q credential, not Bearer <JWT>", scheme)
}

// BearerToken is the token of an "Authorization: Bearer <token>" header
// (the scheme in any case), and whether there is one.
func BearerToken(h http.Header) (string, bool) {
	scheme, token, ok := strings.Cut(h.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}
