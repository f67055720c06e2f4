// Package extauthz serves Envoy's external authorization API over gRPC
// (envoy.service.auth.v3.Authorization/Check) and the gRPC health service.
// A CheckRequest becomes a decision request the way GET /v1/authz builds one
// (the caller is read by package proxyauth under the same options); the
// decision's verdict becomes an OK or a denied CheckResponse. Every error is a
// denied CheckResponse, never an RPC error, so that Envoy's
// failure_mode_allow cannot turn a verdict-side failure into an allow.
package extauthz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"go.opentelemetry.io/otel/propagation"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/admission"
	"github.com/verdict-authz/verdict/decision/proxyauth"
	"github.com/verdict-authz/verdict/loader"
)

// Headers verdict sets on the request Envoy passes to the upstream (an
// allow) or on the answer to the client (a deny). gRPC metadata and
// Envoy's header maps are lower case.
const (
	HeaderDecisionID = "x-verdict-decision-id"
	HeaderReason     = "x-verdict-reason"
)

// ReasonRequestInvalid is the x-verdict-reason of a path verdict refuses to
// translate (route.CanonicalPath: an encoded separator or dot, a dot
// segment, a backslash, a control byte), as GET /v1/authz names it.
const ReasonRequestInvalid = "request.invalid"

// Per-route settings read from the CheckRequest's context_extensions
// (Envoy: ExtAuthzPerRoute.check_settings.context_extensions).
const (
	// ExtensionService names the service whose routes apply, instead of
	// the service header.
	ExtensionService = "service"
	// ExtensionTenant is the route's tenant, as --authz-tenant is for every
	// request: the tenant header is not read and a key must belong to it.
	ExtensionTenant = "tenant"
)

// BundleStatus reports the loaded bundles; the loader implements it. The
// health service answers NOT_SERVING while the newest version of a bundle
// is rejected, as GET /health/ready answers 503.
type BundleStatus interface {
	Status() loader.Status
}

// Options configures the ext_authz server.
type Options struct {
	// Identity says which headers (or bearer JWT) name the caller: the
	// same options as GET /v1/authz.
	Identity proxyauth.Options
	// ActionHeader, when set, is a header carrying the decided action
	// (finmars:Portfolio:retrieve) to the upstream on an allow.
	ActionHeader string
	// Bundles, when set, makes the health service report rejected
	// bundles as NOT_SERVING.
	Bundles BundleStatus
	// Admission, when set, bounds the checks evaluating at once: the
	// limiter of --max-concurrent-decisions, shared with the HTTP API's
	// decision endpoints (one pool of slots for both doors). A check that
	// finds no slot within admission.Wait is denied 503 (UNAVAILABLE), and
	// sustained refusals make the health service NOT_SERVING, as they make
	// GET /health/ready 503.
	Admission *admission.Limiter
	// Propagator, when set, reads the client's W3C trace context from the
	// checked request's headers, so the decision joins the client's trace.
	Propagator propagation.TextMapPropagator
	Log        *slog.Logger
	// HealthInterval is how often the health status is brought in step
	// with readiness (1 s when 0).
	HealthInterval time.Duration
	// ShutdownGrace bounds how long Serve waits for in-flight checks when
	// its context ends (10 s when 0); then the connections are closed.
	ShutdownGrace time.Duration
}

// Server answers Envoy's Check calls with decisions of one engine.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	engine *decision.Engine
	opts   Options
	id     *proxyauth.Identifier
	health *health.Server
}

// New returns an ext_authz server over engine.
func New(engine *decision.Engine, opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.HealthInterval <= 0 {
		opts.HealthInterval = time.Second
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 10 * time.Second
	}
	opts.ActionHeader = strings.ToLower(opts.ActionHeader)
	s := &Server{engine: engine, opts: opts, id: proxyauth.NewIdentifier(opts.Identity), health: health.NewServer()}
	s.refreshHealth()
	return s
}

// Serve answers Check and health calls on ln until ctx ends; then the
// health service says NOT_SERVING, in-flight checks finish (within
// ShutdownGrace) and Serve returns nil. It returns the error that stopped
// serving otherwise.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	g := grpc.NewServer()
	authv3.RegisterAuthorizationServer(g, s)
	healthpb.RegisterHealthServer(g, s.health)
	// Reflection lets grpcurl and similar tools call Check without the
	// .proto files.
	reflection.Register(g)
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(ln) }()
	tick := time.NewTicker(s.opts.HealthInterval)
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			s.health.Shutdown()
			return fmt.Errorf("grpc: %w", err)
		case <-tick.C:
			s.refreshHealth()
		case <-ctx.Done():
			s.health.Shutdown()
			stopped := make(chan struct{})
			go func() { g.GracefulStop(); close(stopped) }()
			select {
			case <-stopped:
			case <-time.After(s.opts.ShutdownGrace):
				g.Stop()
				<-stopped
			}
			<-errc
			return nil
		}
	}
}

// refreshHealth sets the health status of the server ("") and of the
// Authorization service: SERVING when decisions can be made and no bundle's
// newest version is rejected.
func (s *Server) refreshHealth() {
	status := healthpb.HealthCheckResponse_SERVING
	if !s.ready() {
		status = healthpb.HealthCheckResponse_NOT_SERVING
	}
	s.health.SetServingStatus("", status)
	s.health.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, status)
}

func (s *Server) ready() bool {
	if s.engine.Current() == nil {
		return false
	}
	if s.opts.Admission != nil {
		if _, sustained := s.opts.Admission.Overloaded(); sustained {
			return false
		}
	}
	return s.opts.Bundles == nil || len(s.opts.Bundles.Status().Failing) == 0
}

// Check answers one ext_authz call. The error is always nil: every failure
// is a denied CheckResponse.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (resp *authv3.CheckResponse, _ error) {
	defer func() {
		if v := recover(); v != nil {
			s.opts.Log.Error("ext_authz check panic", "panic", v)
			resp = refusal(http.StatusInternalServerError, "internal", "", "internal error")
		}
	}()
	if s.opts.Admission != nil {
		if err := s.opts.Admission.Acquire(ctx); err != nil {
			return s.overloaded(err), nil
		}
		defer s.opts.Admission.Release()
	}
	return s.check(ctx, req), nil
}

// overloaded denies a check that got no evaluation slot: 503 with
// Retry-After, UNAVAILABLE as the gRPC status of the CheckResponse (never
// an RPC error, which failure_mode_allow could turn into an allow). err is
// admission.ErrOverloaded, or the check's context error when Envoy gave up
// first.
func (s *Server) overloaded(err error) *authv3.CheckResponse {
	msg := s.opts.Admission.Message()
	if !errors.Is(err, admission.ErrOverloaded) {
		msg = "the check ended before an evaluation slot freed: " + err.Error()
	}
	r := refusal(http.StatusServiceUnavailable, "overloaded", "", msg)
	denied := r.GetDeniedResponse()
	denied.Headers = append(denied.Headers, header("retry-after", "1"))
	return r
}

func (s *Server) check(ctx context.Context, req *authv3.CheckRequest) *authv3.CheckResponse {
	attrs := req.GetAttributes()
	httpReq := attrs.GetRequest().GetHttp()
	if httpReq == nil {
		return refusal(http.StatusBadRequest, "invalid_request", "attributes.request.http",
			"the check carries no HTTP request (is the ext_authz filter an HTTP filter?)")
	}
	headers, form := headerOf(httpReq)
	if s.opts.Propagator != nil && headers.Get("Traceparent") != "" {
		ctx = s.opts.Propagator.Extract(ctx, propagation.HeaderCarrier(headers))
	}
	if httpReq.GetMethod() == "" {
		return refusal(http.StatusBadRequest, "invalid_request", "attributes.request.http.method", "is required")
	}
	if httpReq.GetPath() == "" {
		return refusal(http.StatusBadRequest, "invalid_request", "attributes.request.http.path", "is required")
	}
	caller, err := s.id.Identify(headers, form)
	var repeatedErr *proxyauth.RepeatedHeaderError
	var headerErr *proxyauth.HeaderError
	var tokenErr *proxyauth.TokenError
	switch {
	case errors.As(err, &repeatedErr):
		// As for a refused path: the client sent it, so the reason says so.
		return requestInvalid(repeatedErr.Header, repeatedErr.Error())
	case errors.As(err, &tokenErr):
		r := refusal(http.StatusUnauthorized, tokenErr.Reason, "Authorization", err.Error())
		denied := r.GetDeniedResponse()
		denied.Headers = append(denied.Headers,
			header(HeaderReason, tokenErr.Reason),
			header("www-authenticate", tokenErr.Challenge()))
		return r
	case errors.As(err, &headerErr):
		return refusal(http.StatusBadRequest, "invalid_request", headerErr.Header, headerErr.Message)
	case err != nil:
		return s.internal(err)
	}
	fromExtension := false
	for _, k := range slices.Sorted(maps.Keys(attrs.GetContextExtensions())) {
		v := attrs.GetContextExtensions()[k]
		switch k {
		case ExtensionService:
			caller.Service = v
		case ExtensionTenant:
			caller.Tenant, fromExtension = v, true
		default:
			// A misspelt setting must not silently widen what a route
			// allows (a service left out searches every service's routes).
			return refusal(http.StatusInternalServerError, "misconfigured", "context_extensions."+k,
				fmt.Sprintf("unknown context extension %q; verdict reads %q and %q", k, ExtensionService, ExtensionTenant))
		}
	}
	if err := s.id.CheckObscuredPath(caller, httpReq.GetPath()); err != nil {
		return requestInvalid("attributes.request.http.path", err.Error())
	}
	dreq := &decision.Request{
		Tenant:  caller.Tenant,
		Key:     caller.Key,
		Member:  caller.Member,
		Request: &decision.HTTPRequest{Method: httpReq.GetMethod(), Path: httpReq.GetPath(), Service: caller.Service},
	}
	if caller.FRN != "" {
		dreq.Resource = &decision.Resource{FRN: caller.FRN}
	}
	ip := caller.IP
	if ip == "" && s.id.Options().IPHeader == "" {
		// Envoy's own view of the downstream peer.
		if addr := attrs.GetSource().GetAddress().GetSocketAddress().GetAddress(); addr != "" {
			if ip, err = proxyauth.ParseIP(addr); err != nil {
				return refusal(http.StatusBadRequest, "invalid_request", "attributes.source.address",
					fmt.Sprintf("the source address %q is not an IP address", addr))
			}
		}
	}
	if ip != "" {
		dreq.Context = map[string]any{"ip": ip}
	}
	d, err := s.engine.Decide(ctx, dreq)
	if err != nil {
		var inErr *decision.InputError
		if !errors.As(err, &inErr) {
			return s.internal(err)
		}
		field := inErr.Field
		switch field {
		case "tenant":
			field = s.id.Options().TenantHeader + " or " + s.id.Options().KeyHeader
			if fromExtension {
				field = "context_extensions." + ExtensionTenant
			}
		case "request.method":
			field = "attributes.request.http.method"
		case "request.path":
			// The client wrote the path (an encoded separator, a dot
			// segment…): a 400 to the client, as the reason says.
			return requestInvalid("attributes.request.http.path", inErr.Message)
		case "resource.frn":
			return requestInvalid(s.id.Options().FRNHeader, inErr.Message)
		case "context.ip":
			field = s.id.Options().IPHeader
			if field == "" {
				field = "attributes.source.address"
			}
		}
		return refusal(http.StatusBadRequest, "invalid_request", field, inErr.Message)
	}
	return s.verdict(d)
}

// verdict turns a decision into Envoy's answer: OK with the decision id
// (and the action, if asked) as upstream headers, or the decision's status
// with the decision as a JSON body.
func (s *Server) verdict(d *decision.Decision) *authv3.CheckResponse {
	meta := &structpb.Struct{Fields: map[string]*structpb.Value{"decision_id": structpb.NewStringValue(d.DecisionID)}}
	if d.Allow {
		upstream := []*corev3.HeaderValueOption{header(HeaderDecisionID, d.DecisionID)}
		if s.opts.ActionHeader != "" && d.Action != "" {
			upstream = append(upstream, header(s.opts.ActionHeader, d.Action))
		}
		return &authv3.CheckResponse{
			Status:          &rpcstatus.Status{Code: int32(codes.OK)},
			HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{Headers: upstream}},
			DynamicMetadata: meta,
		}
	}
	status := d.Status
	if status < 400 {
		// A deny always stops the request, whatever status it names.
		status = http.StatusForbidden
	}
	body, err := json.Marshal(d)
	if err != nil {
		return s.internal(fmt.Errorf("encode decision %s: %w", d.DecisionID, err))
	}
	headers := []*corev3.HeaderValueOption{
		header("content-type", "application/json"),
		header(HeaderDecisionID, d.DecisionID),
	}
	if reason := d.DecidingReason(); reason != "" {
		headers = append(headers, header(HeaderReason, reason))
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(grpcCode(status)), Message: d.DecidingReason()},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(status)},
			Headers: headers,
			Body:    string(append(body, '\n')),
		}},
		DynamicMetadata: meta,
	}
}

// internal is the answer to a check verdict could not decide: a deny.
func (s *Server) internal(err error) *authv3.CheckResponse {
	s.opts.Log.Error("ext_authz check failed", "err", err)
	return refusal(http.StatusInternalServerError, "internal", "", err.Error())
}

// errorBody is the JSON body of a refused check that is not a decision,
// in the shape of the HTTP API's errors.
type errorBody struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// refusal denies a check that could not be decided, with an HTTP status
// and a JSON error body naming the field.
func refusal(status int, code, field, msg string) *authv3.CheckResponse {
	body, _ := json.Marshal(errorBody{Code: code, Field: field, Message: msg}) // strings only: cannot fail
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(grpcCode(status)), Message: msg},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(status)},
			Headers: []*corev3.HeaderValueOption{header("content-type", "application/json")},
			Body:    string(append(body, '\n')),
		}},
	}
}

// requestInvalid denies a check for what the client sent (a path verdict
// refuses to translate, a header naming the caller given twice): 400 with
// x-verdict-reason request.invalid, naming the field.
func requestInvalid(field, msg string) *authv3.CheckResponse {
	r := refusal(http.StatusBadRequest, "invalid_request", field, msg)
	denied := r.GetDeniedResponse()
	denied.Headers = append(denied.Headers, header(HeaderReason, ReasonRequestInvalid))
	return r
}

// grpcCode is the gRPC status of a denied check with this HTTP status.
// Envoy denies on any code but OK; the code tells other gRPC clients why.
func grpcCode(status int) codes.Code {
	switch status {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusInternalServerError:
		return codes.Internal
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	return codes.PermissionDenied
}

// header sets (overwriting, never appending to) one header, so that a value
// a client sent under the same name never reaches the upstream.
func header(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: key, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// headerOf collects the checked request's headers: the headers map, where
// Envoy has joined the copies of a header sent more than once with ",", or,
// when Envoy sends raw headers (encode_raw_headers), the header map, where
// they stay separate values. The form is CommaJoinedHeaders whenever the
// headers map is used.
func headerOf(r *authv3.AttributeContext_HttpRequest) (http.Header, proxyauth.HeaderForm) {
	form := proxyauth.SeparateHeaders
	if len(r.GetHeaders()) > 0 {
		form = proxyauth.CommaJoinedHeaders
	}
	h := make(http.Header, len(r.GetHeaders()))
	for k, v := range r.GetHeaders() {
		h.Add(k, v)
	}
	for _, hv := range r.GetHeaderMap().GetHeaders() {
		v := hv.GetValue()
		if v == "" {
			v = string(hv.GetRawValue())
		}
		h.Add(hv.GetKey(), v)
	}
	return h, form
}
