package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/verdict-authz/verdict/decision/admission"
)

// Limits on what one caller can make the API do. The server-level limits
// (header size, timeouts) are set on the http.Server by cmd/verdict; body
// size (MaxBodyBytes) and batch size (decision.MaxBatchItems) elsewhere.

// MaxJSONDepth bounds how deeply a request body's JSON may nest (objects and
// arrays, counting the outermost value as level 1). encoding/json's own
// bound is 10,000; a deep "context" would otherwise reach Rego as is.
const MaxJSONDepth = 64

// isDecisionPath reports whether path is one of the decision endpoints the
// concurrency limit covers: /v1/decide (and ?explain), /v1/decide/batch,
// /v1/plan, /v1/data, /v1/data/*, /v1/batch/data/*, /v1/compile/*, /v1/authz, / (OPA's default decision) and
// the access reviews (/v1/tenants/{t}/access, /v1/tenants/{t}/members/{m}/access).
func isDecisionPath(path string) bool {
	switch path {
	case "/v1/decide", "/v1/decide/batch", "/v1/plan", "/v1/data", "/v1/authz", "/":
		return true
	}
	return strings.HasPrefix(path, "/v1/data/") || strings.HasPrefix(path, "/v1/batch/data/") || strings.HasPrefix(path, "/v1/compile/") ||
		strings.HasPrefix(path, "/v1/tenants/") && strings.HasSuffix(path, "/access")
}

// DecisionBodyAllowance are the first bytes of each decision body that the
// body budget does not count. A decision request is usually under 2 KiB:
// one that fits the allowance is read and answered however much of the
// budget large bodies hold, so clients that send large bodies and then
// stall cannot starve it. Like the header (up to the server's
// MaxHeaderBytes, 64 KiB under `verdict run`) and net/http's buffers, the
// allowance is memory each connection may hold, far below what a large
// body may: the budget still bounds what is read beyond it.
const DecisionBodyAllowance = 8 << 10

// errBodyBudget is a decision body that would take the bytes held by
// decision bodies past the limiter's budget.
var errBodyBudget = errors.New("decision bodies in flight exceed their memory budget")

// decisionLimiter lets a decision request evaluate only with a slot of the
// admission.Limiter, which the ext_authz door shares (one pool for
// --max-concurrent-decisions); a request that waits admission.Wait for
// none is answered 503 {"code":"overloaded"} with Retry-After: 1. Health,
// status, metrics and the admin endpoints are never limited.
//
// A request's body is read whole (at most maxBodyBytes) before it takes a
// slot, so a client that sends a header and then stalls holds a goroutine
// and a connection until the server's read timeout, never a slot. The bytes
// of the decision bodies read and not yet answered are bounded by
// bodyBudget (2 × max × maxBodyBytes): a body that would pass it is refused
// 503 overloaded while it is read, so reading before the slot does not
// trade the slot limit for unbounded memory. Stalled clients count only the
// bytes they sent. The first bodyAllowance (DecisionBodyAllowance) bytes of
// each body are not counted, so that small decisions are read even while
// stalled large bodies hold the whole budget.
type decisionLimiter struct {
	slots         *admission.Limiter
	maxBodyBytes  int64
	bodyBudget    int64
	bodyAllowance int64
	bodyBytes     atomic.Int64
	bufPool       sync.Pool
	next          http.Handler
}

// newDecisionLimiter limits decisions to the slots of limiter.
func newDecisionLimiter(limiter *admission.Limiter, maxBodyBytes int64, next http.Handler) *decisionLimiter {
	l := &decisionLimiter{slots: limiter, maxBodyBytes: maxBodyBytes,
		bodyBudget: 2 * int64(limiter.Max()) * maxBodyBytes, bodyAllowance: DecisionBodyAllowance, next: next}
	l.bufPool.New = func() any { return new(bytes.Buffer) }
	return l
}

func (l *decisionLimiter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !isDecisionPath(r.URL.Path) {
		l.next.ServeHTTP(w, r)
		return
	}
	buf := l.bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer l.bufPool.Put(buf)
	body := &budgetedBody{ReadCloser: r.Body, l: l}
	defer func() { l.bodyBytes.Add(-body.n) }()
	r.Body = body
	if !readBounded(w, r, buf, l.maxBodyBytes) {
		if errors.Is(body.err, errBodyBudget) {
			l.slots.Refused()
		}
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(buf.Bytes()))
	if err := l.slots.Acquire(r.Context()); err != nil {
		if errors.Is(err, admission.ErrOverloaded) {
			writeOverloaded(w, l.slots.Message())
		}
		return
	}
	defer l.slots.Release()
	l.next.ServeHTTP(w, r)
}

func writeOverloaded(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "overloaded", "", msg)
}

// budgetedBody counts the bytes read from a decision body beyond the
// limiter's allowance against its budget; read are the bytes read, n those
// it holds of the budget, err the budget error.
type budgetedBody struct {
	io.ReadCloser
	l    *decisionLimiter
	read int64
	n    int64
	err  error
}

func (b *budgetedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		free := max(0, b.l.bodyAllowance-b.read)
		b.read += int64(n)
		if charged := int64(n) - free; charged > 0 {
			if b.l.bodyBytes.Add(charged) > b.l.bodyBudget {
				b.l.bodyBytes.Add(-charged)
				b.err = errBodyBudget
				return 0, errBodyBudget
			}
			b.n += charged
		}
	}
	return n, err
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
