package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"

	"github.com/spf13/pflag"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/shadow"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/state"
)

// shadowOptions are the flags of the shadow candidate.
type shadowOptions struct {
	candidates []string
	sample     float64
	log        string
	queue      int
}

func addShadowFlags(f *pflag.FlagSet, o *shadowOptions) {
	f.StringArrayVar(&o.candidates, "candidate", nil, "load a candidate version of bundle NAME (NAME=PATH, repeatable) beside the live one: validated and compiled like a reload, never answering; a sample of live decisions is decided again against it (watched with --watch)")
	f.Float64Var(&o.sample, "shadow-sample", 1.0, "with --candidate, the share of live decisions decided again against the candidate (0 to 1)")
	f.StringVar(&o.log, "shadow-log", "", "with --candidate, append one JSON line per decision the candidate answers differently to this file (- for stdout)")
	f.IntVar(&o.queue, "shadow-queue", shadow.DefaultQueue, "with --candidate, how many live decisions may wait to be decided again; beyond it they are dropped and counted")
}

// candidate is the shadow candidate: the live bundles with each candidate
// in place of the bundle of its name, in a loader and engine of their own.
type candidate struct {
	names   []string // the candidate bundles' names
	sources []loader.Source
	engine  *decision.Engine
	ld      *loader.Loader
	shadow  *shadow.Shadow
	logFile io.Closer
}

// newCandidate prepares the candidate of --candidate (nil without it): its
// sources, loader, engine and shadow. Nothing is loaded yet (see start).
func newCandidate(o shadowOptions, live []loader.Source, log *slog.Logger) (*candidate, error) {
	if len(o.candidates) == 0 {
		if o.log != "" {
			return nil, errors.New("--shadow-log needs --candidate")
		}
		return nil, nil
	}
	if o.sample < 0 || o.sample > 1 {
		return nil, fmt.Errorf("--shadow-sample %v: must be between 0 and 1", o.sample)
	}
	sources, err := candidateSources(live, o.candidates)
	if err != nil {
		return nil, err
	}
	c := &candidate{sources: sources}
	for _, a := range o.candidates {
		src, _ := loader.ParseSource(a)
		if src.IsRemote() {
			return nil, fmt.Errorf("--candidate %s: a candidate is a local directory or .tar.gz", a)
		}
	}
	for i, src := range sources {
		if src.IsRemote() {
			return nil, fmt.Errorf("--candidate: bundle %s is remote (%s); a candidate can only be shadowed beside local bundles", src.Name, src.Location)
		}
		// candidateSources replaces bundles in place and appends new ones.
		if i >= len(live) || src.Location != live[i].Location || (src.FS != nil) != (live[i].FS != nil) {
			c.names = append(c.names, src.Name)
		}
	}
	var logW io.Writer
	switch o.log {
	case "":
	case "-":
		logW = os.Stdout
	default:
		f, err := os.OpenFile(o.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("--shadow-log: %w", err)
		}
		logW, c.logFile = f, f
	}
	clog := log.With("candidate", true)
	c.engine = decision.NewEngine(clog)
	if c.ld, err = loader.New(c.engine, clog); err != nil {
		return nil, err
	}
	c.shadow = shadow.New(c, shadow.Options{Sample: o.sample, Queue: o.queue, Log: logW, Logger: clog})
	return c, nil
}

// start restores the live state directory's run-time changes into the
// candidate (read only), loads the candidate bundles — a candidate that
// fails is reported in status and never shadows, it does not stop verdict —
// watches them with --watch, forwards the run-time changes the live loader
// commits from now on, and starts shadowing.
func (c *candidate) start(ctx context.Context, live *loader.Loader, stateDir string, o runOptions, log *slog.Logger) error {
	if stateDir != "" {
		contents, err := state.Read(stateDir)
		if err != nil {
			return fmt.Errorf("--candidate: read --state-dir: %w", err)
		}
		if _, err := c.ld.RestoreState(ctx, stateDir, contents); err != nil {
			return fmt.Errorf("--candidate: restore --state-dir: %w", err)
		}
	}
	live.Pipeline().RegisterAsync(forwardProcessor{to: c.ld, log: log})
	if o.live.watch {
		w, err := loader.NewWatcher(c.ld, c.sources, loader.WatchOptions{Debounce: o.live.debounce, Log: log.With("candidate", true)})
		if err != nil {
			return fmt.Errorf("--candidate: %w", err)
		}
		go func() {
			if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("candidate watcher stopped", "error", err)
			}
		}()
	}
	gen, err := c.ld.LoadAvailable(ctx, c.sources)
	if err != nil {
		log.Error("the candidate could not be loaded: it does not shadow until it is fixed (see GET /v1/status)", "candidate", c.names, "error", err)
	}
	if gen != nil {
		log.Info("candidate loaded: shadowing live decisions", "candidate", c.names, "revision", gen.Revisions)
	}
	go c.shadow.Run(ctx)
	return nil
}

// Pin is the candidate's generation, or nil while it must not shadow: not
// loaded, or the newest version of a candidate bundle was rejected.
func (c *candidate) Pin() *decision.Pinned {
	if slices.ContainsFunc(c.ld.Status().Failing, func(name string) bool { return slices.Contains(c.names, name) }) {
		return nil
	}
	p, err := c.engine.Pin()
	if err != nil {
		return nil
	}
	return p
}

// candidateStatus is the "shadow" part of GET /v1/status.
type candidateStatus struct {
	// Shadowing: the candidate is loaded and valid, and shadows.
	Shadowing bool `json:"shadowing"`
	// Bundles are the candidate bundles' status: source, state, revision,
	// last error.
	Bundles []loader.BundleStatus `json:"bundles"`
	shadow.Status
}

// ShadowStatus reports the candidate for GET /v1/status.
func (c *candidate) ShadowStatus() any {
	st := c.ld.Status()
	out := candidateStatus{Shadowing: c.Pin() != nil, Bundles: []loader.BundleStatus{}, Status: c.shadow.Status()}
	for _, b := range st.Bundles {
		if slices.Contains(c.names, b.Name) {
			out.Bundles = append(out.Bundles, b)
		}
	}
	return out
}

// close shadows what is queued and closes the candidate's loader and log.
func (c *candidate) close(ctx context.Context) {
	c.shadow.Close(ctx)
	c.ld.Close()
	if c.logFile != nil {
		c.logFile.Close()
	}
}

// forwardProcessor hands the candidate every run-time change (service
// registration, delegation request or consent) the live loader commits,
// so that the candidate decides on the same run-time facts.
type forwardProcessor struct {
	to  *loader.Loader
	log *slog.Logger
}

func (forwardProcessor) Name() string { return "shadow-candidate" }
func (forwardProcessor) Order() int   { return 400 }
func (forwardProcessor) Description() string {
	return "hands each committed run-time change (registration, delegation request, consent) to the --candidate loader"
}

func (p forwardProcessor) Notify(ctx context.Context, ev *loader.Event) {
	if ev.Err != nil {
		return
	}
	var err error
	switch {
	case ev.Service != nil:
		_, _, err = p.to.RegisterService(ctx, ev.Service.Name, ev.Service.Document)
	case ev.Delegation != nil && ev.Delegation.Consent:
		d := ev.Delegation
		_, err = p.to.SetConsent(ctx, d.Tenant, d.Application, d.Group, d.Member, d.Enabled)
	case ev.Delegation != nil:
		d := ev.Delegation
		_, err = p.to.RequestDelegation(ctx, d.Tenant, d.Application, d.Group, d.Operations)
	}
	if err != nil {
		p.log.Warn("the candidate rejected a run-time change the live version took", "change", ev.Subject.String(), "error", err)
	}
}

// observers reports each decision to several observers in turn.
type observers []decision.Observer

func (os observers) ObserveDecision(ctx context.Context, req *decision.Request, d *decision.Decision, info decision.DecisionInfo) {
	for _, o := range os {
		o.ObserveDecision(ctx, req, d, info)
	}
}
