#!/usr/bin/env bash
# Measures the cost of tracing (sampled, exported over OTLP/HTTP) plus
# decision logging on decision latency: runs the telemetry package's
# BenchmarkObservabilityOverhead{HTTP,Engine} with each configuration in a
# process of its own, interleaved over ROUNDS rounds, and prints the median
# p50, p99 and CPU per decision of each. Usage (from the repository root):
#
#   bash test/e2e_otel/overhead.sh [ROUNDS] [OPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
ops=${2:-5000}
bin=$(mktemp -d)/telemetry.test
trap 'rm -rf "$(dirname "$bin")"' EXIT
go test -c -o "$bin" ./decision/telemetry/
out=$(mktemp)
for r in $(seq "$rounds"); do
  for level in HTTP Engine; do
    for cfg in off on; do
      (cd decision/telemetry && "$bin" -test.run '^$' -test.bench "ObservabilityOverhead$level/^$cfg\$" \
        -test.benchtime "${ops}x" -test.benchmem) | grep '^Benchmark' | tee -a "$out"
    done
  done
done
echo
echo "median over $rounds rounds of $ops decisions (µs):"
awk '
  { name=$1; sub(/-[0-9]+$/, "", name)
    for (i=2; i<NF; i++) { if ($(i+1)=="p50-ns") p50[name]=p50[name] " " $i
                           if ($(i+1)=="p99-ns") p99[name]=p99[name] " " $i
                           if ($(i+1)=="cpu-ns/op") cpu[name]=cpu[name] " " $i } }
  function median(list,   a, n, i, j, t) {
    n=split(list, a, " ")
    for (i=1;i<=n;i++) for (j=i+1;j<=n;j++) if (a[j]+0<a[i]+0) { t=a[i]; a[i]=a[j]; a[j]=t }
    return (n%2) ? a[(n+1)/2] : (a[n/2]+a[n/2+1])/2
  }
  END { for (k in p50) printf "%-45s p50 %8.1f  p99 %8.1f  cpu/op %8.1f\n", k, median(p50[k])/1000, median(p99[k])/1000, median(cpu[k])/1000 }
' "$out" | sort
rm -f "$out"
