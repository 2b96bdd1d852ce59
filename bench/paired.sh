#!/usr/bin/env bash
# Paired comparison of two rstscope binaries on one capture: A and B run back to back, N times,
# the order swapped every round, and the ratio B/A taken within each round. On a machine whose
# speed drifts over seconds or minutes (a shared host), the drift moves both runs of a round
# alike, so the median ratio resolves a difference of a few percent that medians of separate
# runs cannot. Run it with the same binary on both sides to see the resolution on this machine.
#
#   bash bench/paired.sh [--runs N] [--threads T] [--format F] CAPTURE BINARY_A BINARY_B
#
# Each run is `BINARY analyze CAPTURE --format F --threads T -o /dev/null --force`, timed with
# rstscope-runstat (built next to the binaries in bench/, or found in the build directory given
# by BUILD, default build). The capture is read once before the first round so that the page
# cache holds it. Prints the median wall time of each and the median of B/A, with how many
# rounds B was faster in.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs=20
threads=1
format=json
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --format) format="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' \
                 "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) echo "paired.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [[ $# -ne 3 ]]; then
  echo "usage: bash bench/paired.sh [--runs N] [--threads T] [--format F] CAPTURE BINARY_A BINARY_B" >&2
  exit 2
fi
capture="$1" binary_a="$2" binary_b="$3"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "paired.sh: --runs needs a positive number" >&2; exit 2; }
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || { echo "paired.sh: --threads needs a positive number" >&2; exit 2; }
[[ -r "$capture" ]] || { echo "paired.sh: cannot read $capture" >&2; exit 2; }
for binary in "$binary_a" "$binary_b"; do
  [[ -x "$binary" ]] || { echo "paired.sh: $binary is not an executable" >&2; exit 2; }
done

build="${BUILD:-build}"
[[ "$build" = /* ]] || build="$root/$build"
runstat="$build/bench/rstscope-runstat"
if [[ ! -x "$runstat" ]]; then
  cmake --build "$build" --target rstscope-runstat >/dev/null
fi

stat="$(mktemp)"
trap 'rm -f "$stat"' EXIT
cat "$capture" >/dev/null

# One timed run of $1; prints its wall time.
run() {
  "$runstat" -o "$stat" -- "$1" analyze "$capture" --format "$format" --threads "$threads" \
    -o /dev/null --force --no-progress >/dev/null 2>&1 || {
    echo "paired.sh: $1 failed on $capture" >&2
    exit 1
  }
  awk '{ print $1 }' "$stat"
}

walls_a=() walls_b=() ratios=()
for ((round = 0; round < runs; ++round)); do
  if ((round % 2 == 0)); then
    a=$(run "$binary_a"); b=$(run "$binary_b")
  else
    b=$(run "$binary_b"); a=$(run "$binary_a")
  fi
  walls_a+=("$a") walls_b+=("$b")
  ratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.4f", (a > 0 ? b / a : 1) }')")
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
faster=$(printf '%s\n' "${ratios[@]}" | awk '$1 < 1' | wc -l)
echo "A: $binary_a  median $(median "${walls_a[@]}") s"
echo "B: $binary_b  median $(median "${walls_b[@]}") s"
echo "B/A, median of $runs paired rounds: $(median "${ratios[@]}") (B faster in $faster of $runs)"
