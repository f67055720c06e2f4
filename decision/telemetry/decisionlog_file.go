package telemetry

import (
	"fmt"
	"io"
	"os"
	"sync"
)

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
