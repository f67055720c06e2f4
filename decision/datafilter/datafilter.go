// Package datafilter translates a list plan (decision.Plan, what POST
// /v1/plan answers) into the data filters of OPA's Compile API: UCAST
// condition trees and PostgreSQL WHERE clauses. It decides nothing: every
// criterion comes from the plan, which the engine's Rego made.
//
// A filter is about the objects of one table, the unknown input.resource.
// Its fields are the columns
//
//	resource.owner           the member who owns the object (exact)
//	resource.user_code       the object's user code, the last part of its FRN
//	resource.resource_group  the object's resource group, only when the
//	                         mappings name a column for it (see Columns)
//
// and OPA's options.targetSQLTableMappings rename them ($self for the
// table, a column's name for the column), as OPA renames the fields of
// its own filters. User codes and resource groups compare ignoring case:
// the plan's values are lower case; SQL compares lower(column), UCAST
// compares the column as stored, which must then hold lower case.
//
// An object passes the filter when it matches any criterion of the plan's
// filter and none of its exclusion, as /v1/plan documents. Kind "all" is
// the unconditional filter (UCAST {}, SQL ""), kind "none" no filter at
// all (nil: OPA leaves the result out when a query is never true).
package datafilter

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/verdict-authz/verdict/decision"
)

// The targets and dialects of OPA's Compile API that verdict answers.
const (
	TargetUCAST = "ucast"
	TargetSQL   = "sql"

	DialectAll        = "all"
	DialectMinimal    = "minimal"
	DialectPrisma     = "prisma"
	DialectPostgreSQL = "postgresql"
)

// Target is one translation target: ucast (all, prisma, minimal) or sql
// (postgresql).
type Target struct {
	Kind    string
	Dialect string
}

func (t Target) String() string { return t.Kind + "+" + t.Dialect }

// ParseTarget reads a target as OPA's options.targetDialects names it:
// "ucast+all", "ucast+prisma", "ucast+minimal" or "sql+postgresql".
func ParseTarget(s string) (Target, error) {
	kind, dialect, _ := strings.Cut(s, "+")
	t := Target{Kind: kind, Dialect: dialect}
	if !t.supported() {
		return t, fmt.Errorf("%q is not a target verdict translates to (ucast+all, ucast+prisma, ucast+minimal, sql+postgresql)", s)
	}
	return t, nil
}

func (t Target) supported() bool {
	switch t.Kind {
	case TargetUCAST:
		return t.Dialect == DialectAll || t.Dialect == DialectPrisma || t.Dialect == DialectMinimal
	case TargetSQL:
		return t.Dialect == DialectPostgreSQL
	}
	return false
}

// The columns of a filter, before mappings rename them.
const (
	Table               = "resource"
	ColumnOwner         = "owner"
	ColumnUserCode      = "user_code"
	ColumnResourceGroup = "resource_group"
)

// UnsupportedError is a plan that the target cannot express exactly. The
// filter is refused rather than widened or narrowed.
type UnsupportedError struct {
	Target  Target
	Message string
}

func (e *UnsupportedError) Error() string { return e.Target.String() + ": " + e.Message }

// MappingError is a targetSQLTableMappings entry verdict cannot use.
type MappingError struct {
	Field   string // e.g. targetSQLTableMappings.postgresql.resource.owner
	Message string
}

func (e *MappingError) Error() string { return e.Field + ": " + e.Message }

// Translate turns a plan into the target's query: a UCAST tree
// (map[string]any, {} when every object passes), a SQL WHERE clause
// (string, "" when every object passes), or nil when no object passes.
// mappings is OPA's options.targetSQLTableMappings (may be nil).
func Translate(p *decision.Plan, t Target, mappings map[string]any) (any, error) {
	if !t.supported() {
		return nil, &UnsupportedError{Target: t, Message: "not a target verdict translates to"}
	}
	cols, err := ResolveColumns(mappings, t)
	if err != nil {
		return nil, err
	}
	n, err := fromPlan(p, cols.ResourceGroup != "")
	if err != nil {
		return nil, err
	}
	if t.Kind == TargetSQL {
		n = normalize(n)
		if n.op == opFalse {
			return nil, nil
		}
		return renderSQL(n, cols), nil
	}
	if n, err = expandGlobs(n, t); err != nil {
		return nil, err
	}
	n = normalize(n)
	if n.op == opFalse {
		return nil, nil
	}
	if t.Dialect == DialectMinimal {
		if n, err = lowerToMinimal(n, t); err != nil {
			return nil, err
		}
	}
	return renderUCAST(n, cols), nil
}

// Columns are the qualified names a filter uses for its fields.
type Columns struct {
	Owner, UserCode string
	// ResourceGroup is "" unless the mappings name a column for it: a
	// table of objects usually has none, and the plan's groups are then
	// matched through the user codes of the objects the bundle assigns.
	ResourceGroup string
}

// ResolveColumns applies OPA's targetSQLTableMappings to the fields, as
// OPA selects them: the dialect's entry, else the target's, else the whole
// mapping. Only the table "resource" is read; its entry may hold "$self"
// (the table's name) and owner, user_code and resource_group (column
// names), all strings.
func ResolveColumns(mappings map[string]any, t Target) (Columns, error) {
	table, renamed := Table, map[string]string{}
	m, where := mappings, "targetSQLTableMappings"
	if d, ok := mappings[t.Dialect].(map[string]any); ok {
		m, where = d, where+"."+t.Dialect
	} else if k, ok := mappings[t.Kind].(map[string]any); ok {
		m, where = k, where+"."+t.Kind
	}
	if raw, ok := m[Table]; ok {
		entry, ok := raw.(map[string]any)
		if !ok {
			return Columns{}, &MappingError{Field: where + "." + Table, Message: "want an object of column names"}
		}
		for k, v := range entry {
			name, ok := v.(string)
			if !ok || name == "" {
				return Columns{}, &MappingError{Field: where + "." + Table + "." + k, Message: "want a non-empty string"}
			}
			switch k {
			case "$self":
				table = name
			case ColumnOwner, ColumnUserCode, ColumnResourceGroup:
				renamed[k] = name
			default:
				return Columns{}, &MappingError{Field: where + "." + Table + "." + k,
					Message: "not a field of verdict's filters: $self (the table), owner, user_code or resource_group"}
			}
		}
	}
	col := func(c string) string { return table + "." + cmpOr(renamed[c], c) }
	cols := Columns{Owner: col(ColumnOwner), UserCode: col(ColumnUserCode)}
	if _, ok := renamed[ColumnResourceGroup]; ok {
		cols.ResourceGroup = col(ColumnResourceGroup)
	}
	return cols, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Operators of the filter tree. Field operators are UCAST's names.
const (
	opTrue  = "true"
	opFalse = "false"
	opAnd   = "and"
	opOr    = "or"
	opNot   = "not"
	opEq    = "eq"
	opNe    = "ne"
	opIn    = "in"
	opStart = "startswith"
	opEnd   = "endswith"
	// opGlob is a user-code or group pattern whose only wildcard is "*":
	// SQL LIKE, or startswith/endswith for UCAST (expandGlobs).
	opGlob = "glob"
)

// node is a filter condition on the columns (field: ColumnOwner,
// ColumnUserCode or ColumnResourceGroup).
type node struct {
	op    string
	field string
	value any // string, or []string for opIn
	kids  []node
}

var (
	always = node{op: opTrue}
	never  = node{op: opFalse}
)

func field(op, f string, v any) node { return node{op: op, field: f, value: v} }

// fromPlan is the plan as a condition: filter and not exclusion.
func fromPlan(p *decision.Plan, groupColumn bool) (node, error) {
	switch p.Kind {
	case "all":
		return always, nil
	case "none":
		return never, nil
	case "some":
	default:
		return node{}, fmt.Errorf("plan kind %q is not all, none or some", p.Kind)
	}
	keep, err := criteria(p.Filter, "filter", groupColumn)
	if err != nil {
		return node{}, err
	}
	drop, err := criteria(p.Exclude, "exclude", groupColumn)
	if err != nil {
		return node{}, err
	}
	return node{op: opAnd, kids: []node{keep, {op: opNot, kids: []node{drop}}}}, nil
}

// criteria is a plan's filter or exclusion: any of its criteria.
func criteria(c map[string]any, name string, groupColumn bool) (node, error) {
	for k := range c {
		if !slices.Contains(criterionOrder, k) {
			return node{}, fmt.Errorf("plan %s: unknown criterion %q", name, k)
		}
	}
	var any_ []node
	for _, k := range criterionOrder {
		v, ok := c[k]
		if !ok {
			continue
		}
		list, _ := v.([]string)
		switch k {
		case "all":
			if b, _ := v.(bool); b {
				any_ = append(any_, always)
			}
		case "owner":
			s, _ := v.(string)
			if s != "" {
				any_ = append(any_, field(opEq, ColumnOwner, s))
			}
		case "user_codes":
			if len(list) > 0 {
				any_ = append(any_, field(opIn, ColumnUserCode, list))
			}
		case "user_code_prefixes":
			for _, p := range list {
				any_ = append(any_, field(opGlob, ColumnUserCode, p+"*"))
			}
		case "user_code_patterns":
			for _, p := range list {
				any_ = append(any_, field(opGlob, ColumnUserCode, p))
			}
		case "resource_groups":
			// Without a group column, the plan has already added the user
			// codes of the objects the bundle assigns to these groups.
			if groupColumn && len(list) > 0 {
				any_ = append(any_, field(opIn, ColumnResourceGroup, list))
			}
		case "resource_group_patterns":
			if groupColumn {
				for _, p := range list {
					any_ = append(any_, field(opGlob, ColumnResourceGroup, p))
				}
			}
		}
	}
	return node{op: opOr, kids: any_}, nil
}

// criterionOrder is the order a filter lists a plan's criteria in.
var criterionOrder = []string{"all", "owner", "user_codes", "user_code_prefixes", "user_code_patterns", "resource_groups", "resource_group_patterns"}

// normalize simplifies constants away and pushes negations down to the
// field conditions (negation normal form), as OPA's filters have them:
// "not" only ever wraps one field condition, and ne is not-eq.
func normalize(n node) node { return simplify(nnf(n, false)) }

func nnf(n node, negate bool) node {
	switch n.op {
	case opTrue, opFalse:
		if negate {
			return node{op: map[string]string{opTrue: opFalse, opFalse: opTrue}[n.op]}
		}
		return n
	case opNot:
		return nnf(n.kids[0], !negate)
	case opAnd, opOr:
		op := n.op
		if negate {
			op = map[string]string{opAnd: opOr, opOr: opAnd}[op]
		}
		kids := make([]node, len(n.kids))
		for i, k := range n.kids {
			kids[i] = nnf(k, negate)
		}
		return node{op: op, kids: kids}
	}
	if !negate {
		return n
	}
	switch n.op {
	case opEq:
		return field(opNe, n.field, n.value)
	case opNe:
		return field(opEq, n.field, n.value)
	}
	return node{op: opNot, kids: []node{n}}
}

// simplify drops true from and and false from or, flattens nested ands and
// ors, and collapses one-child compounds, in-lists of one and constants.
func simplify(n node) node {
	switch n.op {
	case opAnd, opOr:
		unit, zero := opTrue, opFalse // and: drop true, false wins
		if n.op == opOr {
			unit, zero = opFalse, opTrue
		}
		var kids []node
		for _, k := range n.kids {
			k = simplify(k)
			switch {
			case k.op == unit:
				continue
			case k.op == zero:
				return node{op: zero}
			case k.op == n.op:
				kids = append(kids, k.kids...)
			default:
				kids = append(kids, k)
			}
		}
		switch len(kids) {
		case 0:
			return node{op: unit}
		case 1:
			return kids[0]
		}
		return node{op: n.op, kids: kids}
	case opNot:
		k := simplify(n.kids[0])
		switch k.op {
		case opTrue:
			return never
		case opFalse:
			return always
		case opEq:
			return field(opNe, k.field, k.value)
		case opNe:
			return field(opEq, k.field, k.value)
		}
		return node{op: opNot, kids: []node{k}}
	case opIn:
		if list := n.value.([]string); len(list) == 1 {
			return field(opEq, n.field, list[0])
		}
	case opGlob:
		if n.value == "*" {
			return always
		}
	}
	return n
}

// expandGlobs replaces each pattern by UCAST's string operators. A
// pattern p*s (one "*") matches exactly the codes that start with p, end
// with s and are not one of the finitely many codes shorter than p and s
// together in which they overlap; a pattern with more "*" cannot be
// expressed by startswith and endswith and is refused.
func expandGlobs(n node, t Target) (node, error) {
	switch n.op {
	case opAnd, opOr, opNot:
		out := node{op: n.op, kids: make([]node, len(n.kids))}
		for i, k := range n.kids {
			var err error
			if out.kids[i], err = expandGlobs(k, t); err != nil {
				return node{}, err
			}
		}
		return out, nil
	case opGlob:
	default:
		return n, nil
	}
	pattern := n.value.(string)
	parts := strings.Split(pattern, "*")
	switch len(parts) {
	case 1:
		return field(opEq, n.field, pattern), nil
	case 2:
	default:
		return node{}, &UnsupportedError{Target: t, Message: fmt.Sprintf(
			"the %s pattern %q has more than one *, which UCAST's startswith and endswith cannot express exactly; ask for sql+postgresql, or POST /v1/plan",
			n.field, pattern)}
	}
	prefix, suffix := parts[0], parts[1]
	var all []node
	if prefix != "" {
		all = append(all, field(opStart, n.field, prefix))
	}
	if suffix != "" {
		all = append(all, field(opEnd, n.field, suffix))
	}
	if overlaps := overlapping(prefix, suffix); len(overlaps) > 0 {
		all = append(all, node{op: opNot, kids: []node{field(opIn, n.field, overlaps)}})
	}
	return node{op: opAnd, kids: all}, nil
}

// overlapping lists the strings that start with prefix and end with suffix
// but are shorter than both together, which prefix*suffix does not match.
func overlapping(prefix, suffix string) []string {
	var out []string
	for l := max(len(prefix), len(suffix)); l < len(prefix)+len(suffix); l++ {
		// The string of length l is prefix followed by the end of suffix;
		// it exists when suffix agrees with prefix where they overlap.
		start := l - len(suffix)
		if prefix[start:] == suffix[:len(prefix)-start] {
			out = append(out, prefix+suffix[len(prefix)-start:])
		}
	}
	return out
}

// lowerToMinimal rewrites a normalized tree into UCAST minimal, which has
// eq, ne and the comparisons, and "and" and "or", but neither "in", "not"
// nor the string operators: in becomes an or of eq, not-in an and of ne.
func lowerToMinimal(n node, t Target) (node, error) {
	switch n.op {
	case opAnd, opOr:
		out := node{op: n.op, kids: make([]node, len(n.kids))}
		for i, k := range n.kids {
			var err error
			if out.kids[i], err = lowerToMinimal(k, t); err != nil {
				return node{}, err
			}
		}
		return simplify(out), nil
	case opEq, opNe, opTrue:
		return n, nil
	case opIn:
		return inAs(opOr, opEq, n), nil
	case opNot:
		if k := n.kids[0]; k.op == opIn {
			return inAs(opAnd, opNe, k), nil
		}
	}
	what, on := n.op, n.field
	if n.op == opNot {
		what, on = "not "+n.kids[0].op, n.kids[0].field
	}
	return node{}, &UnsupportedError{Target: t, Message: fmt.Sprintf(
		"the filter needs %s on %s, which UCAST minimal does not have (eq, ne, lt, lte, gt, gte, and, or); ask for ucast+prisma, ucast+all or sql+postgresql",
		what, on)}
}

func inAs(compound, op string, n node) node {
	list := n.value.([]string)
	kids := make([]node, len(list))
	for i, v := range list {
		kids[i] = field(op, n.field, v)
	}
	return simplify(node{op: compound, kids: kids})
}

// errNoColumn is a field without a column (cannot happen: fromPlan leaves
// group criteria out without a group column).
var errNoColumn = errors.New("datafilter: a condition on a field without a column")

func (c Columns) of(field string) string {
	switch field {
	case ColumnOwner:
		return c.Owner
	case ColumnUserCode:
		return c.UserCode
	case ColumnResourceGroup:
		if c.ResourceGroup != "" {
			return c.ResourceGroup
		}
	}
	panic(errNoColumn)
}

// renderUCAST is the tree as OPA's UCAST JSON: {"type": "field",
// "operator", "field", "value"} and {"type": "compound", "operator",
// "value": [...]}; {} for the unconditional filter.
func renderUCAST(n node, cols Columns) map[string]any {
	switch n.op {
	case opTrue:
		return map[string]any{}
	case opAnd, opOr, opNot:
		kids := make([]any, len(n.kids))
		for i, k := range n.kids {
			kids[i] = renderUCAST(k, cols)
		}
		return map[string]any{"type": "compound", "operator": n.op, "value": kids}
	}
	var v any = n.value
	if list, ok := v.([]string); ok {
		items := make([]any, len(list))
		for i, s := range list {
			items[i] = s
		}
		v = items
	}
	return map[string]any{"type": "field", "operator": n.op, "field": cols.of(n.field), "value": v}
}
