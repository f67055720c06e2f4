package main

// cacheModel estimates verdict-cached's decision cache hits, which verdict
// does not count (its /metrics has no cache counters). The cache is large
// enough for every distinct question and its TTL outlasts every run, so a
// question misses the first time a process is asked it and hits after that;
// which questions a process was asked, and in which order, follows from the
// streams and how many requests each worker sent (runResult.WorkerSent).
// The one guess is the interleaving of the closed loop's workers, taken as
// round-robin; a question in flight twice at once counts as one miss.
type cacheModel struct {
	// ids maps every position of a stream to its question: equal bodies,
	// in either stream, have the same id.
	ids map[string][]int32
	n   int
}

func newCacheModel(bodies map[string][][]byte) *cacheModel {
	m := &cacheModel{ids: map[string][]int32{}}
	byBody := map[string]int32{}
	for _, stream := range []string{"uniform", "zipf"} {
		ids := make([]int32, len(bodies[stream]))
		for i, b := range bodies[stream] {
			id, ok := byBody[string(b)]
			if !ok {
				id = int32(len(byBody))
				byBody[string(b)] = id
			}
			ids[i] = id
		}
		m.ids[stream] = ids
	}
	m.n = len(byBody)
	return m
}

// asked is what one server process has been asked so far.
type asked []bool

func (m *cacheModel) process() asked { return make(asked, m.n) }

// replay marks what run r asked the process and sets r.EstHits to the
// share of the window's requests whose question the process had been
// asked before.
func (m *cacheModel) replay(seen asked, r *runResult) {
	ids := m.ids[r.Stream]
	workers := len(r.WorkerSent)
	if len(ids) == 0 || workers == 0 {
		return
	}
	var rounds uint64
	for _, n := range r.WorkerSent {
		rounds = max(rounds, n)
	}
	var window, misses uint64
	for k := uint64(0); k < rounds; k++ {
		for w := range workers {
			if k >= r.WorkerSent[w] {
				continue
			}
			// The closed loop's worker w starts at w·len/conns (runLoad);
			// a fixed rate is one sequence from the start.
			start := 0
			if r.Mode == "closed" {
				start = w * len(ids) / workers
			}
			id := ids[(uint64(start)+k)%uint64(len(ids))]
			inWindow := k >= r.WorkerBefore[w]
			if inWindow {
				window++
			}
			if !seen[id] {
				seen[id] = true
				if inWindow {
					misses++
				}
			}
		}
	}
	if window > 0 {
		r.EstHits = 1 - float64(misses)/float64(window)
	}
}
