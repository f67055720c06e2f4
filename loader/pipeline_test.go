package loader

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/store"
)

// recorder is a processor that notes when it ran.
type recorder struct {
	name  string
	order int
	log   *[]string
	fn    func(ev *Event, txn *store.WriteTxn) error
}

func (r recorder) Name() string { return r.name }
func (r recorder) Order() int   { return r.order }
func (r recorder) Process(_ context.Context, ev *Event, txn *store.WriteTxn) error {
	*r.log = append(*r.log, r.name)
	if r.fn != nil {
		return r.fn(ev, txn)
	}
	return nil
}

type asyncRecorder struct {
	name  string
	order int
	mu    *sync.Mutex
	log   *[]string
}

func (a asyncRecorder) Name() string { return a.name }
func (a asyncRecorder) Order() int   { return a.order }
func (a asyncRecorder) Notify(_ context.Context, ev *Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	*a.log = append(*a.log, a.name+":"+ev.Subject.Name+":"+string(ev.Kind))
}

func newTestPipeline(t *testing.T) (*Pipeline, *store.Store) {
	t.Helper()
	st, err := store.New()
	if err != nil {
		t.Fatal(err)
	}
	return NewPipeline(st, nil), st
}

func tenant(code string) *acl.Tenant {
	return &acl.Tenant{Code: code, Name: code, Members: map[string]*acl.Member{}}
}

func TestPipelineRunsProcessorsByOrder(t *testing.T) {
	p, _ := newTestPipeline(t)
	var ran []string
	p.Register(recorder{name: "c", order: 30, log: &ran}, recorder{name: "a", order: 10, log: &ran}, recorder{name: "b", order: 20, log: &ran})
	if _, err := p.Process(t.Context(), &Event{Kind: KindCreate, Subject: Subject{Type: "test", Name: "x"}}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(ran, want) {
		t.Errorf("ran %v, want %v", ran, want)
	}
	infos := p.Processors()
	if len(infos) != 3 || infos[0].Name != "a" || infos[2].Name != "c" || infos[0].Mode != "sync" {
		t.Errorf("Processors() = %+v", infos)
	}
}

func TestPipelineErrorRollsBackTheWholeChange(t *testing.T) {
	p, st := newTestPipeline(t)
	var ran []string
	p.Register(
		recorder{name: "put", order: 1, log: &ran, fn: func(_ *Event, txn *store.WriteTxn) error { return txn.PutTenant("b", tenant("acme")) }},
		recorder{name: "refuse", order: 2, log: &ran, fn: func(*Event, *store.WriteTxn) error { return errors.New("no") }},
		recorder{name: "after", order: 3, log: &ran},
	)
	_, err := p.Process(t.Context(), &Event{Kind: KindCreate})
	var pe *ProcessorError
	if !errors.As(err, &pe) || pe.Processor != "refuse" {
		t.Fatalf("err = %v, want a ProcessorError from refuse", err)
	}
	if got, _ := st.Snapshot().Read().Tenant("acme"); got != nil {
		t.Error("the tenant put before the error was kept; the change must roll back whole")
	}
	if want := []string{"put", "refuse"}; !reflect.DeepEqual(ran, want) {
		t.Errorf("ran %v, want %v", ran, want)
	}
}

func TestPipelineClosedEventSkipsTheRestAndCommits(t *testing.T) {
	p, st := newTestPipeline(t)
	var ran []string
	p.Register(
		recorder{name: "put", order: 1, log: &ran, fn: func(ev *Event, txn *store.WriteTxn) error { return txn.PutTenant("b", tenant("acme")) }},
		recorder{name: "close", order: 2, log: &ran, fn: func(ev *Event, _ *store.WriteTxn) error { ev.Close(); return nil }},
		recorder{name: "after", order: 3, log: &ran},
	)
	ev := &Event{Kind: KindUpdate}
	snap, err := p.Process(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ClosedBy != "close" || !ev.Closed() {
		t.Errorf("ClosedBy = %q", ev.ClosedBy)
	}
	if want := []string{"put", "close"}; !reflect.DeepEqual(ran, want) {
		t.Errorf("ran %v, want %v", ran, want)
	}
	if got, _ := snap.Read().Tenant("acme"); got == nil {
		t.Error("a closed event must commit what was done")
	}
	_ = st
}

func TestPipelineDisable(t *testing.T) {
	p, _ := newTestPipeline(t)
	var ran []string
	p.Register(recorder{name: "a", order: 1, log: &ran}, recorder{name: "b", order: 2, log: &ran})
	p.RegisterSteps(bundleSteps...)
	if err := p.Disable("a"); err != nil {
		t.Fatal(err)
	}
	if err := p.Disable("nope"); !errors.Is(err, ErrUnknownProcessor) {
		t.Errorf("Disable(unknown) = %v", err)
	}
	if err := p.Disable("bundle-assemble"); err == nil || !strings.Contains(err.Error(), "required") {
		t.Errorf("Disable(required) = %v", err)
	}
	if _, err := p.Process(t.Context(), &Event{Kind: KindCreate}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"b"}; !reflect.DeepEqual(ran, want) {
		t.Errorf("ran %v, want %v", ran, want)
	}
	for _, info := range p.Processors() {
		if info.Name == "a" && info.Enabled {
			t.Error("a is listed as enabled")
		}
	}
}

func TestPipelineNotifiesAsyncProcessorsInOrder(t *testing.T) {
	p, _ := newTestPipeline(t)
	var mu sync.Mutex
	var got []string
	p.RegisterAsync(asyncRecorder{name: "second", order: 2, mu: &mu, log: &got}, asyncRecorder{name: "first", order: 1, mu: &mu, log: &got})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go p.Run(ctx)
	for _, n := range []string{"x", "y"} {
		p.Notify(&Event{Kind: KindUpdate, Subject: Subject{Type: "test", Name: n}})
	}
	fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
	defer fcancel()
	if err := p.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"first:x:NOTIFY", "second:x:NOTIFY", "first:y:NOTIFY", "second:y:NOTIFY"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("notified %v, want %v", got, want)
	}
}

// ctxProbe is an asynchronous processor that reports what its context
// carries: a value the request set, and whether it is cancelled.
type ctxProbe struct{ seen chan<- [2]any }

type probeKey struct{}

func (ctxProbe) Name() string { return "probe" }
func (ctxProbe) Order() int   { return 1 }
func (p ctxProbe) Notify(ctx context.Context, _ *Event) {
	p.seen <- [2]any{ctx.Value(probeKey{}), ctx.Err()}
}

// TestPipelineNotifyCarriesTheOrigin: a NOTIFY processor sees the values of
// the request that caused the change (its trace) even after the request
// ended, and none for a change without one.
func TestPipelineNotifyCarriesTheOrigin(t *testing.T) {
	p, _ := newTestPipeline(t)
	seen := make(chan [2]any, 2)
	p.RegisterAsync(ctxProbe{seen: seen})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go p.Run(ctx)

	request, endRequest := context.WithCancel(context.WithValue(t.Context(), probeKey{}, "caller"))
	endRequest() // the HTTP request is over before the processors run
	p.Notify(&Event{Kind: KindUpdate, Subject: Subject{Type: SubjectService, Name: "s"}, Origin: context.WithoutCancel(request)})
	p.Notify(&Event{Kind: KindUpdate, Subject: Subject{Type: SubjectBundle, Name: "b"}})
	for i, want := range [][2]any{{"caller", nil}, {nil, nil}} {
		select {
		case got := <-seen:
			if got != want {
				t.Errorf("event %d: processor saw value %v, err %v; want %v, %v", i, got[0], got[1], want[0], want[1])
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d was not notified", i)
		}
	}
}

func TestDebouncerCollapsesABurst(t *testing.T) {
	var mu sync.Mutex
	fired := map[string]int{}
	d := newDebouncer(300*time.Millisecond, 5*time.Second, func(k string) {
		mu.Lock()
		fired[k]++
		mu.Unlock()
	})
	defer d.stop()
	for i := 0; i < 10; i++ {
		d.touch("a")
		time.Sleep(5 * time.Millisecond)
	}
	d.touch("b")
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		done := fired["a"] == 1 && fired["b"] == 1
		mu.Unlock()
		if done {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if fired["a"] != 1 || fired["b"] != 1 {
		t.Errorf("fired %v, want one reload per bundle", fired)
	}
}

func TestDebouncerMaxWaitBoundsAContinuousBurst(t *testing.T) {
	fired := make(chan struct{}, 10)
	d := newDebouncer(40*time.Millisecond, 120*time.Millisecond, func(string) { fired <- struct{}{} })
	defer d.stop()
	stop := time.After(600 * time.Millisecond)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	n := 0
loop:
	for {
		select {
		case <-stop:
			break loop
		case <-tick.C:
			d.touch("a")
		case <-fired:
			n++
		}
	}
	if n < 2 {
		t.Errorf("a burst of 600 ms with maxWait 120 ms fired %d times, want several", n)
	}
}
