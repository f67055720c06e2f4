package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// The environment variables that decide whether and how spans are exported.
// The OTLP exporters themselves read the rest of OTEL_EXPORTER_OTLP_*
// (headers, timeout, compression, certificates), the SDK reads
// OTEL_TRACES_SAMPLER(_ARG) and OTEL_BSP_*, and the resource reads
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
const (
	envSDKDisabled       = "OTEL_SDK_DISABLED"
	envTracesExporter    = "OTEL_TRACES_EXPORTER"
	envEndpoint          = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint    = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envProtocol          = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol    = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	protocolGRPC         = "grpc"
	protocolHTTPProtobuf = "http/protobuf"
	defaultServiceName   = "verdict"
	instrumentationScope = "github.com/verdict-authz/verdict"
	exporterOTLP         = "otlp"
	exportNone           = "none"
)

// TracingConfig is what the environment asked for, as New understood it.
type TracingConfig struct {
	// Enabled is true when spans are exported.
	Enabled bool
	// Protocol is "grpc" or "http/protobuf" when Enabled.
	Protocol string
	// Endpoint is the configured OTLP endpoint ("" = the exporter's default).
	Endpoint string
}

func (c TracingConfig) String() string {
	if !c.Enabled {
		return "off"
	}
	ep := c.Endpoint
	if ep == "" {
		ep = "(default endpoint)"
	}
	return "otlp " + c.Protocol + " " + ep
}

// TracingConfigFromEnv decides from the standard OpenTelemetry variables
// whether spans are exported and over which protocol:
//
//   - OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none: off;
//   - OTEL_TRACES_EXPORTER=otlp: on, even without an endpoint (the
//     exporter's default, localhost:4318 or :4317);
//   - OTEL_TRACES_EXPORTER unset: on when OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, else off (a no-op tracer);
//   - the protocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else
//     OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf; grpc and
//     http/protobuf are supported.
//
// getenv is os.Getenv when nil.
func TracingConfigFromEnv(getenv func(string) string) (TracingConfig, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var c TracingConfig
	if strings.EqualFold(strings.TrimSpace(getenv(envSDKDisabled)), "true") {
		return c, nil
	}
	c.Endpoint = strings.TrimSpace(getenv(envTracesEndpoint))
	if c.Endpoint == "" {
		c.Endpoint = strings.TrimSpace(getenv(envEndpoint))
	}
	switch exp := strings.ToLower(strings.TrimSpace(getenv(envTracesExporter))); exp {
	case "":
		c.Enabled = c.Endpoint != ""
	case exportNone:
		return TracingConfig{}, nil
	case exporterOTLP:
		c.Enabled = true
	default:
		// A list such as "otlp,console": use otlp when it is named.
		for _, e := range strings.Split(exp, ",") {
			switch strings.TrimSpace(e) {
			case exporterOTLP:
				c.Enabled = true
			case exportNone:
			default:
				return TracingConfig{}, fmt.Errorf("%s=%q: only otlp and none are supported", envTracesExporter, exp)
			}
		}
	}
	if !c.Enabled {
		return TracingConfig{}, nil
	}
	c.Protocol = strings.ToLower(strings.TrimSpace(getenv(envTracesProtocol)))
	if c.Protocol == "" {
		c.Protocol = strings.ToLower(strings.TrimSpace(getenv(envProtocol)))
	}
	if c.Protocol == "" {
		c.Protocol = protocolHTTPProtobuf
	}
	if c.Protocol != protocolGRPC && c.Protocol != protocolHTTPProtobuf {
		return TracingConfig{}, fmt.Errorf("OTLP protocol %q: use grpc or http/protobuf", c.Protocol)
	}
	return c, nil
}

// newTracerProvider builds the SDK tracer provider for c: an OTLP exporter
// behind a batcher (batcher.go, configured by OTEL_BSP_*), the sampler from OTEL_TRACES_SAMPLER
// (parent-based always-on by default) and a resource with service.name
// "verdict" unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say
// otherwise. When c is not Enabled it returns a no-op provider.
func newTracerProvider(ctx context.Context, c TracingConfig, getenv func(string) string, serviceVersion string) (trace.TracerProvider, *batcher, func(context.Context) error, error) {
	if !c.Enabled {
		return noop.NewTracerProvider(), nil, func(context.Context) error { return nil }, nil
	}
	var exp sdktrace.SpanExporter
	var err error
	switch c.Protocol {
	case protocolGRPC:
		exp, err = otlptracegrpc.New(ctx)
	default:
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("create OTLP %s trace exporter: %w", c.Protocol, err)
	}
	res, err := newResource(ctx, serviceVersion)
	if err != nil {
		return nil, nil, nil, err
	}
	b, err := newBatcher(exp, getenv)
	if err != nil {
		return nil, nil, nil, err
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(b),
		sdktrace.WithResource(res),
	)
	return tp, b, tp.Shutdown, nil
}

// newResource describes this process: service.name (default "verdict",
// overridden by OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES),
// service.version, the SDK, host and process.
func newResource(ctx context.Context, serviceVersion string) (*resource.Resource, error) {
	base := []attribute.KeyValue{semconv.ServiceName(defaultServiceName)}
	if serviceVersion != "" {
		base = append(base, semconv.ServiceVersion(serviceVersion))
	}
	fromEnv, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
		resource.WithProcessRuntimeName(),
		resource.WithProcessRuntimeVersion(),
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("build the OpenTelemetry resource: %w", err)
	}
	res, err := resource.Merge(resource.NewWithAttributes(semconv.SchemaURL, base...), fromEnv)
	if err != nil {
		// Only a schema URL conflict gets here; keep the environment's view.
		return fromEnv, nil
	}
	return res, nil
}
