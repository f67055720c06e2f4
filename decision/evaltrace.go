package decision

import (
	"bufio"
	"bytes"
	"context"

	"github.com/open-policy-agent/opa/v1/topdown"
)

// MaxExplanationLines bounds the evaluation trace of one explanation.
const MaxExplanationLines = 20000

// Explanation is how a decision was reached, for a person debugging a
// policy (POST /v1/decide?explain=full).
type Explanation struct {
	// Summary is the decision in words: the deciding layer and each reason,
	// with the statements they name as the bundle wrote them.
	Summary string `json:"summary"`
	// Trace is OPA's evaluation trace of the decision query, one line per
	// element (as `opa eval --explain full` prints it, with locations).
	Trace []string `json:"trace"`
	// Truncated is set when the trace had more than MaxExplanationLines
	// lines and was cut.
	Truncated bool `json:"truncated,omitempty"`
}

// DecideExplained is Decide with the Rego evaluation traced. It costs far
// more than Decide (every evaluation step is recorded) and is meant for
// debugging, never for serving traffic. The decision itself is the same,
// and is reported to the observer like any other.
func (e *Engine) DecideExplained(ctx context.Context, req *Request) (*Decision, *Explanation, error) {
	if err := req.Validate(); err != nil {
		return nil, nil, err
	}
	gen := e.current.Load()
	tracer := topdown.NewBufferTracer()
	d := e.decideOrFail(ctx, gen, req, tracer)
	ex := &Explanation{Summary: gen.Explain(d)}
	var buf bytes.Buffer
	topdown.PrettyTraceWithOpts(&buf, *tracer, topdown.PrettyTraceOptions{Locations: true})
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	ex.Trace = make([]string, 0, 256)
	for sc.Scan() {
		if len(ex.Trace) == MaxExplanationLines {
			ex.Truncated = true
			break
		}
		ex.Trace = append(ex.Trace, sc.Text())
	}
	return d, ex, nil
}
