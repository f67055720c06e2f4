package acl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/verdict-authz/verdict/loader/acl"
)

// --- action patterns ---------------------------------------------------------

func TestParseActionPattern(t *testing.T) {
	tests := []struct {
		in       string
		glob     string
		indexKey string
	}{
		{"finmars:Portfolio:list", "finmars:portfolio:list", "finmars:portfolio:list"},
		{"finmars:Portfolio:*", "finmars:portfolio:**", "finmars:portfolio"},
		{"finmars:*", "finmars:**", "finmars"},
		{"*", "**", ""},
		{"finmars:*:list", "finmars:*:list", "finmars"},
		{"finmars:*:list_*", "finmars:*:list_*", "finmars"},
		{"finmars:Portfolio:*update", "finmars:portfolio:*update", "finmars:portfolio"},
		{"finmars:Portfolio:list_*", "finmars:portfolio:list_*", "finmars:portfolio"},
		{"*:Portfolio:list", "*:portfolio:list", ""},
		{"FINMARS:PortfolioType:LIST", "finmars:portfoliotype:list", "finmars:portfoliotype:list"},
		{"example03:buildName:get", "example03:buildname:get", "example03:buildname:get"},
		{"a.b-c_d", "a.b-c_d", "a.b-c_d"},
		{"svc:v1.2-beta", "svc:v1.2-beta", "svc:v1.2-beta"},
		{"finmars:Port*", "finmars:port*", "finmars"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := acl.ParseActionPattern(tt.in)
			if err != nil {
				t.Fatalf("ParseActionPattern(%q): unexpected error %v", tt.in, err)
			}
			if p.Raw != tt.in {
				t.Errorf("Raw = %q, want %q", p.Raw, tt.in)
			}
			if p.Glob != tt.glob {
				t.Errorf("Glob = %q, want %q", p.Glob, tt.glob)
			}
			if p.IndexKey != tt.indexKey {
				t.Errorf("IndexKey = %q, want %q", p.IndexKey, tt.indexKey)
			}
		})
	}
}

func TestParseActionPatternInvalid(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string
	}{
		{"", `action pattern "" has an empty part`},
		{"finmars::list", `action pattern "finmars::list" has an empty part`},
		{":Portfolio", `action pattern ":Portfolio" has an empty part`},
		{"finmars:", `action pattern "finmars:" has an empty part`},
		{"finmars:Portfolio:list:extra", `action pattern "finmars:Portfolio:list:extra" has 4 parts; at most 3 are allowed`},
		{"a:b:c:d:e", `action pattern "a:b:c:d:e" has 5 parts; at most 3 are allowed`},
		{"finmars:Port folio:list", `action pattern "finmars:Port folio:list" has the character ' '; only letters, digits, _ - . and * are allowed`},
		{"finmars:Portfolio:list?", `action pattern "finmars:Portfolio:list?" has the character '?'; only letters, digits, _ - . and * are allowed`},
		{"finmars/Portfolio", `action pattern "finmars/Portfolio" has the character '/'; only letters, digits, _ - . and * are allowed`},
		{"finmars:Pörtfolio", `action pattern "finmars:Pörtfolio" has the character 'ö'; only letters, digits, _ - . and * are allowed`},
		{"finmars:[ab]", `action pattern "finmars:[ab]" has the character '['; only letters, digits, _ - . and * are allowed`},
		{"finmars:{a,b}", `action pattern "finmars:{a,b}" has the character '{'; only letters, digits, _ - . and * are allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := acl.ParseActionPattern(tt.in)
			if err == nil {
				t.Fatalf("ParseActionPattern(%q) = %+v, want an error", tt.in, p)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error = %q\nwant    %q", err.Error(), tt.wantErr)
			}
		})
	}
}

func TestValidateAction(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string
	}{
		{"finmars:Portfolio:list", ""},
		{"example03:buildName:get", ""},
		{"list", ""},
		{"finmars:Portfolio:*", `action "finmars:Portfolio:*" must not contain *`},
		{"*", `action "*" must not contain *`},
		{"a:b:c:d", `action pattern "a:b:c:d" has 4 parts; at most 3 are allowed`},
		{"finmars::list", `action pattern "finmars::list" has an empty part`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			err := acl.ValidateAction(tt.in)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Errorf("ValidateAction(%q) = %q, want %q", tt.in, got, tt.wantErr)
			}
		})
	}
}

func TestActionIndexKeys(t *testing.T) {
	tests := []struct {
		action string
		want   []string
	}{
		{"finmars:portfolio:list", []string{"finmars:portfolio:list", "finmars:portfolio", "finmars", ""}},
		{"finmars:portfolio", []string{"finmars:portfolio", "finmars", ""}},
		{"list", []string{"list", ""}},
		{"example03:buildname:get", []string{"example03:buildname:get", "example03:buildname", "example03", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			if got := acl.ActionIndexKeys(tt.action, nil); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ActionIndexKeys(%q, nil) = %q, want %q", tt.action, got, tt.want)
			}
			// A reused buffer holding stale keys must not leak into the result.
			buf := []string{"stale:1", "stale:2", "stale:3", "stale:4", "stale:5"}
			if got := acl.ActionIndexKeys(tt.action, buf); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ActionIndexKeys(%q, buf) = %q, want %q", tt.action, got, tt.want)
			}
		})
	}
}

// globMatch evaluates glob.match exactly as the engine's Rego does for
// statement actions: glob.match(pattern.Glob, [":"], lower(action)).
func globMatch(t *testing.T, glob, action string) bool {
	t.Helper()
	rs, err := rego.New(
		rego.Query(`x := glob.match(input.glob, [":"], lower(input.action))`),
		rego.Input(map[string]any{"glob": glob, "action": action}),
	).Eval(context.Background())
	if err != nil {
		t.Fatalf("glob.match(%q, %q): %v", glob, action, err)
	}
	if len(rs) != 1 {
		t.Fatalf("glob.match(%q, %q): %d results", glob, action, len(rs))
	}
	return rs[0].Bindings["x"] == true
}

// TestActionPatternMatching checks the action matching rules of README "How a decision is made" on the
// Glob that ParseActionPattern produces, evaluated the way the engine does,
// and that a matching pattern is always found under one of the action's
// index keys (otherwise the store would never hand the statement to Rego).
func TestActionPatternMatching(t *testing.T) {
	tests := []struct {
		pattern string
		action  string
		match   bool
	}{
		{"finmars:Portfolio:list", "finmars:Portfolio:list", true},
		{"finmars:Portfolio:list", "FINMARS:portfolio:LIST", true},
		{"finmars:portfolio:LIST", "finmars:Portfolio:list", true},
		{"finmars:Portfolio:list", "finmars:Portfolio:retrieve", false},
		{"finmars:Portfolio:*", "finmars:Portfolio:list", true},
		{"finmars:Portfolio:*", "finmars:Portfolio:partial_update", true},
		{"finmars:Portfolio:*", "finmars:PortfolioType:list", false},
		{"finmars:*:list", "finmars:Portfolio:list", true},
		{"finmars:*:list", "finmars:Instrument:list", true},
		{"finmars:*:list", "finmars:Portfolio:list_light", false},
		{"finmars:*:list_*", "finmars:Portfolio:list_light", true},
		{"finmars:*:list_*", "finmars:Portfolio:list", false},
		{"finmars:*", "finmars:Portfolio:list", true},
		{"finmars:*", "finmars:Instrument:recalculate", true},
		{"finmars:*", "other:Portfolio:list", false},
		{"*", "finmars:Portfolio:list", true},
		{"*", "example03:buildName:get", true},
		{"*", "list", true},
		{"finmars:PortfolioType:list", "finmars:Portfolio:list", false},
		{"finmars:Portfolio:list", "finmars:PortfolioType:list", false},
		{"finmars:Portfolio:*update", "finmars:Portfolio:update", true},
		{"finmars:Portfolio:*update", "finmars:Portfolio:partial_update", true},
		{"finmars:Portfolio:*update", "finmars:Portfolio:destroy", false},
		// "*" inside a part matches characters of that part only.
		{"finmars:Port*", "finmars:Portfolio", true},
		{"finmars:Port*", "finmars:Portfolio:list", false},
		{"finmars:*:list", "finmars:Portfolio:Sub:list", false},
		// Without a last part of exactly "*", the part counts must agree.
		{"finmars:Portfolio", "finmars:Portfolio:list", false},
		{"finmars:Portfolio:list", "finmars:Portfolio", false},
		// A doubled star is still a star inside one part (README "How a decision is made"): it must
		// not reach across ":" into the next part.
		{"finmars:Port**", "finmars:Portfolio", true},
		{"finmars:Port**", "finmars:Portfolio:list", false},
		{"**:list", "finmars:Portfolio:list", false},
		{"**:list", "finmars:list", true},
		{"finmars:**:list", "finmars:Portfolio:list", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.action, func(t *testing.T) {
			p, err := acl.ParseActionPattern(tt.pattern)
			if err != nil {
				t.Fatalf("ParseActionPattern(%q): %v", tt.pattern, err)
			}
			if got := globMatch(t, p.Glob, tt.action); got != tt.match {
				t.Errorf("pattern %q (glob %q) on action %q: match = %v, want %v", tt.pattern, p.Glob, tt.action, got, tt.match)
			}
			if tt.match {
				keys := acl.ActionIndexKeys(strings.ToLower(tt.action), nil)
				if !slices.Contains(keys, p.IndexKey) {
					t.Errorf("pattern %q matches %q but its index key %q is not among the action's keys %q", tt.pattern, tt.action, p.IndexKey, keys)
				}
			}
		})
	}
}

// --- FRNs and resource patterns ------------------------------------------------

func TestParseFRN(t *testing.T) {
	tests := []struct {
		in   string
		want acl.FRN
		rg   bool
	}{
		{"frn:finmars:portfolios:portfolio:bonds-portfolio", acl.FRN{App: "portfolios", Model: "portfolio", UserCode: "bonds-portfolio"}, false},
		{"FRN:Finmars:Portfolios:Portfolio:Bonds", acl.FRN{App: "Portfolios", Model: "Portfolio", UserCode: "Bonds"}, false},
		{"frn:finmars:a:b:c:d", acl.FRN{App: "a", Model: "b", UserCode: "c:d"}, false},
		{"frn:finmars:a:b:c::", acl.FRN{App: "a", Model: "b", UserCode: "c::"}, false},
		{"frn:finmars:iam:resourcegroup:portfolio_group_a", acl.FRN{App: "iam", Model: "resourcegroup", UserCode: "portfolio_group_a"}, true},
		{"frn:finmars:IAM:ResourceGroup:g", acl.FRN{App: "IAM", Model: "ResourceGroup", UserCode: "g"}, true},
		{"frn:finmars:iam:member:g", acl.FRN{App: "iam", Model: "member", UserCode: "g"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := acl.ParseFRN(tt.in)
			if err != nil {
				t.Fatalf("ParseFRN(%q): unexpected error %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseFRN(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if got.IsResourceGroup() != tt.rg {
				t.Errorf("IsResourceGroup() = %v, want %v", got.IsResourceGroup(), tt.rg)
			}
		})
	}
}

func TestParseFRNInvalid(t *testing.T) {
	const form = " must have the form frn:finmars:<app>:<model>:<user_code>"
	tests := []struct {
		in      string
		wantErr string
	}{
		{"", `FRN "" must start with "frn:finmars:"`},
		{"frn:finmars", `FRN "frn:finmars" must start with "frn:finmars:"`},
		{"arn:aws:s3:::bucket", `FRN "arn:aws:s3:::bucket" must start with "frn:finmars:"`},
		{"frn:other:a:b:c", `FRN "frn:other:a:b:c" must start with "frn:finmars:"`},
		{"bonds-portfolio", `FRN "bonds-portfolio" must start with "frn:finmars:"`},
		{"frn:finmars:", `FRN "frn:finmars:"` + form},
		{"frn:finmars:a:b", `FRN "frn:finmars:a:b"` + form},
		{"frn:finmars:a:b:", `FRN "frn:finmars:a:b:"` + form},
		{"frn:finmars::b:c", `FRN "frn:finmars::b:c"` + form},
		{"frn:finmars:a::c", `FRN "frn:finmars:a::c"` + form},
		{"frn:finmars:portfolios", `FRN "frn:finmars:portfolios"` + form},
		{"frn:finmars:a:b:c ", `FRN "frn:finmars:a:b:c " holds a space at byte 17; an FRN is printable ASCII without spaces`},
		{"frn:finmars:a:b:c\x00", `FRN "frn:finmars:a:b:c\x00" holds the control character 0x00 at byte 17; an FRN is printable ASCII without spaces`},
		{"frn:finmars:a:portfolıo:c", `FRN "frn:finmars:a:portfolıo:c" holds the non-ASCII character 'ı' at byte 21; an FRN is printable ASCII without spaces`},
		{"frn:finmars:a:b:\xff", `FRN "frn:finmars:a:b:\xff" holds the byte 0xff (not UTF-8) at byte 16; an FRN is printable ASCII without spaces`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := acl.ParseFRN(tt.in)
			if err == nil {
				t.Fatalf("ParseFRN(%q) = %+v, want an error", tt.in, got)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error = %q\nwant    %q", err.Error(), tt.wantErr)
			}
		})
	}
}

// TestRequestFRNsAndGroupCodes: a request names one object by an FRN of the
// bundle's grammar, and resource groups by codes an FRN could hold.
func TestRequestFRNsAndGroupCodes(t *testing.T) {
	for _, tt := range []struct {
		frn     string
		wantErr string
	}{
		{"frn:finmars:portfolios:portfolio:secret-portfolio", ""},
		{"FRN:FINMARS:PORTFOLIOS:PORTFOLIO:SECRET-PORTFOLIO", ""},
		{"frn:finmars:a:b:c:d", ""},
		{"frn:finmars:portfolios:portfolio:secret-*", `FRN "frn:finmars:portfolios:portfolio:secret-*" holds *: a request names one object, not a pattern`},
		{"frn:finmars:iam:resourcegroup:g", "names a resource group; a request names an object"},
		{"frn:finmars:a:b:c\t", `FRN "frn:finmars:a:b:c\t" holds the control character 0x09 at byte 17; an FRN is printable ASCII without spaces`},
	} {
		err := acl.ValidateRequestFRN(tt.frn)
		if got := fmt.Sprint(err); (err == nil) != (tt.wantErr == "") || (err != nil && got != tt.wantErr) {
			t.Errorf("ValidateRequestFRN(%q) = %v, want %q", tt.frn, err, tt.wantErr)
		}
	}
	for _, tt := range []struct {
		code    string
		wantErr string
	}{
		{"portfolio_group_a", ""},
		{"", "must not be empty"},
		{"portfolio_group_a ", `resource group code "portfolio_group_a " holds a space at byte 17; a code is printable ASCII without spaces`},
		{"gr*", `resource group code "gr*" holds *: a request names groups, not patterns`},
		{"Kgroup", `resource group code "Kgroup" holds the non-ASCII character 'K' at byte 0; a code is printable ASCII without spaces`},
	} {
		err := acl.ValidateGroupCode(tt.code)
		if got := fmt.Sprint(err); (err == nil) != (tt.wantErr == "") || (err != nil && got != tt.wantErr) {
			t.Errorf("ValidateGroupCode(%q) = %v, want %q", tt.code, err, tt.wantErr)
		}
	}
}

func TestParseResourcePattern(t *testing.T) {
	tests := []struct {
		in      string
		kind    acl.ResourceKind
		pattern string
		literal bool
	}{
		{"*", acl.ResourceKindAny, "*", false},
		{"frn:finmars:portfolios:portfolio:bonds-portfolio", acl.ResourceKindObject, "frn:finmars:portfolios:portfolio:bonds-portfolio", true},
		{"frn:finmars:portfolios:portfolio:Bonds-Portfolio", acl.ResourceKindObject, "frn:finmars:portfolios:portfolio:bonds-portfolio", true},
		{"FRN:FINMARS:Portfolios:Portfolio:BONDS", acl.ResourceKindObject, "frn:finmars:portfolios:portfolio:bonds", true},
		{"frn:finmars:portfolios:portfolio:bonds*", acl.ResourceKindObject, "frn:finmars:portfolios:portfolio:bonds*", false},
		{"frn:finmars:portfolios:portfolio:*", acl.ResourceKindObject, "frn:finmars:portfolios:portfolio:*", false},
		{"frn:finmars:portfolios:portfolio:A[1]*", acl.ResourceKindObject, `frn:finmars:portfolios:portfolio:a\[1\]*`, false},
		{"frn:finmars:portfolios:portfolio:{x}?*", acl.ResourceKindObject, `frn:finmars:portfolios:portfolio:\{x\}\?*`, false},
		{"frn:finmars:portfolios:portfolio:a:b", acl.ResourceKindObject, "frn:finmars:portfolios:portfolio:a:b", true},
		{"frn:finmars:iam:resourcegroup:portfolio_group_a", acl.ResourceKindGroup, "portfolio_group_a", true},
		{"frn:finmars:iam:resourcegroup:Portfolio_Group_A", acl.ResourceKindGroup, "portfolio_group_a", true},
		{"FRN:FINMARS:IAM:RESOURCEGROUP:GRP", acl.ResourceKindGroup, "grp", true},
		{"frn:finmars:iam:resourcegroup:grp_*", acl.ResourceKindGroup, "grp_*", false},
		{"frn:finmars:iam:resourcegroup:*", acl.ResourceKindGroup, "*", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := acl.ParseResourcePattern(tt.in)
			if err != nil {
				t.Fatalf("ParseResourcePattern(%q): unexpected error %v", tt.in, err)
			}
			want := acl.ResourcePattern{Raw: tt.in, Kind: tt.kind, Pattern: tt.pattern, Literal: tt.literal}
			if got != want {
				t.Errorf("ParseResourcePattern(%q) = %+v, want %+v", tt.in, got, want)
			}
		})
	}
}

func TestParseResourcePatternInvalid(t *testing.T) {
	const wild = ": * is allowed only in the user code (the last part) of an FRN"
	tests := []struct {
		in      string
		wantErr string
	}{
		{"frn:finmars:*:portfolio:bonds", `FRN "frn:finmars:*:portfolio:bonds"` + wild},
		{"frn:finmars:portfolios:*:bonds", `FRN "frn:finmars:portfolios:*:bonds"` + wild},
		{"frn:finmars:portfolios:port*:bonds", `FRN "frn:finmars:portfolios:port*:bonds"` + wild},
		{"frn:finmars:iam:*:grp", `FRN "frn:finmars:iam:*:grp"` + wild},
		{"frn:finmars:*:*:*", `FRN "frn:finmars:*:*:*"` + wild},
		{"**", `FRN "**" must start with "frn:finmars:"`},
		{"", `FRN "" must start with "frn:finmars:"`},
		{"portfolio_group_a", `FRN "portfolio_group_a" must start with "frn:finmars:"`},
		{"frn:finmars:iam:resourcegroup", `FRN "frn:finmars:iam:resourcegroup" must have the form frn:finmars:<app>:<model>:<user_code>`},
		{"frn:finmars:portfolios:portfolio:", `FRN "frn:finmars:portfolios:portfolio:" must have the form frn:finmars:<app>:<model>:<user_code>`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := acl.ParseResourcePattern(tt.in)
			if err == nil {
				t.Fatalf("ParseResourcePattern(%q) = %+v, want an error", tt.in, got)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error = %q\nwant    %q", err.Error(), tt.wantErr)
			}
		})
	}
}

// --- path templates ------------------------------------------------------------

func TestValidatePathTemplate(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string
	}{
		{"/", ""},
		{"/buildName", ""},
		{"/api/v1/portfolios/portfolio/", ""},
		{"/api/v1/portfolios/portfolio/{id}/", ""},
		{"/users/{id}", ""},
		{"/api/v1/instruments/instrument/:id/recalculate/", ""},
		{"/a/{id}/b/:sub", ""},
		{"api/v1/portfolios/", `path "api/v1/portfolios/" must start with /`},
		{"", `path "" must start with /`},
		{"/a?page=1", `path "/a?page=1" must not contain a query or fragment`},
		{"/a#top", `path "/a#top" must not contain a query or fragment`},
		{"/a/{id", `path "/a/{id": segment "{id": a parameter is written {name} and fills the whole segment`},
		{"/a/id}", `path "/a/id}": segment "id}": a parameter is written {name} and fills the whole segment`},
		{"/a/{}", `path "/a/{}": segment "{}": a parameter is written {name} and fills the whole segment`},
		{"/a/x{id}", `path "/a/x{id}": segment "x{id}": a parameter is written {name} and fills the whole segment`},
		{"/a/{id}x/", `path "/a/{id}x/": segment "{id}x": a parameter is written {name} and fills the whole segment`},
		{"/a/{i{d}}", `path "/a/{i{d}}": segment "{i{d}}": a parameter is written {name} and fills the whole segment`},
		{"/a/:/b", `path "/a/:/b": parameter ":" has no name`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			err := acl.ValidatePathTemplate(tt.in)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Errorf("ValidatePathTemplate(%q) = %q\nwant %q", tt.in, got, tt.wantErr)
			}
		})
	}
}

func TestNormalizePath(t *testing.T) {
	for in, want := range map[string]string{
		"/":                  "/",
		"/a/":                "/a",
		"/a":                 "/a",
		"/api/v1/portfolio/": "/api/v1/portfolio",
	} {
		if got := acl.NormalizePath(in); got != want {
			t.Errorf("NormalizePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// --- Parse: validation messages --------------------------------------------------

// files names the bundle file of a data path the way a bundle laid out as
// verdict/catalog/data.yaml and verdict/tenants/<code>/data.yaml would, with
// the number of data-path keys its directory accounts for.
func files(path []string) (string, int) {
	switch {
	case len(path) >= 3 && path[1] == "tenants":
		return "verdict/tenants/" + path[2] + "/data.yaml", 3
	case len(path) >= 2 && path[1] == "catalog":
		return "verdict/catalog/data.yaml", 2
	}
	return "verdict/data.yaml", 1
}

// decode turns JSON into the generic tree OPA's bundle reader produces.
func decode(t *testing.T, src string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(src)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("bad test JSON: %v\n%s", err, src)
	}
	return m
}

// set replaces the value at a dotted path inside m, creating objects on the
// way; a nil value deletes the key.
func set(m map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	if v == nil {
		delete(m, keys[len(keys)-1])
		return
	}
	m[keys[len(keys)-1]] = v
}

// validTenant is an acme tenant with every kind of entry and no problem.
const validTenant = `{
  "name": "Acme",
  "checks": ["iam"],
  "members": {
    "bob":   {"roles": ["viewer"], "groups": ["staff"], "policies": ["read"]},
    "alice": {"is_admin": true}
  },
  "roles":  {"viewer": {"policies": ["read"]}},
  "groups": {"staff": {"roles": ["viewer"], "policies": ["deny-secret"]}},
  "access_policies": {
    "read": {"Version": "2023-01-01", "Statement": [
      {"Effect": "Allow", "Action": ["finmars:Portfolio:list", "finmars:Portfolio:retrieve"],
       "Resource": ["frn:finmars:iam:resourcegroup:group_a"]}
    ]},
    "deny-secret": {"Version": "2023-01-01", "Statement": [
      {"Effect": "Deny", "Action": "finmars:Portfolio:*", "Resource": "frn:finmars:portfolios:portfolio:secret",
       "Principal": ["member:bob", "group:staff", "*"], "Condition": "office_hours"}
    ]}
  },
  "resource_groups": {"group_a": {"assignments": ["frn:finmars:portfolios:portfolio:bonds"]}}
}`

const validCatalog = `{
  "services": {
    "portfolios": {
      "routes": [
        {"path": "/api/v1/portfolios/portfolio/", "viewset": "Portfolio"},
        {"method": "GET", "path": "/api/v1/portfolios/portfolio/light/", "viewset": "Portfolio", "action": "list_light"},
        {"method": "GET", "path": "/buildName", "action": "example03:buildName:get"}
      ],
      "permittable_groups": {
        "portfolio__v1__khepri": [{"method": "POST", "path": "/api/v1/portfolios/khepri/"}]
      }
    }
  }
}`

func parse(t *testing.T, verdict map[string]any) (*acl.Document, *acl.Problems) {
	t.Helper()
	var ps acl.Problems
	doc := acl.Parse(verdict, files, &ps)
	if doc == nil {
		t.Fatal("Parse returned a nil document")
	}
	return doc, &ps
}

func problemList(ps *acl.Problems) []acl.Problem {
	err := ps.Err()
	if err == nil {
		return nil
	}
	return err.(*acl.ValidationError).Problems
}

func problemStrings(ps *acl.Problems) []string {
	err := ps.Err()
	if err == nil {
		return nil
	}
	verr, ok := err.(*acl.ValidationError)
	if !ok {
		return []string{"not a *ValidationError: " + err.Error()}
	}
	out := make([]string, len(verr.Problems))
	for i, p := range verr.Problems {
		out[i] = p.String()
	}
	return out
}

func TestParseValidDocument(t *testing.T) {
	verdict := map[string]any{"catalog": decode(t, validCatalog), "tenants": map[string]any{"acme": decode(t, validTenant)}}
	doc, ps := parse(t, verdict)
	if got := problemStrings(ps); got != nil {
		t.Fatalf("problems in a valid document:\n%s", strings.Join(got, "\n"))
	}
	if w := ps.Warnings(); len(w) != 0 {
		t.Errorf("warnings in a valid document: %v", w)
	}
	tenant := doc.Tenants["acme"]
	if tenant == nil {
		t.Fatal("tenant acme is missing")
	}
	if tenant.Name != "Acme" || tenant.File != "verdict/tenants/acme/data.yaml" || !tenant.HasCheck("iam") || tenant.HasCheck("package") {
		t.Errorf("tenant = {Name:%q File:%q Checks:%v}", tenant.Name, tenant.File, tenant.Checks)
	}
	bob := tenant.Members["bob"]
	if bob == nil || bob.IsAdmin || !reflect.DeepEqual(bob.Roles, []string{"viewer"}) || !reflect.DeepEqual(bob.Groups, []string{"staff"}) {
		t.Errorf("member bob = %+v", bob)
	}
	if !tenant.Members["alice"].IsAdmin {
		t.Error("alice is not an admin")
	}
	if got := tenant.MemberPolicies(bob); !reflect.DeepEqual(got, []string{"deny-secret", "read"}) {
		t.Errorf("MemberPolicies(bob) = %v, want [deny-secret read] (read reached three times, counted once)", got)
	}
	if got := bob.Principals(); !reflect.DeepEqual(got, []string{"*", "member:bob", "group:staff"}) {
		t.Errorf("Principals(bob) = %v", got)
	}
	deny := tenant.Policies["deny-secret"].Statements[0]
	if deny.Effect != acl.Deny || deny.Policy != "deny-secret" || deny.Index != 0 ||
		!reflect.DeepEqual(deny.Principals, []string{"member:bob", "group:staff", "*"}) ||
		!reflect.DeepEqual(deny.Conditions, []string{"office_hours"}) ||
		len(deny.Actions) != 1 || deny.Actions[0].Glob != "finmars:portfolio:**" ||
		len(deny.Resources) != 1 || deny.Resources[0].Kind != acl.ResourceKindObject {
		t.Errorf("deny-secret statement 0 = %+v", deny)
	}
	read := tenant.Policies["read"].Statements[0]
	if read.Effect != acl.Allow || !reflect.DeepEqual(read.Principals, []string{"*"}) || len(read.Actions) != 2 {
		t.Errorf("read statement 0 = %+v", read)
	}
	var conds []acl.Ref
	for _, r := range doc.Refs {
		if r.Kind == acl.RefCondition {
			conds = append(conds, r)
		}
	}
	if len(conds) != 1 || conds[0].Name != "office_hours" ||
		conds[0].Loc.Entry() != "access_policies.deny-secret.Statement[0].Condition[0]" ||
		conds[0].Loc.File() != "verdict/tenants/acme/data.yaml" {
		t.Errorf("condition references = %+v", conds)
	}
	if rg := tenant.ResourceGroups["group_a"]; rg == nil || !reflect.DeepEqual(rg.Assignments, []string{"frn:finmars:portfolios:portfolio:bonds"}) {
		t.Errorf("resource group group_a = %+v", rg)
	}

	svc := doc.Catalog.Services["portfolios"]
	if svc == nil {
		t.Fatal("service portfolios is missing")
	}
	wantRoutes := []acl.Route{
		{Kind: acl.RouteCollection, Path: "/api/v1/portfolios/portfolio/", ViewSet: "Portfolio"},
		{Kind: acl.RouteCustom, Method: "GET", Path: "/api/v1/portfolios/portfolio/light/", ViewSet: "Portfolio", Action: "finmars:Portfolio:list_light"},
		{Kind: acl.RouteCustom, Method: "GET", Path: "/buildName", Action: "example03:buildName:get"},
	}
	if !reflect.DeepEqual(svc.Routes, wantRoutes) {
		t.Errorf("routes = %+v\nwant %+v", svc.Routes, wantRoutes)
	}
	if got := svc.PermittableGroups["portfolio__v1__khepri"]; !reflect.DeepEqual(got, []acl.Endpoint{{Method: "POST", Path: "/api/v1/portfolios/khepri/"}}) {
		t.Errorf("permittable group = %+v", got)
	}
	if svc.File != "verdict/catalog/data.yaml" {
		t.Errorf("service File = %q", svc.File)
	}
}

func TestParseDefaultsChecksToIAM(t *testing.T) {
	tenant := decode(t, validTenant)
	set(tenant, "checks", nil)
	doc, ps := parse(t, map[string]any{"tenants": map[string]any{"acme": tenant}})
	if got := problemStrings(ps); got != nil {
		t.Fatalf("problems: %v", got)
	}
	if got := doc.Tenants["acme"].Checks; !reflect.DeepEqual(got, []string{"iam"}) {
		t.Errorf("Checks = %v, want [iam]", got)
	}
}

func TestParseTenantProblems(t *testing.T) {
	const f = "verdict/tenants/acme/data.yaml: "
	stmt := func(s string) []any { return []any{decodeAny(t, s)} }
	tests := []struct {
		name   string
		mutate func(m map[string]any)
		want   []string
	}{
		{
			name:   "unknown role",
			mutate: func(m map[string]any) { set(m, "members.bob.roles", []any{"viewer", "viwer"}) },
			want:   []string{f + `members.bob.roles[1]: unknown role "viwer"`},
		},
		{
			name:   "unknown group of a member",
			mutate: func(m map[string]any) { set(m, "members.bob.groups", []any{"stuff"}) },
			want:   []string{f + `members.bob.groups[0]: unknown group "stuff"`},
		},
		{
			name:   "unknown policy of a member",
			mutate: func(m map[string]any) { set(m, "members.bob.policies", []any{"read", "raed"}) },
			want:   []string{f + `members.bob.policies[1]: unknown policy "raed"`},
		},
		{
			name:   "unknown policy of a role",
			mutate: func(m map[string]any) { set(m, "roles.viewer.policies", []any{"nope"}) },
			want:   []string{f + `roles.viewer.policies[0]: unknown policy "nope"`},
		},
		{
			name:   "unknown role of a group",
			mutate: func(m map[string]any) { set(m, "groups.staff.roles", []any{"viewer", "editor"}) },
			want:   []string{f + `groups.staff.roles[1]: unknown role "editor"`},
		},
		{
			name:   "unknown policy of a group",
			mutate: func(m map[string]any) { set(m, "groups.staff.policies", []any{"deny-secrets"}) },
			want:   []string{f + `groups.staff.policies[0]: unknown policy "deny-secrets"`},
		},
		{
			name:   "reference listed twice",
			mutate: func(m map[string]any) { set(m, "members.bob.groups", []any{"staff", "staff"}) },
			want:   []string{f + `members.bob.groups[1]: "staff" is listed twice`},
		},
		{
			name: "unknown resource group",
			mutate: func(m map[string]any) {
				set(m, "access_policies.read.Statement", stmt(`{"Effect": "Allow", "Action": "finmars:Portfolio:list",
					"Resource": ["*", "frn:finmars:iam:resourcegroup:group_b"]}`))
			},
			want: []string{f + `access_policies.read.Statement[0].Resource[1]: unknown resource group "frn:finmars:iam:resourcegroup:group_b"; did you mean "group_a"?`},
		},
		{
			name: "resource group reference ignores case",
			mutate: func(m map[string]any) {
				set(m, "access_policies.read.Statement", stmt(`{"Effect": "Allow", "Action": "finmars:Portfolio:list",
					"Resource": "FRN:FINMARS:IAM:RESOURCEGROUP:GROUP_A"}`))
			},
			want: nil,
		},
		{
			name: "bad Effect",
			mutate: func(m map[string]any) {
				set(m, "access_policies.read.Statement", stmt(`{"Effect": "Permit", "Action": "finmars:Portfolio:list", "Resource": "*"}`))
			},
			want: []string{f + `access_policies.read.Statement[0].Effect: Effect must be Allow or Deny, not "Permit"`},
		},
		{
			name: "Effect in any case",
			mutate: func(m map[string]any) {
				set(m, "access_policies.read.Statement", []any{
					decodeAny(t, `{"Effect": "allow", "Action": "finmars:Portfolio:list", "Resource": "*"}`),
					decodeAny(t, `{"Effect": "DENY", "Action": "finmars:Portfolio:list", "Resource": "*"}`),
				})
			},
			want: nil,
		},
		{
			name: "missing Effect",
			mutate: func(m map[string]any) {
				set(m, "access_policies.read.Statement", stmt(`{"Action": "finmars:Portfolio:list", "Resource": "*"}`))
			},
			want: []string{f + `access_policies.read.Statement[0].Effect: is required`},
		},
		{
			name: "missing Action",
			mutate: func(m map[string]any) {
				set(m, "access_policies.read.Statement", stmt(`{"Effect": "Allow", "Resource": "*"}`))
			},
			want: []string{f + `access_policies.read.Statement[0]: Action is required`},
		},
		{
			name: "missing Resource",
			mutate: func(m map[string]any) {
				set(m, "access_policies.read.Statement", stmt(`{"Effect": "Allow", "Action": "finmars:Portfolio:list"}`))
			},
			want: []string{f + `access_policies.read.Statement[0]: Resource is required`},
		},
		{
			name: "empty Action list",
			mutate: func(m map[string]any) {
				set(m, "access_policies.read.Statement", stmt(`{"Effect": "Allow", "Action": [], "Resource": "*"}`))
			},
			want: []string{f + `access_policies.read.Statement[0].Action: must not be empty`},
		},
		{
			name: "Action of the wrong type",
			mutate: func(m map[string]any) {
				set(m, "access_policies.read.Statement", stmt(`{"Effect": "Allow", "Action": 5, "Resource": "*"}`))
			},
			want: []string{f + `access_policies.read.Statement[0].Action: expected a string or a list of strings, got a number`},
		},
		{
			name: "bad action pattern",
			mutate: func(m map[string]any) {
				set(m, "access_policies.read.Statement", stmt(`{"Effect": "Allow",
					"Action": ["finmars:Portfolio:list", "finmars::retrieve", "finmars:Portfolio:list:x"], "Resource": "*"}`))
			},
			want: []string{
				f + `access_policies.read.Statement[0].Action[1]: action pattern "finmars::retrieve" has an empty part`,
				f + `access_policies.read.Statement[0].Action[2]: action pattern "finmars:Portfolio:list:x" has 4 parts; at most 3 are allowed`,
			},
		},
		{
			name: "bad action character",
			mutate: func(m map[string]any) {
				set(m, "access_policies.read.Statement", stmt(`{"Effect": "Allow", "Action": "finmars:Portfolio:li st", "Resource": "*"}`))
			},
			want: []string{f + `access_policies.read.Statement[0].Action[0]: action pattern "finmars:Portfolio:li st" has the character ' '; only letters, digits, _ - . and * are allowed`},
		},
		{
			name: "malformed FRN in a statement",
			mutate: func(m map[string]any) {
				set(m, "access_policies.read.Statement", stmt(`{"Effect": "Allow", "Action": "finmars:Portfolio:list",
					"Resource": "frn:finmars:portfolios:bonds"}`))
			},
			want: []string{f + `access_policies.read.Statement[0].Resource[0]: FRN "frn:finmars:portfolios:bonds" must have the form frn:finmars:<app>:<model>:<user_code>`},
		},
		{
			name: "wildcard outside the user code",
			mutate: func(m map[string]any) {
				set(m, "access_policies.read.Statement", stmt(`{"Effect": "Allow", "Action": "finmars:Portfolio:list",
					"Resource": "frn:finmars:*:portfolio:bonds"}`))
			},
			want: []string{f + `access_policies.read.Statement[0].Resource[0]: FRN "frn:finmars:*:portfolio:bonds": * is allowed only in the user code (the last part) of an FRN`},
		},
		{
			name: "malformed FRN in an assignment",
			mutate: func(m map[string]any) {
				set(m, "resource_groups.group_a.assignments", []any{"frn:finmars:portfolios:portfolio:ok", "bonds"})
			},
			want: []string{f + `resource_groups.group_a.assignments[1]: FRN "bonds" must start with "frn:finmars:"`},
		},
		{
			name: "assignment naming a resource group",
			mutate: func(m map[string]any) {
				set(m, "resource_groups.group_a.assignments", []any{"frn:finmars:iam:resourcegroup:group_a"})
			},
			want: []string{f + `resource_groups.group_a.assignments[0]: "frn:finmars:iam:resourcegroup:group_a" names a resource group; assignments name objects`},
		},
		{
			name: "assignment with a wildcard",
			mutate: func(m map[string]any) {
				set(m, "resource_groups.group_a.assignments", []any{"frn:finmars:portfolios:portfolio:*"})
			},
			want: []string{f + `resource_groups.group_a.assignments[0]: "frn:finmars:portfolios:portfolio:*": an assignment names one object and must not contain *`},
		},
		{
			name: "principal naming an unknown member",
			mutate: func(m map[string]any) {
				set(m, "access_policies.read.Statement", stmt(`{"Effect": "Allow", "Action": "finmars:Portfolio:list", "Resource": "*",
					"Principal": ["member:bob", "member:carol"]}`))
			},
			want: []string{f + `access_policies.read.Statement[0].Principal[1]: unknown member "carol"`},
		},
		{
			name: "principal naming an unknown group",
			mutate: func(m map[string]any) {
				set(m, "access_policies.read.Statement", stmt(`{"Effect": "Allow", "Action": "finmars:Portfolio:list", "Resource": "*",
					"Principal": "group:interns"}`))
			},
			want: []string{f + `access_policies.read.Statement[0].Principal[0]: unknown group "interns"`},
		},
		{
			name: "malformed principal",
			mutate: func(m map[string]any) {
				set(m, "access_policies.read.Statement", stmt(`{"Effect": "Allow", "Action": "finmars:Portfolio:list", "Resource": "*",
					"Principal": ["user:bob", "member:"]}`))
			},
			want: []string{
				f + `access_policies.read.Statement[0].Principal[0]: principal "user:bob" must be *, member:<name> or group:<code>`,
				f + `access_policies.read.Statement[0].Principal[1]: principal "member:" must be *, member:<name> or group:<code>`,
			},
		},
		{
			name: "malformed condition name",
			mutate: func(m map[string]any) {
				set(m, "access_policies.read.Statement", stmt(`{"Effect": "Allow", "Action": "finmars:Portfolio:list", "Resource": "*",
					"Condition": ["office_hours", "office-hours"]}`))
			},
			want: []string{f + `access_policies.read.Statement[0].Condition[1]: condition "office-hours" is not a rule name (letters, digits and _)`},
		},
		{
			name:   "policy without a Statement",
			mutate: func(m map[string]any) { set(m, "access_policies.orphan", map[string]any{"Version": "2023-01-01"}) },
			want:   []string{f + `access_policies.orphan: a policy needs a Statement list`},
		},
		{
			name:   "unknown check",
			mutate: func(m map[string]any) { set(m, "checks", []any{"iam", "acl"}) },
			want:   []string{f + `checks[1]: unknown check "acl"; known checks are package and iam`},
		},
		{
			name:   "empty checks",
			mutate: func(m map[string]any) { set(m, "checks", []any{}) },
			want:   []string{f + `checks: checks must name at least one of package, iam`},
		},
		{
			name:   "is_admin of the wrong type",
			mutate: func(m map[string]any) { set(m, "members.alice.is_admin", "yes") },
			want:   []string{f + `members.alice.is_admin: expected true or false, got a string`},
		},
		{
			name:   "member that is not an object",
			mutate: func(m map[string]any) { set(m, "members.carol", []any{"viewer"}) },
			want:   []string{f + `members.carol: expected an object, got a list`},
		},
		{
			name:   "role list entry of the wrong type",
			mutate: func(m map[string]any) { set(m, "members.bob.roles", []any{json.Number("1")}) },
			want:   []string{f + `members.bob.roles[0]: expected a non-empty string, got a number`},
		},
		{
			name:   "resource group code with a wildcard",
			mutate: func(m map[string]any) { set(m, "resource_groups.grp*", map[string]any{"assignments": []any{}}) },
			want:   []string{f + `resource_groups.grp*: resource group code "grp*" must not contain *`},
		},
		{
			name:   "resource group code with a non-ASCII letter",
			mutate: func(m map[string]any) { set(m, "resource_groups.grıp", map[string]any{"assignments": []any{}}) },
			want:   []string{f + "resource_groups.grıp: resource group code \"grıp\" holds the non-ASCII character 'ı' at byte 2; a code is printable ASCII without spaces, as in its FRN"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := decode(t, validTenant)
			tt.mutate(tenant)
			doc, ps := parse(t, map[string]any{"tenants": map[string]any{"acme": tenant}})
			got := problemStrings(ps)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			if _, kept := doc.Tenants["acme"]; kept != (len(tt.want) == 0) {
				t.Errorf("tenant kept in the document = %v with %d problem(s)", kept, len(tt.want))
			}
		})
	}
}

// TestParseProblemEntriesNameTheOriginalListIndex checks that a problem
// found after an earlier entry of the same list was dropped (a duplicate, a
// value of the wrong type, a malformed principal or resource) still names
// the entry's index in the list as written in the bundle (README "Bundles": the
// message names the file and the entry).
func TestParseProblemEntriesNameTheOriginalListIndex(t *testing.T) {
	const f = "verdict/tenants/acme/data.yaml: "
	tests := []struct {
		name   string
		mutate func(m map[string]any)
		want   []string
	}{
		{
			name:   "unknown role after a duplicate",
			mutate: func(m map[string]any) { set(m, "members.bob.roles", []any{"viewer", "viewer", "viwer"}) },
			want: []string{
				f + `members.bob.roles[1]: "viewer" is listed twice`,
				f + `members.bob.roles[2]: unknown role "viwer"`,
			},
		},
		{
			name:   "unknown role after an entry of the wrong type",
			mutate: func(m map[string]any) { set(m, "members.bob.roles", []any{json.Number("5"), "viwer"}) },
			want: []string{
				f + `members.bob.roles[0]: expected a non-empty string, got a number`,
				f + `members.bob.roles[1]: unknown role "viwer"`,
			},
		},
		{
			name: "unknown member after a malformed principal",
			mutate: func(m map[string]any) {
				set(m, "access_policies.read.Statement", []any{decodeAny(t, `{"Effect": "Allow", "Action": "finmars:Portfolio:list",
					"Resource": "*", "Principal": ["user:bob", "member:carol"]}`)})
			},
			want: []string{
				f + `access_policies.read.Statement[0].Principal[0]: principal "user:bob" must be *, member:<name> or group:<code>`,
				f + `access_policies.read.Statement[0].Principal[1]: unknown member "carol"`,
			},
		},
		{
			name: "unknown resource group after a malformed resource",
			mutate: func(m map[string]any) {
				set(m, "access_policies.read.Statement", []any{decodeAny(t, `{"Effect": "Allow", "Action": "finmars:Portfolio:list",
					"Resource": ["bonds", "frn:finmars:iam:resourcegroup:group_b"]}`)})
			},
			want: []string{
				f + `access_policies.read.Statement[0].Resource[0]: FRN "bonds" must start with "frn:finmars:"`,
				f + `access_policies.read.Statement[0].Resource[1]: unknown resource group "frn:finmars:iam:resourcegroup:group_b"; did you mean "group_a"?`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := decode(t, validTenant)
			tt.mutate(tenant)
			_, ps := parse(t, map[string]any{"tenants": map[string]any{"acme": tenant}})
			got := problemStrings(ps)
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.want))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

func decodeAny(t *testing.T, src string) any {
	t.Helper()
	return decode(t, src)
}

func TestParseReportsEveryProblemSortedByFile(t *testing.T) {
	acme := decode(t, validTenant)
	set(acme, "members.bob.roles", []any{"viwer"})
	beta := decode(t, validTenant)
	set(beta, "members.bob.groups", []any{"nobody"})
	catalog := decode(t, validCatalog)
	set(catalog, "services.portfolios.routes", []any{map[string]any{"path": "/x/"}})
	doc, ps := parse(t, map[string]any{"catalog": catalog, "tenants": map[string]any{"beta": beta, "acme": acme}})
	want := []acl.Problem{
		{File: "verdict/catalog/data.yaml", Entry: "routes[0]", Message: "a route needs a viewset (REST collection) or a method and an action"},
		{File: "verdict/tenants/acme/data.yaml", Entry: "members.bob.roles[0]", Message: `unknown role "viwer"`},
		{File: "verdict/tenants/beta/data.yaml", Entry: "members.bob.groups[0]", Message: `unknown group "nobody"`},
	}
	got := problemList(ps)
	if len(got) != len(want) {
		t.Fatalf("problems = %+v\nwant %+v", got, want)
	}
	for i := range want {
		// The catalog entry's prefix is checked by TestParseProblemEntryNamesItsPlaceInTheFile.
		if got[i].File != want[i].File || got[i].Message != want[i].Message || !strings.HasSuffix(got[i].Entry, want[i].Entry) {
			t.Errorf("problem %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if len(doc.Tenants) != 0 || len(doc.Catalog.Services) != 0 {
		t.Errorf("document keeps %d tenant(s) and %d service(s) with problems", len(doc.Tenants), len(doc.Catalog.Services))
	}
	err := ps.Err()
	if !strings.HasPrefix(err.Error(), "3 problems:\n  verdict/catalog/data.yaml: ") {
		t.Errorf("ValidationError.Error() = %q", err.Error())
	}
}

func TestParseWarnsAboutUnknownFields(t *testing.T) {
	tenant := decode(t, validTenant)
	set(tenant, "members.bob.colour", "blue")
	set(tenant, "motto", "hi")
	doc, ps := parse(t, map[string]any{"tenants": map[string]any{"acme": tenant}})
	if got := problemStrings(ps); got != nil {
		t.Fatalf("unknown fields are not problems, got %v", got)
	}
	if doc.Tenants["acme"] == nil {
		t.Fatal("tenant dropped because of a warning")
	}
	var got []string
	for _, w := range ps.Warnings() {
		got = append(got, w.String())
	}
	slices.Sort(got)
	want := []string{
		"verdict/tenants/acme/data.yaml: members.bob.colour: unknown field; it is ignored",
		"verdict/tenants/acme/data.yaml: motto: unknown field; it is ignored",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings = %q, want %q", got, want)
	}
}

func TestParseServiceProblems(t *testing.T) {
	type problem struct{ entry, message string }
	route := func(s string) any { return decodeAny(t, s) }
	tests := []struct {
		name   string
		routes []any
		want   []problem
	}{
		{
			name: "duplicate collection route",
			routes: []any{
				route(`{"path": "/api/v1/portfolios/portfolio/", "viewset": "Portfolio"}`),
				route(`{"path": "/api/v1/portfolios/portfolio", "viewset": "PortfolioType"}`),
			},
			want: []problem{{"routes[1]", `duplicate route (collection) /api/v1/portfolios/portfolio (also routes[0])`}},
		},
		{
			name: "duplicate custom route",
			routes: []any{
				route(`{"method": "GET", "path": "/buildName", "action": "example03:buildName:get"}`),
				route(`{"method": "get", "path": "/buildName/", "action": "example03:buildName:list"}`),
			},
			want: []problem{{"routes[1]", `duplicate route GET /buildName/ (also routes[0])`}},
		},
		{
			name:   "route with a method but no action",
			routes: []any{route(`{"method": "GET", "path": "/a/", "viewset": "Portfolio"}`)},
			want:   []problem{{"routes[0]", `a route with a method needs an action`}},
		},
		{
			name:   "route with an action but no method",
			routes: []any{route(`{"path": "/a/", "viewset": "Portfolio", "action": "list_light"}`)},
			want:   []problem{{"routes[0]", `a route with an action needs a method`}},
		},
		{
			name:   "plain route with an action but no method",
			routes: []any{route(`{"path": "/a/", "action": "example03:a:get"}`)},
			want:   []problem{{"routes[0]", `a route with an action needs a method`}},
		},
		{
			name:   "route with neither viewset nor method and action",
			routes: []any{route(`{"path": "/a/"}`)},
			want:   []problem{{"routes[0]", `a route needs a viewset (REST collection) or a method and an action`}},
		},
		{
			name:   "route without a path",
			routes: []any{route(`{"viewset": "Portfolio"}`)},
			want:   []problem{{"routes[0].path", `is required`}},
		},
		{
			name:   "unknown HTTP method",
			routes: []any{route(`{"method": "FETCH", "path": "/a/", "action": "x:a:get"}`)},
			want:   []problem{{"routes[0].method", `unknown HTTP method "FETCH"`}},
		},
		{
			name:   "bad path template",
			routes: []any{route(`{"path": "api/v1/x/", "viewset": "X"}`)},
			want:   []problem{{"routes[0].path", `path "api/v1/x/" must start with /`}},
		},
		{
			name:   "bad path parameter",
			routes: []any{route(`{"method": "GET", "path": "/users/{id", "action": "x:users:get"}`)},
			want:   []problem{{"routes[0].path", `path "/users/{id": segment "{id": a parameter is written {name} and fills the whole segment`}},
		},
		{
			name:   "view set with a colon",
			routes: []any{route(`{"path": "/a/", "viewset": "finmars:Portfolio"}`)},
			want:   []problem{{"routes[0].viewset", `view set "finmars:Portfolio": has the character ':'; only letters, digits, _ - and . are allowed`}},
		},
		{
			name:   "custom action name with a wildcard",
			routes: []any{route(`{"method": "GET", "path": "/a/", "viewset": "Portfolio", "action": "list_*"}`)},
			want:   []problem{{"routes[0].action", `action name "list_*": has the character '*'; only letters, digits, _ - and . are allowed`}},
		},
		{
			name:   "plain action with a wildcard",
			routes: []any{route(`{"method": "GET", "path": "/a/", "action": "example03:*"}`)},
			want:   []problem{{"routes[0].action", `action "example03:*" must not contain *`}},
		},
		{
			name:   "routes that are not a list",
			routes: nil,
			want:   []problem{{"routes", `expected a list, got an object`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			catalog := decode(t, validCatalog)
			if tt.routes == nil {
				set(catalog, "services.portfolios.routes", map[string]any{})
			} else {
				set(catalog, "services.portfolios.routes", tt.routes)
			}
			doc, ps := parse(t, map[string]any{"catalog": catalog})
			got := problemList(ps)
			if len(got) != len(tt.want) {
				t.Fatalf("problems = %+v\nwant %+v", got, tt.want)
			}
			for i, w := range tt.want {
				// Only the part of the entry below the service is compared
				// here; TestParseProblemEntryNamesItsPlaceInTheFile checks
				// that the entry names the service.
				if got[i].File != "verdict/catalog/data.yaml" || got[i].Message != w.message || !strings.HasSuffix(got[i].Entry, w.entry) {
					t.Errorf("problem %d = %+v\nwant file verdict/catalog/data.yaml, entry ...%s, message %q", i, got[i], w.entry, w.message)
				}
			}
			if _, kept := doc.Catalog.Services["portfolios"]; kept {
				t.Error("a service with problems is kept in the document")
			}
		})
	}
}

func TestParseServiceName(t *testing.T) {
	var ps acl.Problems
	svc := acl.ParseService("bad name", map[string]any{}, acl.NewLoc(files, "verdict", "catalog", "services", "bad name"), &ps)
	if svc != nil {
		t.Errorf("ParseService accepted the name %q", "bad name")
	}
	want := []string{`verdict/catalog/data.yaml: services.bad name: service name "bad name" must be 1 to 128 bytes of UTF-8 without control characters, "/", "*" or space`}
	if got := problemStrings(&ps); !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    acl.Problem
		want string
	}{
		{acl.Problem{File: "verdict/tenants/acme/data.yaml", Entry: "members.bob.roles[1]", Message: `unknown role "viwer"`},
			`verdict/tenants/acme/data.yaml: members.bob.roles[1]: unknown role "viwer"`},
		{acl.Problem{Entry: "members", Message: "m"}, "members: m"},
		{acl.Problem{File: "f.yaml", Message: "m"}, "f.yaml: m"},
		{acl.Problem{Message: "m"}, "m"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

// TestParseProblemEntryNamesItsPlaceInTheFile checks that a problem's entry is
// the path to it inside the file the problem names, so that it says which
// service or tenant is wrong: verdict/catalog/data.yaml holds every service,
// and a bundle may keep all its data in one verdict/data.yaml, so
// "routes[1]" or "members.bob.roles[0]" alone does not say where the
// problem is (README "Bundles": the message names the file and the entry).
func TestParseProblemEntryNamesItsPlaceInTheFile(t *testing.T) {
	t.Run("catalog services in verdict/catalog/data.yaml", func(t *testing.T) {
		catalog := decode(t, validCatalog)
		set(catalog, "services.instruments.routes", []any{
			decodeAny(t, `{"path": "/api/v1/instruments/instrument/", "viewset": "Instrument"}`),
			decodeAny(t, `{"method": "POST", "path": "/api/v1/instruments/instrument/{id}/recalculate/", "viewset": "Instrument"}`),
		})
		_, ps := parse(t, map[string]any{"catalog": catalog})
		want := []string{`verdict/catalog/data.yaml: services.instruments.routes[1]: a route with a method needs an action`}
		if got := problemStrings(ps); !reflect.DeepEqual(got, want) {
			t.Errorf("problems = %q\nwant        %q", got, want)
		}
	})
	t.Run("two tenants in verdict/data.yaml", func(t *testing.T) {
		oneFile := func([]string) (string, int) { return "verdict/data.yaml", 1 }
		acme := decode(t, validTenant)
		set(acme, "members.bob.roles", []any{"viwer"})
		beta := decode(t, validTenant)
		set(beta, "members.bob.roles", []any{"viwer"})
		var ps acl.Problems
		acl.Parse(map[string]any{"tenants": map[string]any{"acme": acme, "beta": beta}}, oneFile, &ps)
		want := []string{
			`verdict/data.yaml: tenants.acme.members.bob.roles[0]: unknown role "viwer"`,
			`verdict/data.yaml: tenants.beta.members.bob.roles[0]: unknown role "viwer"`,
		}
		if got := problemStrings(&ps); !reflect.DeepEqual(got, want) {
			t.Errorf("problems = %q\nwant        %q", got, want)
		}
	})
}

// Members' identical role, group and policy lists are shared after
// parsing; lists whose codes merely concatenate alike must not be (a code
// may hold any character, NUL included).
func TestParseSharesOnlyIdenticalLists(t *testing.T) {
	tenant := decode(t, validTenant)
	set(tenant, "groups", map[string]any{"a": map[string]any{}, "b": map[string]any{}, "a\x00b": map[string]any{}})
	set(tenant, "members", map[string]any{
		"m1":  map[string]any{"groups": []any{"a\x00b"}},
		"m2":  map[string]any{"groups": []any{"a", "b"}},
		"m3":  map[string]any{"groups": []any{"a", "b"}},
		"bob": map[string]any{},
	})
	set(tenant, "groups", map[string]any{"a": map[string]any{}, "b": map[string]any{}, "a\x00b": map[string]any{}, "staff": map[string]any{}})
	doc, ps := parse(t, map[string]any{"tenants": map[string]any{"acme": tenant}})
	if got := problemStrings(ps); got != nil {
		t.Fatalf("problems: %v", got)
	}
	members := doc.Tenants["acme"].Members
	for name, want := range map[string][]string{"m1": {"a\x00b"}, "m2": {"a", "b"}, "m3": {"a", "b"}} {
		if got := members[name].Groups; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: groups %q, want %q", name, got, want)
		}
	}
}

// Statements that repeat an action, resource, principal or condition share
// one copy of its strings (the decoder's and a pattern's lower-cased copies
// of the others go), while their values stay as written.
func TestParseSharesStatementStrings(t *testing.T) {
	statement := `{"Effect": "Allow", "Action": "finmars:Portfolio:*", "Resource": "frn:finmars:portfolios:portfolio:*",
		"Principal": "group:traders", "Condition": "business_hours"}`
	tenant := decode(t, `{"groups": {"traders": {}}, "access_policies": {
		"p1": {"Statement": [`+statement+`]},
		"p2": {"Statement": [`+statement+`, `+statement+`]}}}`)
	doc, ps := parse(t, map[string]any{"tenants": map[string]any{"acme": tenant}})
	if got := problemStrings(ps); got != nil {
		t.Fatalf("problems: %v", got)
	}
	var statements []*acl.Statement
	for _, code := range []string{"p1", "p2"} {
		statements = append(statements, doc.Tenants["acme"].Policies[code].Statements...)
	}
	if len(statements) != 3 {
		t.Fatalf("%d statements, want 3", len(statements))
	}
	first := statements[0]
	if a := first.Actions[0]; a.Raw != "finmars:Portfolio:*" || a.Glob != "finmars:portfolio:**" || a.IndexKey != "finmars:portfolio" {
		t.Fatalf("action pattern %+v", a)
	}
	same := func(a, b string) bool { return len(a) > 0 && unsafe.StringData(a) == unsafe.StringData(b) }
	for i, s := range statements[1:] {
		a, b := first.Actions[0], s.Actions[0]
		if !same(a.Raw, b.Raw) || !same(a.Glob, b.Glob) || !same(a.IndexKey, b.IndexKey) ||
			!same(first.Resources[0].Pattern, s.Resources[0].Pattern) || !same(first.Resources[0].Raw, s.Resources[0].Raw) ||
			!same(first.Principals[0], s.Principals[0]) || !same(first.Conditions[0], s.Conditions[0]) {
			t.Errorf("statement %d keeps its own copy of a string the first has", i+1)
		}
	}
}
