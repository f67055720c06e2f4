package datafilter_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/datafilter"
	"github.com/verdict-authz/verdict/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var (
	ucastAll     = datafilter.Target{Kind: "ucast", Dialect: "all"}
	ucastPrisma  = datafilter.Target{Kind: "ucast", Dialect: "prisma"}
	ucastMinimal = datafilter.Target{Kind: "ucast", Dialect: "minimal"}
	postgres     = datafilter.Target{Kind: "sql", Dialect: "postgresql"}
)

func some(filter, exclude map[string]any) *decision.Plan {
	return &decision.Plan{Kind: "some", Filter: filter, Exclude: exclude}
}

// The shapes are OPA's own: what OPA 1.22's Compile API answers for the
// Rego these plans amount to (owner == x; user_code in {…};
// startswith(user_code, p); not user_code == x), field names included
// (the unknown input.resource without its input., so resource.owner).
func TestTranslateShapes(t *testing.T) {
	tests := []struct {
		name     string
		plan     *decision.Plan
		target   datafilter.Target
		mappings map[string]any
		want     string // JSON of the query; "null" when never true
	}{
		{"all is the unconditional UCAST", &decision.Plan{Kind: "all"}, ucastAll, nil, `{}`},
		{"all is the empty WHERE", &decision.Plan{Kind: "all"}, postgres, nil, `""`},
		{"none has no query", &decision.Plan{Kind: "none"}, ucastPrisma, nil, `null`},
		{"none has no SQL", &decision.Plan{Kind: "none"}, postgres, nil, `null`},
		{"owner", some(map[string]any{"owner": "user_a"}, nil), ucastMinimal, nil,
			`{"field":"resource.owner","operator":"eq","type":"field","value":"user_a"}`},
		{"owner in SQL", some(map[string]any{"owner": "user_a"}, nil), postgres, nil,
			`"WHERE resource.owner = E'user_a'"`},
		{"owner or codes", some(map[string]any{"owner": "user_a", "user_codes": []string{"a", "b"}}, nil), ucastPrisma, nil,
			`{"operator":"or","type":"compound","value":[` +
				`{"field":"resource.owner","operator":"eq","type":"field","value":"user_a"},` +
				`{"field":"resource.user_code","operator":"in","type":"field","value":["a","b"]}]}`},
		{"owner or codes in SQL", some(map[string]any{"owner": "user_a", "user_codes": []string{"a", "b"}}, nil), postgres, nil,
			`"WHERE (resource.owner = E'user_a' OR lower(resource.user_code) IN (E'a', E'b'))"`},
		{"codes in minimal are an or of eq", some(map[string]any{"user_codes": []string{"a", "b"}}, nil), ucastMinimal, nil,
			`{"operator":"or","type":"compound","value":[` +
				`{"field":"resource.user_code","operator":"eq","type":"field","value":"a"},` +
				`{"field":"resource.user_code","operator":"eq","type":"field","value":"b"}]}`},
		{"one code is eq", some(map[string]any{"user_codes": []string{"a"}}, nil), ucastAll, nil,
			`{"field":"resource.user_code","operator":"eq","type":"field","value":"a"}`},
		{"an exclusion is not, around the field", some(map[string]any{"owner": "user_a"}, map[string]any{"user_codes": []string{"s", "t"}}), ucastAll, nil,
			`{"operator":"and","type":"compound","value":[` +
				`{"field":"resource.owner","operator":"eq","type":"field","value":"user_a"},` +
				`{"operator":"not","type":"compound","value":[{"field":"resource.user_code","operator":"in","type":"field","value":["s","t"]}]}]}`},
		{"one excluded code is ne", some(map[string]any{"owner": "user_a"}, map[string]any{"user_codes": []string{"s"}}), ucastMinimal, nil,
			`{"operator":"and","type":"compound","value":[` +
				`{"field":"resource.owner","operator":"eq","type":"field","value":"user_a"},` +
				`{"field":"resource.user_code","operator":"ne","type":"field","value":"s"}]}`},
		{"excluded codes in minimal are an and of ne", some(map[string]any{"all": true}, map[string]any{"user_codes": []string{"s", "t"}}), ucastMinimal, nil,
			`{"operator":"and","type":"compound","value":[` +
				`{"field":"resource.user_code","operator":"ne","type":"field","value":"s"},` +
				`{"field":"resource.user_code","operator":"ne","type":"field","value":"t"}]}`},
		{"an exclusion in SQL", some(map[string]any{"owner": "user_a"}, map[string]any{"user_codes": []string{"s"}, "user_code_prefixes": []string{"x_"}}), postgres, nil,
			`"WHERE (resource.owner = E'user_a' AND lower(resource.user_code) IS DISTINCT FROM E's' AND (lower(resource.user_code) LIKE E'x\\\\_%') IS NOT TRUE)"`},
		{"a prefix is startswith", some(map[string]any{"user_code_prefixes": []string{"bo_o%k"}}, nil), ucastPrisma, nil,
			`{"field":"resource.user_code","operator":"startswith","type":"field","value":"bo_o%k"}`},
		{"a prefix is LIKE, escaped as OPA escapes it", some(map[string]any{"user_code_prefixes": []string{"bo_o%k"}}, nil), postgres, nil,
			`"WHERE lower(resource.user_code) LIKE E'bo\\\\_o\\\\%k%'"`},
		{"a one-star pattern", some(map[string]any{"user_code_patterns": []string{"x*y"}}, nil), ucastAll, nil,
			`{"operator":"and","type":"compound","value":[` +
				`{"field":"resource.user_code","operator":"startswith","type":"field","value":"x"},` +
				`{"field":"resource.user_code","operator":"endswith","type":"field","value":"y"}]}`},
		{"a pattern whose ends overlap leaves the short codes out", some(map[string]any{"user_code_patterns": []string{"ab*ba"}}, nil), ucastAll, nil,
			`{"operator":"and","type":"compound","value":[` +
				`{"field":"resource.user_code","operator":"startswith","type":"field","value":"ab"},` +
				`{"field":"resource.user_code","operator":"endswith","type":"field","value":"ba"},` +
				`{"field":"resource.user_code","operator":"ne","type":"field","value":"aba"}]}`},
		{"a two-star pattern in SQL", some(map[string]any{"user_code_patterns": []string{`q*r\*s`}}, nil), postgres, nil,
			`"WHERE lower(resource.user_code) LIKE E'q%r\\\\\\\\%s'"`},
		{"a quote in a value", some(map[string]any{"owner": `it's \`}, nil), postgres, nil,
			`"WHERE resource.owner = E'it\\'s \\\\'"`},
		{"groups without a group column are left to the user codes", some(map[string]any{"resource_groups": []string{"g"}, "resource_group_patterns": []string{"t*"}, "user_codes": []string{"a"}}, nil), ucastAll, nil,
			`{"field":"resource.user_code","operator":"eq","type":"field","value":"a"}`},
		{"groups with a group column", some(map[string]any{"resource_groups": []string{"g", "h"}, "resource_group_patterns": []string{"t*"}}, nil), postgres,
			map[string]any{"resource": map[string]any{"$self": "portfolios", "resource_group": "grp"}},
			`"WHERE (lower(portfolios.grp) IN (E'g', E'h') OR lower(portfolios.grp) LIKE E't%')"`},
		{"mappings for the dialect win", some(map[string]any{"owner": "u"}, nil), ucastPrisma,
			map[string]any{"prisma": map[string]any{"resource": map[string]any{"$self": "portfolio", "owner": "ownerId"}},
				"ucast": map[string]any{"resource": map[string]any{"$self": "nope"}}},
			`{"field":"portfolio.ownerId","operator":"eq","type":"field","value":"u"}`},
		{"then the target's", some(map[string]any{"owner": "u"}, nil), ucastAll,
			map[string]any{"prisma": map[string]any{"resource": map[string]any{"$self": "nope"}},
				"ucast": map[string]any{"resource": map[string]any{"$self": "t"}}},
			`{"field":"t.owner","operator":"eq","type":"field","value":"u"}`},
		{"a column that is no identifier is quoted", some(map[string]any{"owner": "u"}, nil), postgres,
			map[string]any{"resource": map[string]any{"$self": "My Table", "owner": `o"wner`}},
			`"WHERE \"My Table\".\"o\"\"wner\" = E'u'"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := datafilter.Translate(tt.plan, tt.target, tt.mappings)
			if err != nil {
				t.Fatal(err)
			}
			if got := marshal(q); got != tt.want {
				t.Errorf("%s:\n got %s\nwant %s", tt.target, got, tt.want)
			}
		})
	}
}

// marshal is v as compact JSON, <, > and & as they are.
func marshal(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

// What a target cannot express exactly is refused, never approximated.
func TestTranslateRefuses(t *testing.T) {
	tests := []struct {
		name                 string
		plan                 *decision.Plan
		target               datafilter.Target
		mappings             map[string]any
		unsupported, mapping bool
	}{
		{"two stars in UCAST", some(map[string]any{"user_code_patterns": []string{"q*r*s"}}, nil), ucastAll, nil, true, false},
		{"two stars in an exclusion", some(map[string]any{"all": true}, map[string]any{"user_code_patterns": []string{"q*r*s"}}), ucastPrisma, nil, true, false},
		{"a prefix in minimal", some(map[string]any{"user_code_prefixes": []string{"b"}}, nil), ucastMinimal, nil, true, false},
		{"an excluded prefix in minimal", some(map[string]any{"owner": "u"}, map[string]any{"user_code_prefixes": []string{"b"}}), ucastMinimal, nil, true, false},
		{"mysql", &decision.Plan{Kind: "all"}, datafilter.Target{Kind: "sql", Dialect: "mysql"}, nil, true, false},
		{"an unknown column", &decision.Plan{Kind: "all"}, postgres, map[string]any{"resource": map[string]any{"ownr": "o"}}, false, true},
		{"a column that is not a string", &decision.Plan{Kind: "all"}, postgres, map[string]any{"postgresql": map[string]any{"resource": map[string]any{"owner": 3.0}}}, false, true},
		{"a table that is not an object", &decision.Plan{Kind: "all"}, postgres, map[string]any{"resource": "portfolios"}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := datafilter.Translate(tt.plan, tt.target, tt.mappings)
			var unsupported *datafilter.UnsupportedError
			var mapping *datafilter.MappingError
			if errors.As(err, &unsupported) != tt.unsupported || errors.As(err, &mapping) != tt.mapping {
				t.Fatalf("Translate = %v, %v; want unsupported %v, mapping error %v", q, err, tt.unsupported, tt.mapping)
			}
		})
	}
}

func TestParseTarget(t *testing.T) {
	for _, s := range []string{"ucast+all", "ucast+prisma", "ucast+minimal", "sql+postgresql"} {
		if got, err := datafilter.ParseTarget(s); err != nil || got.String() != s {
			t.Errorf("ParseTarget(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"ucast+linq", "sql+mysql", "ucast", "", "prisma"} {
		if _, err := datafilter.ParseTarget(s); err == nil {
			t.Errorf("ParseTarget(%q): no error", s)
		}
	}
}
