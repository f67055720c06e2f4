package loader

import (
	"errors"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/verdict-authz/verdict/loader/acl"
)

// Bundle states in the status.
const (
	// StateOK: the newest version of the bundle is being served.
	StateOK = "ok"
	// StateFailed: the newest version was rejected; the last good one (if
	// any) is being served.
	StateFailed = "failed"
	// StateRemoved: the bundle's source is gone; nothing of it is served.
	StateRemoved = "removed"
	// StatePending: the bundle has not been loaded yet.
	StatePending = "pending"
)

// ErrorDetail is one problem of a rejected bundle version.
type ErrorDetail struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Entry   string `json:"entry,omitempty"`
	Message string `json:"message"`
}

// LoadError is why a bundle version was rejected.
type LoadError struct {
	At time.Time `json:"at"`
	// Stage is where it was rejected: "read" (files, syntax, validation),
	// "download", or the name of the processor that refused it.
	Stage string `json:"stage"`
	// File, Line and Message are those of the first problem.
	File     string        `json:"file,omitempty"`
	Line     int           `json:"line,omitempty"`
	Message  string        `json:"message"`
	Problems []ErrorDetail `json:"problems"`
}

// BundleStatus is what GET /v1/status says about one bundle.
type BundleStatus struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	State  string `json:"state"`
	// Revision and Digest are those of the version being served.
	Revision string `json:"revision"`
	Digest   string `json:"digest,omitempty"`
	// LoadedAt is when the version being served was installed.
	LoadedAt *time.Time `json:"loaded_at,omitempty"`
	// LastSuccessfulLoad is the last time a version of the bundle was read
	// and accepted (an unchanged re-read counts).
	LastSuccessfulLoad *time.Time `json:"last_successful_load,omitempty"`
	LastAttempt        *time.Time `json:"last_attempt,omitempty"`
	// LastDurationMS is how long the last attempt took.
	LastDurationMS float64 `json:"last_duration_ms"`
	// LastError is the last rejection; it stays after a later success (see
	// State) until the bundle is removed.
	LastError *LoadError `json:"last_error,omitempty"`
	// Warnings are what is suspect in the version being served without
	// rejecting it: unknown fields (a misspelt "rolse:"), and statements
	// whose action matches no action of the services served now (an Allow
	// that grants nothing, or a Deny accepted before its action went away).
	Warnings []ErrorDetail `json:"warnings,omitempty"`
	// DownloadError is the last failure to reach a remote bundle's server;
	// the last good copy keeps serving and readiness is not affected.
	DownloadError *LoadError `json:"download_error,omitempty"`
	ETag          string     `json:"etag,omitempty"`
	Loads         int        `json:"loads"`
	Failures      int        `json:"failures"`
}

// Status is what GET /v1/status answers.
type Status struct {
	Ready      bool           `json:"ready"`
	Generation uint64         `json:"generation"`
	Failing    []string       `json:"failing"`
	Bundles    []BundleStatus `json:"bundles"`
	// Runtime describes the run-time changes: registrations, delegation
	// requests and consents, and the state directory.
	Runtime *RuntimeStatus `json:"runtime,omitempty"`
}

// StatusBoard keeps every bundle's status. It is written by the pipeline's
// status processor and read by the HTTP API.
type StatusBoard struct {
	mu         sync.RWMutex
	bundles    map[string]*BundleStatus
	generation uint64
	runtime    RuntimeStatus
	// warnings are the served bundles' warnings, by bundle name.
	warnings map[string][]ErrorDetail
}

// NewStatusBoard returns an empty board.
func NewStatusBoard() *StatusBoard {
	return &StatusBoard{bundles: map[string]*BundleStatus{}}
}

// Track makes the board list a source before it is loaded.
func (b *StatusBoard) Track(src Source) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.bundles[src.Name]; !ok {
		b.bundles[src.Name] = &BundleStatus{Name: src.Name, Source: src.Location, State: StatePending}
	}
}

// Snapshot returns a copy of the status.
func (b *StatusBoard) Snapshot() Status {
	b.mu.RLock()
	defer b.mu.RUnlock()
	st := Status{Generation: b.generation, Failing: []string{}, Bundles: make([]BundleStatus, 0, len(b.bundles))}
	for _, bs := range b.bundles {
		bs := *bs
		bs.Warnings = b.warnings[bs.Name]
		st.Bundles = append(st.Bundles, bs)
		if bs.State == StateFailed {
			st.Failing = append(st.Failing, bs.Name)
		}
	}
	sort.Slice(st.Bundles, func(i, j int) bool { return st.Bundles[i].Name < st.Bundles[j].Name })
	sort.Strings(st.Failing)
	st.Ready = len(st.Failing) == 0 && b.generation > 0
	rt := b.runtime
	st.Runtime = &rt
	return st
}

// Failing lists the bundles whose newest version was rejected.
func (b *StatusBoard) Failing() []string { return b.Snapshot().Failing }

// record applies a NOTIFY event of a bundle change.
func (b *StatusBoard) record(ev *Event) {
	if ev.Bundle == nil {
		b.recordRuntime(ev)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if ev.Generation > b.generation {
		b.generation = ev.Generation
	}
	for _, src := range ev.Bundle.Sources {
		b.recordOne(ev, src)
	}
}

func (b *StatusBoard) recordOne(ev *Event, src Source) {
	bs, ok := b.bundles[src.Name]
	if !ok {
		bs = &BundleStatus{Name: src.Name, State: StatePending}
		b.bundles[src.Name] = bs
	}
	if src.Location != "" {
		bs.Source = src.Location
	}
	at := ev.Started.Add(ev.Duration)
	bs.LastAttempt = &at
	bs.LastDurationMS = float64(ev.Duration.Microseconds()) / 1000
	if ev.Err != nil {
		var dl *DownloadError
		if errors.As(ev.Err, &dl) {
			bs.DownloadError = newLoadError(at, ev.Err)
			return
		}
		bs.Failures++
		bs.LastError = newLoadError(at, ev.Err)
		bs.State = StateFailed
		return
	}
	bs.DownloadError = nil
	bs.LastSuccessfulLoad = &at
	next := ev.Bundle.Next[src.Name]
	if ev.Change == KindDelete || next == nil {
		bs.State = StateRemoved
		bs.Revision, bs.Digest, bs.LoadedAt, bs.LastError = "", "", nil, nil
		return
	}
	bs.State = StateOK
	if ev.Bundle.Stored {
		bs.Loads++
		bs.Revision = next.Revision
		bs.Digest = next.Digest
		bs.LoadedAt = &at
	}
	if next.Source.ETag != "" {
		bs.ETag = next.Source.ETag
	}
}

// setWarnings replaces the warnings of every bundle: those of a bundle not
// in w (removed, or never served) are cleared.
func (b *StatusBoard) setWarnings(w map[string][]acl.Problem) {
	out := make(map[string][]ErrorDetail, len(w))
	for name, ps := range w {
		for _, p := range ps {
			out[name] = append(out[name], ErrorDetail{File: p.File, Entry: p.Entry, Message: p.Message})
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.warnings = out
}

// setGeneration records the installed generation (the initial load does
// not go through a NOTIFY per bundle before it is served).
func (b *StatusBoard) setGeneration(n uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.generation {
		b.generation = n
	}
}

func newLoadError(at time.Time, err error) *LoadError {
	le := &LoadError{At: at, Stage: "read", Message: err.Error(), Problems: ErrorDetails(err)}
	var pe *ProcessorError
	var dl *DownloadError
	switch {
	case errors.As(err, &pe):
		le.Stage = pe.Processor
	case errors.As(err, &dl):
		le.Stage = "download"
	}
	if len(le.Problems) > 0 {
		first := le.Problems[0]
		le.File, le.Line = first.File, first.Line
		if len(le.Problems) == 1 {
			le.Message = first.Message
			if first.Entry != "" {
				le.Message = first.Entry + ": " + first.Message
			}
		}
	}
	return le
}

// yamlFileError matches OPA's reader's message for a data file that does not
// parse: "bundle load failed on /path/data.yaml: yaml: line 3: ...".
var (
	fileErrorRE = regexp.MustCompile(`(?s)failed on (\S+?): (.*)$`)
	yamlLineRE  = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)
	jsonLineRE  = regexp.MustCompile(`(?s)^(?:yaml|json): (?:.*?)line (\d+)`)
)

// ErrorDetails breaks an error from reading or assembling bundles into its
// problems, each with the file, line and entry when known.
func ErrorDetails(err error) []ErrorDetail {
	if err == nil {
		return nil
	}
	var out []ErrorDetail
	var walk func(error)
	walk = func(err error) {
		var ve *acl.ValidationError
		var astErrs ast.Errors
		var astErr *ast.Error
		var se *SyntaxError
		switch {
		case errors.As(err, &se):
			out = append(out, ErrorDetail{File: se.File, Line: se.Line, Message: se.Message})
			return
		case errors.As(err, &ve):
			for _, p := range ve.Problems {
				out = append(out, ErrorDetail{File: p.File, Entry: p.Entry, Message: p.Message})
			}
			return
		case errors.As(err, &astErrs):
			for _, e := range astErrs {
				out = append(out, astDetail(e))
			}
			return
		case errors.As(err, &astErr):
			out = append(out, astDetail(astErr))
			return
		}
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range joined.Unwrap() {
				walk(e)
			}
			return
		}
		if next := errors.Unwrap(err); next != nil {
			if _, isProc := err.(*ProcessorError); isProc {
				walk(next)
				return
			}
		}
		out = append(out, textDetail(err.Error()))
	}
	walk(err)
	return out
}

func astDetail(e *ast.Error) ErrorDetail {
	d := ErrorDetail{Message: e.Message}
	if e.Location != nil {
		d.File = strings.TrimPrefix(e.Location.File, "/")
		d.Line = e.Location.Row
	}
	return d
}

// textDetail pulls a file and line out of an error that only has text.
func textDetail(msg string) ErrorDetail {
	m := fileErrorRE.FindStringSubmatch(msg)
	if m == nil {
		return ErrorDetail{Message: msg}
	}
	d := ErrorDetail{File: strings.TrimPrefix(m[1], "/"), Message: m[2]}
	if y := yamlLineRE.FindStringSubmatch(m[2]); y != nil {
		d.Line, _ = strconv.Atoi(y[1])
		d.Message = y[2]
	} else if j := jsonLineRE.FindStringSubmatch(m[2]); j != nil {
		d.Line, _ = strconv.Atoi(j[1])
	}
	return d
}
