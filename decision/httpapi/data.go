package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/verdict-authz/verdict/decision"
)

// decisionPath is the Data API path that answers like POST /v1/decide.
const decisionPath = "verdict/decision"

// dataRequest is OPA's Data API request body.
type dataRequest struct {
	Input *json.RawMessage `json:"input"`
}

// dataResponse is OPA's Data API answer: no "result" when undefined.
type dataResponse struct {
	DecisionID string `json:"decision_id,omitempty"`
	Result     *any   `json:"result,omitempty"`
}

// handleData answers OPA's Data API: POST /v1/data/{path} with
// {"input": …} and GET /v1/data/{path}?input=<JSON>.
//
// Three kinds of document are answered differently:
//   - data.verdict.decision: the input is a decision request, the result
//     the decision /v1/decide answers;
//   - data.verdict.engine and the documents below it (the engine's rules):
//     the input is a decision request too, and the document is evaluated
//     on the facts verdict gathers for it, as /v1/decide evaluates it; a
//     caller's input never reaches the engine's rules as is;
//   - any other document: evaluated on the caller's input, as OPA does;
//     data and data.verdict leave data.verdict.engine out.
func (s *Server) handleData(w http.ResponseWriter, r *http.Request) {
	path := strings.Trim(r.PathValue("path"), "/")
	var rawInput []byte
	switch r.Method {
	case http.MethodPost:
		var req dataRequest
		if r.ContentLength != 0 {
			if !s.decodeJSON(w, r, &req) {
				return
			}
		}
		if req.Input != nil {
			rawInput = *req.Input
		}
	default:
		in, err := queryInput(r.URL.RawQuery)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", err.Field, err.Message)
			return
		}
		rawInput = in
	}
	s.writeDataAnswer(w, s.answerData(r.Context(), s.engine, path, rawInput))
}

// dataSource answers Data API questions: the engine on its installed
// generation, or a decision.Snapshot for all the questions of a batch.
type dataSource interface {
	Decide(ctx context.Context, req *decision.Request) (*decision.Decision, error)
	Query(ctx context.Context, path []string, input any) (*decision.QueryResult, error)
	QueryEngine(ctx context.Context, path []string, input func() (*decision.Request, error)) (*decision.QueryResult, error)
}

// dataAnswer is the answer to one Data API question: a result (undefined
// when not Defined), or an error with its HTTP status.
type dataAnswer struct {
	status int // http.StatusOK for a result
	result *decision.QueryResult
	err    ErrorBody
}

func dataError(status int, code, field, msg string) dataAnswer {
	return dataAnswer{status: status, err: ErrorBody{Code: code, Field: field, Message: msg}}
}

// writeDataAnswer answers one Data API question: {"decision_id", "result"}
// (no result when undefined), or the error.
func (s *Server) writeDataAnswer(w http.ResponseWriter, a dataAnswer) {
	if a.status != http.StatusOK {
		writeJSON(w, a.status, a.err)
		return
	}
	writeJSON(w, http.StatusOK, a.response())
}

// response is the Data API's answer to a result.
func (a dataAnswer) response() dataResponse {
	out := dataResponse{DecisionID: a.result.DecisionID}
	if a.result.Defined {
		out.Result = &a.result.Result
	}
	return out
}

// answerData answers the document at path (no leading or trailing "/")
// for rawInput (nil: no input) from src. Three kinds of document are
// answered differently (see handleData).
func (s *Server) answerData(ctx context.Context, src dataSource, path string, rawInput []byte) dataAnswer {
	var segments []string
	if path != "" {
		segments = strings.Split(path, "/")
	}
	switch {
	case path == decisionPath:
		return dataDecision(ctx, src, rawInput)
	case decision.IsEngineDocument(segments):
		return dataEngine(ctx, src, segments, rawInput)
	}
	var input any
	if rawInput != nil {
		if err := decodeStrict(rawInput, &input, false); err != nil {
			field, msg := describeJSONError(err)
			return dataError(http.StatusBadRequest, "invalid_request", joinField("input", field), msg)
		}
	}
	// The engine's rules trust input.facts as what verdict gathered from
	// the store: taken from a caller, they would let a document that reads
	// data.verdict.engine allow a member that does not exist.
	if in, ok := input.(map[string]any); ok {
		if _, forged := in["facts"]; forged {
			return dataError(http.StatusBadRequest, "invalid_request", "input.facts",
				"input.facts is reserved for the facts verdict gathers itself; ask data.verdict.decision for a decision")
		}
	}
	res, err := src.Query(ctx, segments, input)
	return queryAnswer(res, err)
}

// dataEngine answers a document of the engine (data.verdict.engine…): the
// input is a decision request, and the document is evaluated on the facts
// gathered for it.
func dataEngine(ctx context.Context, src dataSource, path []string, rawInput []byte) dataAnswer {
	var input func() (*decision.Request, error)
	if rawInput != nil {
		input = func() (*decision.Request, error) { return parseDecideBody(rawInput) }
	}
	res, err := src.QueryEngine(ctx, path, input)
	var jsonErr *bodyError
	var inErr *decision.InputError
	switch {
	case errors.As(err, &jsonErr):
		field, msg := describeJSONError(jsonErr.err)
		return dataError(http.StatusBadRequest, "invalid_request", joinField("input", field), msg)
	case errors.As(err, &inErr) && inErr.Field != "path":
		// The request's fields are the input's.
		err = &decision.InputError{Field: joinField("input", inErr.Field), Message: inErr.Message}
	}
	return queryAnswer(res, err)
}

// queryAnswer is the answer to a Data API query: the result, or 400 naming
// the field for the caller's mistake, 503 before a bundle is loaded, 500
// for an evaluation that failed.
func queryAnswer(res *decision.QueryResult, err error) dataAnswer {
	if err != nil {
		var inErr *decision.InputError
		switch {
		case errors.As(err, &inErr):
			return dataError(http.StatusBadRequest, "invalid_request", inErr.Field, inErr.Error())
		case errors.Is(err, decision.ErrNotReady):
			return dataError(http.StatusServiceUnavailable, "not_ready", "", err.Error())
		default:
			return dataError(http.StatusInternalServerError, "internal_error", "", err.Error())
		}
	}
	return dataAnswer{status: http.StatusOK, result: res}
}

// queryInput returns the input parameter of a GET query string (nil when
// absent or empty). A query string that does not decode is refused, naming
// the parameter, rather than read without the parameter, as
// url.Values would: a dropped input is a different question. So is an
// input given more than once: verdict would read one copy and OPA (whose
// Data API takes the last) another.
func queryInput(rawQuery string) ([]byte, *decision.InputError) {
	var input []byte
	seen := false
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		if pair == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return nil, &decision.InputError{Field: "query", Message: fmt.Sprintf("malformed query parameter name %q: %v", rawKey, err)}
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, &decision.InputError{Field: key, Message: fmt.Sprintf("malformed query parameter %s: %v", key, err)}
		}
		if key != "input" {
			continue
		}
		if seen {
			return nil, &decision.InputError{Field: "input", Message: "input is given more than once; give it once (OPA reads the last copy, so two would ask two questions)"}
		}
		seen = true
		if value != "" {
			input = []byte(value)
		}
	}
	return input, nil
}

// dataDecision answers data.verdict.decision: the input is a decision
// request and the result the same document /v1/decide returns.
func dataDecision(ctx context.Context, src dataSource, rawInput []byte) dataAnswer {
	if rawInput == nil {
		// Undefined without input, as a rule that needs input would be.
		return dataAnswer{status: http.StatusOK, result: &decision.QueryResult{}}
	}
	var req decision.Request
	if err := decodeStrict(rawInput, &req, true); err != nil {
		field, msg := describeJSONError(err)
		return dataError(http.StatusBadRequest, "invalid_request", joinField("input", field), msg)
	}
	d, err := src.Decide(ctx, &req)
	if err != nil {
		var inErr *decision.InputError
		if errors.As(err, &inErr) {
			return dataError(http.StatusBadRequest, "invalid_request", joinField("input", inErr.Field), inErr.Error())
		}
		return dataError(http.StatusInternalServerError, "internal_error", "", err.Error())
	}
	var result any = d
	return dataAnswer{status: http.StatusOK, result: &decision.QueryResult{DecisionID: d.DecisionID, Defined: true, Result: result}}
}

func joinField(prefix, field string) string {
	if field == "" {
		return prefix
	}
	return prefix + "." + field
}
