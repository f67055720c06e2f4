package e2ereload

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDecisionsDuringReloadsSeeOneGeneration swaps a bundle between two
// versions 100 times while decisions run concurrently. In version A alice
// may list portfolios and the manifest revision is "A"; in version B she may
// not and the revision is "B". A decision's revision and its answer come
// from the generation it read; a mix (revision A with B's answer) would show
// as a mismatch.
func TestDecisionsDuringReloadsSeeOneGeneration(t *testing.T) {
	const reloads = 100
	dir := filepath.Join(t.TempDir(), "flip")
	configMapVersion(t, dir, "A", "A", "read")
	configMapVersion(t, dir, "B", "B", "")
	swapConfigMap(t, dir, "A")
	s := start(t, "--watch", "--debounce", "5ms", "--bundle", "flip="+dir)
	expectDecision(t, s, "version A", listAs("acme"), true, "iam.allow")

	var (
		stop                  atomic.Bool
		answers, seenA, seenB atomic.Int64
		mu                    sync.Mutex
		mismatches            []string
		wg                    sync.WaitGroup
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				d, err := decide(s, listAs("acme"))
				if err != nil {
					mu.Lock()
					mismatches = append(mismatches, err.Error())
					mu.Unlock()
					return
				}
				answers.Add(1)
				rev := d.Revision["flip"]
				switch {
				case rev == "A" && d.Allow && strings.HasPrefix(d.codes(), "iam.allow"):
					seenA.Add(1)
				case rev == "B" && !d.Allow && d.codes() == "iam.no_allow":
					seenB.Add(1)
				default:
					mu.Lock()
					mismatches = append(mismatches, fmt.Sprintf("revision %q with allow=%v codes=%s", rev, d.Allow, d.codes()))
					mu.Unlock()
				}
			}
		}()
	}

	gen := s.status(t).Generation
	deadline := time.Now().Add(60 * time.Second)
	for i := 1; i <= reloads; i++ {
		version := "B"
		if i%2 == 0 {
			version = "A"
		}
		swapConfigMap(t, dir, version)
		for {
			st := s.status(t)
			if st.Generation > gen {
				gen = st.Generation
				break
			}
			if time.Now().After(deadline) {
				stop.Store(true)
				wg.Wait()
				t.Fatalf("reload %d was not installed in time (generation %d)\n%s", i, st.Generation, s.Out.String())
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	// Let the decision loops see the last version too.
	time.Sleep(50 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	if len(mismatches) > 0 {
		t.Fatalf("%d answers mixed generations, e.g. %s", len(mismatches), mismatches[0])
	}
	if seenA.Load() == 0 || seenB.Load() == 0 {
		t.Fatalf("answers saw A %d times and B %d times; both versions must have served", seenA.Load(), seenB.Load())
	}
	st := s.status(t)
	if !st.Ready || failures(st, "flip") != 0 {
		t.Errorf("status after the reloads: %+v", st)
	}
	t.Logf("%d reloads (generation %d), %d decisions: %d from A, %d from B, none mixed",
		reloads, gen, answers.Load(), seenA.Load(), seenB.Load())
}
