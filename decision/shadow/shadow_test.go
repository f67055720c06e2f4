package shadow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/verdict-authz/verdict/decision"
	"github.com/verdict-authz/verdict/decision/access"
	"github.com/verdict-authz/verdict/decision/shadow"
	"github.com/verdict-authz/verdict/internal/testdemo"
	"github.com/verdict-authz/verdict/loader"
	"github.com/verdict-authz/verdict/loader/loadertest"
)

// pinner is a candidate engine; off makes it unavailable.
type pinner struct {
	e   *decision.Engine
	off bool
}

func (p *pinner) Pin() *decision.Pinned {
	if p.off {
		return nil
	}
	pinned, err := p.e.Pin()
	if err != nil {
		return nil
	}
	return pinned
}

// candidateDemo is the demo with all staff denied Portfolio updates and
// the intern given instrument-read.
func candidateDemo(t *testing.T) *decision.Engine {
	t.Helper()
	dir := testdemo.Write(t, testdemo.FreezePortfolioWrites, testdemo.InternReadsInstruments)
	e, _ := loadertest.Load(t, []loader.Source{{Name: "demo", Location: dir}})
	return e
}

func ask(t *testing.T, e *decision.Engine, member, action, frn string) {
	t.Helper()
	req := &decision.Request{Tenant: "bank", Member: member, Action: action}
	if frn != "" {
		req.Resource = &decision.Resource{FRN: frn}
	}
	if _, err := e.Decide(context.Background(), req); err != nil {
		t.Fatal(err)
	}
}

func TestShadowCountsAKnownMix(t *testing.T) {
	var logBuf bytes.Buffer
	sh := shadow.New(&pinner{e: candidateDemo(t)}, shadow.Options{Sample: 1, Log: &logBuf})
	live, _ := loadertest.Demo(t, decision.WithObserver(sh))
	go sh.Run(context.Background())

	ask(t, live, "head_of_banking", "finmars:Portfolio:update", "")                                             // allow → deny
	ask(t, live, "user_b", "finmars:Portfolio:partial_update", "frn:finmars:portfolios:portfolio:fx-portfolio") // allow → deny
	ask(t, live, "olivia", "finmars:Portfolio:update", "")                                                      // changed: no_allow → explicit_deny
	ask(t, live, "intern", "finmars:Instrument:list", "")                                                       // deny → allow
	ask(t, live, "user_a", "finmars:Portfolio:list", "")                                                        // same
	ask(t, live, "olivia", "finmars:Instrument:list", "")                                                       // same
	ask(t, live, "admin", "finmars:Portfolio:update", "")                                                       // same

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sh.Close(ctx)

	st := sh.Status()
	want := shadow.Counts{Same: 3, AllowToDeny: 2, DenyToAllow: 1, Changed: 1}
	if st.Counts != want {
		t.Fatalf("counts %+v, want %+v", st.Counts, want)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(sh.Collectors()...)
	const exposition = `
# HELP verdict_shadow_decisions_total Live decisions decided again against the candidate bundle version (--candidate), by result: same, allow_to_deny, deny_to_allow, changed (same allow or deny; status, visibility or deciding reasons differ).
# TYPE verdict_shadow_decisions_total counter
verdict_shadow_decisions_total{result="allow_to_deny"} 2
verdict_shadow_decisions_total{result="changed"} 1
verdict_shadow_decisions_total{result="deny_to_allow"} 1
verdict_shadow_decisions_total{result="same"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(exposition), "verdict_shadow_decisions_total"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logBuf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("shadow log: %d lines, want one per difference (4):\n%s", len(lines), logBuf.String())
	}
	var first shadow.LogLine
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.Change != access.AllowToDeny || first.Input.Member != "head_of_banking" || !first.Live.Allow ||
		first.Candidate.Reasons[0].Code != "iam.explicit_deny" || first.DecisionID == "" {
		t.Fatalf("first line %+v", first)
	}
	if st.LastDifference == nil || st.LastDifference.Input.Member != "intern" || st.LastDifference.Change != access.DenyToAllow {
		t.Fatalf("last difference %+v", st.LastDifference)
	}
}

func TestShadowDropsWhenTheQueueIsFull(t *testing.T) {
	sh := shadow.New(&pinner{e: candidateDemo(t)}, shadow.Options{Sample: 1, Queue: 1})
	live, _ := loadertest.Demo(t, decision.WithObserver(sh))
	for range 3 { // nothing works the queue yet: one waits, two are dropped
		ask(t, live, "user_a", "finmars:Portfolio:list", "")
	}
	go sh.Run(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sh.Close(ctx)
	if got := sh.Status().Counts; got != (shadow.Counts{Same: 1, Dropped: 2}) {
		t.Fatalf("counts %+v", got)
	}
}

func TestShadowSkipsWhileTheCandidateIsUnavailable(t *testing.T) {
	candidate := &pinner{e: candidateDemo(t), off: true}
	sh := shadow.New(candidate, shadow.Options{Sample: 1})
	live, _ := loadertest.Demo(t, decision.WithObserver(sh))
	go sh.Run(context.Background())
	ask(t, live, "head_of_banking", "finmars:Portfolio:update", "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sh.Close(ctx)
	if got := sh.Status(); got.Counts != (shadow.Counts{Skipped: 1}) || got.LastDifference != nil {
		t.Fatalf("status %+v", got)
	}
}

func TestShadowSamples(t *testing.T) {
	none := shadow.New(&pinner{e: candidateDemo(t)}, shadow.Options{Sample: 0})
	live, _ := loadertest.Demo(t, decision.WithObserver(none))
	go none.Run(context.Background())
	for range 20 {
		ask(t, live, "user_a", "finmars:Portfolio:list", "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	none.Close(ctx)
	if got := none.Status().Counts; got != (shadow.Counts{}) {
		t.Fatalf("--shadow-sample 0 shadowed: %+v", got)
	}
}

func TestShadowLogLeavesOutSecrets(t *testing.T) {
	var logBuf bytes.Buffer
	sh := shadow.New(&pinner{e: candidateDemo(t)}, shadow.Options{Sample: 1, Log: &logBuf})
	live, _ := loadertest.Demo(t, decision.WithObserver(sh))
	go sh.Run(context.Background())
	req := &decision.Request{Tenant: "bank", Member: "head_of_banking",
		Action: "finmars:Portfolio:update", Context: map[string]any{"authorization": "Bearer s3cret"}}
	if _, err := live.Decide(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sh.Close(ctx)
	line := logBuf.String()
	if !strings.Contains(line, `"change":"allow_to_deny"`) || strings.Contains(line, "s3cret") || strings.Contains(line, "authorization") {
		t.Fatalf("shadow log line: %s", line)
	}
}

// blockingLog holds every write until released, after saying it began.
type blockingLog struct {
	began   chan struct{}
	release chan struct{}
}

func (l *blockingLog) Write(p []byte) (int, error) {
	l.began <- struct{}{}
	<-l.release
	return len(p), nil
}

// TestShadowCountsADifferenceOnceRecorded: whoever reads counts that
// include a difference finds it as the last difference and in the log.
// The difference used to be counted first, so a status read in between
// (as the e2e test's poll did) saw the count without the difference.
func TestShadowCountsADifferenceOnceRecorded(t *testing.T) {
	log := &blockingLog{began: make(chan struct{}), release: make(chan struct{})}
	sh := shadow.New(&pinner{e: candidateDemo(t)}, shadow.Options{Sample: 1, Log: log})
	live, _ := loadertest.Demo(t, decision.WithObserver(sh))
	go sh.Run(context.Background())
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sh.Close(ctx)
	}()

	ask(t, live, "intern", "finmars:Instrument:list", "") // deny → allow
	select {
	case <-log.began:
	case <-time.After(10 * time.Second):
		t.Fatal("the difference was not logged")
	}
	if st := sh.Status(); st.Counts.DenyToAllow != 0 {
		t.Errorf("the difference is counted before it is logged: %+v", st.Counts)
	}
	close(log.release)
	deadline := time.Now().Add(10 * time.Second)
	for sh.Status().Counts.DenyToAllow == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	st := sh.Status()
	if st.Counts.DenyToAllow != 1 || st.LastDifference == nil || st.LastDifference.Input.Member != "intern" {
		t.Errorf("status after the log: %+v, last %+v", st.Counts, st.LastDifference)
	}
}
