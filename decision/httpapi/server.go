// Package httpapi serves verdict's HTTP API: decisions (POST /v1/decide,
// with ?explain=full for the evaluation trace), health and, with
// telemetry, GET /metrics and the caller's W3C trace context. Decoding is
// strict: a malformed request (an unknown field, a key written twice or in
// another case) gets a 400 whose message names the field by its path;
// bodies over the limit get a 413.
package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/admission"
	"github.com/verdict-authz/verdict/decision/proxyauth"
	"github.com/verdict-authz/verdict/decision/telemetry"
	"github.com/verdict-authz/verdict/loader/jsonkeys"
)

// DefaultMaxBodyBytes bounds request bodies.
const DefaultMaxBodyBytes = 1 << 20

// Options configures the API.
type Options struct {
	// MaxBodyBytes bounds request bodies (DefaultMaxBodyBytes when 0).
	MaxBodyBytes int64
	Log          *slog.Logger
	// Bundles, when set, serves GET /v1/status and GET /v1/processors and
	// makes /health/ready answer 503 while a bundle's newest version fails.
	Bundles BundleStatus
	// Authz configures GET /v1/authz (nginx auth_request).
	Authz AuthzOptions
	// Telemetry, when set, serves GET /metrics and puts requests inside
	// the caller's trace (see middleware.go).
	Telemetry *telemetry.Telemetry
	// Runtime, when set, serves run-time service registrations and
	// delegation requests and consents (see services.go, delegations.go).
	Runtime Runtime
	// AdminToken, when set, is the bearer token the write endpoints
	// (PUT /v1/services/*, delegation requests and consents) require.
	AdminToken []byte
	// Shadow, when set, adds the shadow candidate (--candidate) to
	// GET /v1/status.
	Shadow ShadowStatus
	// Admission, when set, bounds the decision requests evaluating at
	// once (--max-concurrent-decisions; the ext_authz door shares it); the
	// rest get 503 "overloaded" (see limits.go), and sustained refusals
	// make /health/ready answer 503.
	Admission *admission.Limiter
}

// Server is the HTTP API over one engine.
type Server struct {
	engine  *decision.Engine
	opts    Options
	mux     *http.ServeMux
	handler http.Handler // mux behind the telemetry middleware
	bufPool sync.Pool
	authz   *proxyauth.Identifier
	// limiter bounds decisions in flight (nil: unlimited).
	limiter *decisionLimiter
}

// New returns the API handler.
func New(engine *decision.Engine, opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	s := &Server{engine: engine, opts: opts, mux: http.NewServeMux(), authz: proxyauth.NewIdentifier(opts.Authz)}
	s.bufPool.New = func() any { return new(bytes.Buffer) }
	s.mux.HandleFunc("POST /v1/decide", s.handleDecide)
	s.mux.HandleFunc("GET /v1/decide", s.handleDecideQuery)
	s.mux.HandleFunc("POST /v1/decide/batch", s.handleDecideBatch)
	s.mux.HandleFunc("POST /v1/plan", s.handlePlan)
	s.mux.HandleFunc("POST /v1/data/{path...}", s.handleData)
	s.mux.HandleFunc("GET /v1/data/{path...}", s.handleData)
	// The whole data document, as OPA answers it (no redirect to /v1/data/).
	s.mux.HandleFunc("POST /v1/data", s.handleData)
	s.mux.HandleFunc("GET /v1/data", s.handleData)
	s.mux.HandleFunc("POST /v1/compile/{path...}", s.handleCompile)
	s.mux.HandleFunc("GET /v1/authz", s.handleAuthz)
	// OPA's default decision and EOPA's batch Data API (opa_default.go,
	// opa_batch.go), and JSON errors for whatever no route takes.
	s.mux.HandleFunc("POST /{$}", s.handleDefaultDecision)
	s.mux.HandleFunc("POST /v1/batch/data/{path...}", s.handleBatchData)
	s.mux.HandleFunc(unroutedPattern, s.handleUnrouted)
	s.mux.HandleFunc("GET /health", s.handleHealth)
	s.mux.HandleFunc("GET /health/ready", s.handleReady)
	s.mux.HandleFunc("GET /v1/status", s.handleStatus)
	s.mux.HandleFunc("GET /v1/processors", s.handleProcessors)
	s.registerRuntime()
	s.registerAccess()
	if opts.Telemetry != nil {
		s.mux.Handle("GET /metrics", opts.Telemetry.MetricsHandler())
	}
	var h http.Handler = s.mux
	if opts.Admission != nil {
		s.limiter = newDecisionLimiter(opts.Admission, opts.MaxBodyBytes, s.mux)
		h = s.limiter
	}
	s.handler = withTelemetry(opts.Telemetry, h)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			s.opts.Log.Error("handler panic", "path", r.URL.Path, "panic", v)
			writeError(w, http.StatusInternalServerError, "internal", "", "internal error")
		}
	}()
	s.handler.ServeHTTP(w, r)
}

// ErrorBody is the JSON body of every non-decision error answer.
type ErrorBody struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, field, msg string) {
	writeJSON(w, status, ErrorBody{Code: code, Field: field, Message: msg})
}

// writeJSON answers v as JSON. Answers are read by people and programs,
// not put into HTML: "<token>" stays "<token>", not "\u003ctoken\u003e".
func writeJSON(w http.ResponseWriter, status int, v any) {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		body.Reset()
		body.WriteString(`{"code":"internal","message":"could not encode the answer"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body.Bytes())
}

// decodeJSON reads a JSON body strictly into v. On failure it answers 400
// (naming the field) or 413, and returns false.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	buf := s.bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer s.bufPool.Put(buf)
	if !s.readBody(w, r, buf) {
		return false
	}
	if err := decodeStrict(buf.Bytes(), v, true); err != nil {
		field, msg := describeJSONError(err)
		writeError(w, http.StatusBadRequest, "invalid_request", field, msg)
		return false
	}
	return true
}

// readBody reads the request body into buf. On failure it answers 413
// (too large) or 400 and returns false.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) bool {
	return readBounded(w, r, buf, s.opts.MaxBodyBytes)
}

// readBounded reads the request body, at most max bytes, into buf. On
// failure it answers 413 (too large), 503 (the decision bodies' memory
// budget is spent, see decisionLimiter) or 400, and returns false.
func readBounded(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer, max int64) bool {
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, max)); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large",
				"", fmt.Sprintf("the request body exceeds %d bytes", tooBig.Limit))
		case errors.Is(err, errBodyBudget):
			writeOverloaded(w, err.Error()+"; retry shortly")
		default:
			writeError(w, http.StatusBadRequest, "invalid_request", "", "could not read the request body: "+err.Error())
		}
		return false
	}
	return true
}

// errTrailingData is a body with more than one JSON value.
var errTrailingData = errors.New("the body holds more than one JSON value")

// decodeStrict decodes exactly one JSON value, numbers as json.Number. A
// key written twice in an object is refused, and when strict so is a key
// that v's type does not declare with exactly that case (encoding/json
// alone would let the last duplicate win and fill Member from "MEMBER"):
// what verdict reads must be what any other reader of the body reads.
func decodeStrict(body []byte, v any, strict bool) error {
	if err := checkDepth(body, MaxJSONDepth); err != nil {
		return err
	}
	var shape *jsonkeys.Shape
	if strict {
		shape = jsonkeys.ShapeOf(reflect.TypeOf(v))
	}
	if p := jsonkeys.Check(body, shape); p != nil {
		return p
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if strict {
		dec.DisallowUnknownFields()
	}
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			// The decoder's Field has no list indices; the path does.
			return &fieldTypeError{field: jsonkeys.PathAt(body, max(typeErr.Offset-1, 0)), err: typeErr}
		}
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errTrailingData
	}
	return nil
}

// fieldTypeError is a value of the wrong JSON type, with the path of its
// field (e.g. items[1].resource.frn).
type fieldTypeError struct {
	field string
	err   *json.UnmarshalTypeError
}

func (e *fieldTypeError) Error() string {
	return fmt.Sprintf("%s: expected %s, got JSON %s", e.field, jsonTypeName(e.err.Type.String()), e.err.Value)
}

func (e *fieldTypeError) Unwrap() error { return e.err }

// describeJSONError names the field a JSON decoding error is about.
func describeJSONError(err error) (field, msg string) {
	var typeErr *fieldTypeError
	var keyErr *jsonkeys.Problem
	var syntaxErr *json.SyntaxError
	var depthErr *DepthError
	switch {
	case errors.As(err, &depthErr):
		return depthErr.Field, depthErr.Error()
	case errors.As(err, &keyErr):
		return keyErr.Path, keyErr.Error()
	case errors.As(err, &typeErr):
		return typeErr.field, typeErr.Error()
	case errors.As(err, &syntaxErr):
		return "", fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, err)
	case errors.Is(err, io.EOF):
		return "", "the request body is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "", "the request body is truncated JSON"
	case errors.Is(err, errTrailingData):
		return "", err.Error()
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field = strings.Trim(name, `"`)
		return field, fmt.Sprintf("unknown field %s", name)
	}
	return "", err.Error()
}

func jsonTypeName(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "*") || strings.Contains(goType, "."):
		return "an object"
	}
	return goType
}

func (s *Server) handleDecide(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery != "" {
		s.handleDecideQuery(w, r) // explain=full (explain.go)
		return
	}
	buf := s.bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer s.bufPool.Put(buf)
	if !s.readBody(w, r, buf) {
		return
	}
	s.answerDecision(w, r, buf)
}

// answerDecision decides the decision request in buf (a body read whole)
// and answers the decision, reusing buf for the answer.
func (s *Server) answerDecision(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) {
	d, err := s.engine.DecideJSON(r.Context(), buf.Bytes(), parseDecideBody)
	var jsonErr *bodyError
	switch {
	case errors.As(err, &jsonErr):
		field, msg := describeJSONError(jsonErr.err)
		writeError(w, http.StatusBadRequest, "invalid_request", field, msg)
		return
	case err != nil:
		s.writeDecideError(w, err)
		return
	}
	// The body has been read and parsed: its buffer now holds the answer
	// (and grows to it, which the pool keeps for the next one).
	buf.Reset()
	out, err := d.AppendJSON(buf.AvailableBuffer())
	if err != nil {
		writeJSON(w, http.StatusOK, d) // reports the encoding failure
		return
	}
	buf.Write(append(out, '\n'))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}

// bodyError is a request body that is not one well-formed JSON request.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// parseDecideBody decodes a POST /v1/decide body strictly.
func parseDecideBody(body []byte) (*decision.Request, error) {
	req := new(decision.Request)
	if err := decodeStrict(body, req, true); err != nil {
		return nil, &bodyError{err}
	}
	return req, nil
}

func (s *Server) handleDecideBatch(w http.ResponseWriter, r *http.Request) {
	var req decision.BatchRequest
	if !s.decodeJSON(w, r, &req) {
		return
	}
	res, err := s.engine.DecideBatch(r.Context(), &req)
	if err != nil {
		s.writeDecideError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// writeDecideError answers a decision call that could not be made: 400 for
// bad input, naming the field.
func (s *Server) writeDecideError(w http.ResponseWriter, err error) {
	var inErr *decision.InputError
	if errors.As(err, &inErr) {
		writeError(w, http.StatusBadRequest, "invalid_request", inErr.Field, inErr.Error())
		return
	}
	writeError(w, http.StatusInternalServerError, "internal", "", err.Error())
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	gen := s.engine.Current()
	if gen == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not_ready", "message": decision.ErrNotReady.Error()})
		return
	}
	if s.bundlesFailing(w) {
		return
	}
	if s.opts.Admission != nil {
		if d, sustained := s.opts.Admission.Overloaded(); sustained {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not_ready",
				"message": fmt.Sprintf("overloaded: decisions have been refused (503 overloaded) for %s without a pause of %s", d.Round(time.Second), admission.Gap)})
			return
		}
	}
	if gen.State.Shared && gen.State.Stale {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{
			"status":         "not_ready",
			"message":        "the run-time state could not be confirmed current within --state-max-staleness (see runtime.fleet in GET /v1/status); consent-based allows are denied",
			"state_revision": gen.State.Revision,
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "generation": gen.Number, "revision": gen.Revisions})
}
