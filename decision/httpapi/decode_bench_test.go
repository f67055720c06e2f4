package httpapi

import (
	"reflect"
	"testing"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/loader/jsonkeys"
)

// BenchmarkDecodeDecideBody measures what parsing a typical POST
// /v1/decide body costs, and the share of it the key check (duplicates,
// exact case) takes.
//
//	go test ./decision/httpapi/ -run '^$' -bench DecodeDecideBody -benchtime 200000x -count 6
func BenchmarkDecodeDecideBody(b *testing.B) {
	body := []byte(`{"tenant":"bank","member":"user_a","request":{"service":"portfolios","method":"GET","path":"/api/v1/portfolios/portfolio/7/"},` +
		`"resource":{"frn":"frn:finmars:portfolios:portfolio:bonds-portfolio","owner":"user_b","resource_groups":["portfolio_group_a"]},"context":{"ip":"10.0.0.1","hour":10}}`)
	b.Run("keys", func(b *testing.B) {
		shape := jsonkeys.ShapeOf(reflect.TypeFor[*decision.Request]())
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if p := jsonkeys.Check(body, shape); p != nil {
				b.Fatal(p)
			}
		}
	})
	b.Run("depth", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := checkDepth(body, MaxJSONDepth); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := parseDecideBody(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
