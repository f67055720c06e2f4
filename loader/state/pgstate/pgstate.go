// Package pgstate keeps verdict's run-time state — service registrations,
// delegation requests and consents — in PostgreSQL, shared by every sidecar
// of a fleet: an ordered change log that every sidecar applies in revision
// order, beside the current rows a starting sidecar loads at once.
//
// Writers are serialised by a transaction-level advisory lock taken before
// a revision is allocated, so revisions commit in the order they are
// allocated: a reader that sees revision N committed has seen every
// revision before it. A follower never skips a change, even when writers on
// several sidecars race (see ChangesAfter).
package pgstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/verdict-authz/verdict/loader/state"
)

// Channel is the LISTEN/NOTIFY channel a write notifies with its revision.
const Channel = "verdict_state"

// Advisory lock keys ("verdict" and a number, as a bigint).
const (
	lockMigrate int64 = 0x7665726469637401
	lockWrite   int64 = 0x7665726469637402
)

// Store is an open connection pool to the fleet's database.
type Store struct {
	pool *pgxpool.Pool
	desc string
}

// Open parses dsn and returns a pool. It does not connect: the first use
// does, so that a sidecar starts while the database is down. Errors never
// contain the DSN's password.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's own message quotes the DSN; give a masked one instead.
		return nil, fmt.Errorf("cannot parse the database DSN %s", MaskDSN(dsn))
	}
	cfg.MaxConns = 4
	cfg.MinConns = 0
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > 5*time.Second {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "verdict"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", describe(cfg), err)
	}
	return &Store{pool: pool, desc: describe(cfg)}, nil
}

// describe names the database without its password.
func describe(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	host := c.Host
	if strings.HasPrefix(host, "/") {
		host = "unix:" + host
	}
	return fmt.Sprintf("postgres://%s@%s/%s", url.User(c.User).String(), host+":"+strconv.Itoa(int(c.Port)), c.Database)
}

// Description names the database (user, host, port, database), never its
// password: what logs and GET /v1/status show.
func (s *Store) Description() string { return s.desc }

// Close closes every connection.
func (s *Store) Close() { s.pool.Close() }

var (
	kvPassword  = regexp.MustCompile(`password\s*=\s*('(?:[^'\\]|\\.)*'|\S*)`)
	urlPassword = regexp.MustCompile(`^(postgres(?:ql)?://[^:@/]*:)([^@]*)@`)
)

// MaskDSN replaces the password of a URL or keyword/value DSN by "xxxxx".
func MaskDSN(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		dsn = urlPassword.ReplaceAllString(dsn, "${1}xxxxx@")
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			if q.Has("password") {
				q.Set("password", "xxxxx")
				u.RawQuery = q.Encode()
				dsn = u.String()
			}
		}
		return dsn
	}
	return kvPassword.ReplaceAllString(dsn, "password=xxxxx")
}

// --- schema -------------------------------------------------------------------

// migrations are the schema versions, in order; migration i+1 is
// migrations[i]. Never edit one that was released: append a new one.
var migrations = []string{
	// 1: the change log, its head, and the current rows.
	`CREATE TABLE verdict_state_head (
		id       boolean PRIMARY KEY DEFAULT true CHECK (id),
		revision bigint NOT NULL
	);
	INSERT INTO verdict_state_head (id, revision) VALUES (true, 0);
	CREATE TABLE verdict_state_changes (
		revision     bigint PRIMARY KEY,
		kind         text NOT NULL,
		subject      text NOT NULL,
		payload      json NOT NULL,
		origin       text NOT NULL,
		committed_at timestamptz NOT NULL DEFAULT now()
	);
	CREATE TABLE verdict_services (
		name     text PRIMARY KEY,
		payload  json NOT NULL,
		revision bigint NOT NULL
	);
	CREATE TABLE verdict_delegation_requests (
		tenant      text NOT NULL,
		application text NOT NULL,
		grp         text NOT NULL,
		payload     json NOT NULL,
		revision    bigint NOT NULL,
		PRIMARY KEY (tenant, application, grp)
	);
	CREATE TABLE verdict_consents (
		tenant      text NOT NULL,
		application text NOT NULL,
		grp         text NOT NULL,
		member      text NOT NULL,
		payload     json NOT NULL,
		revision    bigint NOT NULL,
		PRIMARY KEY (tenant, application, grp, member)
	);`,
}

// SchemaVersion is the schema version this verdict writes.
var SchemaVersion = len(migrations)

// ErrSchemaTooNew is a database migrated by a newer verdict.
var ErrSchemaTooNew = errors.New("the database schema is newer than this verdict supports")

// Migrate creates or upgrades the schema. It is idempotent and safe when
// many sidecars start at once: the migration runs in one transaction under
// an advisory lock, so one sidecar migrates and the others then find the
// schema current. It returns the versions before and after.
func (s *Store) Migrate(ctx context.Context) (from, to int, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, 0, s.unavailable("migrate", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockMigrate); err != nil {
		return 0, 0, s.unavailable("migrate", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS verdict_schema_version (
		version    integer PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return 0, 0, fmt.Errorf("migrate %s: %w", s.desc, err)
	}
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM verdict_schema_version`).Scan(&from); err != nil {
		return 0, 0, fmt.Errorf("migrate %s: %w", s.desc, err)
	}
	if from > SchemaVersion {
		return from, from, fmt.Errorf("%w: version %d, this verdict knows up to %d", ErrSchemaTooNew, from, SchemaVersion)
	}
	for v := from + 1; v <= SchemaVersion; v++ {
		if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
			return from, from, fmt.Errorf("migrate %s to version %d: %w", s.desc, v, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO verdict_schema_version (version) VALUES ($1)`, v); err != nil {
			return from, from, fmt.Errorf("migrate %s to version %d: %w", s.desc, v, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return from, from, s.unavailable("migrate", err)
	}
	return from, SchemaVersion, nil
}

// --- changes ------------------------------------------------------------------

// Change is one committed run-time change; exactly one of Service, Request
// and Consent is set. Every field a sidecar stores is in it, timestamps
// included, so that every sidecar holds the same state.
type Change struct {
	Revision uint64
	Service  *Service
	Request  *DelegationRequest
	Consent  *Consent
	// Origin names the sidecar that wrote it; CommittedAt is the database's
	// time of the write.
	Origin      string
	CommittedAt time.Time
}

// Service is a registration (PUT /v1/services/{name}).
type Service struct {
	Name string `json:"name"`
	// Document is the canonical JSON of the service document.
	Document     json.RawMessage `json:"document"`
	RegisteredAt time.Time       `json:"registered_at"`
}

// DelegationRequest is an application's run-time request for a group.
type DelegationRequest struct {
	Tenant      string    `json:"tenant"`
	Application string    `json:"application"`
	Group       string    `json:"group"`
	Operations  []string  `json:"operations"`
	At          time.Time `json:"at"`
}

// Consent is a member's consent (Enabled) or withdrawal.
type Consent struct {
	Tenant      string    `json:"tenant"`
	Application string    `json:"application"`
	Group       string    `json:"group"`
	Member      string    `json:"member"`
	Enabled     bool      `json:"enabled"`
	At          time.Time `json:"at"`
}

// The kinds of change in the log.
const (
	kindService = "service"
	kindRequest = "delegation_request"
	kindConsent = "consent"
)

// Subject names what the change is about, for logs.
func (c *Change) Subject() string {
	switch {
	case c.Service != nil:
		return "service " + c.Service.Name
	case c.Request != nil:
		return "delegation " + c.Request.Tenant + "/" + c.Request.Application + "/" + c.Request.Group
	case c.Consent != nil:
		return "delegation " + c.Consent.Tenant + "/" + c.Consent.Application + "/" + c.Consent.Group + "/" + c.Consent.Member
	}
	return "nothing"
}

func (c *Change) encode() (kind string, payload []byte, err error) {
	switch {
	case c.Service != nil:
		kind = kindService
		payload, err = json.Marshal(c.Service)
	case c.Request != nil:
		kind = kindRequest
		payload, err = json.Marshal(c.Request)
	case c.Consent != nil:
		kind = kindConsent
		payload, err = json.Marshal(c.Consent)
	default:
		err = errors.New("the change holds nothing")
	}
	return kind, payload, err
}

func decodeChange(kind string, payload []byte) (*Change, error) {
	c := &Change{}
	var err error
	switch kind {
	case kindService:
		c.Service = &Service{}
		err = json.Unmarshal(payload, c.Service)
	case kindRequest:
		c.Request = &DelegationRequest{}
		err = json.Unmarshal(payload, c.Request)
	case kindConsent:
		c.Consent = &Consent{}
		err = json.Unmarshal(payload, c.Consent)
	default:
		err = fmt.Errorf("unknown kind %q (written by a newer verdict?)", kind)
	}
	return c, err
}

// UnavailableError is a database that could not be reached or that failed
// a write: nothing was changed.
type UnavailableError struct {
	Op  string
	Err error
}

func (e *UnavailableError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

func (s *Store) unavailable(op string, err error) error {
	return &UnavailableError{Op: op + " " + s.desc, Err: err}
}

// WriteTx is a write transaction holding the fleet's write lock: no other
// writer allocates a revision until it commits or rolls back.
type WriteTx struct {
	s      *Store
	tx     pgx.Tx
	origin string
	done   bool
}

// BeginWrite begins a write transaction and takes the write lock.
func (s *Store) BeginWrite(ctx context.Context, origin string) (*WriteTx, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, s.unavailable("begin write", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockWrite); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return nil, s.unavailable("take the write lock", err)
	}
	return &WriteTx{s: s, tx: tx, origin: origin}, nil
}

// ChangesAfter lists every committed change after the revision. Under the
// write lock nothing is in flight, so the list is complete.
func (w *WriteTx) ChangesAfter(ctx context.Context, after uint64) ([]Change, error) {
	changes, err := queryChanges(ctx, w.tx, after, 0, 0)
	if err != nil {
		return nil, w.s.unavailable("read changes", err)
	}
	return changes, nil
}

// Append writes the change: the head revision is advanced, the change is
// appended to the log under it, the current row is updated, and a
// notification carrying the revision is sent when the transaction commits.
func (w *WriteTx) Append(ctx context.Context, c *Change) (uint64, error) {
	kind, payload, err := c.encode()
	if err != nil {
		return 0, err
	}
	var rev int64
	if err := w.tx.QueryRow(ctx, `UPDATE verdict_state_head SET revision = revision + 1 RETURNING revision`).Scan(&rev); err != nil {
		return 0, w.s.unavailable("allocate a revision", err)
	}
	if _, err := w.tx.Exec(ctx, `INSERT INTO verdict_state_changes (revision, kind, subject, payload, origin) VALUES ($1, $2, $3, $4, $5)`,
		rev, kind, c.Subject(), string(payload), w.origin); err != nil {
		return 0, w.s.unavailable("append the change", err)
	}
	switch {
	case c.Service != nil:
		_, err = w.tx.Exec(ctx, `INSERT INTO verdict_services (name, payload, revision) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET payload = EXCLUDED.payload, revision = EXCLUDED.revision`,
			c.Service.Name, string(payload), rev)
	case c.Request != nil:
		r := c.Request
		_, err = w.tx.Exec(ctx, `INSERT INTO verdict_delegation_requests (tenant, application, grp, payload, revision) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant, application, grp) DO UPDATE SET payload = EXCLUDED.payload, revision = EXCLUDED.revision`,
			r.Tenant, r.Application, r.Group, string(payload), rev)
	case c.Consent != nil:
		r := c.Consent
		_, err = w.tx.Exec(ctx, `INSERT INTO verdict_consents (tenant, application, grp, member, payload, revision) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (tenant, application, grp, member) DO UPDATE SET payload = EXCLUDED.payload, revision = EXCLUDED.revision`,
			r.Tenant, r.Application, r.Group, r.Member, string(payload), rev)
	}
	if err != nil {
		return 0, w.s.unavailable("update the current row", err)
	}
	if _, err := w.tx.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, strconv.FormatInt(rev, 10)); err != nil {
		return 0, w.s.unavailable("notify", err)
	}
	c.Revision = uint64(rev)
	c.Origin = w.origin
	return uint64(rev), nil
}

// Commit commits the transaction. An error means the change may or may
// not have been committed; a follower applies it if it was.
func (w *WriteTx) Commit(ctx context.Context) error {
	w.done = true
	if err := w.tx.Commit(ctx); err != nil {
		return w.s.unavailable("commit", err)
	}
	return nil
}

// Rollback ends the transaction without committing, unless it was
// committed already.
func (w *WriteTx) Rollback(ctx context.Context) {
	if !w.done {
		w.done = true
		w.tx.Rollback(ctx)
	}
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// queryChanges lists the changes after a revision, up to through (0: no
// bound), at most limit of them (0: all).
func queryChanges(ctx context.Context, q querier, after, through uint64, limit int) ([]Change, error) {
	sql := `SELECT revision, kind, payload::text, origin, committed_at FROM verdict_state_changes WHERE revision > $1`
	args := []any{int64(after)}
	if through > 0 {
		sql += ` AND revision <= $2`
		args = append(args, int64(through))
	}
	sql += ` ORDER BY revision`
	if limit > 0 {
		sql += ` LIMIT ` + strconv.Itoa(limit)
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		var rev int64
		var kind, payload, origin string
		var at time.Time
		if err := rows.Scan(&rev, &kind, &payload, &origin, &at); err != nil {
			return nil, err
		}
		c, err := decodeChange(kind, []byte(payload))
		if err != nil {
			return nil, fmt.Errorf("change %d: %w", rev, err)
		}
		c.Revision, c.Origin, c.CommittedAt = uint64(rev), origin, at
		out = append(out, *c)
	}
	return out, rows.Err()
}

// ChangesAfter reads the head revision and then the changes after the
// revision up to that head, at most limit of them. Every change up to the
// head was committed before the head was read, so the list has no gap
// (writers commit in revision order: see BeginWrite); a caller still
// applies only a contiguous run, and stops at a gap.
func (s *Store) ChangesAfter(ctx context.Context, after uint64, limit int) (changes []Change, head uint64, err error) {
	if head, err = s.Head(ctx); err != nil {
		return nil, 0, err
	}
	if head <= after {
		return nil, head, nil
	}
	changes, err = queryChanges(ctx, s.pool, after, head, limit)
	if err != nil {
		return nil, head, s.unavailable("read changes", err)
	}
	return changes, head, nil
}

// Head is the revision of the last committed change.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	var head int64
	if err := s.pool.QueryRow(ctx, `SELECT revision FROM verdict_state_head`).Scan(&head); err != nil {
		return 0, s.unavailable("read the head revision", err)
	}
	return uint64(head), nil
}

// Snapshot is the current state at one revision.
type Snapshot struct {
	Revision uint64
	Services []Service
	Requests []DelegationRequest
	Consents []Consent
}

// Load reads the current rows and their revision in one consistent
// snapshot.
func (s *Store) Load(ctx context.Context) (*Snapshot, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, s.unavailable("load", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	snap := &Snapshot{}
	var head int64
	if err := tx.QueryRow(ctx, `SELECT revision FROM verdict_state_head`).Scan(&head); err != nil {
		return nil, s.unavailable("load", err)
	}
	snap.Revision = uint64(head)
	if err := loadRows(ctx, tx, `SELECT payload::text FROM verdict_services ORDER BY name`, &snap.Services); err != nil {
		return nil, s.unavailable("load services", err)
	}
	if err := loadRows(ctx, tx, `SELECT payload::text FROM verdict_delegation_requests ORDER BY tenant, application, grp`, &snap.Requests); err != nil {
		return nil, s.unavailable("load delegation requests", err)
	}
	if err := loadRows(ctx, tx, `SELECT payload::text FROM verdict_consents ORDER BY tenant, application, grp, member`, &snap.Consents); err != nil {
		return nil, s.unavailable("load consents", err)
	}
	return snap, nil
}

func loadRows[T any](ctx context.Context, q querier, sql string, out *[]T) error {
	rows, err := q.Query(ctx, sql)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var payload string
		if err := rows.Scan(&payload); err != nil {
			return err
		}
		var v T
		if err := json.Unmarshal([]byte(payload), &v); err != nil {
			return err
		}
		*out = append(*out, v)
	}
	return rows.Err()
}

// Contents turns the snapshot into the entries a state directory holds,
// for the loader's restore path.
func (snap *Snapshot) Contents() *state.Contents {
	c := &state.Contents{}
	for _, s := range snap.Services {
		c.Services = append(c.Services, &state.ServiceFile{Version: state.Version, Name: s.Name, RegisteredAt: s.RegisteredAt, Document: s.Document})
	}
	byKey := map[[3]string]*state.DelegationFile{}
	entry := func(t, a, g string) *state.DelegationFile {
		k := [3]string{t, a, g}
		if f := byKey[k]; f != nil {
			return f
		}
		f := &state.DelegationFile{Version: state.Version, Tenant: t, Application: a, Group: g}
		byKey[k] = f
		c.Delegations = append(c.Delegations, f)
		return f
	}
	for _, r := range snap.Requests {
		entry(r.Tenant, r.Application, r.Group).Request = &state.Request{Operations: r.Operations, At: r.At}
	}
	for _, r := range snap.Consents {
		f := entry(r.Tenant, r.Application, r.Group)
		if f.Consents == nil {
			f.Consents = map[string]state.Consent{}
		}
		f.Consents[r.Member] = state.Consent{Enabled: r.Enabled, At: r.At}
	}
	return c
}

// ChangesOf lists the changes that write the contents of a state
// directory: each service, then each delegation's request and consents.
func ChangesOf(c *state.Contents) []Change {
	var out []Change
	for _, f := range c.Services {
		out = append(out, Change{Service: &Service{Name: f.Name, Document: f.Document, RegisteredAt: f.RegisteredAt}})
	}
	for _, f := range c.Delegations {
		if f.Request != nil {
			out = append(out, Change{Request: &DelegationRequest{Tenant: f.Tenant, Application: f.Application, Group: f.Group,
				Operations: f.Request.Operations, At: f.Request.At}})
		}
		members := make([]string, 0, len(f.Consents))
		for m := range f.Consents {
			members = append(members, m)
		}
		sort.Strings(members)
		for _, m := range members {
			cs := f.Consents[m]
			out = append(out, Change{Consent: &Consent{Tenant: f.Tenant, Application: f.Application, Group: f.Group,
				Member: m, Enabled: cs.Enabled, At: cs.At}})
		}
	}
	return out
}

// Listen listens for notifications of new changes and calls notify for
// each, and once as soon as it listens (changes committed while no one
// listened are caught up then). It returns when ctx ends or the
// connection fails; the caller listens again.
func (s *Store) Listen(ctx context.Context, notify func(revision uint64)) error {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.unavailable("listen", err)
	}
	// The connection leaves the pool: it only waits for notifications.
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+Channel); err != nil {
		return s.unavailable("listen", err)
	}
	notify(0)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return s.unavailable("wait for notifications", err)
		}
		rev, _ := strconv.ParseUint(n.Payload, 10, 64)
		notify(rev)
	}
}

// Import writes the entries of a state directory as changes, in one
// transaction, and returns the revision of the last one and how many were
// written.
func (s *Store) Import(ctx context.Context, c *state.Contents, origin string) (revision uint64, n int, err error) {
	w, err := s.BeginWrite(ctx, origin)
	if err != nil {
		return 0, 0, err
	}
	defer w.Rollback(context.WithoutCancel(ctx))
	for _, ch := range ChangesOf(c) {
		if revision, err = w.Append(ctx, &ch); err != nil {
			return 0, 0, err
		}
		n++
	}
	if err := w.Commit(ctx); err != nil {
		return 0, 0, err
	}
	return revision, n, nil
}
