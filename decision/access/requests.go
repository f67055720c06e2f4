package access

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/verdict-authz/verdict/decision"
)

// MaxRequestLine bounds one line of a requests file; a longer line is
// malformed.
const MaxRequestLine = 1 << 20

// LineError is a malformed line of a requests file.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ReadRequests reads decision questions, one JSON document a line: either a
// POST /v1/decide body, or a line of verdict's decision log (--decision-log),
// whose "input" is the request that was decided. Blank lines are skipped.
// Each well-formed, valid request is passed to each with its line number; a
// malformed one is passed to bad as a *LineError and skipped. The error is
// each's, or the reader's.
func ReadRequests(r io.Reader, each func(line int, req *decision.Request) error, bad func(*LineError)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for line := 1; ; line++ {
		buf = buf[:0]
		tooLong := false
		var err error
		for {
			var chunk []byte
			var prefix bool
			chunk, prefix, err = br.ReadLine()
			if len(buf)+len(chunk) > MaxRequestLine {
				tooLong = true
			} else {
				buf = append(buf, chunk...)
			}
			if !prefix || err != nil {
				break
			}
		}
		if err == io.EOF && len(buf) == 0 && !tooLong {
			return nil
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("read line %d: %w", line, err)
		}
		switch {
		case tooLong:
			bad(&LineError{Line: line, Err: fmt.Errorf("the line is longer than %d bytes", MaxRequestLine)})
		case len(bytes.TrimSpace(buf)) == 0:
		default:
			req, perr := parseRequestLine(buf)
			if perr != nil {
				bad(&LineError{Line: line, Err: perr})
				break
			}
			if e := each(line, req); e != nil {
				return e
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// parseRequestLine reads one line: a decision log line (it has "input" and
// "decision_id") or a decision request, decoded strictly and validated.
func parseRequestLine(line []byte) (*decision.Request, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(line, &top); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	body := line
	if input, ok := top["input"]; ok {
		if _, ok := top["decision_id"]; !ok {
			return nil, errors.New(`has "input" but no "decision_id": neither a decision request nor a decision log line`)
		}
		body = input
	}
	req := new(decision.Request)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(req); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return req, nil
}
