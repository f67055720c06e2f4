package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The load generator speaks HTTP/1.1 itself over keep-alive loopback
// connections: every request is serialized once, up front, and a worker
// only writes those bytes and reads the answer into a reused buffer, so
// that the generator takes as little of the shared CPU as it can.

// payloads are the serialized requests (headers and body) for one target.
type payloads [][]byte

func buildPayloads(addr, path string, bodies [][]byte) payloads {
	out := make(payloads, len(bodies))
	for i, b := range bodies {
		var buf bytes.Buffer
		fmt.Fprintf(&buf, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, addr, len(b))
		buf.Write(b)
		out[i] = buf.Bytes()
	}
	return out
}

// conn is one keep-alive connection.
type conn struct {
	addr     string
	c        net.Conn
	br       *bufio.Reader
	body     []byte
	deadline time.Time
}

const ioTimeout = 30 * time.Second

func dial(addr string) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &conn{addr: addr, c: c, br: bufio.NewReaderSize(c, 16<<10), body: make([]byte, 0, 4096)}, nil
}

func (c *conn) Close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// do sends one request and reads the answer. The body is valid until the
// next call.
func (c *conn) do(req []byte) (status int, body []byte, err error) {
	if c.c == nil {
		nc, err := dial(c.addr)
		if err != nil {
			return 0, nil, err
		}
		*c = *nc
	}
	// Every call is bounded: the deadline is moved forward at most every
	// few seconds (setting it costs a timer update).
	if now := time.Now(); now.Add(ioTimeout / 2).After(c.deadline) {
		c.deadline = now.Add(ioTimeout)
		c.c.SetDeadline(c.deadline)
	}
	if _, err := c.c.Write(req); err != nil {
		c.Close()
		return 0, nil, err
	}
	status, body, keep, err := c.readResponse()
	if err != nil || !keep {
		c.Close()
	}
	return status, body, err
}

func (c *conn) readResponse() (status int, body []byte, keep bool, err error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, false, fmt.Errorf("bad status line %q", line)
	}
	keep = true
	length, chunked := -1, false
	for n := 0; ; n++ {
		if n > 100 {
			return 0, nil, false, errors.New("too many header lines")
		}
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, false, err
		}
		if len(line) <= 2 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, err = strconv.Atoi(string(value))
			if err != nil || length < 0 || length > 64<<20 {
				return 0, nil, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keep = false
			}
		}
	}
	c.body = c.body[:0]
	switch {
	case chunked:
		for n := 0; ; n++ {
			if n > 1<<16 {
				return 0, nil, false, errors.New("too many chunks")
			}
			line, err = c.br.ReadSlice('\n')
			if err != nil {
				return 0, nil, false, err
			}
			sizeStr, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte{';'})
			size, err := strconv.ParseInt(string(sizeStr), 16, 32)
			if err != nil || size < 0 || len(c.body)+int(size) > 64<<20 {
				return 0, nil, false, fmt.Errorf("bad chunk size %q", line)
			}
			if size == 0 {
				// Trailers, then the blank line.
				for m := 0; m < 100; m++ {
					line, err = c.br.ReadSlice('\n')
					if err != nil {
						return 0, nil, false, err
					}
					if len(line) <= 2 {
						break
					}
				}
				break
			}
			start := len(c.body)
			c.body = grow(c.body, int(size))
			if _, err := io.ReadFull(c.br, c.body[start:]); err != nil {
				return 0, nil, false, err
			}
			if _, err := c.br.Discard(2); err != nil {
				return 0, nil, false, err
			}
		}
	case length >= 0:
		c.body = grow(c.body, length)
		if _, err := io.ReadFull(c.br, c.body); err != nil {
			return 0, nil, false, err
		}
	default:
		return 0, nil, false, errors.New("answer has neither Content-Length nor chunked encoding")
	}
	return status, c.body, keep, nil
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// histogram is a log-linear latency histogram: 128 sub-buckets per power
// of two (under 0.8 % error), nanosecond values.
type histogram struct {
	counts [66 * 128]uint64
	n      uint64
	max    int64
}

const subBits = 7

func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	u := uint64(v)
	if u < 1<<(subBits+1) {
		return int(u)
	}
	e := bits.Len64(u) - (subBits + 1)
	return e<<subBits + int(u>>uint(e))
}

func bucketValue(i int) int64 {
	if i < 1<<(subBits+1) {
		return int64(i)
	}
	e := i>>subBits - 1
	m := i - e<<subBits
	// The middle of the bucket.
	return int64(m)<<uint(e) + int64(1)<<uint(e)/2
}

func (h *histogram) record(d time.Duration) {
	h.counts[bucketOf(int64(d))]++
	h.n++
	if int64(d) > h.max {
		h.max = int64(d)
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(bucketValue(i), h.max))
		}
	}
	return time.Duration(h.max)
}

// runResult is one measured load run against one server.
type runResult struct {
	Mode     string // closed or rate
	Stream   string // uniform or zipf
	Conns    int
	Rate     float64 // offered requests per second (rate mode)
	Window   time.Duration
	Requests uint64 // completed in the window
	Errors   uint64 // transport errors and non-200 answers in the window
	Dropped  uint64 // rate mode: requests due in the window that the backlog could not take
	Unserved uint64 // rate mode: requests due in the window still queued at the end of the grace period
	// CacheHits and CacheMisses are verdict-cached's decision cache
	// lookups in the window: the difference of
	// verdict_decision_cache_lookups_total{result} on /metrics between
	// scrapes at the window's edges (zero when not scraped).
	CacheHits   uint64 `json:",omitempty"`
	CacheMisses uint64 `json:",omitempty"`
	// WarmPass is how long verdict-cached's warm pass over the stream took
	// before the run (-cache-warm; zero without one).
	WarmPass   time.Duration `json:",omitempty"`
	Throughput float64
	P50        time.Duration
	P90        time.Duration
	P99        time.Duration
	Max        time.Duration
	// CPU per decision in the window: the server's and the load generator's.
	ServerCPU  time.Duration
	LoadgenCPU time.Duration
	// OtherCores is the machine's busy CPU in the window not used by the
	// server or the harness, in cores: other processes competing.
	OtherCores     float64
	ServerCPUCores float64
}

type loadOptions struct {
	mode     string
	stream   string
	conns    int
	rate     float64
	warmup   time.Duration
	duration time.Duration
	maxReqs  uint64
	pid      int // server process for CPU accounting; 0 for none
	// scrapeCache reads the server's decision cache counters at the
	// window's edges (verdict-cached).
	scrapeCache bool
}

// runLoad drives one server with the payloads and measures it. Closed loop:
// conns workers, each sending its next request as soon as the previous
// answer arrives. Rate: requests are due at a fixed rate; latency is
// measured from when a request was due (so queueing counts; no coordinated
// omission), and a request that finds a full backlog is dropped and
// counted. Both end by the clock and by a request cap.
func runLoad(ctx context.Context, addr string, reqs payloads, o loadOptions) (*runResult, error) {
	conns := make([]*conn, o.conns)
	for i := range conns {
		c, err := dial(addr)
		if err != nil {
			return nil, err
		}
		conns[i] = c
		defer c.Close()
	}
	start := time.Now()
	measureFrom := start.Add(o.warmup)
	end := measureFrom.Add(o.duration)
	ctx, cancel := context.WithDeadline(ctx, end.Add(ioTimeout+5*time.Second))
	defer cancel()

	var stop atomic.Bool
	var firstErr atomic.Pointer[error]
	hists := make([]histogram, o.conns)
	errs := make([]uint64, o.conns)
	var dropped atomic.Uint64
	perWorker := o.maxReqs/uint64(o.conns) + 1

	var wg sync.WaitGroup
	// Closed loop: a request counts when it starts and ends in the window.
	// Rate: a request counts in the latency when it was due in the window
	// (however late it ends, up to the grace period), and in the achieved
	// throughput when it ends in the window.
	completed := make([]uint64, o.conns)
	var unserved atomic.Uint64
	const grace = 2 * time.Second
	fail := func(w int, status int, err error) {
		errs[w]++
		if err == nil {
			err = fmt.Errorf("HTTP status %d", status)
		}
		firstErr.CompareAndSwap(nil, &err)
	}

	switch o.mode {
	case "closed":
		for w := range o.conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := conns[w]
				i := w * len(reqs) / o.conns
				for n := uint64(0); n < perWorker && !stop.Load(); n++ {
					t0 := time.Now()
					if t0.After(end) {
						return
					}
					status, _, err := c.do(reqs[i])
					if done := time.Now(); !t0.Before(measureFrom) && !done.After(end) {
						if err != nil || status != 200 {
							fail(w, status, err)
						} else {
							hists[w].record(done.Sub(t0))
							completed[w]++
						}
					}
					if i++; i == len(reqs) {
						i = 0
					}
				}
			}()
		}
	case "rate":
		if o.rate <= 0 {
			return nil, errors.New("rate mode needs a rate")
		}
		total := uint64(o.rate * (o.warmup + o.duration).Seconds())
		total = min(total, o.maxReqs)
		backlog := max(100, int(o.rate/2))
		type job struct {
			due time.Time
			i   int
		}
		jobs := make(chan job, backlog)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(jobs)
			interval := float64(time.Second) / o.rate
			for n := uint64(0); n < total && !stop.Load(); n++ {
				due := start.Add(time.Duration(float64(n) * interval))
				if d := time.Until(due); d > 50*time.Microsecond {
					time.Sleep(d)
				}
				select {
				case jobs <- job{due, int(n % uint64(len(reqs)))}:
				default:
					if !due.Before(measureFrom) {
						dropped.Add(1)
					}
				}
			}
		}()
		giveUp := end.Add(grace)
		for w := range o.conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := conns[w]
				for j := range jobs {
					inWindow := !j.due.Before(measureFrom)
					if time.Now().After(giveUp) {
						if inWindow {
							unserved.Add(1)
						}
						continue // drain
					}
					status, _, err := c.do(reqs[j.i])
					done := time.Now()
					if err != nil || status != 200 {
						if inWindow || (!done.Before(measureFrom) && !done.After(end)) {
							fail(w, status, err)
						}
						continue
					}
					if inWindow {
						hists[w].record(done.Sub(j.due))
					}
					if !done.Before(measureFrom) && !done.After(end) {
						completed[w]++
					}
				}
			}()
		}
	default:
		return nil, fmt.Errorf("unknown load mode %q", o.mode)
	}

	// CPU readings and cache counters at the window's edges (the scrapes
	// outside the CPU window).
	var before, after cpuSnap
	var cacheBefore, cacheAfter cacheCount
	var cacheErr error
	sleepUntil(ctx, measureFrom)
	if o.scrapeCache {
		cacheBefore, cacheErr = scrapeCache(ctx, addr)
	}
	before = snapCPU(o.pid)
	sleepUntil(ctx, end)
	after = snapCPU(o.pid)
	if o.scrapeCache && cacheErr == nil {
		cacheAfter, cacheErr = scrapeCache(ctx, addr)
	}
	if o.mode == "closed" {
		stop.Store(true)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range conns {
			c.Close()
		}
		<-done
	}

	var h histogram
	res := &runResult{Mode: o.mode, Stream: o.stream, Conns: o.conns, Rate: o.rate, Window: after.at.Sub(before.at)}
	for w := range hists {
		h.merge(&hists[w])
		res.Errors += errs[w]
	}
	for _, c := range completed {
		res.Requests += c
	}
	if o.scrapeCache {
		if cacheErr != nil {
			logf("decision cache hits not measured: %v", cacheErr)
		} else {
			res.CacheHits, res.CacheMisses = cacheAfter.hits-cacheBefore.hits, cacheAfter.misses-cacheBefore.misses
		}
	}
	res.Dropped = dropped.Load()
	res.Unserved = unserved.Load()
	res.Throughput = float64(res.Requests) / o.duration.Seconds()
	res.P50, res.P90, res.P99, res.Max = h.quantile(0.50), h.quantile(0.90), h.quantile(0.99), time.Duration(h.max)
	if res.Requests > 0 {
		res.ServerCPU = (after.server - before.server) / time.Duration(res.Requests)
		res.LoadgenCPU = (after.self - before.self) / time.Duration(res.Requests)
	}
	if w := res.Window.Seconds(); w > 0 {
		other := after.machine - before.machine - (after.server - before.server) - (after.self - before.self)
		res.OtherCores = max(0, other.Seconds()/w)
		res.ServerCPUCores = (after.server - before.server).Seconds() / w
	}
	if p := firstErr.Load(); p != nil && res.Errors > 0 {
		return res, fmt.Errorf("%d failed requests; first: %w", res.Errors, *p)
	}
	return res, nil
}

func sleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}
