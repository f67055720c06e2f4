package decision

import (
	"errors"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/route"
)

// Request is a decision request (POST /v1/decide).
type Request struct {
	Tenant      string       `json:"tenant,omitempty"`
	Key         string       `json:"key,omitempty"`
	Member      string       `json:"member,omitempty"`
	Application string       `json:"application,omitempty"`
	Request     *HTTPRequest `json:"request,omitempty"`
	Action      string       `json:"action,omitempty"`
	Resource    *Resource    `json:"resource,omitempty"`
	// Context is handed to Rego untouched (input.context).
	Context any `json:"context,omitempty"`
	// Consistency asks for a decision made on run-time state at least as
	// new as a revision a write answered (fleet mode).
	Consistency *Consistency `json:"consistency,omitempty"`

	// contextAST is Context as Rego sees it, converted by Validate (see
	// contextTerm).
	contextAST *ast.Term
}

// Consistency asks that a decision see the shared run-time state at least
// at a revision (as SpiceDB's ZedTokens do): a sidecar that has not applied
// it yet catches up first, waiting a bounded time, and otherwise denies
// with state.stale (input.consistency, decided in Rego).
type Consistency struct {
	AtLeast uint64 `json:"at_least"`
}

// HTTPRequest is the request the calling service received.
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

// InputError is a malformed request: Field names what is wrong in the
// request document (for example "request.method").
type InputError struct {
	Field   string
	Message string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Message }

// Validate checks the request's shape and normalises it in place: the method
// is upper-cased, the path made canonical (route.CanonicalPath: the query
// string cut off, escapes decoded; encoded separators, dot segments and the
// like refused) and context.ip too (canonicalContextIP, which replaces
// the context rather than write into the caller's map). FRNs and resource
// group codes must be printable ASCII (acl.ValidateRequestFRN,
// acl.ValidateGroupCode), so that they compare with the bundle's as a
// service compares them.
func (r *Request) Validate() error {
	if r.Tenant == "" && r.Key == "" {
		return &InputError{Field: "tenant", Message: "tenant or key is required"}
	}
	if r.Request == nil && r.Action == "" {
		return &InputError{Field: "request", Message: "request or action is required"}
	}
	if hr := r.Request; hr != nil {
		hr.Method = strings.ToUpper(hr.Method)
		if hr.Method == "" {
			return &InputError{Field: "request.method", Message: "is required"}
		}
		if !acl.IsHTTPMethod(hr.Method) {
			return &InputError{Field: "request.method", Message: fmt.Sprintf("unknown HTTP method %q", hr.Method)}
		}
		path, err := route.CanonicalPath(hr.Path)
		if err != nil {
			return &InputError{Field: "request.path", Message: err.Error()}
		}
		hr.Path = path
	}
	if r.Action != "" {
		if err := acl.ValidateAction(r.Action); err != nil {
			return &InputError{Field: "action", Message: err.Error()}
		}
	}
	if res := r.Resource; res != nil && res.FRN != "" {
		if err := acl.ValidateRequestFRN(res.FRN); err != nil {
			return &InputError{Field: "resource.frn", Message: err.Error()}
		}
	}
	if res := r.Resource; res != nil {
		for i, g := range res.ResourceGroups {
			if err := acl.ValidateGroupCode(g); err != nil {
				return &InputError{Field: fmt.Sprintf("resource.resource_groups[%d]", i), Message: err.Error()}
			}
		}
	}
	if err := r.canonicalContextIP(); err != nil {
		return err
	}
	r.contextAST = nil
	if r.Context != nil {
		// What Rego cannot hold (a number beyond its range, say) is the
		// caller's mistake, not an internal error of the decision.
		if _, err := r.contextTerm(); err != nil {
			return &InputError{Field: "context", Message: err.Error()}
		}
	}
	return nil
}

// contextTerm is Context as Rego sees it (input.context). It is converted
// once: by Validate, which checks that it converts, or here for a request
// that was not validated.
func (r *Request) contextTerm() (*ast.Term, error) {
	if r.contextAST == nil {
		v, err := ast.InterfaceToValue(r.Context)
		if err != nil {
			return nil, err
		}
		r.contextAST = ast.NewTerm(v)
	}
	return r.contextAST, nil
}

// canonicalContextIP writes context.ip, when the context has one, in its
// canonical form (netip: an IPv4-mapped IPv6 address as IPv4, IPv6
// compressed in lower case), so that every door hands rules such as the
// demo's ext.ip_blocked one spelling of an address. A value that is not
// exactly one IP address (spaces, leading zeros, a zone, a list, not a
// string) is refused: a rule comparing it exactly would not apply. So is a
// key spelling "ip" in another case ("IP", "Ip"): a front end that reads
// context keys ignoring case could see another address than the rules.
func (r *Request) canonicalContextIP() error {
	ctx, ok := r.Context.(map[string]any)
	if !ok {
		return nil
	}
	for k := range ctx {
		if k != "ip" && strings.EqualFold(k, "ip") {
			return &InputError{Field: "context." + k, Message: fmt.Sprintf("%q is ip in another case; the address is context.ip, written in lower case", k)}
		}
	}
	v, ok := ctx["ip"]
	if !ok {
		return nil
	}
	s, ok := v.(string)
	if !ok {
		return &InputError{Field: "context.ip", Message: "must be a string holding one IP address"}
	}
	canonical, err := acl.CanonicalIP(s)
	if err != nil {
		return &InputError{Field: "context.ip", Message: fmt.Sprintf("must be one IP address (not a list), written without spaces, leading zeros or a zone: %q", s)}
	}
	if canonical != s {
		// A copy: the caller's map may be shared with other requests.
		c := make(map[string]any, len(ctx))
		for k, v := range ctx {
			c[k] = v
		}
		c["ip"] = canonical
		r.Context = c
	}
	return nil
}

// MaxBatchItems bounds the items of one batch.
const MaxBatchItems = 1000

// BatchRequest asks several questions for one caller (POST /v1/decide/batch).
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

// Requests expands the batch into validated decision requests; an error
// names the item's field, e.g. items[2].request.method.
func (b *BatchRequest) Requests() ([]*Request, error) {
	if len(b.Items) == 0 {
		return nil, &InputError{Field: "items", Message: "must list at least one item"}
	}
	if len(b.Items) > MaxBatchItems {
		return nil, &InputError{Field: "items", Message: fmt.Sprintf("lists %d items; at most %d are allowed", len(b.Items), MaxBatchItems)}
	}
	out := make([]*Request, len(b.Items))
	for i, item := range b.Items {
		req := &Request{
			Tenant: b.Tenant, Key: b.Key, Member: b.Member, Application: b.Application,
			Request: item.Request, Action: item.Action, Resource: item.Resource, Context: item.Context,
			Consistency: b.Consistency,
		}
		if err := req.Validate(); err != nil {
			var inErr *InputError
			if errors.As(err, &inErr) && inErr.Field != "tenant" {
				return nil, &InputError{Field: fmt.Sprintf("items[%d].%s", i, inErr.Field), Message: inErr.Message}
			}
			return nil, err
		}
		out[i] = req
	}
	return out, nil
}
