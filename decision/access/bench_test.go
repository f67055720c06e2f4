package access_test

import (
	"context"
	"testing"

	"github.com/verdict-authz/verdict/decision/access"
	"github.com/verdict-authz/verdict/test/worldgen"
)

// BenchmarkWhoCan10k is one complete who-can review (every page) of the
// 10,000-member reference tenant (worldgen.Bench), without and with an
// object.
func BenchmarkWhoCan10k(b *testing.B) {
	p := pin(b, loadWorld(b, worldgen.Bench))
	for _, bc := range []struct{ name, frn string }{
		{"no-object", ""},
		{"object", worldgen.ObjectFRN(3, 31)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			q := access.Query{Tenant: worldgen.TenantCode(0), Action: "finmars:" + worldgen.ViewSet(3) + ":retrieve", FRN: bc.frn, Limit: access.MaxLimit}
			for b.Loop() {
				q.Cursor = ""
				for {
					page, err := access.WhoCan(context.Background(), p, q, nil)
					if err != nil {
						b.Fatal(err)
					}
					if page.NextCursor == "" {
						break
					}
					q.Cursor = page.NextCursor
				}
			}
			b.ReportMetric(float64(worldgen.Bench.Members), "questions/op")
		})
	}
}

// BenchmarkWhatCan10k is one complete what-can review of a member of the
// reference tenant: every action of its vocabulary.
func BenchmarkWhatCan10k(b *testing.B) {
	p := pin(b, loadWorld(b, worldgen.Bench))
	q := access.Query{Tenant: worldgen.TenantCode(0), Member: worldgen.MemberName(42), Limit: access.MaxLimit}
	var asked int
	for b.Loop() {
		page, err := access.WhatCan(context.Background(), p, q, nil)
		if err != nil {
			b.Fatal(err)
		}
		asked = page.Asked
	}
	b.ReportMetric(float64(asked), "questions/op")
}
