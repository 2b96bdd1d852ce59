#!/usr/bin/env bash
# Whole-process comparison on one generated capture: rstscope, tshark, tcptrace and the read
# limit (rstscope-readlimit), run interleaved, each measured for wall time and peak RSS.
#
#   bash bench/compare.sh [--packets N] [--connections N] [--runs R] [--tshark-packets M]
#                         [--build DIR] [--keep]
#
# The capture is generated once into bench/out/ (deterministic, seed 1) and reused.
# tshark reads about 0.03-0.07 million packets per second, so by default it runs on a prefix
# capture of the first M packets (--tshark-packets, default 500000; 0 for the whole capture)
# and its packets/s is taken on that prefix. The output says when it did so.
# Results: a table on standard output and in bench/out/results.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="$root/bench/out"
packets=5000000
connections=200000
runs=3
tshark_packets=500000
build="${BUILD:-build}"
keep=0

while [[ $# -gt 0 ]]; do
  case "$1" in
    --packets) packets="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --tshark-packets) tshark_packets="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ "$build" = /* ]] || build="$root/$build"
mkdir -p "$out_dir"

# The bench tools build on their own, even before the analyser links.
bench_bin="$build/bench"
if [[ ! -x "$bench_bin/rstscope-gen" || ! -x "$bench_bin/rstscope-readlimit" || ! -x "$bench_bin/rstscope-runstat" ]]; then
  if [[ ! -f "$build/build.ninja" && ! -f "$build/Makefile" ]]; then
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build "$build" --target rstscope-gen rstscope-readlimit rstscope-runstat
fi
gen="$bench_bin/rstscope-gen"
readlimit="$bench_bin/rstscope-readlimit"
runstat="$bench_bin/rstscope-runstat"
rstscope="$build/rstscope"

capture="$out_dir/capture-${packets}-${connections}.pcap"
if [[ ! -s "$capture" ]]; then
  echo "generating $capture ($packets packets, $connections live connections)..."
  "$gen" --packets "$packets" --connections "$connections" --seed 1 --out "$capture.partial"
  mv "$capture.partial" "$capture"
  mv "$capture.partial.truth.tsv" "$capture.truth.tsv"
fi
capture_bytes=$(stat -c %s "$capture")

tshark_capture="$capture"
tshark_count="$packets"
tshark_note=""
if [[ "$tshark_packets" -gt 0 && "$tshark_packets" -lt "$packets" ]]; then
  tshark_capture="$out_dir/prefix-${tshark_packets}-of-$(basename "$capture")"
  if [[ ! -s "$tshark_capture" ]]; then
    "$readlimit" "$capture" --head "$tshark_packets" "$tshark_capture" >/dev/null
  fi
  tshark_count="$tshark_packets"
  tshark_note="tshark ran on the first $tshark_packets packets of the capture; its packets/s is measured on that prefix"
fi

# Tools present on this machine, in the order they run within each round.
tools=(readlimit)
if [[ -x "$rstscope" ]] && "$rstscope" analyze --help >/dev/null 2>&1; then
  tools=(rstscope "${tools[@]}")
else
  echo "note: $rstscope has no working 'analyze' yet; rstscope is left out" >&2
fi
command -v tshark >/dev/null && tools+=(tshark) || echo "note: tshark not installed; left out" >&2
command -v tcptrace >/dev/null && tools+=(tcptrace) || echo "note: tcptrace not installed; left out" >&2

calc() { awk "BEGIN { print $1 }"; }
declare -A walls rss
run_tool() {
  local tool="$1" stat="$out_dir/.stat" status=0
  case "$tool" in
    rstscope) "$runstat" -o "$stat" -- "$rstscope" analyze "$capture" --format json \
                >"$out_dir/rstscope.json" 2>"$out_dir/rstscope.err" || status=$? ;;
    readlimit) "$runstat" -o "$stat" -- "$readlimit" "$capture" \
                >"$out_dir/readlimit.txt" 2>&1 || status=$? ;;
    tshark) "$runstat" -o "$stat" -- tshark -n -r "$tshark_capture" -Y 'tcp.flags.reset==1' \
                -T fields -e frame.number >"$out_dir/tshark.txt" 2>"$out_dir/tshark.err" || status=$? ;;
    tcptrace) "$runstat" -o "$stat" -- tcptrace -n "$capture" \
                >"$out_dir/tcptrace.txt" 2>&1 || status=$? ;;
  esac
  local wall kb code
  read -r wall kb code <"$stat"
  if [[ "$code" != 0 ]]; then
    echo "warning: $tool exited with status $code (see bench/out/$tool.*)" >&2
  fi
  walls[$tool]+="$wall "
  rss[$tool]+="$kb "
  printf '  %-10s %8.2f s %8.0f MB\n' "$tool" "$wall" "$(calc "$kb / 1024")"
  : "$status"
}

for ((round = 1; round <= runs; round++)); do
  echo "round $round of $runs"
  for tool in "${tools[@]}"; do run_tool "$tool"; done
  # Rotate the order so no tool always runs right after the same one.
  tools=("${tools[@]:1}" "${tools[0]}")
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
maximum() { tr ' ' '\n' | grep -v '^$' | sort -g | tail -1; }

rsts_truth=$(($(wc -l <"$capture.truth.tsv") - 1))
rsts_readlimit=$(awk '$1=="rsts"{print $2}' "$out_dir/readlimit.txt")
rsts_tshark=""
[[ -f "$out_dir/tshark.txt" ]] && rsts_tshark=$(wc -l <"$out_dir/tshark.txt")

{
  echo "# rstscope benchmark"
  echo
  echo "Capture: $(basename "$capture"), $packets packets, $((capture_bytes / 1000000)) MB," \
       "$connections connections live at once; $runs runs each, interleaved; $(nproc) cores;" \
       "$(date -u +%Y-%m-%d)."
  echo
  echo "| tool | median wall s | packets/s | peak RSS MB |"
  echo "|---|---:|---:|---:|"
  declare -A median_wall pps
  for tool in rstscope readlimit tshark tcptrace; do
    [[ -n "${walls[$tool]:-}" ]] || continue
    count="$packets"
    [[ "$tool" == tshark ]] && count="$tshark_count"
    median_wall[$tool]=$(echo "${walls[$tool]}" | median)
    pps[$tool]=$(calc "$count / ${median_wall[$tool]}")
    peak=$(echo "${rss[$tool]}" | maximum)
    label="$tool"
    [[ "$tool" == tshark && -n "$tshark_note" ]] && label="tshark (first $tshark_count packets)"
    [[ "$tool" == readlimit ]] && label="read limit"
    printf '| %s | %.2f | %.0f | %.0f |\n' "$label" "${median_wall[$tool]}" "${pps[$tool]}" \
      "$(calc "$peak / 1024")"
  done
  echo
  ratio() {  # time per packet of $1 over time per packet of $2
    if [[ -n "${pps[$1]:-}" && -n "${pps[$2]:-}" ]]; then
      printf -- '- %s: %.2f\n' "$3" "$(calc "${pps[$2]} / ${pps[$1]}")"
    fi
  }
  echo "Ratios of time per packet:"
  echo
  ratio rstscope readlimit "rstscope / read limit (what the analysis costs over reading the bytes)"
  ratio tshark rstscope "tshark / rstscope"
  ratio tcptrace rstscope "tcptrace / rstscope"
  ratio tshark readlimit "tshark / read limit"
  ratio tcptrace readlimit "tcptrace / read limit"
  [[ -z "${pps[rstscope]:-}" ]] && echo "- rstscope: not measured (its analyze command did not run)"
  echo
  [[ -n "$tshark_note" ]] && echo "Note: $tshark_note." && echo
  echo "RSTs: $rsts_truth in the generator's truth file, $rsts_readlimit counted by the read" \
       "limit${rsts_tshark:+, $rsts_tshark by tshark${tshark_note:+ on its prefix}}."
} | tee "$out_dir/results.md"

[[ "$keep" == 1 ]] || rm -f "$out_dir/.stat"
