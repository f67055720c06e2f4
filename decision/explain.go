package decision

import (
	"fmt"
	"strings"

	"github.com/verdict-authz/verdict/loader/acl"
)

// Explain writes a decision for a person: the outcome, the layer that
// decided, and for every reason that names a statement, the statement as
// the bundle wrote it.
func (g *Generation) Explain(d *Decision) string {
	var b strings.Builder
	verdict := "DENY"
	if d.Allow {
		verdict = "ALLOW"
	}
	fmt.Fprintf(&b, "%s  (status %d, visibility %s)\n", verdict, d.Status, d.Visibility)
	fmt.Fprintf(&b, "tenant: %s\naction: %s\n", d.Tenant, orNone(d.Action))
	if len(d.Fields) > 0 {
		fmt.Fprintf(&b, "visible fields: %s\n", strings.Join(d.Fields, ", "))
	}
	decidedBy := "every layer passed"
	for _, r := range d.Reasons {
		if r.Effect == "deny" {
			decidedBy = fmt.Sprintf("the %s layer denied (%s)", r.Layer, r.Code)
			break
		}
	}
	if d.Allow && len(d.Reasons) > 0 {
		last := d.Reasons[0]
		decidedBy = fmt.Sprintf("the %s layer allowed (%s)", last.Layer, last.Code)
	}
	fmt.Fprintf(&b, "decided by: %s\n", decidedBy)
	var tenant *acl.Tenant
	if g != nil && g.Facts != nil {
		if rec, err := g.Facts.Read().Tenant(d.Tenant); err == nil && rec != nil {
			tenant = rec.Tenant
		}
	}
	b.WriteString("reasons:\n")
	for i, r := range d.Reasons {
		fmt.Fprintf(&b, "  %d. [%s] %s %s", i+1, r.Layer, r.Effect, r.Code)
		if r.SoajsCode != 0 {
			fmt.Fprintf(&b, " (SOAJS %d)", r.SoajsCode)
		}
		fmt.Fprintf(&b, "\n     %s\n", r.Message)
		if r.ResourceGroup != "" {
			fmt.Fprintf(&b, "     resource group: %s\n", r.ResourceGroup)
		}
		if r.Policy != "" && r.Statement != nil {
			fmt.Fprintf(&b, "     policy %q, statement %d", r.Policy, *r.Statement)
			if s := findStatement(tenant, r.Policy, *r.Statement); s != nil {
				b.WriteString(":\n")
				writeStatement(&b, s, "       ")
			} else {
				b.WriteString("\n")
			}
		}
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func findStatement(t *acl.Tenant, policy string, index int) *acl.Statement {
	if t == nil {
		return nil
	}
	p := t.Policies[policy]
	if p == nil {
		return nil
	}
	for _, s := range p.Statements {
		if s.Index == index {
			return s
		}
	}
	return nil
}

func writeStatement(b *strings.Builder, s *acl.Statement, indent string) {
	actions := make([]string, len(s.Actions))
	for i, a := range s.Actions {
		actions[i] = a.Raw
	}
	resources := make([]string, len(s.Resources))
	for i, r := range s.Resources {
		resources[i] = r.Raw
	}
	effect := "Allow"
	if s.Effect == acl.Deny {
		effect = "Deny"
	}
	fmt.Fprintf(b, "%sEffect: %s\n%sAction: %s\n%sResource: %s\n", indent, effect, indent, strings.Join(actions, ", "), indent, strings.Join(resources, ", "))
	if len(s.Principals) > 0 && !(len(s.Principals) == 1 && s.Principals[0] == "*") {
		fmt.Fprintf(b, "%sPrincipal: %s\n", indent, strings.Join(s.Principals, ", "))
	}
	if len(s.Conditions) > 0 {
		fmt.Fprintf(b, "%sCondition: %s\n", indent, strings.Join(s.Conditions, ", "))
	}
}
