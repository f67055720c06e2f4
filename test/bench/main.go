// Command bench compares verdict with plain OPA serving the same data, side
// by side on one machine, and measures a trivial Go HTTP handler as the
// physical limit. See README.md.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/verdict-authz/verdict/test/worldgen"
)

// authzRego is the comparison policy for plain OPA.
//
//go:embed authz.rego
var authzRego string

// scales are the worlds the issue names. Every tenant has 1,000 policies,
// 1,000 resource groups (10 objects each) and routes for 50 view sets.
var scales = map[string]worldgen.Spec{
	"small":  {Seed: 7, Tenants: 1, Members: 100, Policies: 1000, ResourceGroups: 1000, ObjectsPerRG: 10, ViewSets: 50},
	"medium": {Seed: 7, Tenants: 10, Members: 10000, Policies: 1000, ResourceGroups: 1000, ObjectsPerRG: 10, ViewSets: 50},
	"large":  {Seed: 7, Tenants: 1, Members: 100000, Policies: 1000, ResourceGroups: 1000, ObjectsPerRG: 10, ViewSets: 50},
}

type options struct {
	scales       []string
	targets      []string
	duration     time.Duration
	warmup       time.Duration
	conns        int
	rateConns    int
	rates        string
	zipf         float64
	sample       int
	stream       int
	repeat       int
	maxReqs      uint64
	workdir      string
	src          string
	verdictBin   string
	opaBin       string
	opaPolicy    string
	gobin        string
	procs        int
	out          string
	jsonOut      string
	timeout      time.Duration
	readyTimeout time.Duration
	cacheSize    int
	cacheWarm    bool
	shadowSample float64
	// serverCPUs pins every server to these CPUs (taskset -c) with
	// GOMAXPROCS their count; "" leaves them unpinned.
	serverCPUs  string
	serverProcs int
}

// cacheTTL is verdict-cached's --decision-cache-ttl: far longer than a
// closed-loop process lives (two warm passes and two load runs), so that no
// cached decision expires while it is measured; measureClosed warns when a
// process outlives it.
const cacheTTL = 10 * time.Minute

func main() {
	var o options
	var scaleList, targetList string
	trivialAddr := flag.String("trivial-serve", "", "internal: serve the trivial handler on this address and do nothing else")
	flag.StringVar(&scaleList, "scale", "small", "comma-separated scales: small (1×100), medium (10×10,000), large (1×100,000)")
	flag.StringVar(&targetList, "targets", "verdict,verdict-cached,opa,opa-fast,trivial", "comma-separated servers: verdict, verdict-cached (verdict with --decision-cache-size -cache-size), verdict-shadow (verdict shadowing every decision against a copy of the world, --candidate), opa (plain opa run --server), opa-fast (with --optimize-store-for-read-speed), trivial")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "measured time of each load run")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured warm-up before each load run")
	flag.IntVar(&o.conns, "conns", 8, "closed loop: keep-alive connections, one request in flight on each")
	flag.IntVar(&o.rateConns, "rate-conns", 32, "fixed rate: keep-alive connections")
	flag.StringVar(&o.rates, "rates", "auto", `fixed rates in requests/s, comma-separated; "auto" = half of OPA's and half of verdict's closed-loop throughput; "none" skips`)
	flag.Float64Var(&o.zipf, "zipf", 1.1, "Zipf exponent (> 1) of the skewed stream over members and objects")
	flag.IntVar(&o.sample, "sample", 2000, "questions in the agreement check")
	flag.IntVar(&o.stream, "stream", 65536, "distinct questions in each load stream (cycled)")
	flag.IntVar(&o.repeat, "repeat", 1, "closed-loop repetitions per target (targets alternate; the median run by throughput is reported)")
	maxReqs := flag.Int64("max-requests", 50_000_000, "cap on requests per load run")
	flag.StringVar(&o.workdir, "workdir", filepath.Join(os.TempDir(), "verdict-bench"), "where worlds, bundles, binaries and server logs go (worlds are reused when unchanged)")
	flag.StringVar(&o.src, "src", ".", "verdict module to build ./cmd/verdict from")
	flag.StringVar(&o.verdictBin, "verdict-bin", "", "use this verdict binary instead of building one")
	flag.StringVar(&o.opaBin, "opa-bin", "", "use this opa binary (must be "+opaVersion+"); default: PATH, then GOBIN, else go install")
	flag.StringVar(&o.opaPolicy, "opa-policy", "", "use this Rego file as the OPA comparison policy instead of the built-in authz.rego (package bench.authz, rule decision)")
	flag.StringVar(&o.gobin, "gobin", "", "where to install opa when it is missing (default $(go env GOPATH)/bin)")
	flag.IntVar(&o.procs, "loadgen-procs", 2, "GOMAXPROCS of the load generator")
	flag.StringVar(&o.out, "out", "", "also append the report (markdown) to this file")
	flag.StringVar(&o.jsonOut, "json", "", "also write every measurement as JSON to this file")
	flag.DurationVar(&o.timeout, "timeout", 90*time.Minute, "the whole run stops after this")
	flag.DurationVar(&o.readyTimeout, "ready-timeout", 10*time.Minute, "how long a server may take to load")
	flag.IntVar(&o.cacheSize, "cache-size", 1_000_000, "verdict-cached: --decision-cache-size (decisions remembered; large enough to hold every distinct question of the streams)")
	flag.BoolVar(&o.cacheWarm, "cache-warm", true, "verdict-cached: before each closed-loop run, send the whole stream once (unmeasured) so that the window measures the cache's steady state")
	flag.Float64Var(&o.shadowSample, "shadow-sample", 1, "verdict-shadow: --shadow-sample (the share of decisions shadowed)")
	flag.StringVar(&o.serverCPUs, "server-cpus", "", `run every server on these CPUs (a taskset -c list such as "0" or "0-1") with GOMAXPROCS set to their count; e.g. "0" for a server on one core, with the harness itself started under "taskset -c 1" so that the load generator stays off it`)
	flag.Parse()

	if *trivialAddr != "" {
		if err := serveTrivial(*trivialAddr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	o.maxReqs = uint64(max(*maxReqs, 1))
	if o.serverCPUs != "" {
		n, err := cpuListCount(o.serverCPUs)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: -server-cpus %q: %v (a taskset -c list, e.g. 0 or 0-1 or 0,2)\n", o.serverCPUs, err)
			os.Exit(2)
		}
		if _, err := exec.LookPath("taskset"); err != nil {
			fmt.Fprintln(os.Stderr, "bench: -server-cpus needs taskset (util-linux):", err)
			os.Exit(2)
		}
		o.serverProcs = n
	}
	if o.cacheSize <= 0 {
		fmt.Fprintln(os.Stderr, "bench: -cache-size must be positive (verdict is the uncached target)")
		os.Exit(2)
	}
	if o.opaPolicy != "" {
		b, err := os.ReadFile(o.opaPolicy)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: -opa-policy:", err)
			os.Exit(2)
		}
		authzRego = string(b)
	}
	o.scales = splitList(scaleList)
	o.targets = splitList(targetList)
	runtime.GOMAXPROCS(o.procs)

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// targetResult is everything measured on one target at one scale.
type targetResult struct {
	Name      string
	LoadTimes []time.Duration
	RSSReady  []int64
	RSSAfter  []int64
	PeakRSS   []int64
	Closed    map[string][]*runResult // by stream
	Rates     []*runResult
	Agreement string `json:",omitempty"`
}

// verdictTargets are the targets that speak verdict's API, uncached first.
var verdictTargets = []string{"verdict", "verdict-cached"}

type scaleResult struct {
	Scale      string
	Spec       worldgen.Spec
	WorldTime  time.Duration
	BundleSize int64
	Sample     int
	Mismatches map[string]int
	Mix        string
	// Reference is the target the others are compared with (verdict, or
	// verdict-cached when verdict is not measured).
	Reference string `json:",omitempty"`
	// Stream is the length of each load stream (cycled), Distinct the
	// distinct questions in it, by stream.
	Stream   int
	Distinct map[string]int
	// CacheSize is verdict-cached's --decision-cache-size.
	CacheSize int `json:",omitempty"`
	Targets   map[string]*targetResult
	Order     []string
}

func run(ctx context.Context, o options) error {
	for _, s := range o.scales {
		if _, ok := scales[s]; !ok {
			return fmt.Errorf("unknown scale %q (small, medium, large)", s)
		}
	}
	if err := os.MkdirAll(o.workdir, 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var verdictBin, opaBin string
	var needVerdict, needOPA bool
	for _, t := range o.targets {
		switch t {
		case "verdict", "verdict-cached", "verdict-shadow":
			needVerdict = true
		case "opa", "opa-fast":
			needOPA = true
		case "trivial":
		default:
			return fmt.Errorf("unknown target %q", t)
		}
	}
	if needVerdict {
		verdictBin = o.verdictBin
		if verdictBin == "" {
			verdictBin = filepath.Join(o.workdir, "bin", "verdict")
			logf("building verdict from %s", o.src)
			if err := buildVerdict(ctx, o.src, verdictBin); err != nil {
				return err
			}
		}
	}
	if needOPA {
		if opaBin, err = findOPA(ctx, o.opaBin, o.gobin); err != nil {
			return err
		}
	}

	servers := "not pinned (every CPU)"
	if o.serverCPUs != "" {
		servers = fmt.Sprintf("pinned to CPU(s) %s (taskset), GOMAXPROCS %d", o.serverCPUs, o.serverProcs)
	}
	header := fmt.Sprintf("Machine: %s. CPU times from /proc (USER_HZ %d).\nLoad generator: in the harness, GOMAXPROCS %d, on CPU(s) %s, raw HTTP/1.1 over loopback keep-alive; closed loop %d connections, fixed rate %d connections; warm-up %s, measured %s per run. Servers: %s.\nCommand: %s\n",
		machineInfo(), clockTick, o.procs, selfCPUs(), o.conns, o.rateConns, o.warmup, o.duration, servers, commandLine())
	fmt.Print("\n" + header)
	var report strings.Builder
	report.WriteString(header)
	var all []*scaleResult
	for _, name := range o.scales {
		sr, err := runScale(ctx, o, name, verdictBin, opaBin, self)
		if sr != nil {
			all = append(all, sr)
			text := renderScale(sr)
			fmt.Print("\n" + text)
			report.WriteString("\n" + text)
		}
		if err != nil {
			writeOutputs(o, report.String(), all)
			return fmt.Errorf("scale %s: %w", name, err)
		}
	}
	return writeOutputs(o, report.String(), all)
}

func writeOutputs(o options, report string, all []*scaleResult) error {
	if o.out != "" {
		f, err := os.OpenFile(o.out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		fmt.Fprintf(f, "\n<!-- %s -->\n%s", time.Now().UTC().Format(time.RFC3339), report)
		f.Close()
	}
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(all, "", "  ")
		return os.WriteFile(o.jsonOut, b, 0o644)
	}
	return nil
}

func commandLine() string {
	args := make([]string, 0, len(os.Args))
	for _, a := range os.Args[1:] {
		args = append(args, strconv.Quote(a))
	}
	return "go run ./test/bench " + strings.Join(args, " ")
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

func runScale(ctx context.Context, o options, name, verdictBin, opaBin, self string) (*scaleResult, error) {
	spec := scales[name]
	dir := filepath.Join(o.workdir, name)
	logDir := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	logf("%s: generating the world (%d tenants × %d members)", name, spec.Tenants, spec.Members)
	w, took, err := writeWorld(dir, spec)
	if err != nil {
		return nil, err
	}
	worldDir, policyDir := filepath.Join(dir, "world"), filepath.Join(dir, "opa-policy")
	sr := &scaleResult{Scale: name, Spec: w.Spec, WorldTime: took, BundleSize: dirSize(worldDir),
		Mismatches: map[string]int{}, Targets: map[string]*targetResult{}}

	candidateDir := filepath.Join(dir, "candidate")
	if slices.Contains(o.targets, "verdict-shadow") {
		if err := os.RemoveAll(candidateDir); err != nil {
			return nil, err
		}
		if err := os.CopyFS(candidateDir, os.DirFS(worldDir)); err != nil {
			return nil, fmt.Errorf("copy the world as the shadow candidate: %w", err)
		}
	}
	verdictArgs := func(addr string) []string {
		return []string{"run", "--addr", addr, "--log-level", "error", "--bundle", "world=" + worldDir}
	}
	targets := map[string]*target{
		"verdict": {Name: "verdict", Kind: "verdict", bin: verdictBin, readyPath: "/health/ready", decidePath: "/v1/decide", args: verdictArgs},
		// The same server with its decision cache on: the same requests and
		// path, answers compared with verdict's.
		"verdict-cached": {Name: "verdict-cached", Kind: "verdict", bin: verdictBin, readyPath: "/health/ready", decidePath: "/v1/decide",
			args: func(addr string) []string {
				return append(verdictArgs(addr), "--decision-cache-size", strconv.Itoa(o.cacheSize), "--decision-cache-ttl", cacheTTL.String())
			}},
		// The same server shadowing every decision against a candidate that
		// is a copy of the world (every shadowed answer is "same"): what
		// --candidate costs the live path.
		"verdict-shadow": {Name: "verdict-shadow", Kind: "verdict", bin: verdictBin, readyPath: "/health/ready", decidePath: "/v1/decide",
			args: func(addr string) []string {
				return append(verdictArgs(addr), "--candidate", "world="+candidateDir, "--shadow-sample", strconv.FormatFloat(o.shadowSample, 'g', -1, 64))
			}},
		"opa": {Name: "opa", Kind: "opa", bin: opaBin, readyPath: "/health?bundles", decidePath: "/v1/data/bench/authz/decision",
			args: func(addr string) []string {
				return []string{"run", "--server", "--addr", addr, "--log-level", "error", "--skip-version-check", "--bundle", worldDir, policyDir}
			}},
		"opa-fast": {Name: "opa-fast", Kind: "opa", bin: opaBin, readyPath: "/health?bundles", decidePath: "/v1/data/bench/authz/decision",
			args: func(addr string) []string {
				return []string{"run", "--server", "--addr", addr, "--log-level", "error", "--skip-version-check", "--optimize-store-for-read-speed", "--bundle", worldDir, policyDir}
			}},
		"trivial": {Name: "trivial", Kind: "trivial", bin: self, readyPath: "/health/ready", decidePath: "/v1/decide",
			args: func(addr string) []string { return []string{"-trivial-serve", addr} }},
	}
	for _, t := range targets {
		t.cpus, t.procs = o.serverCPUs, o.serverProcs
	}
	for _, t := range o.targets {
		sr.Order = append(sr.Order, t)
		sr.Targets[t] = &targetResult{Name: t, Closed: map[string][]*runResult{}}
		if t == "verdict-cached" {
			sr.CacheSize = o.cacheSize
		}
	}

	// Load time, RSS when ready, and the agreement sample.
	sample := sampleQuestions(w, o.sample, o.zipf)
	sr.Sample = len(sample)
	answers := map[string][]answer{}
	// A cached target is asked the sample twice: the first pass (misses,
	// but for questions the sample repeats) and the second (hits) must
	// both agree.
	cachedPass := map[string][]answer{}
	for _, tn := range o.targets {
		t := targets[tn]
		logf("%s: starting %s", name, tn)
		s, err := start(ctx, t, logDir, o.readyTimeout)
		if err != nil {
			return sr, err
		}
		tr := sr.Targets[tn]
		tr.LoadTimes = append(tr.LoadTimes, s.loadTime)
		rss, _, _ := procMem(s.pid)
		tr.RSSReady = append(tr.RSSReady, rss)
		logf("%s: %s ready in %s, RSS %s", name, tn, s.loadTime.Round(time.Millisecond), fmtBytes(rss))
		if t.Kind != "trivial" {
			answers[tn], err = askAll(ctx, s, sample)
			if err == nil && tn == "verdict-cached" {
				cachedPass[tn], err = askAll(ctx, s, sample)
			}
		}
		s.stop()
		if err != nil {
			return sr, err
		}
	}
	var mismatches []string
	for _, vn := range verdictTargets {
		if answers[vn] != nil {
			sr.Reference = vn
			break
		}
	}
	if ref := answers[sr.Reference]; ref != nil {
		sr.Mix = outcomeMix(ref)
		for _, tn := range o.targets {
			if answers[tn] == nil {
				continue
			}
			var diff []string
			if tn != sr.Reference {
				diff = compareAnswers(sample, ref, answers[tn], sr.Reference, tn)
			}
			agreement := fmt.Sprintf("%d/%d agree", len(sample)-len(diff), len(sample))
			if again := cachedPass[tn]; again != nil {
				d2 := compareAnswers(sample, ref, again, sr.Reference, tn+" (asked again)")
				diff = append(diff, d2...)
				agreement = fmt.Sprintf("%d/%d agree asked once, %d/%d asked again", len(sample)-(len(diff)-len(d2)), len(sample), len(sample)-len(d2), len(sample))
			}
			if tn == sr.Reference && cachedPass[tn] == nil {
				continue
			}
			sr.Mismatches[tn] = len(diff)
			sr.Targets[tn].Agreement = agreement
			mismatches = append(mismatches, diff...)
		}
	}
	logf("%s: agreement: %d mismatches on %d questions; %s's outcomes: %s", name, len(mismatches), len(sample), sr.Reference, sr.Mix)
	if len(mismatches) > 0 {
		for i, m := range mismatches {
			if i == 20 {
				logf("... and %d more", len(mismatches)-20)
				break
			}
			logf("mismatch: %s", m)
		}
		return sr, fmt.Errorf("%d answers differ from %s's", len(mismatches), sr.Reference)
	}

	// The request streams, serialized once per request format.
	streams := map[string][]question{
		"uniform": questions(w.Requests(31, o.stream)),
		"zipf":    questions(w.ZipfRequests(32, o.stream, o.zipf)),
	}
	bodies := map[string]map[string][][]byte{}
	for _, kind := range []string{"verdict", "opa", "trivial"} {
		bodies[kind] = map[string][][]byte{}
		for sn, qs := range streams {
			bodies[kind][sn] = bodiesFor(kind, qs)
		}
	}
	sr.Stream, sr.Distinct = o.stream, map[string]int{}
	for sn := range streams {
		sr.Distinct[sn] = distinct(bodies["verdict"][sn])
	}
	w = nil
	runtime.GC()

	// Closed loop, targets alternating between repetitions.
	for rep := 0; rep < o.repeat; rep++ {
		order := append([]string(nil), o.targets...)
		if rep%2 == 1 {
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		for _, tn := range order {
			if err := measureClosed(ctx, o, name, targets[tn], sr.Targets[tn], logDir, bodies); err != nil {
				return sr, err
			}
		}
	}

	// Fixed rates, the same for every target.
	rates, err := pickRates(o.rates, sr)
	if err != nil {
		return sr, err
	}
	if len(rates) > 0 {
		for _, tn := range o.targets {
			if tn == "trivial" {
				continue
			}
			t := targets[tn]
			s, err := start(ctx, t, logDir, o.readyTimeout)
			if err != nil {
				return sr, err
			}
			tr := sr.Targets[tn]
			tr.LoadTimes = append(tr.LoadTimes, s.loadTime)
			for _, rate := range rates {
				logf("%s: %s at %.0f requests/s", name, tn, rate)
				reqs := buildPayloads(s.addr, t.decidePath, bodies[t.Kind]["uniform"])
				res, err := runLoad(ctx, s.addr, reqs, loadOptions{mode: "rate", stream: "uniform", conns: o.rateConns, rate: rate,
					warmup: o.warmup, duration: o.duration, maxReqs: o.maxReqs, pid: s.pid, scrapeCache: tn == "verdict-cached"})
				if res != nil {
					tr.Rates = append(tr.Rates, res)
				}
				if err != nil {
					logf("%s: %s at %.0f/s: %v", name, tn, rate, err)
				}
			}
			s.stop()
		}
	}
	return sr, nil
}

func measureClosed(ctx context.Context, o options, scale string, t *target, tr *targetResult, logDir string, bodies map[string]map[string][][]byte) error {
	s, err := start(ctx, t, logDir, o.readyTimeout)
	if err != nil {
		return err
	}
	defer s.stop()
	tr.LoadTimes = append(tr.LoadTimes, s.loadTime)
	cached := t.Name == "verdict-cached"
	began := time.Now()
	for _, stream := range []string{"uniform", "zipf"} {
		reqs := buildPayloads(s.addr, t.decidePath, bodies[t.Kind][stream])
		var warm time.Duration
		if cached && o.cacheWarm {
			// The cache's steady state: every question of the stream
			// decided once before the run.
			logf("%s: %s, warm pass over the %s stream (%d requests, %d connections)", scale, t.Name, stream, len(reqs), o.conns)
			t0 := time.Now()
			if err := warmPass(ctx, s.addr, reqs, o.conns); err != nil {
				return fmt.Errorf("%s %s: %w", t.Name, stream, err)
			}
			warm = time.Since(t0)
			logf("%s: %s, warm pass over the %s stream took %s", scale, t.Name, stream, warm.Round(time.Millisecond))
		}
		if cached && time.Since(began)+o.warmup+o.duration > cacheTTL {
			logf("%s: %s: the process will outlive --decision-cache-ttl %s before this window ends: decisions may expire (the measured hits say)", scale, t.Name, cacheTTL)
		}
		logf("%s: %s, closed loop, %s stream", scale, t.Name, stream)
		res, err := runLoad(ctx, s.addr, reqs, loadOptions{mode: "closed", stream: stream, conns: o.conns,
			warmup: o.warmup, duration: o.duration, maxReqs: o.maxReqs, pid: s.pid, scrapeCache: cached})
		if err != nil {
			return fmt.Errorf("%s %s: %w", t.Name, stream, err)
		}
		res.WarmPass = warm
		hits := ""
		if h, ok := res.hitRatio(); ok {
			hits = fmt.Sprintf(", decision cache hits %.1f%%", 100*h)
		}
		logf("%s: %s %s: %.0f req/s, p50 %s p99 %s, server CPU %s/decision, other load %.2f cores%s",
			scale, t.Name, stream, res.Throughput, fmtDur(res.P50), fmtDur(res.P99), fmtDur(res.ServerCPU), res.OtherCores, hits)
		tr.Closed[stream] = append(tr.Closed[stream], res)
	}
	rss, hwm, _ := procMem(s.pid)
	tr.RSSAfter = append(tr.RSSAfter, rss)
	tr.PeakRSS = append(tr.PeakRSS, hwm)
	return nil
}

func pickRates(spec string, sr *scaleResult) ([]float64, error) {
	switch spec {
	case "none", "":
		return nil, nil
	case "auto":
		var rates []float64
		for _, tn := range []string{"opa", "opa-fast", "verdict"} {
			if tr := sr.Targets[tn]; tr != nil {
				if r := median(tr.Closed["uniform"]); r != nil && r.Throughput > 0 {
					rates = append(rates, roundRate(r.Throughput/2))
				}
			}
		}
		sort.Float64s(rates)
		// Rates within 20 % of each other measure the same thing.
		var out []float64
		for _, r := range rates {
			if len(out) == 0 || r > out[len(out)-1]*1.2 {
				out = append(out, r)
			}
		}
		return out, nil
	}
	var out []float64
	for _, p := range splitList(spec) {
		r, err := strconv.ParseFloat(p, 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("-rates: %q is not a positive number", p)
		}
		out = append(out, r)
	}
	return out, nil
}

// roundRate keeps two significant digits.
func roundRate(r float64) float64 {
	if r < 10 {
		return max(1, float64(int(r)))
	}
	mag := 1.0
	for r/mag >= 100 {
		mag *= 10
	}
	return float64(int(r/mag)) * mag
}

// median is the run with the median throughput.
func median(rs []*runResult) *runResult {
	if len(rs) == 0 {
		return nil
	}
	s := append([]*runResult(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].Throughput < s[j].Throughput })
	return s[len(s)/2]
}

func medianDur(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func medianInt(vs []int64) int64 {
	if len(vs) == 0 {
		return 0
	}
	s := append([]int64(nil), vs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// distinct counts the different bodies: what a decision cache must miss
// once before it can hit.
func distinct(bodies [][]byte) int {
	seen := make(map[string]struct{}, len(bodies))
	for _, b := range bodies {
		seen[string(b)] = struct{}{}
	}
	return len(seen)
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return n
}
