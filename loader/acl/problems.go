package acl

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a bundle: the file it came from, the entry
// inside that file (a dotted path such as members.bob.roles[1]) and a message.
type Problem struct {
	File    string `json:"file,omitempty"`
	Entry   string `json:"entry,omitempty"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteString(": ")
	}
	if p.Entry != "" {
		b.WriteString(p.Entry)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError carries every problem found in a set of bundles.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0].String()
	}
	lines := make([]string, 0, len(e.Problems)+1)
	lines = append(lines, fmt.Sprintf("%d problems:", len(e.Problems)))
	for _, p := range e.Problems {
		lines = append(lines, "  "+p.String())
	}
	return strings.Join(lines, "\n")
}

// Problems collects problems while a bundle is parsed and validated.
type Problems struct {
	list     []Problem
	warnings []Problem
}

// Add records a problem at loc.
func (ps *Problems) Add(loc Loc, format string, args ...any) {
	ps.list = append(ps.list, Problem{File: loc.File(), Entry: loc.Entry(), Message: fmt.Sprintf(format, args...)})
}

// Warn records something suspicious that does not reject the bundle.
func (ps *Problems) Warn(loc Loc, format string, args ...any) {
	ps.warnings = append(ps.warnings, Problem{File: loc.File(), Entry: loc.Entry(), Message: fmt.Sprintf(format, args...)})
}

// AddProblem records an already formed problem.
func (ps *Problems) AddProblem(p Problem) { ps.list = append(ps.list, p) }

// Err returns a *ValidationError with every problem, or nil when there is none.
func (ps *Problems) Err() error {
	if len(ps.list) == 0 {
		return nil
	}
	out := make([]Problem, len(ps.list))
	copy(out, ps.list)
	sort.SliceStable(out, func(i, j int) bool { return out[i].File < out[j].File })
	return &ValidationError{Problems: out}
}

// Warnings returns what was recorded with Warn.
func (ps *Problems) Warnings() []Problem { return ps.warnings }

// FileResolver names the bundle file that holds the data at a data path
// (for example ["verdict","tenants","acme","members","bob"]).
type FileResolver func(dataPath []string) string

// Loc is a position inside the verdict data tree: the data path of the
// document that owns the entry (used to find its file) and the entry itself.
type Loc struct {
	files FileResolver
	base  []string // data path of the document root, e.g. verdict.tenants.acme
	keys  []string // data path below base, without list indices
	entry string   // display form below base: members.bob.roles[1]
}

// NewLoc starts a location at the document found at base.
func NewLoc(files FileResolver, base ...string) Loc {
	return Loc{files: files, base: base}
}

// Key descends into an object member.
func (l Loc) Key(k string) Loc {
	n := l
	n.keys = append(l.keys[:len(l.keys):len(l.keys)], k)
	if n.entry == "" {
		n.entry = k
	} else {
		n.entry = l.entry + "." + k
	}
	return n
}

// Index descends into a list element.
func (l Loc) Index(i int) Loc {
	n := l
	n.entry = l.entry + "[" + strconv.Itoa(i) + "]"
	return n
}

// Entry is the display path below the document root.
func (l Loc) Entry() string { return l.entry }

// File is the bundle file that holds this entry.
func (l Loc) File() string {
	if l.files == nil {
		return ""
	}
	path := make([]string, 0, len(l.base)+len(l.keys))
	path = append(path, l.base...)
	path = append(path, l.keys...)
	return l.files(path)
}
