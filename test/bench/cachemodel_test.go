package main

import (
	"math"
	"strings"
	"testing"
)

func TestCacheModel(t *testing.T) {
	body := func(s string) [][]byte {
		var out [][]byte
		for _, c := range strings.Split(s, "") {
			out = append(out, []byte(c))
		}
		return out
	}
	// Uniform: 8 positions, 6 distinct questions; Zipf shares "a" and "b".
	m := newCacheModel(map[string][][]byte{"uniform": body("abcdefab"), "zipf": body("aabbxy")})
	if m.n != 8 {
		t.Fatalf("distinct questions: got %d, want 8", m.n)
	}
	seen := m.process()

	// Two workers starting at 0 and 4, two requests each before the
	// window (a, b | e, f), then six each in it: worker 0 asks c d e f a b,
	// worker 1 a b a b c d. Round-robin, only c and d miss, once each.
	r := &runResult{Mode: "closed", Stream: "uniform", WorkerSent: []uint64{8, 8}, WorkerBefore: []uint64{2, 2}}
	m.replay(seen, r)
	if want := 1 - 2.0/12; math.Abs(r.EstHits-want) > 1e-9 {
		t.Errorf("closed uniform: hits %v, want %v", r.EstHits, want)
	}

	// The same process, Zipf: a and b are warm; x and y miss.
	r = &runResult{Mode: "closed", Stream: "zipf", WorkerSent: []uint64{3, 3}, WorkerBefore: []uint64{0, 0}}
	m.replay(seen, r)
	if want := 1 - 2.0/6; math.Abs(r.EstHits-want) > 1e-9 {
		t.Errorf("closed zipf: hits %v, want %v", r.EstHits, want)
	}

	// A fresh process at a fixed rate: one sequence from the start; the
	// window (positions 3..9) misses d, e, f.
	r = &runResult{Mode: "rate", Stream: "uniform", WorkerSent: []uint64{10}, WorkerBefore: []uint64{3}}
	m.replay(m.process(), r)
	if want := 1 - 3.0/7; math.Abs(r.EstHits-want) > 1e-9 {
		t.Errorf("rate: hits %v, want %v", r.EstHits, want)
	}
}
