#!/usr/bin/env bash
# Whole-process comparison on one generated capture: rstscope with one thread and with N
# threads, tshark, tcptrace and the read limit (rstscope-readlimit), run interleaved, each
# measured for wall time and peak RSS; then the project's speed targets, met or not.
#
#   bash bench/compare.sh [--packets N] [--connections N] [--runs R] [--tshark-packets M]
#                         [--tshark-runs T] [--threads N] [--build DIR] [--out DIR] [--keep]
#
# The capture is generated once into the out directory (--out, default bench/out; a relative
# path is taken from the current directory) with seed 1, and reused by later runs there.
# --threads N sets the thread count of the multi-threaded run (default: nproc).
# tshark runs on the whole capture, like the other tools. It reads about 0.03 million packets
# per second there (about three minutes for the default capture) and its memory grows with
# every frame, so it runs in the first T rounds only (--tshark-runs, default 1). With
# --tshark-packets M it runs on a prefix capture of the first M packets instead, and its
# packets/s is taken on that prefix; that is quicker, but assumes a time per packet that its
# growing memory need not keep. The output says when it did so.
# Before the first round the capture is dropped from the page cache and read back (untimed), so
# that the cache holds it as it holds any file read from disk: a file just written (as by the
# generator) sits there in 4 KiB pages, and on kernels whose page cache holds large folios its
# read() costs about twice as much system time. Before each timed run the capture is read once
# more (untimed), so that no tool pays for the disk because the one before it pushed the
# capture out of memory.
# Results: a table, ratios and targets on standard output and in OUT/results.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="$root/bench/out"
packets=5000000
connections=200000
runs=3
tshark_packets=0
tshark_runs=1
threads=$(nproc)
build="${BUILD:-build}"
keep=0
# The memory baseline is rstscope on this many packets: the cost of the process itself
# (binary, allocator, buffers, fixed tables) with almost no connections.
baseline_packets=1000

while [[ $# -gt 0 ]]; do
  case "$1" in
    --packets) packets="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --tshark-packets) tshark_packets="$2"; shift 2 ;;
    --tshark-runs) tshark_runs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --out) out_dir="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' \
                 "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --threads needs a positive number" >&2; exit 2; }
[[ "$tshark_runs" =~ ^[0-9]+$ ]] || { echo "compare.sh: --tshark-runs needs a number" >&2; exit 2; }
[[ "$tshark_packets" =~ ^[0-9]+$ ]] || { echo "compare.sh: --tshark-packets needs a number" >&2; exit 2; }
[[ "$build" = /* ]] || build="$root/$build"
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"

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

# Drops a file from the page cache (after writing back what is dirty) and reads it back in.
recache() {
  sync "$1"
  dd if="$1" iflag=nocache count=0 status=none
  cat "$1" >/dev/null
}
recache "$capture"

# Prefix captures come from the read-limit program, which copies the first N records.
prefix_of() {  # prints the path of the first $1 packets of the capture, writing it if needed
  local prefix
  prefix="$out_dir/prefix-$1-of-$(basename "$capture")"
  if [[ ! -s "$prefix" ]]; then
    "$readlimit" "$capture" --head "$1" "$prefix" >/dev/null || return 1
  fi
  echo "$prefix"
}

tshark_capture="$capture"
tshark_count="$packets"
tshark_note=""
if [[ "$tshark_packets" -gt 0 && "$tshark_packets" -lt "$packets" ]]; then
  tshark_capture=$(prefix_of "$tshark_packets")
  tshark_count="$tshark_packets"
  tshark_note="tshark ran on the first $tshark_packets packets of the capture; its packets/s is measured on that prefix"
fi
baseline_capture=$(prefix_of "$baseline_packets")

# Tools present on this machine, in the order they run within each round.
# rstscope1 and rstscopeN are rstscope with --threads 1 and --threads $threads; with
# --threads 1 the second would repeat the first, so it is left out.
tools=(readlimit)
have_rstscope=0 have_threads=0
if [[ -x "$rstscope" ]] && "$rstscope" analyze --help >/dev/null 2>&1; then
  have_rstscope=1
  if [[ "$threads" -gt 1 ]]; then
    have_threads=1
    tools=(rstscopeN "${tools[@]}")
  fi
  tools=(rstscope1 "${tools[@]}")
else
  echo "note: $rstscope has no working 'analyze' yet; rstscope is left out" >&2
fi
command -v tshark >/dev/null && tools+=(tshark) || echo "note: tshark not installed; left out" >&2
command -v tcptrace >/dev/null && tools+=(tcptrace) || echo "note: tcptrace not installed; left out" >&2

declare -A labels=(
  [rstscope1]="rstscope, 1 thread"
  [rstscopeN]="rstscope, $threads threads"
  [readlimit]="read limit"
  [tshark]="tshark"
  [tcptrace]="tcptrace"
  [baseline]="rstscope baseline ($baseline_packets packets)"
)
[[ -n "$tshark_note" ]] && labels[tshark]="tshark (first $tshark_count packets)"

calc() { awk "BEGIN { printf \"%.10g\n\", $1 }"; }
declare -A walls rss
run_tool() {
  local tool="$1" stat="$out_dir/.stat" status=0
  case "$tool" in
    tshark) cat "$tshark_capture" >/dev/null ;;
    baseline) cat "$baseline_capture" >/dev/null ;;
    *) cat "$capture" >/dev/null ;;
  esac
  case "$tool" in
    rstscope1) "$runstat" -o "$stat" -- "$rstscope" analyze "$capture" --format json --threads 1 \
                 >"$out_dir/rstscope1.json" 2>"$out_dir/rstscope1.err" || status=$? ;;
    rstscopeN) "$runstat" -o "$stat" -- "$rstscope" analyze "$capture" --format json \
                 --threads "$threads" >"$out_dir/rstscopeN.json" 2>"$out_dir/rstscopeN.err" || status=$? ;;
    baseline) "$runstat" -o "$stat" -- "$rstscope" analyze "$baseline_capture" --format json \
                 --threads 1 >"$out_dir/baseline.json" 2>"$out_dir/baseline.err" || status=$? ;;
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
    echo "warning: $tool exited with status $code (see $out_dir/$tool.*)" >&2
  fi
  walls[$tool]+="$wall "
  rss[$tool]+="$kb "
  printf '  %-32s %8.2f s %8.0f MB\n' "${labels[$tool]}" "$wall" "$(calc "$kb / 1024")"
  : "$status"
}

# The multi-threaded run must report the same findings in the same order as one thread. Only
# the run's own wall time may differ, so it is blanked before comparing.
without_wall() { sed -E 's/"wall_seconds":[-+0-9.eE]+/"wall_seconds":_/' "$1"; }
differing_lines() {  # lines that differ at the same position (or exist in only one file)
  awk 'FILENAME == ARGV[1] { a[FNR] = $0; n = FNR; next }
       { if (!(FNR in a) || a[FNR] != $0) d++; m = FNR }
       END { if (n > m) d += n - m; print d + 0 }' <(without_wall "$1") <(without_wall "$2")
}
threads_diff=""  # per round: differing lines between rstscopeN.json and rstscope1.json

for ((round = 1; round <= runs; round++)); do
  echo "round $round of $runs"
  for tool in "${tools[@]}"; do
    [[ "$tool" == tshark && "$round" -gt "$tshark_runs" ]] && continue
    run_tool "$tool"
  done
  if [[ "$have_rstscope" == 1 ]]; then
    # Milliseconds long, so it goes outside the rotation; RSS is all it is for.
    run_tool baseline
  fi
  if [[ "$have_threads" == 1 ]]; then
    threads_diff+="$(differing_lines "$out_dir/rstscope1.json" "$out_dir/rstscopeN.json") "
  fi
  # Rotate the order so no tool always runs right after the same one.
  tools=("${tools[@]:1}" "${tools[0]}")
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
maximum() { tr ' ' '\n' | grep -v '^$' | sort -g | tail -1; }

rsts_truth=$(($(wc -l <"$capture.truth.tsv") - 1))
rsts_readlimit=$(awk '$1=="rsts"{print $2}' "$out_dir/readlimit.txt")
rsts_tshark=""
[[ -n "${walls[tshark]:-}" ]] && rsts_tshark=$(wc -l <"$out_dir/tshark.txt")

# live_peak from the final stats line of rstscope's JSON output.
live_peak() { tail -n 1 "$1" | grep -o '"live_peak":[0-9]*' | cut -d: -f2; }

{
  echo "# rstscope benchmark"
  echo
  echo "Capture: $(basename "$capture"), $packets packets, $((capture_bytes / 1000000)) MB," \
       "$connections connections live at once; $runs runs each (tshark: $((tshark_runs < runs ? tshark_runs : runs))), interleaved; $(nproc) cores;" \
       "$(date -u +%Y-%m-%d)."
  echo
  echo "| tool | median wall s | packets/s | peak RSS MB |"
  echo "|---|---:|---:|---:|"
  declare -A median_wall pps peak_kb
  for tool in rstscope1 rstscopeN readlimit tshark tcptrace baseline; do
    [[ -n "${walls[$tool]:-}" ]] || continue
    median_wall[$tool]=$(echo "${walls[$tool]}" | median)
    peak_kb[$tool]=$(echo "${rss[$tool]}" | maximum)
    [[ "$tool" == baseline ]] && continue  # start-up dominates its time: only its RSS is used
    count="$packets"
    [[ "$tool" == tshark ]] && count="$tshark_count"
    pps[$tool]=$(calc "$count / ${median_wall[$tool]}")
    printf '| %s | %.2f | %.0f | %.0f |\n' "${labels[$tool]}" "${median_wall[$tool]}" \
      "${pps[$tool]}" "$(calc "${peak_kb[$tool]} / 1024")"
  done
  echo

  # Measured values of the targets, filled in below; empty when not measured.
  declare -A measured
  ratio() {  # time per packet of $1 over time per packet of $2; $3 is the text, $4 a key for it
    if [[ -n "${pps[$1]:-}" && -n "${pps[$2]:-}" ]]; then
      local value
      value=$(printf '%.2f' "$(calc "${pps[$2]} / ${pps[$1]}")")
      printf -- '- %s: %s\n' "$3" "$value"
      [[ -n "${4:-}" ]] && measured[$4]="$value"
    fi
    return 0
  }
  echo "Ratios of time per packet:"
  echo
  ratio rstscope1 readlimit "${labels[rstscope1]} / read limit (what the analysis costs over reading the bytes)" readlimit
  ratio tshark rstscope1 "tshark / ${labels[rstscope1]}" tshark
  ratio tcptrace rstscope1 "tcptrace / ${labels[rstscope1]}" tcptrace
  ratio rstscopeN readlimit "${labels[rstscopeN]} / read limit"
  ratio tshark rstscopeN "tshark / ${labels[rstscopeN]}"
  ratio tcptrace rstscopeN "tcptrace / ${labels[rstscopeN]}"
  ratio tshark readlimit "tshark / read limit"
  ratio tcptrace readlimit "tcptrace / read limit"
  echo
  if [[ "$have_threads" == 1 ]]; then
    measured[scaling]=$(printf '%.2f' "$(calc "${median_wall[rstscope1]} / ${median_wall[rstscopeN]}")")
    printf 'Scaling from 1 to %s threads, time(1 thread) / time(%s threads): %s (%.2f s / %.2f s).\n' \
      "$threads" "$threads" "${measured[scaling]}" \
      "${median_wall[rstscope1]}" "${median_wall[rstscopeN]}"
    echo
    differing_rounds=0 worst=0
    for lines in $threads_diff; do
      if [[ "$lines" -gt 0 ]]; then differing_rounds=$((differing_rounds + 1)); fi
      if [[ "$lines" -gt "$worst" ]]; then worst="$lines"; fi
    done
    if [[ "$differing_rounds" == 0 ]]; then
      measured[identical]="identical"
    else
      measured[identical]="$worst lines differ"
      if [[ "$runs" -gt 1 ]]; then
        measured[identical]+=" (the most in one round; $differing_rounds of $runs rounds differ)"
      fi
    fi
    total_lines=$(wc -l <"$out_dir/rstscope1.json")
    echo "Output of --threads $threads against --threads 1, line by line ($total_lines lines with" \
         "one thread, wall_seconds ignored): ${measured[identical]}. The last round's outputs are" \
         "rstscope1.json and rstscopeN.json in the out directory."
    echo
  fi
  if [[ "$have_rstscope" == 1 ]]; then
    peak=$(live_peak "$out_dir/rstscope1.json")
    if [[ -n "$peak" && "$peak" -gt 0 ]]; then
      measured[memory]=$(printf '%.0f' "$(calc "(${peak_kb[rstscope1]} - ${peak_kb[baseline]}) * 1024 / $peak")")
      printf -- '- Memory per live connection: %s bytes = (%.1f MB peak RSS with 1 thread - %.1f MB baseline) / %s live_peak.\n' \
        "${measured[memory]}" "$(calc "${peak_kb[rstscope1]} / 1024")" \
        "$(calc "${peak_kb[baseline]} / 1024")" "$peak"
      printf -- '- Raw peak RSS / live_peak: %.0f bytes.\n' "$(calc "${peak_kb[rstscope1]} * 1024 / $peak")"
      echo "- Baseline: rstscope analyze --threads 1 --format json on the first $baseline_packets" \
           "packets of the same capture (live_peak $(live_peak "$out_dir/baseline.json")), the" \
           "process's own cost without connections."
    else
      echo "- Memory per live connection: not measured (no live_peak in rstscope1.json)."
    fi
  else
    echo "- rstscope: not measured (its analyze command did not run)"
  fi
  echo
  [[ -n "$tshark_note" ]] && echo "Note: $tshark_note." && echo
  echo "RSTs: $rsts_truth in the generator's truth file, $rsts_readlimit counted by the read" \
       "limit${rsts_tshark:+, $rsts_tshark by tshark${tshark_note:+ on its prefix}}."
  echo

  # $1 target text, $2 measured value (may be empty); met when value $3 $4, $3 being >= or <=.
  target() {
    local verdict="not measured" value="${2:-}"
    if [[ -n "$value" ]]; then
      if awk -v v="$value" -v op="$3" -v t="$4" 'BEGIN { exit !(op == ">=" ? v + 0 >= t : v + 0 <= t) }'; then
        verdict="met"
      else
        verdict="not met"
      fi
    fi
    echo "- $1: ${value:-n/a}: **$verdict**"
  }
  echo "## Targets"
  echo
  target "One thread, tshark / rstscope time per packet at least 100" "${measured[tshark]:-}" ">=" 100
  target "One thread, tcptrace / rstscope time per packet at least 10" "${measured[tcptrace]:-}" ">=" 10
  target "One thread, rstscope / read limit time per packet at most 3" "${measured[readlimit]:-}" "<=" 3
  if [[ "$threads" -gt 1 ]]; then
    note=""
    [[ "$threads" != 2 ]] && note=" (the target is set for 2 cores; here $threads threads)"
    target "Scaling, time(1 thread) / time($threads threads) at least 1.7 on 2 cores$note" \
      "${measured[scaling]:-}" ">=" 1.7
    verdict="not measured"
    if [[ -n "${measured[identical]:-}" ]]; then
      verdict="not met"
      [[ "${measured[identical]}" == identical ]] && verdict="met"
    fi
    echo "- Output of --threads $threads identical to --threads 1:" \
         "${measured[identical]:-n/a}: **$verdict**"
  else
    echo "- Scaling and identical output with N threads: not applicable with --threads 1"
  fi
  target "Memory, bytes per live connection over the baseline at most 256" "${measured[memory]:-}" "<=" 256
  echo
  echo "Flat in the length of the capture: compare the memory line of a run with more --packets" \
       "and the same --connections; one run cannot show it."
} | tee "$out_dir/results.md"

[[ "$keep" == 1 ]] || rm -f "$out_dir/.stat"
