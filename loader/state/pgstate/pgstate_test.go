package pgstate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/loader/state"
	"github.com/verdict-authz/verdict/loader/state/pgstate"
	"github.com/verdict-authz/verdict/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func open(t *testing.T, dsn string) *pgstate.Store {
	t.Helper()
	s, err := pgstate.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Ten sidecars starting at once all migrate the same database: one creates
// the schema, the others find it current, and none fails.
func TestMigrateConcurrently(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	created := make(chan int, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := pgstate.Open(ctx, dsn)
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			from, to, err := s.Migrate(ctx)
			if err != nil {
				errs <- err
				return
			}
			if to != pgstate.SchemaVersion {
				errs <- fmt.Errorf("migrated to %d, want %d", to, pgstate.SchemaVersion)
			}
			if from == 0 {
				created <- 1
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(created)
	for err := range errs {
		t.Error(err)
	}
	if n := len(created); n != 1 {
		t.Errorf("%d sidecars created the schema, want exactly 1", n)
	}
	// And again: nothing to do.
	from, to, err := open(t, dsn).Migrate(ctx)
	if err != nil || from != pgstate.SchemaVersion || to != pgstate.SchemaVersion {
		t.Errorf("Migrate again = %d, %d, %v; want %d, %d, nil", from, to, err, pgstate.SchemaVersion, pgstate.SchemaVersion)
	}
}

func write(ctx context.Context, s *pgstate.Store, origin string, c *pgstate.Change) (uint64, error) {
	w, err := s.BeginWrite(ctx, origin)
	if err != nil {
		return 0, err
	}
	defer w.Rollback(ctx)
	rev, err := w.Append(ctx, c)
	if err != nil {
		return 0, err
	}
	return rev, w.Commit(ctx)
}

func consent(member string, enabled bool) *pgstate.Change {
	return &pgstate.Change{Consent: &pgstate.Consent{Tenant: "bank", Application: "rhythm", Group: "g", Member: member,
		Enabled: enabled, At: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)}}
}

// A write appends to the log and updates the current row; Load sees the
// latest value of each row and the head revision, timestamps exact to the
// nanosecond.
func TestWriteAndLoad(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := t.Context()
	s := open(t, dsn)
	if _, _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	doc := json.RawMessage(`{"routes":[{"path":"/a/","viewset":"A"}],"n":1e2}`)
	changes := []*pgstate.Change{
		{Service: &pgstate.Service{Name: "svc", Document: doc, RegisteredAt: time.Unix(5, 7).UTC()}},
		{Request: &pgstate.DelegationRequest{Tenant: "bank", Application: "rhythm", Group: "g", Operations: []string{"READ"}, At: time.Unix(6, 0).UTC()}},
		consent("alice", true),
		consent("alice", false),
		consent("bob", true),
	}
	for i, c := range changes {
		rev, err := write(ctx, s, "test", c)
		if err != nil {
			t.Fatal(err)
		}
		if rev != uint64(i+1) {
			t.Fatalf("change %d got revision %d", i, rev)
		}
	}
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Revision != 5 || len(snap.Services) != 1 || len(snap.Requests) != 1 || len(snap.Consents) != 2 {
		t.Fatalf("snapshot = %+v", snap)
	}
	if string(snap.Services[0].Document) != string(doc) {
		t.Errorf("document = %s, want it verbatim %s", snap.Services[0].Document, doc)
	}
	if c := snap.Consents[0]; c.Member != "alice" || c.Enabled || !c.At.Equal(consent("", false).Consent.At) {
		t.Errorf("alice's consent = %+v, want the withdrawal with its exact time", c)
	}
	contents := snap.Contents()
	if len(contents.Delegations) != 1 || contents.Delegations[0].Request == nil || len(contents.Delegations[0].Consents) != 2 {
		t.Errorf("contents = %+v", contents.Delegations)
	}
	log, head, err := s.ChangesAfter(ctx, 2, 0)
	if err != nil || head != 5 || len(log) != 3 || log[0].Revision != 3 || log[0].Consent == nil || log[0].Origin != "test" {
		t.Fatalf("ChangesAfter(2) = %+v, %d, %v", log, head, err)
	}
}

// Many writers on separate connections race while a follower reads the
// log: every revision is committed once, and the follower, applying only
// contiguous runs, sees every one of them in order — none is skipped even
// though transactions run concurrently.
func TestConcurrentWritersNoChangeSkipped(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := t.Context()
	s := open(t, dsn)
	if _, _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 25
	stores := make([]*pgstate.Store, writers)
	for i := range stores {
		stores[i] = open(t, dsn)
	}
	done := make(chan struct{})
	var followErr error
	var seen []uint64
	followerDone := make(chan struct{})
	go func() {
		defer close(followerDone)
		var applied uint64
		for {
			changes, head, err := s.ChangesAfter(ctx, applied, 7)
			if err != nil {
				followErr = err
				return
			}
			for _, c := range changes {
				if c.Revision != applied+1 {
					break // a gap: wait for it
				}
				applied = c.Revision
				seen = append(seen, c.Revision)
			}
			select {
			case <-done:
				if applied >= head && head == writers*each {
					return
				}
			default:
			}
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := write(ctx, stores[w], fmt.Sprint("w", w), consent(fmt.Sprintf("m%d_%d", w, i), true)); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(done)
	<-followerDone
	if followErr != nil {
		t.Fatal(followErr)
	}
	if len(seen) != writers*each {
		t.Fatalf("the follower applied %d changes, want %d", len(seen), writers*each)
	}
	for i, rev := range seen {
		if rev != uint64(i+1) {
			t.Fatalf("the follower's %dth change is revision %d", i+1, rev)
		}
	}
}

// A database that cannot be reached is an *UnavailableError whose message
// does not carry the password.
func TestUnavailableMasksPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s := open(t, "postgres://verdict:s3cret@127.0.0.1:1/verdict?sslmode=disable&connect_timeout=2")
	_, err := s.BeginWrite(ctx, "x")
	var ue *pgstate.UnavailableError
	if err == nil || !asUnavailable(err, &ue) {
		t.Fatalf("BeginWrite on a closed port = %v, want an *UnavailableError", err)
	}
	if strings.Contains(err.Error(), "s3cret") || strings.Contains(s.Description(), "s3cret") {
		t.Errorf("the password shows: %v / %s", err, s.Description())
	}
}

func TestMaskDSN(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:pw@h:5432/db", "postgres://u:xxxxx@h:5432/db"},
		{"postgresql://u@h/db?password=pw&sslmode=disable", "postgresql://u@h/db?password=xxxxx&sslmode=disable"},
		{"host=h user=u password=pw dbname=d", "host=h user=u password=xxxxx dbname=d"},
		{"host=h password='p w' dbname=d", "host=h password=xxxxx dbname=d"},
		{"postgres://u@h/db", "postgres://u@h/db"},
	} {
		if got := pgstate.MaskDSN(tc.in); got != tc.want {
			t.Errorf("MaskDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// ChangesOf writes a state directory's entries as changes.
func TestChangesOf(t *testing.T) {
	c := &state.Contents{
		Services: []*state.ServiceFile{{Name: "s", Document: json.RawMessage(`{}`)}},
		Delegations: []*state.DelegationFile{{Tenant: "t", Application: "a", Group: "g",
			Request:  &state.Request{Operations: []string{"READ"}},
			Consents: map[string]state.Consent{"b": {Enabled: true}, "a": {Enabled: false}}}},
	}
	got := pgstate.ChangesOf(c)
	var subjects []string
	for _, ch := range got {
		subjects = append(subjects, ch.Subject())
	}
	want := "service s|delegation t/a/g|delegation t/a/g/a|delegation t/a/g/b"
	if strings.Join(subjects, "|") != want {
		t.Errorf("ChangesOf = %v, want %s", subjects, want)
	}
}

func asUnavailable(err error, target **pgstate.UnavailableError) bool { return errors.As(err, target) }
