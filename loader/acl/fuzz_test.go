package acl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/verdict-authz/verdict/loader/acl"
)

// Fuzz targets for the parsing and validation of bundle data. Their seed
// corpora are under testdata/fuzz/<target>/; run one with, e.g.,
//
//	go test ./loader/acl/ -run '^$' -fuzz '^FuzzParse$' -fuzztime 90s
//
// test/FUZZING.md records how long each ran and what it found.

// --- OPA's glob.match, as the engine's Rego calls it --------------------------

var (
	globOnce  sync.Once
	globQuery rego.PreparedEvalQuery
	globErr   error
)

// opaGlobMatch evaluates glob.match(pattern, delimiters, s) with OPA, with
// builtin errors strict so that a pattern OPA cannot compile is reported
// instead of being quietly undefined (which the engine, not strict, would
// read as "no match" - silently dropping a Deny). delimiters nil is Rego's
// null (no delimiters), as the engine passes for resources.
func opaGlobMatch(t *testing.T, pattern string, delimiters []string, s string) bool {
	t.Helper()
	globOnce.Do(func() {
		globQuery, globErr = rego.New(
			rego.Query(`x := glob.match(input.p, input.d, input.s)`),
			rego.StrictBuiltinErrors(true),
		).PrepareForEval(context.Background())
	})
	if globErr != nil {
		t.Fatal(globErr)
	}
	var d any // JSON null
	if delimiters != nil {
		d = delimiters
	}
	rs, err := globQuery.Eval(context.Background(), rego.EvalInput(map[string]any{"p": pattern, "d": d, "s": s}))
	if err != nil {
		t.Fatalf("glob.match(%q, %v, %q): %v", pattern, delimiters, s, err)
	}
	if len(rs) != 1 {
		t.Fatalf("glob.match(%q, %v, %q): %d results", pattern, delimiters, s, len(rs))
	}
	return rs[0].Bindings["x"] == true
}

// --- action patterns -------------------------------------------------------------

// isActionText reports whether s is 1-3 non-empty parts of the characters
// README "How a decision is made" allows in an action pattern.
func isActionText(s string) bool {
	parts := strings.Split(s, ":")
	if len(parts) > 3 {
		return false
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
		for _, r := range p {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.*", r)) {
				return false
			}
		}
	}
	return true
}

var starRun = regexp.MustCompile(`\*+`)

// specActionMatch is the action matching of README "How a decision is made", written out plainly: case is
// ignored, parts are compared one by one, "*" inside a part matches any
// characters of that part, a last part of exactly "*" matches one or more
// remaining parts, and otherwise the part counts must agree. A run of stars
// is one star (verdict's reading, see acl.ParseActionPattern).
func specActionMatch(pattern, action string) bool {
	pp := strings.Split(strings.ToLower(starRun.ReplaceAllString(pattern, "*")), ":")
	ap := strings.Split(strings.ToLower(action), ":")
	if pp[len(pp)-1] == "*" {
		if len(ap) < len(pp) {
			return false
		}
		ap = ap[:len(pp)-1]
		pp = pp[:len(pp)-1]
	}
	if len(pp) != len(ap) {
		return false
	}
	for i, p := range pp {
		pieces := strings.Split(p, "*")
		for j := range pieces {
			pieces[j] = regexp.QuoteMeta(pieces[j])
		}
		if !regexp.MustCompile(`^` + strings.Join(pieces, `[^:]*`) + `$`).MatchString(ap[i]) {
			return false
		}
	}
	return true
}

// FuzzParseActionPattern checks ParseActionPattern against README "How a decision is made": it
// accepts exactly the well-formed patterns; an accepted pattern's Glob is the
// lower-cased pattern with "**" only as a whole last part; the Glob, as the
// engine evaluates it with OPA, matches exactly the actions the SPEC says;
// and a matching pattern is indexed under one of the action's index keys;
// its Matcher (which verdict check uses to find Denies that match nothing)
// agrees with OPA's glob.match.
func FuzzParseActionPattern(f *testing.F) {
	for _, s := range [][2]string{
		{"finmars:Portfolio:list", "finmars:Portfolio:list"},
		{"finmars:Portfolio:*", "finmars:portfolio:partial_update"},
		{"finmars:*", "finmars:Portfolio"},
		{"*", "a"},
		{"finmars:*:list_*", "finmars:Portfolio:list_light"},
		{"**:list", "finmars:Portfolio:list"},
		{"finmars:Port**", "finmars:Portfolio:list"},
		{"a.b-c_d", "A.B-C_D"},
		{"*:*:*", "a:b:c"},
		{"f:*x*y", "f:axby"},
		{"finmars:PortfolioType:list", "finmars:Portfolio:list"},
		{"a:b:c:d", "a:b:c"},
		{"a::b", "a:b"},
		{"a b", "a"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, action string) {
		p, err := acl.ParseActionPattern(pattern)
		if (err == nil) != isActionText(pattern) {
			t.Fatalf("ParseActionPattern(%q): err = %v, but the SPEC says well-formed = %v", pattern, err, isActionText(pattern))
		}
		verr := acl.ValidateAction(pattern)
		if (verr == nil) != (err == nil && !strings.Contains(pattern, "*")) {
			t.Fatalf("ValidateAction(%q) = %v, want it to accept exactly the patterns without *", pattern, verr)
		}
		if err != nil {
			return
		}
		if p.Raw != pattern {
			t.Fatalf("Raw = %q, want %q", p.Raw, pattern)
		}
		if p.Glob != strings.ToLower(p.Glob) {
			t.Fatalf("Glob %q is not lower case", p.Glob)
		}
		// "**" (any run of parts) may only be a whole last part.
		if i := strings.Index(p.Glob, "**"); i >= 0 {
			if i != len(p.Glob)-2 || (i > 0 && p.Glob[i-1] != ':') {
				t.Fatalf("pattern %q: Glob %q holds ** other than as a whole last part", pattern, p.Glob)
			}
		}
		if strings.Count(p.Glob, ":") != strings.Count(pattern, ":") {
			t.Fatalf("pattern %q: Glob %q has another number of parts", pattern, p.Glob)
		}
		lowered := strings.ToLower(pattern)
		if p.IndexKey != "" && !strings.HasPrefix(lowered, p.IndexKey+":") && lowered != p.IndexKey {
			t.Fatalf("pattern %q: IndexKey %q is not a run of its leading parts", pattern, p.IndexKey)
		}
		if strings.Contains(p.IndexKey, "*") {
			t.Fatalf("pattern %q: IndexKey %q holds a *", pattern, p.IndexKey)
		}

		// The pattern with its stars filled in is an action it must match.
		filled := strings.ReplaceAll(pattern, "*", "x")
		check := func(action string) {
			if acl.ValidateAction(action) != nil {
				return
			}
			want := specActionMatch(pattern, action)
			got := opaGlobMatch(t, p.Glob, []string{":"}, strings.ToLower(action))
			if got != want {
				t.Fatalf("pattern %q (Glob %q) on action %q: OPA glob.match = %v, SPEC says %v", pattern, p.Glob, action, got, want)
			}
			if m := p.Matcher()(strings.ToLower(action)); m != got {
				t.Fatalf("pattern %q (Glob %q) on action %q: Matcher = %v, OPA glob.match = %v", pattern, p.Glob, action, m, got)
			}
			if got && !slices.Contains(acl.ActionIndexKeys(strings.ToLower(action), nil), p.IndexKey) {
				t.Fatalf("pattern %q matches %q but its IndexKey %q is not among the action's keys", pattern, action, p.IndexKey)
			}
		}
		if !specActionMatch(pattern, filled) {
			t.Fatalf("SPEC reading: pattern %q does not match itself filled in (%q)", pattern, filled)
		}
		check(filled)
		check(action)
	})
}

// --- FRNs and resource patterns -------------------------------------------------

// specFRN is the SPEC's FRN: "frn:finmars:" (any case) plus three non-empty
// parts, the last of which may contain ":", in printable ASCII without
// spaces (0x21-0x7E; ":" is 0x3A).
var specFRN = regexp.MustCompile(`^[fF][rR][nN]:[fF][iI][nN][mM][aA][rR][sS]:([\x21-\x39\x3b-\x7e]+):([\x21-\x39\x3b-\x7e]+):([\x21-\x7e]+)$`)

// FuzzParseFRN checks that ParseFRN accepts exactly the SPEC's FRNs and
// splits them into their parts.
func FuzzParseFRN(f *testing.F) {
	for _, s := range []string{
		"frn:finmars:portfolios:portfolio:bonds-portfolio",
		"FRN:Finmars:Portfolios:Portfolio:Bonds",
		"frn:finmars:a:b:c:d",
		"frn:finmars:a:b:c::",
		"frn:finmars:iam:resourcegroup:portfolio_group_a",
		"frn:finmars:IAM:ResourceGroup:g",
		"frn:finmars::b:c",
		"frn:finmars:a:b:",
		"frn:finmars",
		"arn:aws:s3:::bucket",
		"frn:finmars:a:b:\n",
		"frn:finmars:a:b:c ",
		"frn:finmars:portfolios:portfolıo:x",
		"frn:finmars:a:b:\u212a",
		"frn:finmars:a:b:c\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		frn, err := acl.ParseFRN(s)
		m := specFRN.FindStringSubmatch(s)
		if (err == nil) != (m != nil) {
			t.Fatalf("ParseFRN(%q): err = %v, but the SPEC says well-formed = %v", s, err, m != nil)
		}
		if err != nil {
			return
		}
		if frn.App != m[1] || frn.Model != m[2] || frn.UserCode != m[3] {
			t.Fatalf("ParseFRN(%q) = %+v, want {%s %s %s}", s, frn, m[1], m[2], m[3])
		}
		rg := strings.EqualFold(frn.App, "iam") && strings.EqualFold(frn.Model, "resourcegroup")
		if frn.IsResourceGroup() != rg {
			t.Fatalf("ParseFRN(%q).IsResourceGroup() = %v", s, frn.IsResourceGroup())
		}
	})
}

// specUserCodeMatch is the SPEC's reading of a user code (or group code)
// with "*": each "*" matches any characters, everything else literally,
// ignoring case.
func specUserCodeMatch(pattern, s string) bool {
	pieces := strings.Split(strings.ToLower(pattern), "*")
	for i := range pieces {
		pieces[i] = regexp.QuoteMeta(pieces[i])
	}
	return regexp.MustCompile(`(?s)^` + strings.Join(pieces, `.*`) + `$`).MatchString(strings.ToLower(s))
}

// FuzzParseResourcePattern checks statement resources: "*", object FRNs with
// "*" only in the user code, and resource-group FRNs. An accepted pattern
// must compile as an OPA glob (a pattern OPA cannot compile would be quietly
// undefined in the engine and make a Deny miss) and must cover exactly the
// objects (or groups) the SPEC says, as the engine evaluates it.
func FuzzParseResourcePattern(f *testing.F) {
	for _, s := range [][2]string{
		{"*", "frn:finmars:a:b:c"},
		{"frn:finmars:portfolios:portfolio:bonds-portfolio", "frn:finmars:portfolios:portfolio:BONDS-portfolio"},
		{"frn:finmars:portfolios:portfolio:bonds*", "frn:finmars:portfolios:portfolio:bonds-2"},
		{"frn:finmars:portfolios:portfolio:a[1]*", "frn:finmars:portfolios:portfolio:a[1]x"},
		{"frn:finmars:portfolios:portfolio:{a,b}*", "frn:finmars:portfolios:portfolio:a"},
		{`frn:finmars:p:p:a\*`, `frn:finmars:p:p:a\b`},
		{"frn:finmars:p:p:?*", "frn:finmars:p:p:x"},
		{"frn:finmars:iam:resourcegroup:group_*", "group_a"},
		{"frn:finmars:iam:resourcegroup:Group_A", "group_a"},
		{"frn:finmars:a*:b:c", "frn:finmars:ab:b:c"},
		{"frn:finmars:a:b:c:*", "frn:finmars:a:b:c:d:e"},
		{"frn:finmars:p:p:!*", "frn:finmars:p:p:!x"},
		{"frn:finmars:p:p:[!a]*", "frn:finmars:p:p:[!a]x"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, s, probe string) {
		p, err := acl.ParseResourcePattern(s)
		if s == "*" {
			if err != nil || p.Kind != acl.ResourceKindAny {
				t.Fatalf(`ParseResourcePattern("*") = %+v, %v`, p, err)
			}
			return
		}
		frn, ferr := acl.ParseFRN(s)
		wellFormed := ferr == nil && !strings.Contains(frn.App, "*") && !strings.Contains(frn.Model, "*")
		if (err == nil) != wellFormed {
			t.Fatalf("ParseResourcePattern(%q): err = %v, but the SPEC says well-formed = %v", s, err, wellFormed)
		}
		if err != nil {
			return
		}
		if p.Raw != s {
			t.Fatalf("Raw = %q, want %q", p.Raw, s)
		}
		if p.Literal == strings.Contains(s, "*") {
			t.Fatalf("ParseResourcePattern(%q): Literal = %v", s, p.Literal)
		}
		var raw string // what the pattern is matched against: an FRN or a group code
		switch p.Kind {
		case acl.ResourceKindGroup:
			if !frn.IsResourceGroup() {
				t.Fatalf("ParseResourcePattern(%q): kind group for an object FRN", s)
			}
			raw = frn.UserCode
		case acl.ResourceKindObject:
			if frn.IsResourceGroup() {
				t.Fatalf("ParseResourcePattern(%q): kind object for a resource-group FRN", s)
			}
			raw = s
		default:
			t.Fatalf("ParseResourcePattern(%q): kind %q", s, p.Kind)
		}
		covers := func(candidate string) bool {
			lc := strings.ToLower(candidate)
			if p.Literal {
				return p.Pattern == lc
			}
			got := opaGlobMatch(t, p.Pattern, nil, lc)
			if m := p.Matcher()(lc); m != got {
				t.Fatalf("pattern %q (Pattern %q) on %q: Matcher = %v, OPA glob.match = %v", s, p.Pattern, lc, m, got)
			}
			return got
		}
		if p.Literal && p.Pattern != strings.ToLower(raw) {
			t.Fatalf("ParseResourcePattern(%q): literal Pattern %q, want %q", s, p.Pattern, strings.ToLower(raw))
		}
		// Every pattern covers itself, and itself with its stars filled in.
		for _, c := range []string{raw, strings.ReplaceAll(raw, "*", ""), strings.ReplaceAll(raw, "*", "Zq:*")} {
			if !covers(c) {
				t.Fatalf("pattern %q (Pattern %q) does not cover %q", s, p.Pattern, c)
			}
		}
		if got, want := covers(probe), specUserCodeMatch(raw, probe); got != want {
			t.Fatalf("pattern %q (Pattern %q) on %q: covers = %v, SPEC says %v", s, p.Pattern, probe, got, want)
		}
	})
}

// --- whole documents ----------------------------------------------------------------

// FuzzParse feeds Parse arbitrary JSON documents (the value of data.verdict).
// Parse must never panic, must not change its input, must report the same
// problems in the same order every time, and a document it accepts must be
// accepted again, identically, after a JSON round trip, and must hold only
// entries that pass the SPEC's checks (checkDocument).
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"catalog": ` + validCatalog + `, "tenants": {"acme": ` + validTenant + `}}`))
	f.Add([]byte(`{"tenants": {"acme": {"members": {"bob": {"roles": ["viwer"]}}}}}`))
	f.Add([]byte(`{"catalog": {"services": {"s": {"routes": [{"path": "/a/{id}", "viewset": "A"}]}}}}`))
	f.Add([]byte(`{"tenants": {"t": {"checks": [], "access_policies": {"p": {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tree, ok := decodeTree(data)
		if !ok {
			return
		}
		before, _ := json.Marshal(tree)
		var ps acl.Problems
		doc := acl.Parse(tree, nil, &ps)
		if doc == nil {
			t.Fatal("Parse returned nil")
		}
		if after, _ := json.Marshal(tree); !bytes.Equal(before, after) {
			t.Fatalf("Parse changed its input:\nbefore %s\nafter  %s", before, after)
		}
		var again acl.Problems
		doc2 := acl.Parse(tree, nil, &again)
		if !reflect.DeepEqual(problems(&ps), problems(&again)) || !reflect.DeepEqual(ps.Warnings(), again.Warnings()) {
			t.Fatalf("Parse is not deterministic:\n%v\n%v", problems(&ps), problems(&again))
		}
		if ps.Err() != nil {
			return
		}
		if !reflect.DeepEqual(doc, doc2) {
			t.Fatal("Parse of the same tree gave two documents")
		}
		checkDocument(t, doc)
		// Accepted once, accepted again the same after a round trip.
		tree2, ok := decodeTree(before)
		if !ok {
			t.Fatalf("the accepted tree does not round-trip: %s", before)
		}
		var ps3 acl.Problems
		doc3 := acl.Parse(tree2, nil, &ps3)
		if err := ps3.Err(); err != nil {
			t.Fatalf("accepted tree rejected after a round trip: %v", err)
		}
		if !reflect.DeepEqual(doc, doc3) || !reflect.DeepEqual(ps.Warnings(), ps3.Warnings()) {
			t.Fatal("accepted tree parsed differently after a round trip")
		}
	})
}

// decodeTree decodes JSON as OPA's bundle reader does (numbers kept as
// json.Number); only an object is a verdict data tree.
func decodeTree(data []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	m, ok := v.(map[string]any)
	return m, ok
}

func problems(ps *acl.Problems) []acl.Problem {
	if err := ps.Err(); err != nil {
		return err.(*acl.ValidationError).Problems
	}
	return nil
}

// checkDocument asserts what an accepted document guarantees the engine.
func checkDocument(t *testing.T, doc *acl.Document) {
	t.Helper()
	for name, svc := range doc.Catalog.Services {
		if svc.Name != name || name == "" || strings.ContainsAny(name, "/ *") {
			t.Fatalf("service %q: bad name", name)
		}
		for i, r := range svc.Routes {
			if err := acl.ValidatePathTemplate(r.Path); err != nil {
				t.Fatalf("service %s route %d: %v", name, i, err)
			}
			switch r.Kind {
			case acl.RouteCollection:
				if r.ViewSet == "" || r.Method != "" {
					t.Fatalf("service %s route %d: collection %+v", name, i, r)
				}
			case acl.RouteCustom:
				if !acl.IsHTTPMethod(r.Method) {
					t.Fatalf("service %s route %d: method %q", name, i, r.Method)
				}
				if err := acl.ValidateAction(r.Action); err != nil {
					t.Fatalf("service %s route %d: %v", name, i, err)
				}
			}
		}
	}
	checkACL := func(where string, a acl.ACL) {
		for svc, e := range a {
			if e == nil {
				t.Fatalf("%s: nil entry for %s", where, svc)
			}
			apis := []map[string]*acl.APIACL{e.APIs}
			for _, m := range e.Methods {
				apis = append(apis, m.APIs)
			}
			for _, set := range apis {
				for key, api := range set {
					if err := acl.ValidatePathTemplate(api.Template); err != nil || acl.APIKey(api.Template) != key {
						t.Fatalf("%s: service %s: API %q under key %q (%v)", where, svc, api.Template, key, err)
					}
				}
			}
		}
	}
	for code, pkg := range doc.Catalog.Packages {
		checkACL("package "+code, pkg.ACL)
	}
	for code, tn := range doc.Tenants {
		if tn.Code != code || len(tn.Checks) == 0 {
			t.Fatalf("tenant %q: code %q, checks %v", code, tn.Code, tn.Checks)
		}
		for _, c := range tn.Checks {
			if c != "iam" && c != "package" {
				t.Fatalf("tenant %s: check %q", code, c)
			}
		}
		keys := map[string]bool{}
		for name, app := range tn.Applications {
			if app.Package == "" {
				t.Fatalf("tenant %s application %s: no package", code, name)
			}
			checkACL("tenant "+code+" application "+name, app.ACL)
			for _, k := range app.Keys {
				if k.Key == "" || keys[k.Key] {
					t.Fatalf("tenant %s application %s: key %q empty or used twice", code, name, k.Key)
				}
				keys[k.Key] = true
			}
		}
		refs := func(what string, list []string, exists func(string) bool) {
			for _, r := range list {
				if !exists(r) {
					t.Fatalf("tenant %s: %s: dangling reference %q", code, what, r)
				}
			}
		}
		hasPolicy := func(c string) bool { return tn.Policies[c] != nil }
		hasRole := func(c string) bool { return tn.Roles[c] != nil }
		hasGroup := func(c string) bool { return tn.Groups[c] != nil }
		for name, m := range tn.Members {
			refs("member "+name+" roles", m.Roles, hasRole)
			refs("member "+name+" groups", m.Groups, hasGroup)
			refs("member "+name+" policies", m.Policies, hasPolicy)
			for pkg, a := range m.PackageACLs {
				checkACL("member "+name+" package "+pkg, a)
			}
			for key, a := range m.KeyACLs {
				if !keys[key] {
					t.Fatalf("tenant %s member %s: ACL for unknown key %q", code, name, key)
				}
				checkACL("member "+name+" key", a)
			}
		}
		for c, r := range tn.Roles {
			refs("role "+c, r.Policies, hasPolicy)
		}
		for c, g := range tn.Groups {
			refs("group "+c+" roles", g.Roles, hasRole)
			refs("group "+c+" policies", g.Policies, hasPolicy)
		}
		for c, rg := range tn.ResourceGroups {
			for _, a := range rg.Assignments {
				frn, err := acl.ParseFRN(a)
				if err != nil || frn.IsResourceGroup() || strings.Contains(a, "*") || a != strings.ToLower(a) {
					t.Fatalf("tenant %s resource group %s: assignment %q", code, c, a)
				}
			}
		}
		for pc, p := range tn.Policies {
			for _, s := range p.Statements {
				where := "tenant " + code + " policy " + pc
				if s.Effect != acl.Allow && s.Effect != acl.Deny {
					t.Fatalf("%s: effect %q", where, s.Effect)
				}
				if len(s.Actions) == 0 || len(s.Resources) == 0 || len(s.Principals) == 0 {
					t.Fatalf("%s statement %d: actions %d, resources %d, principals %d", where, s.Index, len(s.Actions), len(s.Resources), len(s.Principals))
				}
				for _, a := range s.Actions {
					again, err := acl.ParseActionPattern(a.Raw)
					if err != nil || again != a {
						t.Fatalf("%s: action %+v does not re-parse (%v)", where, a, err)
					}
				}
				for _, r := range s.Resources {
					again, err := acl.ParseResourcePattern(r.Raw)
					if err != nil || again != r {
						t.Fatalf("%s: resource %+v does not re-parse (%v)", where, r, err)
					}
					if r.Kind == acl.ResourceKindGroup && r.Literal {
						found := false
						for g := range tn.ResourceGroups {
							found = found || strings.ToLower(g) == r.Pattern
						}
						if !found {
							t.Fatalf("%s: resource group %q does not exist", where, r.Raw)
						}
					}
				}
				for _, pr := range s.Principals {
					switch {
					case pr == "*":
					case strings.HasPrefix(pr, "member:") && tn.Members[pr[len("member:"):]] != nil:
					case strings.HasPrefix(pr, "group:") && tn.Groups[pr[len("group:"):]] != nil:
					default:
						t.Fatalf("%s: principal %q names nobody", where, pr)
					}
				}
			}
		}
	}
}
