package client

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
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
	// Its body never holds the error's text, which names verdict's address
	// and is meant for operators: the error is logged on Log.
	OnError func(w http.ResponseWriter, r *http.Request, err error)
	// Log receives the default OnError's errors (nil: slog.Default()).
	Log *slog.Logger
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
		log := opts.Log
		if log == nil {
			log = slog.Default()
		}
		onError = failClosed(log)
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

// failClosed is the default OnError: the request is not served. The end
// user is told that authorization is unavailable (503) or that the request
// could not be judged (400, with verdict's field and message about it); the
// error itself, which names verdict's address, goes to the log.
func failClosed(log *slog.Logger) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		status := http.StatusServiceUnavailable
		answer := map[string]string{"code": "authorization_unavailable", "message": "authorization is unavailable, so the request was not served; try again later"}
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusBadRequest {
			status = http.StatusBadRequest
			answer = map[string]string{"code": "authorization_request_invalid", "field": apiErr.Field, "message": apiErr.Message}
		}
		log.ErrorContext(r.Context(), "verdict gave no decision; the request was refused",
			"method", r.Method, "path", requestPath(r), "status", status, "error", err)
		body, _ := json.Marshal(answer)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(append(body, '\n'))
	}
}

// requestPath is the path as the client wrote it (escapes kept): verdict
// decodes it itself and refuses what a router could read two ways, such as
// an encoded "/" that r.URL.Path has already turned into a separator.
func requestPath(r *http.Request) string { return r.URL.EscapedPath() }
