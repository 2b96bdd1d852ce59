#!/usr/bin/env bash
# Live benchmark: replays a generated capture into a veth between two network namespaces that
# this script creates, and has `rstscope live` and tshark capture it on the far end, one after
# the other, in the same run. Reports for each: the frames it captured and the kernel dropped,
# the RSTs it reported against the generator's truth, and how long after the last frame was
# sent it had finished (its lag). Frames go only through the namespaces' own veth pair, and
# carry only the generator's documentation addresses.
#
#   bash bench/live.sh [--build DIR] [--out DIR] [--packets N] [--connections N]
#                      [--rate FRAMES_PER_S] [--runs N] [--no-tshark]
#
# Needs root (network namespaces and packet sockets). --rate 0 (the default) sends as fast as
# the sender can.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build="$here/../build"
out_dir="$here/out"
packets=1000000
connections=40000
rate=0
runs=3
with_tshark=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --out) out_dir="$2"; shift 2 ;;
    --packets) packets="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --no-tshark) with_tshark=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

[[ "$(id -u)" == 0 ]] || { echo "live.sh needs root (network namespaces, packet sockets)" >&2; exit 2; }
command -v ip >/dev/null || { echo "live.sh needs ip (iproute2)" >&2; exit 2; }
rstscope="$build/rstscope"
gen="$build/bench/rstscope-gen"
replay="$build/bench/rstscope-replay"
for tool in "$rstscope" "$gen" "$replay"; do
  [[ -x "$tool" ]] || { echo "missing $tool: build first (cmake --build $build)" >&2; exit 2; }
done
if [[ "$with_tshark" == 1 ]] && ! command -v tshark >/dev/null; then
  echo "note: tshark not found; measuring rstscope only" >&2
  with_tshark=0
fi

mkdir -p "$out_dir"
capture="$out_dir/live-$packets-$connections.pcap"
if [[ ! -f "$capture" || ! -f "$capture.truth.tsv" ]]; then
  echo "generating $capture"
  "$gen" --packets "$packets" --connections "$connections" --seed 1 --out "$capture.partial" >/dev/null
  mv "$capture.partial.truth.tsv" "$capture.truth.tsv"
  mv "$capture.partial" "$capture"
fi

# Two namespaces joined by a veth pair; the sender's end in one, the capturing end in the other.
# IPv6 is off so that neither end adds frames of its own (router solicitations, DAD).
ns_send="rstscope-live-send-$$"
ns_capture="rstscope-live-capture-$$"
cleanup() {
  ip netns del "$ns_send" 2>/dev/null || true
  ip netns del "$ns_capture" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$ns_send"
ip netns add "$ns_capture"
ip link add rslive-s netns "$ns_send" type veth peer name rslive-c netns "$ns_capture"
for ns in "$ns_send" "$ns_capture"; do
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip -n "$ns_send" link set rslive-s up
ip -n "$ns_capture" link set rslive-c up

now() { date +%s.%N; }
# User and system CPU time of a process so far, in clock ticks (its own threads; a child
# process such as tshark's dumpcap is not counted).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
ticks=$(getconf CLK_TCK)
calc() { awk "BEGIN { printf \"%.10g\n\", $1 }"; }
declare -A sent_rate captured dropped rsts lag cpu_share

# Starts `tool` capturing, replays the capture, stops the tool and records what it saw.
run_tool() {
  local tool="$1" log="$out_dir/live-$1" pid
  case "$tool" in
    rstscope)
      ip netns exec "$ns_capture" "$rstscope" live -i rslive-c --format json --duration 600 \
        >"$log.json" 2>"$log.err" &
      ;;
    tshark)
      ip netns exec "$ns_capture" tshark -i rslive-c -n -l -Y 'tcp.flags.reset==1' -T fields \
        -e frame.number >"$log.txt" 2>"$log.err" &
      ;;
  esac
  pid=$!
  sleep 2  # lets it open the interface
  local result cpu_before cpu_after
  cpu_before=$(cpu_ticks "$pid")
  result=$(ip netns exec "$ns_send" "$replay" --interface rslive-s --pcap "$capture" --rate "$rate" --seconds 120)
  local sent_end
  sent_end=$(now)
  cpu_after=$(cpu_ticks "$pid")
  kill -INT "$pid"
  # Bounded: a tool that has not finished 10 minutes after the last frame is stopped.
  local waited=0
  while kill -0 "$pid" 2>/dev/null && [[ "$waited" -lt 6000 ]]; do sleep 0.1; waited=$((waited + 1)); done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local finished frames seconds
  finished=$(now)
  read -r _ frames _ seconds <<<"$result"
  sent_rate[$tool]+="$(calc "$frames / $seconds") "
  cpu_share[$tool]+="$(calc "($cpu_after - $cpu_before) / $ticks / $seconds * 100") "
  lag[$tool]+="$(calc "$finished - $sent_end") "
  local got drop found
  case "$tool" in
    rstscope)
      local stats
      stats=$(tail -n 1 "$log.json")
      got=$(grep -o '"packets":[0-9]*' <<<"$stats" | head -n 1 | cut -d: -f2)
      drop=$(grep -o '"kernel_dropped":[0-9]*' <<<"$stats" | cut -d: -f2)
      found=$(grep -o '"resets":[0-9]*' <<<"$stats" | cut -d: -f2)
      ;;
    tshark)
      # tshark counts only the frames its display filter kept, so its frames captured are unknown.
      found=$(wc -l <"$log.txt")
      got=""
      drop=$(grep -o '[0-9]* packets dropped' "$log.err" | awk '{s += $1} END {print s + 0}')
      ;;
  esac
  captured[$tool]+="${got:-n/a} "
  dropped[$tool]+="${drop:-0} "
  rsts[$tool]+="$found "
  printf '  %-10s sent %s frames at %.0f frames/s; captured %s, dropped %s, RSTs reported %s; %.0f %% of a core while they were sent; finished %.2f s after the last frame\n' \
    "$tool" "$frames" "$(calc "$frames / $seconds")" "${got:-n/a}" "${drop:-0}" "$found" \
    "$(calc "($cpu_after - $cpu_before) / $ticks / $seconds * 100")" "$(calc "$finished - $sent_end")"
  truth_frames=$frames
}

tools=(rstscope)
[[ "$with_tshark" == 1 ]] && tools+=(tshark)
truth_frames=0
for ((round = 1; round <= runs; round++)); do
  echo "round $round of $runs"
  for tool in "${tools[@]}"; do run_tool "$tool"; done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
truth=$(awk -v n="$truth_frames" 'NR > 1 && $1 <= n' "$capture.truth.tsv" | wc -l)
{
  echo "# rstscope live benchmark"
  echo
  echo "Capture: $(basename "$capture"), $truth_frames frames replayed into a veth (rate: $([[ "$rate" == 0 ]] && echo "as fast as the sender goes" || echo "$rate frames/s")); $runs runs; $(nproc) cores; $(date +%F)."
  echo "RSTs in the replayed frames (generator's truth): $truth."
  echo
  echo "| tool | median send rate, frames/s | frames captured | kernel drops | RSTs reported | CPU while sent, % of a core | finished after the last frame, s |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for tool in "${tools[@]}"; do
    printf '| %s | %.0f | %s | %s | %s | %.0f | %.2f |\n' "$tool" "$(median <<<"${sent_rate[$tool]}")" \
      "$(tr ' ' '\n' <<<"${captured[$tool]}" | grep -v '^$' | sort -u | tr '\n' ' ' | sed 's/ $//')" \
      "$(median <<<"${dropped[$tool]}")" "$(median <<<"${rsts[$tool]}")" "$(median <<<"${cpu_share[$tool]}")" \
      "$(median <<<"${lag[$tool]}")"
  done
  echo
  echo "rstscope's frames captured, drops and RSTs come from its final stats line. tshark's RSTs are"
  echo "the lines its display filter printed and its drops are those its capture process (dumpcap)"
  echo "reported; dumpcap writes the frames to a file that tshark reads behind it, so the time tshark"
  echo "needed after the last frame is how far behind the link it had fallen."
} | tee "$out_dir/live-results.md"
