package httpapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/verdict-authz/verdict/decision"
)

// batchDataRequest is the body of POST /v1/batch/data/{path}, as EOPA
// defines it: each input, by an id the caller chooses, and an optional
// input every one of them is deep-merged over.
type batchDataRequest struct {
	Inputs      map[string]json.RawMessage `json:"inputs"`
	CommonInput json.RawMessage            `json:"common_input,omitempty"`
}

// batchDataResponse is the answer to a batch: one entry per input id.
// Code and Message are set only when every input was refused as malformed
// (HTTP 400), so that clients reading a 400 as OPA's {"code","message"}
// error find one.
type batchDataResponse struct {
	Code            string                    `json:"code,omitempty"`
	Message         string                    `json:"message,omitempty"`
	BatchDecisionID string                    `json:"batch_decision_id"`
	Responses       map[string]batchDataEntry `json:"responses"`
}

// batchDataEntry is the answer for one input: {"decision_id", "result"} (no
// result when undefined), or an error {"code", "field", "message"}. In a
// batch answered 207, every entry carries http_status_code as a string:
// "200" for an answer and "500" for any refusal, whatever its cause (the
// code says it: invalid_request, internal_error…), because EOPA answers
// only these two and OPA's Java SDK reads no other value there.
type batchDataEntry struct {
	DecisionID     string `json:"decision_id,omitempty"`
	Result         *any   `json:"result,omitempty"`
	Code           string `json:"code,omitempty"`
	Field          string `json:"field,omitempty"`
	Message        string `json:"message,omitempty"`
	HTTPStatusCode string `json:"http_status_code,omitempty"`
}

// handleBatchData answers OPA's batch Data API (EOPA's POST
// /v1/batch/data/{path}): every input, deep-merged over common_input, is
// asked of the document at path as POST /v1/data/{path} would ask it, all
// on one generation of the data and policy (caught up with the newest state
// revision an input asks for). The status is 200 when every
// input was answered, 207 when some were and some were refused (each entry
// then carries http_status_code), and when all were refused, their status
// if they agree (400 then carries a top-level code and message too, as
// OPA's errors do), else 500. A body that is not a batch is a 400.
func (s *Server) handleBatchData(w http.ResponseWriter, r *http.Request) {
	path := strings.Trim(r.PathValue("path"), "/")
	var req batchDataRequest
	if !s.decodeJSON(w, r, &req) {
		return
	}
	switch {
	case req.Inputs == nil:
		writeError(w, http.StatusBadRequest, "invalid_request", "inputs", "inputs is required: an object of the inputs to evaluate, by id")
		return
	case len(req.Inputs) > decision.MaxBatchItems:
		writeError(w, http.StatusBadRequest, "invalid_request", "inputs",
			fmt.Sprintf("inputs holds %d inputs; at most %d are allowed", len(req.Inputs), decision.MaxBatchItems))
		return
	}
	var common map[string]any
	if req.CommonInput != nil && string(req.CommonInput) != "null" {
		if err := decodeStrict(req.CommonInput, &common, false); err != nil {
			field, msg := describeJSONError(err)
			if field == "" {
				msg = "common_input must be an object: " + msg
			}
			writeError(w, http.StatusBadRequest, "invalid_request", joinField("common_input", field), msg)
			return
		}
	}
	ids := slices.Sorted(maps.Keys(req.Inputs))
	inputs := make(map[string][]byte, len(ids))
	for _, id := range ids {
		inputs[id] = mergedInput(common, req.Inputs[id])
	}
	snap, err := s.engine.Snapshot(r.Context(), newestConsistency(inputs))
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "not_ready", "", err.Error())
		return
	}
	out := batchDataResponse{BatchDecisionID: snap.ID(), Responses: make(map[string]batchDataEntry, len(req.Inputs))}
	answered := 0
	var refusals []int // the statuses of the refused inputs
	for _, id := range ids {
		a := s.answerData(r.Context(), snap, path, inputs[id])
		if a.status != http.StatusOK {
			refusals = append(refusals, a.status)
			out.Responses[id] = batchDataEntry{Code: a.err.Code, Field: a.err.Field, Message: a.err.Message, HTTPStatusCode: "500"}
			continue
		}
		answered++
		resp := a.response()
		out.Responses[id] = batchDataEntry{DecisionID: resp.DecisionID, Result: resp.Result, HTTPStatusCode: "200"}
	}
	status := http.StatusMultiStatus
	switch {
	case len(refusals) == 0:
		status = http.StatusOK
	case answered == 0 && !slices.ContainsFunc(refusals, func(st int) bool { return st != refusals[0] }):
		status = refusals[0]
	case answered == 0:
		status = http.StatusInternalServerError
	}
	if status != http.StatusMultiStatus {
		// One status for all: the entries do not repeat it.
		for id, e := range out.Responses {
			e.HTTPStatusCode = ""
			out.Responses[id] = e
		}
	}
	if status == http.StatusBadRequest {
		out.Code = "invalid_request"
		out.Message = "every input of the batch was refused; responses gives the reason for each"
	}
	writeJSON(w, status, out)
}

// newestConsistency is the newest state revision any of a batch's inputs
// asks for ("consistency": {"at_least": REV}, as a decision request asks),
// for the batch's snapshot to catch up with; nil when none asks.
func newestConsistency(inputs map[string][]byte) *decision.Consistency {
	var newest *decision.Consistency
	for _, raw := range inputs {
		var in struct {
			Consistency *decision.Consistency `json:"consistency"`
		}
		if json.Unmarshal(raw, &in) != nil || in.Consistency == nil {
			continue // a malformed input is refused when it is answered
		}
		if newest == nil || in.Consistency.AtLeast > newest.AtLeast {
			newest = in.Consistency
		}
	}
	return newest
}

// mergedInput is one batch input deep-merged over the common input: keys
// of both that hold objects on both sides are merged, any other key of the
// input replaces the common one. An input that is not an object, or that is
// not well-formed JSON, is returned as given, for answerData to judge; so
// is any input when there is no common input.
func mergedInput(common map[string]any, raw json.RawMessage) []byte {
	if common == nil || raw == nil {
		return raw
	}
	var input map[string]any
	if err := decodeStrict(raw, &input, false); err != nil || input == nil {
		return raw
	}
	merged, err := json.Marshal(deepMerge(common, input))
	if err != nil {
		return raw
	}
	return merged
}

// deepMerge returns over merged onto base, neither of them changed.
func deepMerge(base, over map[string]any) map[string]any {
	out := maps.Clone(base)
	for k, v := range over {
		if vm, ok := v.(map[string]any); ok {
			if bm, ok := out[k].(map[string]any); ok {
				out[k] = deepMerge(bm, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}
