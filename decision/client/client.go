// Package client is the Go client of verdict for the services running
// beside it: decisions (Decide, DecideBatch, Plan), run-time service
// registration that retries until the sidecar answers (RegisterService,
// OpenLMIS's "try again until successful"), delegation requests and
// consents (Fineract CN), and net/http middleware that asks verdict about
// every incoming request (Middleware).
//
// The package uses the standard library only: a service that imports it
// does not link OPA or the rest of verdict. Its types mirror the JSON of
// verdict's HTTP API (see the README, "HTTP API").
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultBaseURL is where `verdict run` listens by default.
const DefaultBaseURL = "http://127.0.0.1:8181"

// Client talks to one verdict sidecar. The zero value is not usable; call
// New. A Client is safe for concurrent use.
type Client struct {
	baseURL    string
	httpClient *http.Client
	adminToken string
	backoff    Backoff
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: one with a 10 s timeout).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.httpClient = h } }

// WithAdminToken sets the bearer token for the write endpoints (service
// registration, delegation requests and consents), the content of the file
// verdict was started with as --admin-token-file.
func WithAdminToken(token string) Option {
	return func(c *Client) { c.adminToken = strings.TrimSpace(token) }
}

// WithBackoff sets how RegisterService waits between attempts.
func WithBackoff(b Backoff) Option { return func(c *Client) { c.backoff = b } }

// New returns a client of the verdict at baseURL (DefaultBaseURL when
// empty), e.g. "http://127.0.0.1:8181".
func New(baseURL string, opts ...Option) *Client {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	c := &Client{
		baseURL:    strings.TrimRight(baseURL, "/"),
		httpClient: &http.Client{Timeout: 10 * time.Second},
		backoff:    DefaultBackoff,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Error is an answer of verdict other than success: a malformed request
// (400, naming the field), a missing admin token (401), something unknown
// (404), a refused method (405), an internal error (500).
type Error struct {
	StatusCode int
	Code       string `json:"code"`
	Field      string `json:"field,omitempty"`
	Message    string `json:"message"`
	// Problems lists every problem of an invalid service document.
	Problems []Problem `json:"problems,omitempty"`
}

// Problem is one problem of an invalid service document.
type Problem struct {
	File    string `json:"file,omitempty"`
	Entry   string `json:"entry,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("verdict: HTTP %d %s: %s", e.StatusCode, e.Code, msg)
}

// Temporary reports whether trying again may succeed: the sidecar is
// overloaded, shutting down or failed internally.
func (e *Error) Temporary() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusRequestTimeout
}

// Decide asks one question (POST /v1/decide). A deny is a Decision with
// Allow false, not an error; an error means no decision was made.
func (c *Client) Decide(ctx context.Context, req *Request) (*Decision, error) {
	var d Decision
	if err := c.do(ctx, http.MethodPost, "/v1/decide", req, &d, false); err != nil {
		return nil, err
	}
	return &d, nil
}

// DecideBatch asks several questions for one caller, answered in order
// from one snapshot of verdict's data (POST /v1/decide/batch).
func (c *Client) DecideBatch(ctx context.Context, req *BatchRequest) (*BatchResponse, error) {
	var b BatchResponse
	if err := c.do(ctx, http.MethodPost, "/v1/decide/batch", req, &b, false); err != nil {
		return nil, err
	}
	return &b, nil
}

// Plan asks how to filter a list query (POST /v1/plan).
func (c *Client) Plan(ctx context.Context, req *PlanRequest) (*Plan, error) {
	var p Plan
	if err := c.do(ctx, http.MethodPost, "/v1/plan", req, &p, false); err != nil {
		return nil, err
	}
	return &p, nil
}

// RegisterService registers the service's routes and permittable groups
// with verdict (PUT /v1/services/{name}) and returns once verdict has
// stored it (on disk, when verdict runs with --state-dir). Registering is
// idempotent, so services call it at every start.
//
// While verdict cannot be reached or answers a temporary failure (5xx, 429)
// it tries again, waiting as the client's Backoff says, until it succeeds
// or ctx ends; give ctx a deadline to bound the wait. An answer that trying
// again cannot change — an invalid document (400), a wrong admin token
// (401) — is returned at once as an *Error.
func (c *Client) RegisterService(ctx context.Context, name string, svc *Service) (*Registration, error) {
	if name == "" {
		return nil, errors.New("verdict: RegisterService: the service name is empty")
	}
	path := "/v1/services/" + url.PathEscape(name)
	for attempt := 0; ; attempt++ {
		var reg Registration
		err := c.do(ctx, http.MethodPut, path, svc, &reg, true)
		if err == nil {
			return &reg, nil
		}
		var apiErr *Error
		if errors.As(err, &apiErr) && !apiErr.Temporary() {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("verdict: register service %s: gave up after %d attempt(s): %w (last error: %v)", name, attempt+1, ctx.Err(), err)
		}
		wait := c.backoff.Delay(attempt)
		if c.backoff.OnRetry != nil {
			c.backoff.OnRetry(attempt+1, err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("verdict: register service %s: gave up after %d attempt(s): %w (last error: %v)", name, attempt+1, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// RequestPermission records that an application asks to act for members
// on a permittable group with the operations (READ, CHANGE, DELETE) (POST
// /v1/tenants/{t}/applications/{app}/permissions).
func (c *Client) RequestPermission(ctx context.Context, tenant, app, group string, operations []string) (*Permission, error) {
	var p Permission
	body := map[string]any{"group": group, "operations": operations}
	if err := c.do(ctx, http.MethodPost, permissionsPath(tenant, app), body, &p, true); err != nil {
		return nil, err
	}
	return &p, nil
}

// SetConsent records that a member enables (true) or no longer enables
// (false) the application to act for them on the group (PUT
// …/permissions/{group}/users/{member}/enabled).
func (c *Client) SetConsent(ctx context.Context, tenant, app, group, member string, enabled bool) error {
	path := permissionsPath(tenant, app) + "/" + url.PathEscape(group) + "/users/" + url.PathEscape(member) + "/enabled"
	return c.do(ctx, http.MethodPut, path, enabled, nil, true)
}

// Permissions lists an application's permissions in a tenant.
func (c *Client) Permissions(ctx context.Context, tenant, app string) ([]Permission, error) {
	var out struct {
		Permissions []Permission `json:"permissions"`
	}
	if err := c.do(ctx, http.MethodGet, permissionsPath(tenant, app), nil, &out, false); err != nil {
		return nil, err
	}
	return out.Permissions, nil
}

func permissionsPath(tenant, app string) string {
	return "/v1/tenants/" + url.PathEscape(tenant) + "/applications/" + url.PathEscape(app) + "/permissions"
}

// do sends one request with a JSON body (none when in is nil) and decodes
// a 2xx answer into out (when not nil), or returns an *Error.
func (c *Client) do(ctx context.Context, method, path string, in, out any, admin bool) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("verdict: encode request: %w", err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, body)
	if err != nil {
		return fmt.Errorf("verdict: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if admin && c.adminToken != "" {
		req.Header.Set("Authorization", "Bearer "+c.adminToken)
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("verdict: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("verdict: %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{StatusCode: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(data))
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("verdict: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}
