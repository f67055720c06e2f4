package httpapi

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/verdict-authz/verdict/decision/telemetry"
)

// untracedPaths get no HTTP server span of their own: a single decision's
// span (verdict.decide, recorded by the engine's observer) stands for the
// request, and health checks and scrapes would only add noise.
var untracedPaths = map[string]bool{
	"/v1/decide":    true,
	"/v1/authz":     true, // nginx auth_request: one decision per request
	"/health":       true,
	"/health/ready": true,
	"/metrics":      true,
}

// withTelemetry wraps h so that a caller's W3C trace context (traceparent,
// tracestate) becomes the parent of whatever verdict records for the
// request, and, when tracing is on, every request other than those in
// untracedPaths gets a server span named after its route ("PUT
// /v1/services/{name}") with the HTTP semantic-convention attributes. With
// no Telemetry, h is returned as is.
func withTelemetry(t *telemetry.Telemetry, h http.Handler) http.Handler {
	if t == nil {
		return h
	}
	prop := t.Propagator()
	tracer := t.Tracer()
	tracing := t.TracingEnabled()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Traceparent") != "" {
			// Kept even when tracing is off: the decision log records the
			// caller's trace id.
			r = r.WithContext(prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
		}
		if !tracing || untracedPaths[r.URL.Path] {
			h.ServeHTTP(w, r)
			return
		}
		attrs := make([]attribute.KeyValue, 0, 8)
		attrs = append(attrs,
			semconv.HTTPRequestMethodKey.String(r.Method),
			semconv.URLPath(r.URL.Path),
			semconv.URLScheme("http"),
		)
		if host, port, err := net.SplitHostPort(r.Host); err == nil {
			attrs = append(attrs, semconv.ServerAddress(host))
			if p, err := strconv.Atoi(port); err == nil {
				attrs = append(attrs, semconv.ServerPort(p))
			}
		}
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			attrs = append(attrs, semconv.ClientAddress(host))
		}
		if ua := r.UserAgent(); ua != "" {
			attrs = append(attrs, semconv.UserAgentOriginal(ua))
		}
		ctx, span := tracer.Start(r.Context(), r.Method,
			trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
		defer span.End()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		r = r.WithContext(ctx)
		h.ServeHTTP(rec, r)
		// The mux has set the pattern that matched by now.
		if route := routeOf(r.Pattern); route != "" {
			span.SetName(r.Method + " " + route)
			span.SetAttributes(semconv.HTTPRoute(route))
		}
		span.SetAttributes(semconv.HTTPResponseStatusCode(rec.status))
		if rec.status >= 500 {
			span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(rec.status)))
			span.SetStatus(codes.Error, http.StatusText(rec.status))
		}
	})
}

// routeOf turns a ServeMux pattern ("PUT /v1/services/{name}") into an
// http.route ("/v1/services/{name}").
func routeOf(pattern string) string {
	if i := strings.IndexByte(pattern, '/'); i >= 0 {
		return pattern[i:]
	}
	return ""
}

// statusRecorder remembers the status code a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wroteHeader {
		s.status, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	s.wroteHeader = true
	return s.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
