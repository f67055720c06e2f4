package main

import (
	"fmt"
	"strings"
	"time"
)

func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < 10*time.Microsecond:
		return fmt.Sprintf("%.2f µs", float64(d)/1e3)
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func fmtBytes(n int64) string {
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}

func fmtRate(r float64) string {
	switch {
	case r >= 100:
		return fmt.Sprintf("%s/s", groupDigits(int64(r+0.5)))
	}
	return fmt.Sprintf("%.1f/s", r)
}

func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "–"
	}
	r := a / b
	switch {
	case r >= 10:
		return fmt.Sprintf("%.0f×", r)
	case r >= 0.1:
		return fmt.Sprintf("%.2f×", r)
	}
	return fmt.Sprintf("%.3f×", r)
}

func describeSpec(sr *scaleResult) string {
	s := sr.Spec
	return fmt.Sprintf("%s tenant(s) × %s members; per tenant %s policies, %s resource groups × %d objects, %d roles, %d groups; routes for %d view sets",
		groupDigits(int64(s.Tenants)), groupDigits(int64(s.Members)), groupDigits(int64(s.Policies)),
		groupDigits(int64(s.ResourceGroups)), s.ObjectsPerRG, s.Roles, s.Groups, s.ViewSets)
}

// renderScale is the markdown report of one scale: one table with a
// column per server and the ratio of verdict (and verdict-cached) to each
// OPA.
func renderScale(sr *scaleResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Scale %s: %s\n\n", sr.Scale, describeSpec(sr))
	fmt.Fprintf(&b, "World generated and written in %s; bundle %s of JSON.\n", fmtDur(sr.WorldTime), fmtBytes(sr.BundleSize))
	if sr.Mix != "" {
		var agree []string
		for _, tn := range sr.Order {
			if a := sr.Targets[tn].Agreement; a != "" {
				agree = append(agree, tn+" "+a)
			}
		}
		fmt.Fprintf(&b, "Agreement on %d sampled questions (allow and deciding code): %s. Verdict's outcomes on the sample: %s.\n",
			sr.Sample, strings.Join(agree, "; "), sr.Mix)
	}
	b.WriteString("\n")

	cols := sr.Order
	var opas []string
	for _, tn := range cols {
		if strings.HasPrefix(tn, "opa") {
			opas = append(opas, tn)
		}
	}
	// ratios are the verdict targets measured: a ratio column each per OPA.
	var ratios []string
	for _, vn := range verdictTargets {
		if sr.Targets[vn] != nil {
			ratios = append(ratios, vn)
		}
	}
	b.WriteString("| metric |")
	for _, tn := range cols {
		fmt.Fprintf(&b, " %s |", tn)
	}
	for _, vn := range ratios {
		for _, on := range opas {
			fmt.Fprintf(&b, " %s/%s |", vn, on)
		}
	}
	b.WriteString("\n|---|")
	for range cols {
		b.WriteString("---:|")
	}
	for range ratios {
		for range opas {
			b.WriteString("---:|")
		}
	}
	b.WriteString("\n")

	// row writes one metric: a cell per target and a ratio per OPA.
	row := func(label string, cell func(tr *targetResult) string, val func(tr *targetResult) []float64) {
		fmt.Fprintf(&b, "| %s |", label)
		for _, tn := range cols {
			fmt.Fprintf(&b, " %s |", cell(sr.Targets[tn]))
		}
		for _, vn := range ratios {
			v := val(sr.Targets[vn])
			for _, on := range opas {
				o := val(sr.Targets[on])
				var parts []string
				for i := range v {
					if i < len(o) {
						parts = append(parts, ratio(v[i], o[i]))
					}
				}
				fmt.Fprintf(&b, " %s |", strings.Join(parts, " / "))
			}
		}
		b.WriteString("\n")
	}
	row("load time, start → ready (median)", func(tr *targetResult) string { return fmtDur(medianDur(tr.LoadTimes)) },
		func(tr *targetResult) []float64 { return []float64{float64(medianDur(tr.LoadTimes))} })
	row("RSS when ready", func(tr *targetResult) string { return fmtBytes(medianInt(tr.RSSReady)) },
		func(tr *targetResult) []float64 { return []float64{float64(medianInt(tr.RSSReady))} })
	row("RSS after load", func(tr *targetResult) string { return fmtBytes(medianInt(tr.RSSAfter)) },
		func(tr *targetResult) []float64 { return []float64{float64(medianInt(tr.RSSAfter))} })
	row("peak RSS (VmHWM)", func(tr *targetResult) string { return fmtBytes(medianInt(tr.PeakRSS)) },
		func(tr *targetResult) []float64 { return []float64{float64(medianInt(tr.PeakRSS))} })
	// runRow adds a row read from one run of each target ("–" where a
	// target has none); nums, when set, gives the values ratios compare.
	runRow := func(label string, get func(*targetResult) *runResult, text func(*runResult) string, nums func(*runResult) []float64) {
		row(label, func(tr *targetResult) string {
			if r := get(tr); r != nil {
				return text(r)
			}
			return "–"
		}, func(tr *targetResult) []float64 {
			if r := get(tr); r != nil && nums != nil {
				return nums(r)
			}
			return nil
		})
	}
	throughput := func(r *runResult) []float64 { return []float64{r.Throughput} }
	// cacheHits adds, when verdict-cached was measured, its decision cache
	// hits in the window (from its /metrics).
	_, cached := sr.Targets["verdict-cached"]
	cacheHits := func(prefix string, get func(*targetResult) *runResult) {
		if !cached {
			return
		}
		runRow(prefix+"decision cache hits (measured)", get, func(r *runResult) string {
			if h, ok := r.hitRatio(); ok {
				return fmtHits(h)
			}
			return "–"
		}, nil)
	}
	// latencyAndCPU adds the rows every kind of run has.
	latencyAndCPU := func(prefix string, get func(*targetResult) *runResult) {
		runRow(prefix+"p50 / p90 / p99", get,
			func(r *runResult) string { return fmtDur(r.P50) + " / " + fmtDur(r.P90) + " / " + fmtDur(r.P99) },
			func(r *runResult) []float64 { return []float64{float64(r.P50), float64(r.P90), float64(r.P99)} })
		runRow(prefix+"server CPU per decision", get,
			func(r *runResult) string {
				return fmt.Sprintf("%s (%.2f cores)", fmtDur(r.ServerCPU), r.ServerCPUCores)
			},
			func(r *runResult) []float64 { return []float64{float64(r.ServerCPU)} })
	}
	for _, stream := range []string{"uniform", "zipf"} {
		get := func(tr *targetResult) *runResult { return median(tr.Closed[stream]) }
		prefix := "closed loop, " + stream + ": "
		runRow(prefix+"throughput", get, func(r *runResult) string { return fmtRate(r.Throughput) }, throughput)
		cacheHits(prefix, get)
		latencyAndCPU(prefix, get)
		runRow(prefix+"load generator CPU per request", get, func(r *runResult) string { return fmtDur(r.LoadgenCPU) }, nil)
		runRow(prefix+"other processes' CPU (cores)", get, func(r *runResult) string { return fmt.Sprintf("%.2f", r.OtherCores) }, nil)
	}
	// Fixed rates: one block per rate.
	rates := map[float64]bool{}
	var rateList []float64
	for _, tn := range cols {
		for _, r := range sr.Targets[tn].Rates {
			if !rates[r.Rate] {
				rates[r.Rate] = true
				rateList = append(rateList, r.Rate)
			}
		}
	}
	for _, rate := range rateList {
		get := func(tr *targetResult) *runResult {
			for _, r := range tr.Rates {
				if r.Rate == rate {
					return r
				}
			}
			return nil
		}
		prefix := fmt.Sprintf("fixed %s, uniform: ", fmtRate(rate))
		runRow(prefix+"achieved (requests dropped)", get, func(r *runResult) string {
			if r.Dropped+r.Unserved == 0 {
				return fmtRate(r.Throughput)
			}
			return fmt.Sprintf("%s (%s)", fmtRate(r.Throughput), groupDigits(int64(r.Dropped+r.Unserved)))
		}, throughput)
		cacheHits(prefix, get)
		latencyAndCPU(prefix, get)
	}
	b.WriteString("\n")
	b.WriteString(renderTargets(sr))
	return b.String()
}

// renderTargets checks the targets against the plain OPA server
// (and the read-optimized one when it was measured): verdict's uncached
// numbers against the throughput, latency and memory targets, the cached
// ones against the share of the trivial handler's throughput. The uncached
// targets are issue 17's: throughput ≥ 10× OPA's (stretch 15×), p99 ≤
// 0.15×, RSS after load ≤ ½ of plain OPA's and ≤ ⅓ of opa-fast's.
func renderTargets(sr *scaleResult) string {
	var b strings.Builder
	throughput := func(tn, stream string) float64 {
		if tr := sr.Targets[tn]; tr != nil {
			if r := median(tr.Closed[stream]); r != nil {
				return r.Throughput
			}
		}
		return 0
	}
	for _, vn := range verdictTargets {
		v := sr.Targets[vn]
		if v == nil {
			continue
		}
		for _, on := range []string{"opa", "opa-fast"} {
			o := sr.Targets[on]
			if o == nil {
				continue
			}
			if vn == "verdict" {
				fmt.Fprintf(&b, "Targets against %s (verdict without its decision cache, so every number is uncached):\n", on)
			} else {
				fmt.Fprintf(&b, "%s against %s (decision cache on; the targets above are for uncached decisions):\n", vn, on)
			}
			for _, stream := range []string{"uniform", "zipf"} {
				vr, or := median(v.Closed[stream]), median(o.Closed[stream])
				if vr == nil || or == nil {
					continue
				}
				tp := vr.Throughput / or.Throughput
				p99 := float64(vr.P99) / float64(or.P99)
				if vn == "verdict" {
					fmt.Fprintf(&b, "- %s: throughput %.2f× OPA's (target ≥ 10×, stretch 15×: %s); p99 %.2f× OPA's (target ≤ 0.15×: %s)\n",
						stream, tp, metOrNot(tp >= 10), p99, metOrNot(p99 <= 0.15))
				} else {
					fmt.Fprintf(&b, "- %s: throughput %.2f× OPA's; p99 %.2f× OPA's\n", stream, tp, p99)
				}
			}
			if vr, or := medianInt(v.RSSAfter), medianInt(o.RSSAfter); vr > 0 && or > 0 {
				r := float64(vr) / float64(or)
				if vn == "verdict" {
					target, label := 0.5, "½"
					if on == "opa-fast" {
						target, label = 1.0/3, "⅓"
					}
					fmt.Fprintf(&b, "- RSS after load %.2f× OPA's (target ≤ %s: %s)\n", r, label, metOrNot(r <= target))
				} else {
					fmt.Fprintf(&b, "- RSS after load %.2f× OPA's\n", r)
				}
			}
			b.WriteString("\n")
		}
	}
	if v := sr.Targets["verdict"]; v != nil && sr.Spec.Members >= 100000 {
		lt := medianDur(v.LoadTimes)
		fmt.Fprintf(&b, "- verdict loaded %s members in %s (target ≤ 2 s: %s)\n", groupDigits(int64(sr.Spec.Members*sr.Spec.Tenants)), fmtDur(lt), metOrNot(lt <= 2*time.Second))
	}
	if t := sr.Targets["trivial"]; t != nil {
		for _, vn := range verdictTargets {
			if sr.Targets[vn] == nil {
				continue
			}
			for _, stream := range []string{"uniform", "zipf"} {
				tr := median(t.Closed[stream])
				if tr == nil || tr.Throughput <= 0 {
					continue
				}
				share := throughput(vn, stream) / tr.Throughput
				fmt.Fprintf(&b, "- %s: %s's throughput is %.1f%% of the trivial Go handler's (%s)", stream, vn, 100*share, fmtRate(tr.Throughput))
				if vn == "verdict-cached" {
					// The target is about a cache that hits: a run that
					// mostly missed measures the uncached path again.
					if r := median(sr.Targets[vn].Closed[stream]); r != nil {
						switch h, ok := r.hitRatio(); {
						case !ok:
							b.WriteString(" (target ≥ 70%: not judged, cache hits not measured)")
						case h >= 0.9:
							fmt.Fprintf(&b, " (target ≥ 70%%: %s; %s hits measured)", metOrNot(share >= 0.7), fmtHits(h))
						default:
							fmt.Fprintf(&b, " (target ≥ 70%%: not judged, only %s hits measured)", fmtHits(h))
						}
					}
				}
				b.WriteString("\n")
			}
		}
	}
	if c := sr.Targets["verdict-cached"]; c != nil {
		b.WriteString(renderCacheNote(sr, c))
	}
	return b.String()
}

// renderCacheNote says what verdict-cached's numbers rest on: the hits
// are counted by verdict itself, and what they are depends on the streams
// and the warm pass.
func renderCacheNote(sr *scaleResult, c *targetResult) string {
	var warm []string
	for _, stream := range []string{"uniform", "zipf"} {
		if r := median(c.Closed[stream]); r != nil && r.WarmPass > 0 {
			warm = append(warm, fmt.Sprintf("%s %s", stream, fmtDur(r.WarmPass)))
		}
	}
	warmText := "No warm pass (`-cache-warm=false`): each closed-loop window measures a process that has been asked only what it was asked since it started."
	if len(warm) > 0 {
		warmText = "Before each closed-loop run the process was sent the whole stream once, unmeasured (warm pass, " + strings.Join(warm, ", ") +
			"), so the window measures the cache's steady state."
	}
	rates := ""
	if len(c.Rates) > 0 {
		rates = " The fixed rates share one fresh process, without a warm pass."
	}
	return fmt.Sprintf("\nverdict-cached is verdict with `--decision-cache-size %s --decision-cache-ttl %s`. Its hits are measured: `%s{result=\"hit\"|\"miss\"}` on its /metrics, scraped at the edges of each measured window. "+
		"%s%s Each stream cycles through %s questions, %s distinct (uniform) and %s distinct (Zipf): the hits are a property of these streams, "+
		"and real traffic's hit ratio depends on how often its questions repeat within the TTL.\n",
		groupDigits(int64(sr.CacheSize)), cacheTTL, cacheMetric, warmText, rates, groupDigits(int64(sr.Stream)),
		groupDigits(int64(sr.Distinct["uniform"])), groupDigits(int64(sr.Distinct["zipf"])))
}

// fmtHits shows a hit ratio; 99.95 % and more, but not all, is not 100 %.
func fmtHits(h float64) string {
	if h < 1 && h >= 0.9995 {
		return ">99.9%"
	}
	return fmt.Sprintf("%.1f%%", 100*h)
}

func metOrNot(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}
