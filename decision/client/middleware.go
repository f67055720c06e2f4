package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// MiddlewareOptions configures Middleware. Client is required; the rest
// say how to build the decision request from an incoming request.
type MiddlewareOptions struct {
	Client *Client
	// Tenant is a fixed tenant; TenantHeader, when set and present on the
	// request, names it instead (e.g. "X-Tenant").
	Tenant       string
	TenantHeader string
	// KeyHeader names the header carrying a SOAJS key (e.g. "key").
	KeyHeader string
	// Service is the name of this service in verdict's catalog; empty
	// searches every service's routes.
	Service string
	// Member says who makes the request (from a verified token or session);
	// "" or nil means anonymous.
	Member func(*http.Request) string
	// Application, when set, names the application acting for the member.
	Application func(*http.Request) string
	// Resource, when set, names the object the request acts on.
	Resource func(*http.Request) *Resource
	// Context, when set, is passed to the bundle's Rego as input.context.
	Context func(*http.Request) any
	// OnError answers when no decision could be made (verdict unreachable,
	// a malformed decision request). The default denies: 503 when verdict
	// could not be asked, 400 when it refused the request as malformed.
	OnError func(w http.ResponseWriter, r *http.Request, err error)
}

type decisionKey struct{}

// DecisionFrom returns the decision Middleware made for the request, or
// nil.
func DecisionFrom(ctx context.Context) *Decision {
	d, _ := ctx.Value(decisionKey{}).(*Decision)
	return d
}

// HeaderMember reads the member from a header set by a trusted proxy that
// authenticated the caller (and strips the header from clients).
func HeaderMember(name string) func(*http.Request) string {
	return func(r *http.Request) string { return r.Header.Get(name) }
}

// DenyBody is what Middleware answers when verdict denies.
type DenyBody struct {
	Allow      bool     `json:"allow"`
	Status     int      `json:"status"`
	DecisionID string   `json:"decision_id,omitempty"`
	Reasons    []Reason `json:"reasons"`
}

// Middleware asks verdict about every request before next sees it: the
// method and path (and the configured service, tenant, key, member,
// application, resource and context). When verdict allows, next serves the
// request, with the decision available through DecisionFrom. When it
// denies, Middleware answers the decision's status (401, 403, or 404 for
// an unknown tenant or route) with a JSON body holding the reasons, and
// next is not called. Every answer carries X-Verdict-Decision-Id.
func Middleware(next http.Handler, opts MiddlewareOptions) http.Handler {
	if opts.Client == nil {
		panic("verdict client: MiddlewareOptions.Client is required")
	}
	onError := opts.OnError
	if onError == nil {
		onError = defaultOnError
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := &Request{
			Tenant:  opts.Tenant,
			Request: &HTTPRequest{Service: opts.Service, Method: r.Method, Path: requestPath(r)},
		}
		if opts.TenantHeader != "" {
			if t := r.Header.Get(opts.TenantHeader); t != "" {
				req.Tenant = t
			}
		}
		if opts.KeyHeader != "" {
			req.Key = r.Header.Get(opts.KeyHeader)
		}
		if opts.Member != nil {
			req.Member = opts.Member(r)
		}
		if opts.Application != nil {
			req.Application = opts.Application(r)
		}
		if opts.Resource != nil {
			req.Resource = opts.Resource(r)
		}
		if opts.Context != nil {
			req.Context = opts.Context(r)
		}
		d, err := opts.Client.Decide(r.Context(), req)
		if err != nil {
			onError(w, r, err)
			return
		}
		w.Header().Set("X-Verdict-Decision-Id", d.DecisionID)
		if !d.Allow {
			status := d.Status
			if status != http.StatusUnauthorized && status != http.StatusNotFound {
				status = http.StatusForbidden
			}
			body, _ := json.Marshal(DenyBody{Allow: false, Status: status, DecisionID: d.DecisionID, Reasons: d.Reasons})
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			w.Write(append(body, '\n'))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), decisionKey{}, d)))
	})
}

// defaultOnError fails closed: the request is not served.
func defaultOnError(w http.ResponseWriter, _ *http.Request, err error) {
	status := http.StatusServiceUnavailable
	code := "authorization_unavailable"
	var apiErr *Error
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusBadRequest {
		status, code = http.StatusBadRequest, "authorization_request_invalid"
	}
	body, _ := json.Marshal(map[string]string{"code": code, "message": err.Error()})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// requestPath is the path as the client wrote it (escapes kept): verdict
// decodes it itself and refuses what a router could read two ways, such as
// an encoded "/" that r.URL.Path has already turned into a separator.
func requestPath(r *http.Request) string { return r.URL.EscapedPath() }
