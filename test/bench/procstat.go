package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of /proc's CPU times. It is 100 on every
// Linux platform Go supports unless the kernel was patched; the harness
// prints it in the machine section.
const clockTick = 100

// procCPU returns the user+system CPU time the process has used.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; fields resume after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return time.Duration(ut+st) * time.Second / clockTick, nil
}

// procMem returns the resident set size and its peak (VmRSS, VmHWM) in bytes.
func procMem(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		for _, k := range []struct {
			prefix string
			dst    *int64
		}{{"VmRSS:", &rss}, {"VmHWM:", &hwm}} {
			if rest, ok := strings.CutPrefix(line, k.prefix); ok {
				fs := strings.Fields(rest)
				if len(fs) >= 1 {
					kb, _ := strconv.ParseInt(fs[0], 10, 64)
					*k.dst = kb * 1024
				}
			}
		}
	}
	return rss, hwm, sc.Err()
}

// selfCPU is the CPU time the harness itself (the load generator) has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy returns the busy CPU time of the whole machine (all cores)
// from /proc/stat: user+nice+system+irq+softirq+steal.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := strings.Fields(string(line))
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy uint64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system irq softirq steal
		if i < len(f) {
			v, _ := strconv.ParseUint(f[i], 10, 64)
			busy += v
		}
	}
	return time.Duration(busy) * time.Second / clockTick
}

// cpuSnap is a point-in-time reading of the server, the harness and the
// machine, for CPU deltas over a measurement window.
type cpuSnap struct {
	at      time.Time
	server  time.Duration
	self    time.Duration
	machine time.Duration
}

func snapCPU(pid int) cpuSnap {
	s := cpuSnap{at: time.Now(), self: selfCPU(), machine: machineBusy()}
	if pid > 0 {
		s.server, _ = procCPU(pid)
	}
	return s
}

// machineInfo describes the machine for the report.
func machineInfo() string {
	// The machine's CPUs, not this process's: under taskset (see
	// -server-cpus) runtime.NumCPU counts only the ones it may use.
	model, cpus := "unknown", 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			switch k = strings.TrimSpace(k); {
			case !ok:
			case k == "processor":
				cpus++
			case k == "model name" && model == "unknown":
				model = strings.TrimSpace(v)
			}
		}
	}
	if cpus == 0 {
		cpus = runtime.NumCPU()
	}
	mem := "unknown"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				fs := strings.Fields(rest)
				if len(fs) > 0 {
					kb, _ := strconv.ParseInt(fs[0], 10, 64)
					mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				}
			}
		}
	}
	kernel := "unknown"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return fmt.Sprintf("%d CPUs, %s, %s RAM, Linux %s, %s, load average at start %s",
		cpus, model, mem, kernel, runtime.Version(), load)
}
