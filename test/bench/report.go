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
// column per server and the ratio of verdict to each OPA.
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
	_, hasVerdict := sr.Targets["verdict"]
	b.WriteString("| metric |")
	for _, tn := range cols {
		fmt.Fprintf(&b, " %s |", tn)
	}
	if hasVerdict {
		for _, on := range opas {
			fmt.Fprintf(&b, " verdict/%s |", on)
		}
	}
	b.WriteString("\n|---|")
	for range cols {
		b.WriteString("---:|")
	}
	if hasVerdict {
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
		if hasVerdict {
			v := val(sr.Targets["verdict"])
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
		latencyAndCPU(prefix, get)
	}
	b.WriteString("\n")
	b.WriteString(renderTargets(sr))
	return b.String()
}

// renderTargets checks the targets against the plain OPA server
// (and the read-optimized one when it was measured).
func renderTargets(sr *scaleResult) string {
	v := sr.Targets["verdict"]
	if v == nil {
		return ""
	}
	var b strings.Builder
	verdictTP := func(stream string) float64 {
		if r := median(v.Closed[stream]); r != nil {
			return r.Throughput
		}
		return 0
	}
	for _, on := range []string{"opa", "opa-fast"} {
		o := sr.Targets[on]
		if o == nil {
			continue
		}
		fmt.Fprintf(&b, "Targets against %s (verdict has no decision cache, so every number is uncached):\n", on)
		for _, stream := range []string{"uniform", "zipf"} {
			vr, or := median(v.Closed[stream]), median(o.Closed[stream])
			if vr == nil || or == nil {
				continue
			}
			tp := vr.Throughput / or.Throughput
			p99 := float64(vr.P99) / float64(or.P99)
			fmt.Fprintf(&b, "- %s: throughput %.2f× OPA's (target ≥ 15×: %s); p99 %.2f× OPA's (target ≤ 0.10×: %s)\n",
				stream, tp, metOrNot(tp >= 15), p99, metOrNot(p99 <= 0.1))
		}
		if vr, or := medianInt(v.RSSAfter), medianInt(o.RSSAfter); vr > 0 && or > 0 {
			r := float64(vr) / float64(or)
			fmt.Fprintf(&b, "- RSS after load %.2f× OPA's (target ≤ 0.33×: %s)\n", r, metOrNot(r <= 1.0/3))
		}
		b.WriteString("\n")
	}
	if sr.Spec.Members >= 100000 {
		lt := medianDur(v.LoadTimes)
		fmt.Fprintf(&b, "- verdict loaded %s members in %s (target ≤ 2 s: %s)\n", groupDigits(int64(sr.Spec.Members*sr.Spec.Tenants)), fmtDur(lt), metOrNot(lt <= 2*time.Second))
	}
	if t := sr.Targets["trivial"]; t != nil {
		for _, stream := range []string{"uniform", "zipf"} {
			if tr := median(t.Closed[stream]); tr != nil && tr.Throughput > 0 {
				fmt.Fprintf(&b, "- %s: verdict's throughput is %.1f%% of the trivial Go handler's (%s)\n", stream, 100*verdictTP(stream)/tr.Throughput, fmtRate(tr.Throughput))
			}
		}
	}
	return b.String()
}

func metOrNot(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}
