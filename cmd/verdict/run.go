package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/admission"
	"github.com/verdict-authz/verdict/decision/extauthz"
	"github.com/verdict-authz/verdict/decision/httpapi"
	"github.com/verdict-authz/verdict/loader"
)

type runOptions struct {
	cache     decision.CacheOptions
	addr      string
	grpc      grpcOptions
	bundles   []string
	stateDir  string
	logLevel  string
	logFormat string
	live      liveOptions
	authz     authzFlags
	telemetry telemetryOptions
	runtime   runtimeOptions
	stateDB   stateDBOptions
	shadow    shadowOptions
	// maxConcurrent bounds decisions in flight (0: unlimited).
	maxConcurrent int
	// config is where the flags not given on the command line came from.
	config *runConfig
}

func newRunCommand() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Serve decisions over HTTP (the embedded demo bundle when no --bundle is given)",
		Long: "run serves decisions. Every flag may also be given as the environment variable\n" +
			"VERDICT_<FLAG> (upper case, - as _: VERDICT_ADDR, VERDICT_DECISION_CACHE_SIZE) or under\n" +
			"its own name in the YAML file of --config (or VERDICT_CONFIG); a flag wins over the\n" +
			"environment, which wins over the file. `verdict config print` shows the result.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), o)
		},
	}
	registerRunFlags(cmd.Flags(), &o)
	o.config = bindRunConfig(cmd)
	return cmd
}

// registerRunFlags defines verdict run's flags on f. `verdict config print`
// defines the same ones, and the configuration file's keys are their names.
func registerRunFlags(f *pflag.FlagSet, o *runOptions) {
	f.StringVar(&o.addr, "addr", defaultListenAddr, "address to listen on")
	f.StringArrayVar(&o.bundles, "bundle", nil, "bundle directory or .tar.gz, as PATH or NAME=PATH (repeatable)")
	f.StringVar(&o.stateDir, "state-dir", "", "directory for state that must survive a restart (created if missing)")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	o.authz.register(f)
	o.grpc.register(f)
	f.IntVar(&o.cache.Size, "decision-cache-size", 0, "remember up to this many recent decisions per bundle generation (0: off); any change empties it")
	f.DurationVar(&o.cache.TTL, "decision-cache-ttl", time.Second, "with the decision cache, reuse a decision at most this long (bounds staleness of time-based rules; never past the expiry of a key it read)")
	f.Int64Var(&o.cache.MaxBytes, "decision-cache-max-bytes", decision.DefaultCacheMaxBytes, "with the decision cache, bound the memory its entries take, in bytes (a request over 16 KiB is never cached)")
	f.IntVar(&o.maxConcurrent, "max-concurrent-decisions", 64, "answer 503 (overloaded, Retry-After: 1) to decision requests beyond this many in flight, HTTP and ext_authz checks together (0: unlimited)")
	addLiveFlags(f, &o.live)
	addTelemetryFlags(f, &o.telemetry)
	addRuntimeFlags(f, &o.runtime)
	addFleetFlags(f, &o.stateDB)
	addShadowFlags(f, &o.shadow)
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is neither text nor json", format)
}

func run(ctx context.Context, o runOptions) error {
	// SIGHUP reopens the decision log (logrotate); from the start on it
	// never ends the process, which is its default.
	hangups := make(chan os.Signal, 1)
	signal.Notify(hangups, syscall.SIGHUP)
	defer signal.Stop(hangups)
	log, err := newLogger(o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	o.config.log(log)
	gogc, source := setCollectorTarget(os.Getenv)
	log.Info("collector target", "GOGC", gogc, "source", source)
	if o.cache.MaxBytes <= 0 {
		return fmt.Errorf("--decision-cache-max-bytes: must be a positive number of bytes, got %d", o.cache.MaxBytes)
	}
	if o.stateDir != "" {
		if err := prepareStateDir(o.stateDir); err != nil {
			return err
		}
	}
	sources, err := bundleSources(o.bundles)
	if err != nil {
		return fmt.Errorf("--bundle: %w", err)
	}
	tel, decisionLog, closeTelemetry, err := setupTelemetry(ctx, o.telemetry, log)
	if err != nil {
		return err
	}
	defer closeTelemetry()
	hupCtx, stopHangups := context.WithCancel(ctx)
	defer stopHangups()
	go reopenOnHangup(hupCtx, hangups, tel, decisionLog, log)
	if dsn, _ := o.stateDB.resolveDSN(); dsn != "" && len(o.shadow.candidates) > 0 {
		// The candidate restores run-time state from --state-dir alone.
		return errors.New("--candidate cannot be used with --state-db yet: the candidate would not see the fleet's run-time state")
	}
	cand, err := newCandidate(o.shadow, sources, log)
	if err != nil {
		return err
	}
	var observer decision.Observer = tel
	if cand != nil {
		if err := tel.Metrics().Register(cand.shadow.Collectors()...); err != nil {
			return err
		}
		observer = observers{tel, cand.shadow}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			cand.close(ctx)
		}()
	}
	engine := decision.NewEngine(log, decision.WithObserver(observer), decision.WithDecisionCache(o.cache))
	tel.TrackEngine(engine)
	ld, err := loader.New(engine, log)
	if err != nil {
		return err
	}
	releaser := newMemoryReleaser(ctx, time.Second, nil)
	ld.Pipeline().RegisterAsync(telemetryProcessor{tel}, releaser)
	start := time.Now()
	defer ld.Close()
	adminToken, err := setupRuntime(ctx, ld, o.stateDir, o.stateDB, o.runtime, log)
	if err != nil {
		return err
	}
	if ld.FleetStatus() != nil {
		registerFleetMetrics(tel.Metrics().Registry(), ld)
	}
	revisions, err := loadBundles(ctx, ld, sources, o, log)
	if err != nil {
		return fmt.Errorf("load bundles:\n%w", err)
	}
	var loadedGen uint64
	if gen := engine.Current(); gen != nil {
		loadedGen = gen.Number
	}
	releaser.arm(loadedGen)
	loaded := 0
	for _, src := range sources {
		rev, ok := revisions[src.Name]
		if !ok {
			// --watch started without it; its error is logged and in
			// GET /v1/status, and it loads once it is fixed.
			log.Warn("bundle not loaded yet", "bundle", src.Name, "source", src.Location)
			continue
		}
		loaded++
		log.Info("bundle loaded", "bundle", src.Name, "source", src.Location, "revision", rev)
	}
	log.Info("bundles loaded", "count", loaded, "of", len(sources), "duration", time.Since(start))
	var shadowStatus httpapi.ShadowStatus
	if cand != nil {
		if err := cand.start(ctx, ld, o.stateDir, o, log); err != nil {
			return err
		}
		shadowStatus = cand
	}

	authzOpts, err := o.authz.options(log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	grpcLn, err := o.grpc.listen()
	if err != nil {
		ln.Close()
		return err
	}
	// One pool of evaluation slots for both doors (HTTP and ext_authz).
	var slots *admission.Limiter
	if o.maxConcurrent > 0 {
		slots = admission.New(o.maxConcurrent)
	}
	srv := newHTTPServer(httpapi.New(engine, httpapi.Options{Log: log, Bundles: ld, Authz: authzOpts, Telemetry: tel, Runtime: ld, AdminToken: adminToken, Admission: slots, Shadow: shadowStatus}))
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("verdict is serving", "addr", ln.Addr().String())
	// The ext_authz server stops with serveCtx: when verdict is told to
	// stop, or when the HTTP server fails. grpcDone stays nil without it.
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	var grpcDone chan error
	if grpcLn != nil {
		grpcDone = make(chan error, 1)
		ext := extauthz.New(engine, extauthz.Options{
			Identity: authzOpts, ActionHeader: o.grpc.actionHeader, Bundles: ld,
			Admission: slots, Propagator: tel.Propagator(), Log: log,
		})
		go func() { grpcDone <- ext.Serve(serveCtx, grpcLn) }()
		log.Info("verdict is serving Envoy ext_authz over gRPC", "grpc_addr", grpcLn.Addr().String())
	}
	select {
	case err := <-errc:
		stopServing()
		if grpcDone != nil {
			<-grpcDone
		}
		return fmt.Errorf("serve: %w", err)
	case err := <-grpcDone:
		// Serve returns before serveCtx ends only when it fails.
		srv.Close()
		return fmt.Errorf("--grpc-addr: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopServing()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	if grpcDone != nil {
		return <-grpcDone
	}
	return nil
}
