package client

import (
	"encoding/json"
	"time"
)

// Request is a decision request (POST /v1/decide; README "HTTP API").
type Request struct {
	Tenant string `json:"tenant,omitempty"`
	Key    string `json:"key,omitempty"`
	// Member is who makes the request; empty means anonymous.
	Member string `json:"member,omitempty"`
	// Application is the application acting on behalf of Member.
	Application string       `json:"application,omitempty"`
	Request     *HTTPRequest `json:"request,omitempty"`
	Action      string       `json:"action,omitempty"`
	Resource    *Resource    `json:"resource,omitempty"`
	// Context is handed to the bundle's Rego untouched.
	Context any `json:"context,omitempty"`
	// Consistency asks for a decision made on run-time state at least as
	// new as a revision a write answered (fleet mode).
	Consistency *Consistency `json:"consistency,omitempty"`
}

// Consistency asks that a decision see the shared run-time state at least
// at a revision; a sidecar that cannot catch up in time denies with
// state.stale.
type Consistency struct {
	AtLeast uint64 `json:"at_least"`
}

// HTTPRequest is the request the service received.
type HTTPRequest struct {
	Service string `json:"service,omitempty"`
	Method  string `json:"method"`
	Path    string `json:"path"`
}

// Resource is the object a request acts on.
type Resource struct {
	FRN            string   `json:"frn,omitempty"`
	Owner          string   `json:"owner,omitempty"`
	ResourceGroups []string `json:"resource_groups,omitempty"`
	Reference      bool     `json:"reference,omitempty"`
}

// Decision is verdict's answer (README "HTTP API"). Status is what the service
// should answer: 200, 401, 403 or 404.
type Decision struct {
	DecisionID string            `json:"decision_id"`
	Allow      bool              `json:"allow"`
	Status     int               `json:"status"`
	Tenant     string            `json:"tenant"`
	Action     string            `json:"action,omitempty"`
	Visibility string            `json:"visibility"`
	Fields     []string          `json:"fields"`
	Reasons    []Reason          `json:"reasons"`
	Revision   map[string]string `json:"revision"`
	// StateRevision is the revision of the shared run-time state the
	// decision was made at (fleet mode; 0 without a state database).
	StateRevision uint64 `json:"state_revision,omitempty"`
}

// Reason is one ground of a decision.
type Reason struct {
	Layer         string `json:"layer"`
	Code          string `json:"code"`
	Effect        string `json:"effect"`
	Message       string `json:"message"`
	Policy        string `json:"policy,omitempty"`
	Statement     *int   `json:"statement,omitempty"`
	ResourceGroup string `json:"resource_group,omitempty"`
	SoajsCode     int    `json:"soajs_code,omitempty"`
}

// Denial returns the first deny reason, or nil for an allow.
func (d *Decision) Denial() *Reason {
	for i := range d.Reasons {
		if d.Reasons[i].Effect == "deny" {
			return &d.Reasons[i]
		}
	}
	return nil
}

// BatchRequest asks several questions for one caller.
type BatchRequest struct {
	Tenant      string      `json:"tenant,omitempty"`
	Key         string      `json:"key,omitempty"`
	Member      string      `json:"member,omitempty"`
	Application string      `json:"application,omitempty"`
	Items       []BatchItem `json:"items"`
	// Consistency applies to every item (see Request.Consistency).
	Consistency *Consistency `json:"consistency,omitempty"`
}

// BatchItem is one question of a batch.
type BatchItem struct {
	Request  *HTTPRequest `json:"request,omitempty"`
	Action   string       `json:"action,omitempty"`
	Resource *Resource    `json:"resource,omitempty"`
	Context  any          `json:"context,omitempty"`
}

// BatchResponse holds one decision per item, in order.
type BatchResponse struct {
	Results []*Decision `json:"results"`
}

// PlanRequest asks how to filter a list query (POST /v1/plan).
type PlanRequest struct {
	Tenant      string       `json:"tenant,omitempty"`
	Key         string       `json:"key,omitempty"`
	Member      string       `json:"member,omitempty"`
	Application string       `json:"application,omitempty"`
	Request     *HTTPRequest `json:"request,omitempty"`
	Action      string       `json:"action,omitempty"`
	Context     any          `json:"context,omitempty"`
	// Model is "<app>:<model>" of the FRNs being listed.
	Model string `json:"model,omitempty"`
}

// Plan says what a list query must be filtered by: Kind "all" (no filter),
// "none" (return nothing) or "some" (an object passes when it matches any
// criterion of Filter and none of Exclude).
type Plan struct {
	DecisionID string            `json:"decision_id"`
	Kind       string            `json:"kind"`
	Tenant     string            `json:"tenant"`
	Action     string            `json:"action,omitempty"`
	Filter     map[string]any    `json:"filter,omitempty"`
	Exclude    map[string]any    `json:"exclude,omitempty"`
	Reasons    []Reason          `json:"reasons"`
	Revision   map[string]string `json:"revision"`
}

// Service is a service document: its routes and permittable groups, the
// same shape as a bundle's verdict.catalog.services.<name> (README "Bundles").
type Service struct {
	Routes []Route `json:"routes"`
	// PermittableGroups maps a group (Fineract CN, e.g.
	// portfolio__v1__khepri) to the endpoints it covers.
	PermittableGroups map[string][]Endpoint `json:"permittable_groups,omitempty"`
}

// Route is one route: a REST collection (Path and ViewSet), a custom route
// of a view set (Method, Path, ViewSet, Action) or a plain API whose
// action is given whole (Method, Path, Action).
type Route struct {
	Method  string `json:"method,omitempty"`
	Path    string `json:"path"`
	ViewSet string `json:"viewset,omitempty"`
	Action  string `json:"action,omitempty"`
}

// Endpoint is a method and path template.
type Endpoint struct {
	Method string `json:"method"`
	Path   string `json:"path"`
}

// Registration is verdict's answer to a service registration.
type Registration struct {
	Name         string          `json:"name"`
	Source       string          `json:"source"`
	Bundle       string          `json:"bundle,omitempty"`
	RegisteredAt *time.Time      `json:"registered_at,omitempty"`
	Document     json.RawMessage `json:"document"`
	// Created: the name was not registered before; Changed: the document
	// differs from the registered one.
	Created bool `json:"created"`
	Changed bool `json:"changed"`
	// Persisted: verdict wrote it to its state directory.
	Persisted  bool      `json:"persisted"`
	Generation uint64    `json:"generation,omitempty"`
	Warnings   []Problem `json:"warnings"`
}

// Permission is an application's entry for a permittable group of a
// tenant.
type Permission struct {
	Tenant      string     `json:"tenant"`
	Application string     `json:"application"`
	Group       string     `json:"group"`
	Operations  []string   `json:"operations"`
	EnabledBy   []string   `json:"enabled_by"`
	InBundle    bool       `json:"in_bundle"`
	RequestedAt *time.Time `json:"requested_at,omitempty"`
	Created     bool       `json:"created,omitempty"`
	Changed     bool       `json:"changed,omitempty"`
	Persisted   bool       `json:"persisted,omitempty"`
}
