package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Limits on what one caller can make the API do. The server-level limits
// (header size, timeouts) are set on the http.Server by cmd/verdict; body
// size (MaxBodyBytes) and batch size (decision.MaxBatchItems) elsewhere.

// MaxJSONDepth bounds how deeply a request body's JSON may nest (objects and
// arrays, counting the outermost value as level 1). encoding/json's own
// bound is 10,000; a deep "context" would otherwise reach Rego as is.
const MaxJSONDepth = 64

// overloadWait is how long a decision request waits for a free evaluation
// slot before it is answered 503.
const overloadWait = 10 * time.Millisecond

// isDecisionPath reports whether path is one of the decision endpoints the
// concurrency limit covers: /v1/decide (and ?explain), /v1/decide/batch,
// /v1/plan, /v1/data, /v1/data/*, /v1/authz and the access reviews
// (/v1/tenants/{t}/access, /v1/tenants/{t}/members/{m}/access).
func isDecisionPath(path string) bool {
	switch path {
	case "/v1/decide", "/v1/decide/batch", "/v1/plan", "/v1/data", "/v1/authz":
		return true
	}
	return strings.HasPrefix(path, "/v1/data/") ||
		strings.HasPrefix(path, "/v1/tenants/") && strings.HasSuffix(path, "/access")
}

// limitDecisions lets at most max decision requests evaluate at once; the
// others wait at most overloadWait for a slot and are then answered 503
// {"code":"overloaded"} with Retry-After: 1. Health, status, metrics and the
// admin endpoints are never limited. max <= 0 returns next unchanged.
func limitDecisions(max int, next http.Handler) http.Handler {
	if max <= 0 {
		return next
	}
	sem := make(chan struct{}, max)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isDecisionPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		select {
		case sem <- struct{}{}:
		default:
			t := time.NewTimer(overloadWait)
			select {
			case sem <- struct{}{}:
				t.Stop()
			case <-t.C:
				w.Header().Set("Retry-After", "1")
				writeError(w, http.StatusServiceUnavailable, "overloaded", "",
					"too many decisions in flight (at most "+strconv.Itoa(max)+"); retry shortly")
				return
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		defer func() { <-sem }()
		next.ServeHTTP(w, r)
	})
}

// DepthError is a JSON body nesting deeper than MaxJSONDepth.
type DepthError struct {
	Field string // the outermost field holding the deep value, when known
	Depth int
}

func (e *DepthError) Error() string {
	where := "the request body"
	if e.Field != "" {
		where = e.Field
	}
	return fmt.Sprintf("%s: JSON nests deeper than %d levels", where, e.Depth)
}

// depthFrame is one open container while checkDepth scans.
type depthFrame struct {
	object    bool
	expectKey bool
	key       string
	index     int
}

// checkDepth scans body once, without decoding, and returns a *DepthError
// when it nests deeper than max. Malformed JSON is left to the decoder.
// Field is the path down to the first object key ("context"), continued
// through arrays ("items[3].context").
func checkDepth(body []byte, max int) error {
	stack := make([]depthFrame, 0, 16)
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case '"':
			start := i + 1
			for i++; i < len(body) && body[i] != '"'; i++ {
				if body[i] == '\\' {
					i++
				}
			}
			if n := len(stack); n > 0 && n <= 8 && stack[n-1].expectKey && i <= len(body) {
				stack[n-1].key = unquoteKey(body[start:min(i, len(body))])
			}
		case '{', '[':
			if len(stack) >= max {
				return &DepthError{Field: depthField(stack), Depth: max}
			}
			stack = append(stack, depthFrame{object: c == '{', expectKey: c == '{'})
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case ',':
			if n := len(stack); n > 0 {
				if stack[n-1].object {
					stack[n-1].expectKey = true
				} else {
					stack[n-1].index++
				}
			}
		case ':':
			if n := len(stack); n > 0 {
				stack[n-1].expectKey = false
			}
		}
	}
	return nil
}

// depthField names the field of a too-deep value from the open containers:
// keys and array indexes down to the first key not followed by an array.
func depthField(stack []depthFrame) string {
	var b strings.Builder
	for i, f := range stack {
		if i >= 8 {
			break
		}
		if !f.object {
			if i == 0 {
				break // a top-level array has no field name
			}
			fmt.Fprintf(&b, "[%d]", f.index)
			continue
		}
		if f.key == "" {
			break
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(f.key)
		if i+1 < len(stack) && stack[i+1].object {
			break
		}
	}
	return b.String()
}

func unquoteKey(raw []byte) string {
	if !bytes.ContainsRune(raw, '\\') {
		return string(raw)
	}
	var s string
	if err := json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s); err != nil {
		return string(raw)
	}
	return s
}
