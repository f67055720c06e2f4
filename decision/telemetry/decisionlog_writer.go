package telemetry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

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
