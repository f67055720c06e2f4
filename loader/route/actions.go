package route

import (
	"sort"
	"strings"
)

// Actions lists every action the table's routes map to, each once (actions
// compare ignoring case; the first route's spelling is kept), sorted by
// their lower-case form.
func (t *Table) Actions() []string {
	if t == nil {
		return nil
	}
	out := make([]string, 0, len(t.byAction))
	for _, m := range t.byAction {
		out = append(out, m.Action)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i]) < strings.ToLower(out[j]) })
	return out
}
