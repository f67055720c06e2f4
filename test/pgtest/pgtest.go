// Package pgtest gives tests a real PostgreSQL: the server named by
// VERDICT_TEST_PG_DSN (.ci/run starts one and sets it), or else a throwaway
// cluster it starts itself from the installed binaries. A test that needs a
// database fails without one; it never skips.
//
// A package that uses NewDatabase runs its tests through Main, which stops
// the throwaway cluster when the tests end.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the variable holding the DSN of the tests' server; the
// DSN's database is used to create and drop the tests' databases.
const EnvDSN = "VERDICT_TEST_PG_DSN"

// EnvBin names the variable holding the directory of the PostgreSQL
// binaries (initdb, pg_ctl), when they are not found by themselves.
const EnvBin = "VERDICT_TEST_PG_BIN"

var shared struct {
	once    sync.Once
	cluster *Cluster
	dsn     string
	err     error
}

// Main runs the package's tests and stops the throwaway cluster, if one was
// started: call it from TestMain as os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	Cleanup()
	return code
}

// Cleanup stops and removes the throwaway cluster, if one was started (for
// a TestMain that runs the tests itself).
func Cleanup() {
	if shared.cluster != nil {
		shared.cluster.stop()
		shared.cluster.remove()
	}
}

// ServerDSN is the DSN of the tests' server: VERDICT_TEST_PG_DSN, or a
// throwaway cluster started once for the test binary. It fails the test
// when there is neither.
func ServerDSN(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return dsn
	}
	shared.once.Do(func() {
		c, err := startCluster()
		shared.cluster, shared.err = c, err
		if err == nil {
			shared.dsn = c.DSN("postgres")
		}
	})
	if shared.err != nil {
		t.Fatalf("no PostgreSQL for the test: %s is not set and no throwaway cluster could be started: %v", EnvDSN, shared.err)
	}
	return shared.dsn
}

// NewDatabase creates an empty database for the test on the tests' server
// and returns its DSN; it is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return createDatabase(t, ServerDSN(t))
}

func createDatabase(t testing.TB, serverDSN string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverDSN)
	if err != nil {
		t.Fatalf("connect to the tests' PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	name := "verdict_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, serverDSN)
		if err != nil {
			return // the server is gone with its databases
		}
		defer conn.Close(ctx)
		conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	cfg, err := pgx.ParseConfig(serverDSN)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvDSN, err)
	}
	return withDatabase(serverDSN, cfg, name)
}

// withDatabase is the DSN with its database replaced.
func withDatabase(dsn string, cfg *pgx.ConnConfig, db string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		i := strings.Index(dsn[strings.Index(dsn, "://")+3:], "/")
		q := ""
		if j := strings.IndexByte(dsn, '?'); j >= 0 {
			q = dsn[j:]
		}
		if i < 0 {
			return strings.TrimSuffix(dsn, q) + "/" + db + q
		}
		return dsn[:strings.Index(dsn, "://")+3+i] + "/" + db + q
	}
	return dsn + " dbname=" + db
}

// Cluster is a private PostgreSQL cluster in a temporary directory, on a
// loopback port, that a test may stop and start.
type Cluster struct {
	bin    string
	dir    string // owns data/ and the log
	port   int
	runAs  string // the user the server runs as when the tests run as root
	mu     sync.Mutex
	stopAt bool
}

// StartCluster starts a private cluster for the test, stopped and removed
// when the test ends. It fails the test when the binaries are missing.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	c, err := startCluster()
	if err != nil {
		t.Fatalf("start a PostgreSQL cluster: %v", err)
	}
	t.Cleanup(func() {
		c.stop()
		c.remove()
	})
	return c
}

// NewDatabase creates an empty database in the cluster for the test and
// returns its DSN.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	return createDatabase(t, c.DSN("postgres"))
}

// DSN is the DSN of a database of the cluster.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// Stop stops the server (fast shutdown: connections are cut).
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if out, err := c.pgctl("-m", "fast", "-w", "stop"); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

// Start starts the server again on the same port.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
}

func binDir() (string, error) {
	if d := os.Getenv(EnvBin); d != "" {
		return d, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return a > b
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL binaries (initdb, pg_ctl): install the postgresql package or set %s", EnvBin)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func startCluster() (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "verdict-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin, dir: dir}
	fail := func(err error) (*Cluster, error) {
		c.remove()
		return nil, err
	}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			return fail(fmt.Errorf("running as root and there is no postgres user to run the server as: %w", err))
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chmod(dir, 0o755); err != nil {
			return fail(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail(err)
		}
		c.runAs = "postgres"
	}
	if c.port, err = freePort(); err != nil {
		return fail(err)
	}
	out, err := c.command(filepath.Join(bin, "initdb"), "-D", c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput()
	if err != nil {
		return fail(fmt.Errorf("initdb: %w\n%s", err, out))
	}
	if err := c.start(); err != nil {
		return fail(err)
	}
	return c, nil
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	if c.runAs != "" {
		return exec.Command("runuser", append([]string{"-u", c.runAs, "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

func (c *Cluster) pgctl(args ...string) ([]byte, error) {
	all := append([]string{"-D", c.data(), "-l", filepath.Join(c.dir, "server.log")}, args...)
	return c.command(filepath.Join(c.bin, "pg_ctl"), all...).CombinedOutput()
}

func (c *Cluster) start() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200", c.port, c.dir)
	if out, err := c.pgctl("-w", "-t", "60", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		return fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	return nil
}

func (c *Cluster) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopAt {
		return
	}
	c.stopAt = true
	c.pgctl("-m", "immediate", "-w", "stop")
}

func (c *Cluster) remove() { os.RemoveAll(c.dir) }
