package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/verdict-authz/verdict/decision"
)

// DefaultDecisionLogBuffer is how many decision log lines may wait to be
// written before new ones are dropped.
const DefaultDecisionLogBuffer = 4096

// MaskedValue replaces a masked value in a decision log line.
const MaskedValue = "***"

// DefaultDecisionLogMask are the masks `verdict run` applies unless told
// not to (besides MaskContextSecrets): the request's key.
var DefaultDecisionLogMask = []string{"/input/key"}

// secretNameParts are the words that make a context key a secret's name
// (compared in lower case, without "-" and "_").
var secretNameParts = []string{"authorization", "apikey", "cookie", "credential", "passphrase", "password", "passwd",
	"privatekey", "secret", "session", "signature", "token"}

// IsSecretName reports whether a context key names a secret: in lower
// case and without "-" and "_", it contains authorization, apikey, cookie,
// credential, passphrase, password, passwd, privatekey, secret, session,
// signature or token ("Authorization", "X-Api-Key", "db_password",
// "refreshToken").
func IsSecretName(key string) bool {
	norm := strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(key))
	for _, part := range secretNameParts {
		if strings.Contains(norm, part) {
			return true
		}
	}
	return false
}

// looksLikeToken reports whether a string is a credential by its shape: a
// "Bearer " or "Basic " authorization value, or a JWT (three base64url
// parts, the first starting with "eyJ", a JSON object's encoding).
func looksLikeToken(s string) bool {
	lower := strings.ToLower(strings.TrimSpace(s))
	if strings.HasPrefix(lower, "bearer ") || strings.HasPrefix(lower, "basic ") {
		return true
	}
	if !strings.HasPrefix(s, "eyJ") || strings.Count(s, ".") != 2 {
		return false
	}
	for _, c := range s {
		if !(c == '.' || c == '-' || c == '_' || c == '=' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// maskSecrets returns a copy of v with the values under secret names and
// the token-shaped strings replaced by MaskedValue (v is left alone). ok is
// false when v holds a value that is not plain JSON.
func maskSecrets(v any) (out any, ok bool) {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, child := range v {
			switch {
			case child == nil:
				m[k] = nil
			case IsSecretName(k):
				m[k] = MaskedValue
			default:
				if m[k], ok = maskSecrets(child); !ok {
					return v, false
				}
			}
		}
		return m, true
	case []any:
		l := make([]any, len(v))
		for i, child := range v {
			if l[i], ok = maskSecrets(child); !ok {
				return v, false
			}
		}
		return l, true
	case string:
		if looksLikeToken(v) {
			return MaskedValue, true
		}
		return v, true
	case nil, bool, float64, json.Number:
		return v, true
	}
	return v, false
}

// DecisionLogOptions configures a DecisionLog.
type DecisionLogOptions struct {
	// Buffer is the number of lines that may wait to be written
	// (DefaultDecisionLogBuffer when 0 or less).
	Buffer int
	// Mask lists JSON pointers (RFC 6901, "*" matching any key or index)
	// into the log line whose values are replaced by MaskedValue, e.g.
	// /input/context/token. They must start with /input, /result, /reasons
	// or /revisions.
	Mask []string
	// MaskContextSecrets masks, anywhere in the request's context, the
	// values under a key that names a secret (see IsSecretName) and every
	// string that is a bearer token or a JWT.
	MaskContextSecrets bool
	// Metrics counts written and dropped lines (optional).
	Metrics *Metrics
	// Log reports write errors (slog.Default when nil).
	Log *slog.Logger
}

// drainYieldEvery is how many entries the writer handles before it lets
// other goroutines run.
const drainYieldEvery = 8

// DecisionLogFlushInterval is how often the writer wakes to write what was
// queued (sooner when the buffer is half full).
const DecisionLogFlushInterval = 50 * time.Millisecond

// DecisionLog writes one JSON line per decision to w from a goroutine of
// its own. Log never blocks: when the buffer is full the line is dropped
// and counted. Queuing a line wakes no goroutine (the writer wakes every
// DecisionLogFlushInterval, or when the buffer is half full), so a decision
// pays for a channel send and nothing more.
//
// Inside Telemetry the same queue also carries the decisions whose spans
// are to be recorded: the writer's goroutine builds each decision's span
// (with the decision's own start and end times) before writing its line,
// so that neither costs the decision anything but the send.
//
// A line is
//
//	{"decision_id", "time", "trace_id", "span_id", "input", "result":
//	 {"allow","status","tenant","action","visibility","fields"},
//	 "reasons", "revisions", "duration"}
//
// with time in RFC 3339 (UTC, nanoseconds) and duration in seconds.
type DecisionLog struct {
	w      io.Writer // nil: no lines, only spans
	ch     chan logEntry
	wake   chan struct{} // buffered (1): the queue is half full
	wakeAt int
	flush  chan chan struct{}
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	closed atomic.Bool
	masks  map[string][]maskPath // by top-level key
	// maskSecrets masks secrets in the request's context (MaskContextSecrets).
	maskSecrets bool
	metrics     *Metrics
	log         *slog.Logger
	// span, when set, records the entry's span and sets its trace and
	// span ids (on the writer's goroutine).
	span func(*logEntry)

	written, dropped, failed atomic.Uint64
}

// logEntry is what a decision hands to the writer: values it will not
// change after the decision returns.
type logEntry struct {
	req       decision.Request
	d         *decision.Decision
	at        time.Time
	dur       time.Duration
	err       error
	explained bool
	// parent is the span context the decision was made in (the caller's,
	// from traceparent); traceID and spanID are what the line records.
	parent  trace.SpanContext
	traceID trace.TraceID
	spanID  trace.SpanID
}

// NewDecisionLog starts a decision log writing to w.
func NewDecisionLog(w io.Writer, opts DecisionLogOptions) (*DecisionLog, error) {
	if w == nil {
		return nil, errors.New("decision log: no writer")
	}
	return newDecisionLog(w, opts, nil)
}

// newDecisionLog starts the queue and its goroutine; w may be nil when
// span is set (tracing without decision logs).
func newDecisionLog(w io.Writer, opts DecisionLogOptions, span func(*logEntry)) (*DecisionLog, error) {
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultDecisionLogBuffer
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	masks, err := parseMasks(opts.Mask)
	if err != nil {
		return nil, err
	}
	l := &DecisionLog{
		w:           w,
		ch:          make(chan logEntry, opts.Buffer),
		wake:        make(chan struct{}, 1),
		wakeAt:      max(1, opts.Buffer/2),
		flush:       make(chan chan struct{}),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		masks:       masks,
		maskSecrets: opts.MaskContextSecrets,
		metrics:     opts.Metrics,
		log:         opts.Log,
		span:        span,
	}
	go l.run()
	return l, nil
}

// Log queues one decision's line, with the trace and span ids of the span
// in ctx. It never waits: when the buffer is full (or the log is closed)
// the line is dropped and counted. req and d must not be changed
// afterwards.
func (l *DecisionLog) Log(ctx context.Context, req *decision.Request, d *decision.Decision, start time.Time, dur time.Duration) {
	sc := trace.SpanContextFromContext(ctx)
	l.enqueue(logEntry{req: *req, d: d, at: start, dur: dur, traceID: sc.TraceID(), spanID: sc.SpanID()})
}

func (l *DecisionLog) enqueue(e logEntry) {
	if l.closed.Load() {
		l.drop()
		return
	}
	select {
	case l.ch <- e:
		if len(l.ch) >= l.wakeAt {
			select {
			case l.wake <- struct{}{}:
			default: // already signalled
			}
		}
	default:
		l.drop()
	}
}

// drop counts an entry that was not queued: its line (when logging) and
// its span (when tracing) are lost.
func (l *DecisionLog) drop() {
	l.dropped.Add(1)
	if l.metrics == nil {
		return
	}
	if l.w != nil {
		l.metrics.logDropped.Inc()
	}
	if l.span != nil {
		l.metrics.spansDropped.Inc()
	}
}

// Written is the number of lines written so far.
func (l *DecisionLog) Written() uint64 { return l.written.Load() }

// Dropped is the number of lines dropped so far.
func (l *DecisionLog) Dropped() uint64 { return l.dropped.Load() }

// Failed is the number of lines lost to encoding or write errors.
func (l *DecisionLog) Failed() uint64 { return l.failed.Load() }

// Flush waits until everything queued so far is written (and its spans
// recorded).
func (l *DecisionLog) Flush(ctx context.Context) error {
	reply := make(chan struct{})
	select {
	case l.flush <- reply:
	case <-l.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("decision log: flush: %w", ctx.Err())
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("decision log: flush: %w", ctx.Err())
	}
}

// Close writes the lines still queued and stops the writer. Lines logged
// after Close are dropped. It does not close the underlying writer.
func (l *DecisionLog) Close(ctx context.Context) error {
	l.closed.Store(true)
	l.once.Do(func() { close(l.stop) })
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("decision log: flush: %w", ctx.Err())
	}
}

func (l *DecisionLog) run() {
	defer close(l.done)
	w := &lineWriter{l: l}
	if l.w != nil {
		w.bw = bufio.NewWriterSize(l.w, 64<<10)
	}
	w.enc = json.NewEncoder(&w.buf)
	w.enc.SetEscapeHTML(false)
	tick := time.NewTicker(DecisionLogFlushInterval)
	defer tick.Stop()
	// drain writes whatever is queued, then flushes once. It yields its
	// processor every few entries: on a small machine a long burst would
	// otherwise keep a decision that became runnable waiting for one.
	drain := func() {
		for n := 1; ; n++ {
			if n%drainYieldEvery == 0 {
				runtime.Gosched()
			}
			select {
			case e := <-l.ch:
				w.write(e)
			default:
				w.flush()
				return
			}
		}
	}
	for {
		select {
		case <-tick.C:
		case <-l.wake:
		case reply := <-l.flush:
			drain()
			close(reply)
			continue
		case <-l.stop:
			drain()
			return
		}
		if len(l.ch) > 0 {
			drain()
		}
	}
}

// lineWriter encodes and buffers lines on the writer goroutine.
type lineWriter struct {
	l       *DecisionLog
	bw      *bufio.Writer // nil when there are no lines to write
	buf     bytes.Buffer
	enc     *json.Encoder
	pending uint64 // lines in bw not yet flushed
	lastErr string
}

// logLine is the JSON shape of one line. The fields that masks may reach
// are typed any so that a masked subtree can stand in as json.RawMessage.
type logLine struct {
	DecisionID string `json:"decision_id"`
	Time       string `json:"time"`
	TraceID    string `json:"trace_id"`
	SpanID     string `json:"span_id,omitempty"`
	Input      any    `json:"input"`
	Result     any    `json:"result"`
	Reasons    any    `json:"reasons"`
	Revisions  any    `json:"revisions"`
	// StateRevision is the fleet's run-time state revision the decision
	// was made at (--state-db only).
	StateRevision uint64  `json:"state_revision,omitempty"`
	Duration      float64 `json:"duration"`
}

type logResult struct {
	Allow      bool     `json:"allow"`
	Status     int      `json:"status"`
	Tenant     string   `json:"tenant"`
	Action     string   `json:"action,omitempty"`
	Visibility string   `json:"visibility"`
	Fields     []string `json:"fields"`
}

func (w *lineWriter) write(e logEntry) {
	if w.l.span != nil {
		w.l.span(&e)
	}
	if w.bw == nil {
		return
	}
	line := logLine{
		DecisionID: e.d.DecisionID,
		Time:       e.at.UTC().Format(time.RFC3339Nano),
		Input:      &e.req,
		Result: &logResult{
			Allow: e.d.Allow, Status: e.d.Status, Tenant: e.d.Tenant, Action: e.d.Action,
			Visibility: e.d.Visibility, Fields: e.d.Fields,
		},
		Reasons:       e.d.Reasons,
		Revisions:     e.d.Revision,
		StateRevision: e.d.StateRevision,
		Duration:      e.dur.Seconds(),
	}
	if e.traceID.IsValid() {
		line.TraceID = e.traceID.String()
	}
	if e.spanID.IsValid() {
		line.SpanID = e.spanID.String()
	}
	if err := w.l.applyMasks(&line, &e.req); err != nil {
		w.fail(err)
		return
	}
	w.buf.Reset()
	if err := w.enc.Encode(&line); err != nil { // Encode ends the line with \n
		w.fail(fmt.Errorf("encode: %w", err))
		return
	}
	if _, err := w.bw.Write(w.buf.Bytes()); err != nil {
		w.fail(err)
		return
	}
	w.pending++
}

func (w *lineWriter) flush() {
	if w.bw == nil || w.pending == 0 && w.bw.Buffered() == 0 {
		return
	}
	err := w.bw.Flush()
	if err != nil {
		// bufio keeps failing once it failed; start over with a fresh buffer
		// so that a transient error does not lose every later line.
		w.bw = bufio.NewWriterSize(w.l.w, 64<<10)
		w.l.failed.Add(w.pending)
		if w.l.metrics != nil {
			w.l.metrics.logErrors.Add(float64(w.pending))
		}
		w.pending = 0
		w.report(err)
		return
	}
	w.l.written.Add(w.pending)
	if w.l.metrics != nil {
		w.l.metrics.logWritten.Add(float64(w.pending))
	}
	w.pending = 0
}

func (w *lineWriter) fail(err error) {
	w.l.failed.Add(1)
	if w.l.metrics != nil {
		w.l.metrics.logErrors.Inc()
	}
	w.report(err)
}

// report logs an error when it differs from the last one, so that a full
// disk does not flood the process log.
func (w *lineWriter) report(err error) {
	if msg := err.Error(); msg != w.lastErr {
		w.lastErr = msg
		w.l.log.Error("decision log: line lost", "error", err)
	}
}

// --- masking

// maskPath is a parsed JSON pointer below a top-level key of the line.
type maskPath []string

var maskRoots = []string{"input", "result", "reasons", "revisions"}

// parseMasks parses JSON pointers and groups them by top-level key.
func parseMasks(paths []string) (map[string][]maskPath, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	out := make(map[string][]maskPath)
	for _, p := range paths {
		segs, err := parsePointer(p)
		if err != nil {
			return nil, fmt.Errorf("decision log mask %q: %w", p, err)
		}
		root := segs[0]
		ok := false
		for _, r := range maskRoots {
			ok = ok || r == root
		}
		if !ok {
			return nil, fmt.Errorf("decision log mask %q: must start with /%s", p, strings.Join(maskRoots, ", /"))
		}
		out[root] = append(out[root], maskPath(segs[1:]))
	}
	return out, nil
}

// parsePointer splits an RFC 6901 JSON pointer into unescaped segments.
func parsePointer(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, errors.New("a JSON pointer starts with /")
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		if s == "" {
			return nil, errors.New("empty segment")
		}
		segs[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	return segs, nil
}

// applyMasks masks the line. Input paths are applied to the line's own
// copy of the request where its shape allows (copying only what lies on
// the path); the rest, and masks of other fields, replace the field with a
// JSON rendering of it in which the masked values are MaskedValue.
func (l *DecisionLog) applyMasks(line *logLine, req *decision.Request) error {
	if l.maskSecrets && req.Context != nil {
		masked, ok := maskSecrets(req.Context)
		if !ok {
			// A library caller's context that is not plain JSON.
			generic, err := toGeneric(req.Context)
			if err != nil {
				return fmt.Errorf("mask /input/context: %w", err)
			}
			masked, _ = maskSecrets(generic)
		}
		req.Context = masked
	}
	for root, paths := range l.masks {
		if root == "input" {
			var generic []maskPath
			for _, p := range paths {
				if !maskRequest(req, p) {
					generic = append(generic, p)
				}
			}
			if len(generic) == 0 {
				continue
			}
			paths = generic
		}
		var field *any
		switch root {
		case "input":
			field = &line.Input
		case "result":
			field = &line.Result
		case "reasons":
			field = &line.Reasons
		case "revisions":
			field = &line.Revisions
		}
		doc, err := toGeneric(*field)
		if err != nil {
			return fmt.Errorf("mask /%s: %w", root, err)
		}
		for _, p := range paths {
			doc, _ = p.apply(doc)
		}
		raw, err := json.Marshal(doc)
		if err != nil {
			return fmt.Errorf("mask /%s: %w", root, err)
		}
		*field = json.RawMessage(raw)
	}
	return nil
}

// maskRequest applies p (below /input) to req, the log line's copy of the
// request, copying whatever it changes below it. It returns false when p
// needs the generic path: it replaces a whole object, list or boolean by
// MaskedValue, or goes through a context value that is not plain JSON.
func maskRequest(req *decision.Request, p maskPath) bool {
	maskString := func(s *string) {
		if *s != "" {
			*s = MaskedValue
		}
	}
	switch p[0] {
	case "tenant", "key", "member", "application", "action":
		if len(p) == 1 {
			switch p[0] {
			case "tenant":
				maskString(&req.Tenant)
			case "key":
				maskString(&req.Key)
			case "member":
				maskString(&req.Member)
			case "application":
				maskString(&req.Application)
			case "action":
				maskString(&req.Action)
			}
		}
		return true // a string has nothing below it
	case "context":
		v, ok := p[1:].apply(req.Context)
		if ok {
			req.Context = v
		}
		return ok
	case "request":
		if len(p) == 1 || p[1] == "*" {
			return req.Request == nil
		}
		if req.Request == nil || len(p) > 2 {
			return true
		}
		hr := *req.Request
		switch p[1] {
		case "service":
			maskString(&hr.Service)
		case "method":
			maskString(&hr.Method)
		case "path":
			maskString(&hr.Path)
		}
		req.Request = &hr
		return true
	case "resource":
		if len(p) == 1 || p[1] == "*" {
			return req.Resource == nil
		}
		if req.Resource == nil {
			return true
		}
		res := *req.Resource
		switch p[1] {
		case "frn":
			if len(p) == 2 {
				maskString(&res.FRN)
			}
		case "owner":
			if len(p) == 2 {
				maskString(&res.Owner)
			}
		case "resource_groups":
			if len(p) == 2 {
				return len(res.ResourceGroups) == 0
			}
			if len(p) == 3 {
				groups := slices.Clone(res.ResourceGroups)
				for i := range groups {
					if p[2] == "*" || p[2] == strconv.Itoa(i) {
						groups[i] = MaskedValue
					}
				}
				res.ResourceGroups = groups
			}
		case "reference":
			return len(p) > 2 || !res.Reference
		}
		req.Resource = &res
		return true
	case "*":
		return false
	}
	return true // no such field
}

// toGeneric turns v into maps, slices and scalars by a JSON round trip.
func toGeneric(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

// apply returns doc with the values p reaches replaced by MaskedValue (an
// empty path masks doc itself). It copies the maps and lists it changes
// and leaves doc alone. ok is false when the path runs into a value that
// is not plain JSON (a Go struct or typed map handed in by a library
// caller), which the generic path must handle.
func (p maskPath) apply(doc any) (out any, ok bool) {
	if len(p) == 0 {
		if doc == nil {
			return nil, true // nothing there to hide
		}
		return MaskedValue, true
	}
	seg, rest := p[0], p[1:]
	switch v := doc.(type) {
	case map[string]any:
		if seg == "*" {
			m := make(map[string]any, len(v))
			for k, child := range v {
				if m[k], ok = rest.apply(child); !ok {
					return doc, false
				}
			}
			return m, true
		}
		child, found := v[seg]
		if !found {
			return doc, true
		}
		masked, ok := rest.apply(child)
		if !ok {
			return doc, false
		}
		m := maps.Clone(v)
		m[seg] = masked
		return m, true
	case []any:
		l := slices.Clone(v)
		for i := range l {
			if seg == "*" || seg == strconv.Itoa(i) {
				if l[i], ok = rest.apply(l[i]); !ok {
					return doc, false
				}
			}
		}
		return l, true
	case nil, string, bool, float64, json.Number:
		return doc, true // nothing below a scalar
	}
	return doc, false
}

// LogFile is where --decision-log points: a file opened for appending, or
// standard output. Reopen opens the file again by its path, the convention
// logrotate relies on (it renames the file, then sends SIGHUP): the lines
// written after Reopen go to a new file of that name.
type LogFile struct {
	path string // empty for standard output

	mu sync.Mutex
	w  io.Writer
	f  *os.File // nil for standard output
}

// OpenDecisionLogDestination opens where --decision-log points: "-" or
// "stdout" is standard output (closing or reopening it is a no-op),
// anything else a file opened for appending (created with mode 0600).
func OpenDecisionLogDestination(path string) (*LogFile, error) {
	switch path {
	case "-", "stdout":
		return &LogFile{w: os.Stdout}, nil
	}
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &LogFile{path: path, w: f, f: f}, nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open decision log: %w", err)
	}
	return f, nil
}

// Path is the file's path ("" for standard output).
func (l *LogFile) Path() string { return l.path }

func (l *LogFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil {
		return 0, os.ErrClosed
	}
	return l.w.Write(p)
}

// Reopen opens the file again by its path (creating it) and closes the
// previous one. When the path cannot be opened, the previous file stays in
// use and the error is returned.
func (l *LogFile) Reopen() error {
	l.mu.Lock()
	closed := l.w == nil
	l.mu.Unlock()
	if l.path == "" || closed {
		return nil
	}
	f, err := openAppend(l.path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	if l.w == nil { // closed meanwhile
		l.mu.Unlock()
		return f.Close()
	}
	old := l.f
	l.w, l.f = f, f
	l.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the file; later writes fail.
func (l *LogFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.f
	l.w, l.f = nil, nil
	if f != nil {
		return f.Close()
	}
	return nil
}
