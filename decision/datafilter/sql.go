package datafilter

import "strings"

// renderSQL is the tree as a PostgreSQL WHERE clause, in the form OPA's
// sql+postgresql target writes ("WHERE " and the condition; "" for the
// unconditional filter). Values are E'…' literals with \ and ' escaped;
// columns are quoted unless they are plain identifiers. User codes and
// resource groups compare in lower case (lower(column)), as /v1/decide
// compares FRNs and group codes; patterns are LIKE with \ as the escape.
// Negations are NULL-safe (IS DISTINCT FROM, IS NOT TRUE), unlike SQL's
// NOT and <>: an object without a group is not excluded by a group
// criterion, as /v1/decide does not exclude it.
func renderSQL(n node, cols Columns) string {
	if n.op == opTrue {
		return ""
	}
	var b strings.Builder
	b.WriteString("WHERE ")
	writeSQL(&b, n, cols)
	return b.String()
}

// writeSQL writes a condition; compounds are parenthesized, as OPA writes
// them.
func writeSQL(b *strings.Builder, n node, cols Columns) {
	switch n.op {
	case opAnd, opOr:
		b.WriteByte('(')
		for i, k := range n.kids {
			if i > 0 {
				b.WriteString(map[string]string{opAnd: " AND ", opOr: " OR "}[n.op])
			}
			writeSQL(b, k, cols)
		}
		b.WriteByte(')')
		return
	case opNot:
		// NULL-safe: an object without a value is not excluded by a
		// condition on it, as /v1/decide does not exclude it.
		b.WriteByte('(')
		writeSQL(b, n.kids[0], cols)
		b.WriteString(") IS NOT TRUE")
		return
	case opTrue:
		b.WriteString("TRUE")
		return
	case opFalse:
		b.WriteString("FALSE")
		return
	}
	col := quoteColumn(cols.of(n.field))
	if n.field != ColumnOwner {
		col = "lower(" + col + ")"
	}
	b.WriteString(col)
	switch n.op {
	case opEq:
		b.WriteString(" = ")
		b.WriteString(literal(n.value.(string)))
	case opNe:
		b.WriteString(" IS DISTINCT FROM ")
		b.WriteString(literal(n.value.(string)))
	case opIn:
		b.WriteString(" IN (")
		for i, v := range n.value.([]string) {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(literal(v))
		}
		b.WriteByte(')')
	case opGlob:
		b.WriteString(" LIKE ")
		b.WriteString(literal(likePattern(n.value.(string))))
	default:
		panic("datafilter: no SQL for operator " + n.op)
	}
}

// likePattern is a pattern whose only wildcard is "*" as a LIKE pattern
// with \ as the escape character (PostgreSQL's default): \, % and _ stand
// for themselves, each * is %.
func likePattern(glob string) string {
	var b strings.Builder
	for _, r := range glob {
		switch r {
		case '\\', '%', '_':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '*':
			b.WriteByte('%')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// literal is s as a PostgreSQL escape string constant: E'…' with \ and '
// escaped by a backslash, as OPA writes them.
func literal(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "E'" + r.Replace(s) + "'"
}

// quoteColumn leaves each dot-separated part of a column that is a plain
// identifier (a letter or _, then letters, digits or _) alone, as OPA does,
// and double-quotes the others (doubling a " inside).
func quoteColumn(col string) string {
	parts := strings.Split(col, ".")
	for i, p := range parts {
		if !plainIdentifier(p) {
			parts[i] = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
		}
	}
	return strings.Join(parts, ".")
}

func plainIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}
