package decision

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"time"
)

// DecideJSON answers one request given as the JSON body of POST
// /v1/decide. parse turns the body into a request; its error is returned as
// is, for the caller to report. With the decision cache on, a body this
// generation has answered before, byte for byte, is answered from the cache
// without being parsed again (an answer is the same for the same bytes: a
// body that once parsed and validated always does). As with Decide, the
// error is non-nil only for a body that does not make a valid request.
func (e *Engine) DecideJSON(ctx context.Context, body []byte, parse func([]byte) (*Request, error)) (*Decision, error) {
	gen := e.current.Load()
	if gen != nil && gen.cache != nil {
		var start time.Time
		if e.observer != nil {
			start = time.Now()
		}
		if hit, req := gen.cache.getBody(body); hit != nil {
			d := reuse(hit, e.newID())
			if e.observer != nil {
				e.observer.ObserveDecision(ctx, req, d, DecisionInfo{Start: start, Duration: time.Since(start), Cache: CacheHit})
			}
			return d, nil
		}
	}
	req, err := parse(body)
	if err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if req.Consistency != nil {
		gen = e.generationFor(ctx, req.Consistency)
	}
	// Only a decision evaluated now is remembered under the body: one
	// answered from the cache under its normalised key expires with that
	// entry, and must not live on under the body beyond its TTL.
	d, fresh := e.decideReporting(ctx, gen, req, nil)
	if fresh {
		gen.cache.putBody(body, req, d)
	}
	return d, nil
}

// decisionIDPrefix is how the JSON encoding of a Decision begins: its
// decision_id comes first.
const decisionIDPrefix = `{"decision_id":"`

// encodeRest encodes d and keeps what follows its decision_id, for
// AppendJSON; nil if the encoding does not have the expected shape.
func encodeRest(d *Decision) []byte {
	c := *d
	c.DecisionID = ""
	c.cached = nil
	b, err := json.Marshal(&c)
	if err != nil || !strings.HasPrefix(string(b), decisionIDPrefix+`"`) {
		return nil
	}
	return b[len(decisionIDPrefix)+1:]
}

// AppendJSON appends d's JSON encoding (exactly what json.Marshal writes)
// to dst. A decision answered from the decision cache reuses the encoding
// made when it was cached, with its own decision_id.
func (d *Decision) AppendJSON(dst []byte) ([]byte, error) {
	if d.cached != nil && d.cached.encodedRest != nil && plainJSONString(d.DecisionID) {
		dst = append(dst, decisionIDPrefix...)
		dst = append(dst, d.DecisionID...)
		dst = append(dst, '"')
		return append(dst, d.cached.encodedRest...), nil
	}
	// An Encoder writes into dst itself, where json.Marshal would return
	// a copy of its buffer to append; it adds a newline Marshal does not.
	out := bytes.NewBuffer(dst)
	if err := json.NewEncoder(out).Encode(d); err != nil {
		return dst, err
	}
	b := out.Bytes()
	return b[:len(b)-1], nil
}

// plainJSONString reports whether s encodes as itself between quotes
// (decision IDs are UUIDs; anything else takes json.Marshal's path).
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
