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
// (for example ["verdict","tenants","acme","members","bob"]) and how many
// leading keys of that path the file's directory accounts for: an entry is
// shown relative to its file, e.g. members.bob for
// verdict/tenants/acme/data.yaml but tenants.acme.members.bob for
// verdict/data.yaml.
type FileResolver func(dataPath []string) (file string, depth int)

// Loc is a position inside the verdict data tree. Descending allocates one
// small node that shares its parent's: a tenant of 100,000 members makes
// millions of locations, and only those of problems are ever shown.
type Loc struct {
	files FileResolver
	last  *locNode // nil at the root
}

type locNode struct {
	parent *locNode
	seg    locSeg
}

type locSeg struct {
	key   string
	index int // -1 for an object key
}

// NewLoc starts a location at the data path base.
func NewLoc(files FileResolver, base ...string) Loc {
	l := Loc{files: files}
	for _, k := range base {
		l = l.Key(k)
	}
	return l
}

func (l Loc) with(s locSeg) Loc {
	return Loc{files: l.files, last: &locNode{parent: l.last, seg: s}}
}

// Key descends into an object member.
func (l Loc) Key(k string) Loc { return l.with(locSeg{key: k, index: -1}) }

// Index descends into a list element.
func (l Loc) Index(i int) Loc { return l.with(locSeg{index: i}) }

// segs lists the location's segments from the root.
func (l Loc) segs() []locSeg {
	n := 0
	for p := l.last; p != nil; p = p.parent {
		n++
	}
	out := make([]locSeg, n)
	for p := l.last; p != nil; p = p.parent {
		n--
		out[n] = p.seg
	}
	return out
}

// dataPath is the object keys of the location (list indices left out).
func (l Loc) dataPath() []string {
	segs := l.segs()
	out := make([]string, 0, len(segs))
	for _, s := range segs {
		if s.index < 0 {
			out = append(out, s.key)
		}
	}
	return out
}

func (l Loc) resolve() (string, int) {
	if l.files == nil {
		return "", 0
	}
	return l.files(l.dataPath())
}

// File is the bundle file that holds this entry.
func (l Loc) File() string {
	f, _ := l.resolve()
	return f
}

// Entry is the display path of the entry inside its file, e.g.
// members.bob.roles[1].
func (l Loc) Entry() string {
	_, depth := l.resolve()
	var b strings.Builder
	keys := 0
	for _, s := range l.segs() {
		if s.index >= 0 {
			if keys > depth || b.Len() > 0 {
				b.WriteString("[" + strconv.Itoa(s.index) + "]")
			}
			continue
		}
		keys++
		if keys <= depth {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.key)
	}
	return b.String()
}
