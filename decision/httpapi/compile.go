package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/datafilter"
)

// OPA's Compile API (OPA ≥ 1.9, and EOPA before it): POST
// /v1/compile/{path} turns a rule into data filters for the objects a
// list query may return. verdict answers it for data.verdict.decision.allow
// with the unknown input.resource, by translating the list plan
// (Engine.Plan, what POST /v1/plan answers) into the target the Accept
// header names (decision/datafilter). Nothing is decided here.

// compilePath is the one rule verdict compiles filters for.
const compilePath = "verdict/decision/allow"

// compileUnknown is the unknown of its filters: the object listed.
const compileUnknown = "input.resource"

// multiTarget is the Accept value of a multi-target answer.
const multiTarget = "multi"

// compileMediaTypes maps each Accept value verdict answers to its target
// ("kind+dialect", or multiTarget): OPA's names, and EOPA's older
// application/vnd.styra.* ones.
var compileMediaTypes = func() map[string]string {
	m := map[string]string{}
	for _, vendor := range []string{"opa", "styra"} {
		prefix := "application/vnd." + vendor + "."
		m[prefix+"ucast.all+json"] = "ucast+all"
		m[prefix+"ucast.prisma+json"] = "ucast+prisma"
		m[prefix+"ucast.minimal+json"] = "ucast+minimal"
		m[prefix+"sql.postgresql+json"] = "sql+postgresql"
		m[prefix+"multitarget+json"] = multiTarget
	}
	return m
}()

// compileRequest is OPA's Compile API request body
// (CompileFiltersRequestV1), with the options verdict uses.
type compileRequest struct {
	Input    *json.RawMessage `json:"input"`
	Query    string           `json:"query"`
	Unknowns *[]string        `json:"unknowns"`
	Options  struct {
		TargetSQLTableMappings map[string]any `json:"targetSQLTableMappings"`
		TargetDialects         []string       `json:"targetDialects"`
		MaskRule               string         `json:"maskRule"`
	} `json:"options"`
}

// compileResult is one target's filter: the query, left out (with the
// result) when no object passes, as OPA leaves it out.
type compileResult struct {
	Query any `json:"query"`
}

// compileResponse is OPA's Compile API answer; decision_id is verdict's,
// the plan's id, for the audit trail.
type compileResponse struct {
	Result     any    `json:"result,omitempty"`
	DecisionID string `json:"decision_id,omitempty"`
}

// handleCompile answers POST /v1/compile/{path}.
func (s *Server) handleCompile(w http.ResponseWriter, r *http.Request) {
	if path := strings.Trim(r.PathValue("path"), "/"); path != compilePath {
		writeError(w, http.StatusNotFound, "not_found", "path",
			fmt.Sprintf("verdict compiles data filters for data.verdict.decision.allow only (POST /v1/compile/%s), not data.%s", compilePath, strings.ReplaceAll(path, "/", ".")))
		return
	}
	mediaType, target, err := negotiateCompile(r.Header.Values("Accept"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "Accept", err.Error())
		return
	}
	var req compileRequest
	if !s.decodeJSON(w, r, &req) {
		return
	}
	targets, field, err := req.targets(target)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", field, err.Error())
		return
	}
	plan, ok := s.compilePlan(w, r, req.Input)
	if !ok {
		return
	}
	filters := map[string]compileResult{}
	for _, t := range targets {
		q, err := datafilter.Translate(plan, t, req.Options.TargetSQLTableMappings)
		var unsupported *datafilter.UnsupportedError
		var mapping *datafilter.MappingError
		switch {
		case errors.As(err, &unsupported):
			writeError(w, http.StatusBadRequest, "evaluation_error", "", unsupported.Error())
			return
		case errors.As(err, &mapping):
			writeError(w, http.StatusBadRequest, "invalid_request", "options."+mapping.Field, mapping.Message)
			return
		case err != nil:
			writeError(w, http.StatusInternalServerError, "internal_error", "", err.Error())
			return
		}
		if q != nil {
			key := t.Dialect
			if t.Kind == datafilter.TargetUCAST {
				key = datafilter.TargetUCAST
			}
			if _, done := filters[key]; !done {
				filters[key] = compileResult{Query: q}
			}
		}
	}
	out := compileResponse{DecisionID: plan.DecisionID}
	switch {
	case target == multiTarget:
		out.Result = filters
	case len(filters) == 1:
		for _, f := range filters {
			out.Result = f
		}
	}
	body, err := json.Marshal(out)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "", err.Error())
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(http.StatusOK)
	w.Write(append(body, '\n'))
}

// negotiateCompile picks the answer's media type from the Accept header:
// the supported type of highest q (the first among equals).
func negotiateCompile(accept []string) (mediaType, target string, err error) {
	best := -1.0
	var offered []string
	for _, header := range accept {
		for _, item := range strings.Split(header, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			mt, params, perr := mime.ParseMediaType(item)
			if perr != nil {
				return "", "", fmt.Errorf("malformed media type %q: %v", item, perr)
			}
			offered = append(offered, mt)
			q := 1.0
			if v, ok := params["q"]; ok {
				if q, perr = strconv.ParseFloat(v, 64); perr != nil || q < 0 || q > 1 {
					return "", "", fmt.Errorf("%s: q=%s is not a weight between 0 and 1", mt, v)
				}
			}
			if t, ok := compileMediaTypes[mt]; ok && q > 0 && q > best {
				best, mediaType, target = q, mt, t
			}
		}
	}
	if mediaType != "" {
		return mediaType, target, nil
	}
	supported := make([]string, 0, len(compileMediaTypes))
	for mt := range compileMediaTypes {
		if strings.HasPrefix(mt, "application/vnd.opa.") {
			supported = append(supported, mt)
		}
	}
	slices.Sort(supported)
	if len(offered) == 0 {
		return "", "", fmt.Errorf("missing: name the filter format, one of %s (or their application/vnd.styra.* names)", strings.Join(supported, ", "))
	}
	return "", "", fmt.Errorf("verdict answers %s (or their application/vnd.styra.* names), not %s", strings.Join(supported, ", "), strings.Join(offered, ", "))
}

// targets checks the request's query, unknowns and options, and lists the
// targets to translate to; on error it names the field.
func (req *compileRequest) targets(accepted string) ([]datafilter.Target, string, error) {
	if req.Query != "" && req.Query != "data."+strings.ReplaceAll(compilePath, "/", ".") {
		return nil, "query", fmt.Errorf("%q: the path names the rule; leave query out or make it data.verdict.decision.allow", req.Query)
	}
	if req.Unknowns != nil && !slices.Equal(*req.Unknowns, []string{compileUnknown}) {
		return nil, "unknowns", fmt.Errorf("%q: verdict's filters are about one unknown, [%q], the objects listed", *req.Unknowns, compileUnknown)
	}
	if req.Options.MaskRule != "" {
		return nil, "options.maskRule", errors.New("verdict's filters have no column masks: a decision's visibility and fields say which fields a member sees")
	}
	if accepted != multiTarget {
		t, err := datafilter.ParseTarget(accepted)
		return []datafilter.Target{t}, "Accept", err
	}
	if len(req.Options.TargetDialects) == 0 {
		return nil, "options.targetDialects", errors.New("a multi-target answer needs the targets, e.g. [\"ucast+prisma\", \"sql+postgresql\"]")
	}
	var ucast, sql []datafilter.Target
	for i, name := range req.Options.TargetDialects {
		t, err := datafilter.ParseTarget(name)
		if err != nil {
			return nil, fmt.Sprintf("options.targetDialects[%d]", i), err
		}
		if t.Kind == datafilter.TargetUCAST {
			ucast = append(ucast, t)
		} else {
			sql = append(sql, t)
		}
	}
	// One UCAST answer serves every UCAST target asked for, as in OPA: it
	// must hold in each, so minimal's constraints apply when it is asked.
	slices.SortStableFunc(ucast, func(a, b datafilter.Target) int {
		return boolRank(b.Dialect == datafilter.DialectMinimal) - boolRank(a.Dialect == datafilter.DialectMinimal)
	})
	return append(ucast, sql...), "", nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// compilePlan reads the input, a list plan request without a resource,
// and asks the engine for the plan. On failure it answers and returns
// false: 400 naming the field, 503 before bundles are loaded.
func (s *Server) compilePlan(w http.ResponseWriter, r *http.Request, rawInput *json.RawMessage) (*decision.Plan, bool) {
	if rawInput == nil || string(*rawInput) == "null" {
		writeError(w, http.StatusBadRequest, "invalid_request", "input",
			"input is required: a decision request without resource (tenant or key, member, and action or request; model names what is listed)")
		return nil, false
	}
	var pr decision.PlanRequest
	if err := decodeStrict(*rawInput, &pr, true); err != nil {
		field, msg := describeJSONError(err)
		if field == "resource" {
			msg = "input.resource is the unknown the filter is about: leave it out of the input"
		}
		writeError(w, http.StatusBadRequest, "invalid_request", joinField("input", field), msg)
		return nil, false
	}
	if s.engine.Current() == nil {
		writeError(w, http.StatusServiceUnavailable, "not_ready", "", decision.ErrNotReady.Error())
		return nil, false
	}
	plan, err := s.engine.Plan(r.Context(), &pr)
	if err != nil {
		var inErr *decision.InputError
		if errors.As(err, &inErr) {
			writeError(w, http.StatusBadRequest, "invalid_request", joinField("input", inErr.Field), inErr.Error())
			return nil, false
		}
		writeError(w, http.StatusInternalServerError, "internal_error", "", err.Error())
		return nil, false
	}
	return plan, true
}
