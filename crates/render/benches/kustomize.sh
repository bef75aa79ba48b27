#!/usr/bin/env bash
# Render benchmark: 1,000 generated actors with asya, and the equivalent kustomize
# base+overlays tree with `kubectl kustomize`, timed in the same run; prints the ratio.
# The tree (bases per transport and scaling shape, a `spot` Component, one overlay per
# actor with labels, image and JSON patches) is checked to print the same objects as asya:
# counts per kind and every object compared after sorting keys (`asya bench --same-as`).
#
#   bash crates/render/benches/kustomize.sh [N]        (N defaults to 1000)
#
# Uses $ASYA_BIN, else target/dist/asya (the shipped build: profile `dist`, render-only,
# mimalloc; built if missing, see BENCHMARKS.md), and the `kubectl` on PATH (kustomize is
# built into kubectl >= 1.14).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$ROOT"
N=${1:-1000}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ASYA=${ASYA_BIN:-$TARGET/dist/asya}
if [ ! -x "$ASYA" ]; then
  cargo build --profile dist -p asya-cli --no-default-features --features mimalloc >&2
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# Runs a command with its stdout to file $1 and prints "wall_ms cpu_ms". CPU is perf's
# task-clock (the scheduler's on-CPU time of every thread) where `perf stat` works: here
# getrusage's user + system time read above the wall time of the single-threaded asya
# (164 ms CPU for 119 ms wall) while task-clock read 109 ms. Else getrusage.
if perf stat -e task-clock true > /dev/null 2>&1; then CPU_SOURCE="perf task-clock"; else CPU_SOURCE=getrusage; fi
run_timed() {
  local out=$1; shift
  if [ "$CPU_SOURCE" = getrusage ]; then
    python3 -c '
import resource, subprocess, sys, time
t0 = time.monotonic()
with open(sys.argv[1], "wb") as out:
    subprocess.run(sys.argv[2:], stdout=out, check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{(time.monotonic() - t0) * 1000:.0f} {(r.ru_utime + r.ru_stime) * 1000:.0f}")
' "$out" "$@"
  else
    local t0 t1
    t0=$(date +%s%N)
    perf stat -x, -e task-clock -o "$TMP/perf.txt" -- "$@" > "$out"
    t1=$(date +%s%N)
    echo "$(( (t1 - t0) / 1000000 )) $(awk -F, '/task-clock/ {printf "%.0f", $1}' "$TMP/perf.txt")"
  fi
}

echo "== asya (in-process render of $N actors; YAML, then JSON serialisation)"
"$ASYA" bench --actors "$N" --flavors flavors --kustomize-dir "$TMP/tree"
"$ASYA" bench --actors "$N" --flavors flavors -o json

echo "== asya render -f actors/ ($N files, whole CLI process; 5 runs, each to a new file, median)"
# One run is noisy here: its system time (writing the new output file) varied 0.05-0.4 s.
for run in 1 2 3 4 5; do
  run_timed "$TMP/asya-$run.yaml" "$ASYA" render -f "$TMP/tree/actors" --flavors flavors >> "$TMP/asya.runs"
  echo "asya render run $run: $(grep -c '^kind:' "$TMP/asya-$run.yaml") objects in $(tail -1 "$TMP/asya.runs" | awk -v src="$CPU_SOURCE" '{printf "%s ms wall, %s ms CPU (%s)", $1, $2, src}')"
done
cp "$TMP/asya-1.yaml" "$TMP/asya.yaml"
ASYA_MS=$(sort -n -k1 "$TMP/asya.runs" | sed -n 3p | cut -d' ' -f1)
ASYA_CPU=$(sort -n -k2 "$TMP/asya.runs" | sed -n 3p | cut -d' ' -f2)
echo "asya render median: ${ASYA_MS} ms wall, ${ASYA_CPU} ms CPU ($CPU_SOURCE)"

echo "== kubectl kustomize (4 bases, 1 component, $N overlays)"
read -r KUST_MS KUST_CPU < <(run_timed "$TMP/kustomize.yaml" kubectl kustomize "$TMP/tree")
echo "kubectl kustomize: $(grep -c '^kind:' "$TMP/kustomize.yaml") objects in ${KUST_MS} ms wall, ${KUST_CPU} ms CPU ($CPU_SOURCE; $(kubectl version --client 2>/dev/null | grep -i kustomize || true))"

echo "== same objects? (counts per kind; every object compared after sorting keys)"
"$ASYA" bench --actors "$N" --flavors flavors --same-as "$TMP/kustomize.yaml" --same-as "$TMP/asya.yaml" | grep -v '^asya render:'

echo "== ratio kustomize / asya render: wall $(echo "$KUST_MS / ($ASYA_MS + 0.5)" | bc -l | xargs printf '%.1f')x, CPU $(echo "$KUST_CPU / ($ASYA_CPU + 0.5)" | bc -l | xargs printf '%.1f')x"
