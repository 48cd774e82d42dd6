#!/usr/bin/env bash
# Regenerates deploy/agent.order: the functions `vigie-agent run` executes in a default
# configuration, in the order lld's --symbol-ordering-file wants (one mangled symbol a line).
# agent/build.rs links the size build (`--profile agent`, x86_64 Linux) with it, so that
# this code sits together at the start of .text and the code a default configuration never
# runs (enroll, exec, service install, outbox import, LAN probes, error paths) after it: the
# kernel maps the page cache around each faulting code page (64 KiB), so without the order
# the agent's RSS is nearly all of its 4 MiB of code (docs/PERFORMANCE.md).
#
# How: the agent built exactly as the size build (same profile, so the same symbol hashes;
# only the final link keeps its symbols) runs under valgrind's callgrind against a real
# collector on 127.0.0.1: start-up, snapshot cycles with the default checks (updates,
# antivirus, software), a backup result from the spool, TLS sends and acks, outbox writes and
# deletes. The names come from callgrind's dump taken before SIGTERM, so the shutdown path
# stays out of the hot pages. About 10 minutes on two cores (two links of the agent, the run).
#
#   bash deploy/agent-order.sh [SECONDS]   (default 150 s under valgrind; then commit the list)
#
# Needs: valgrind. The list names symbols with their hashes, which come from cargo's metadata
# (versions, features, profile), not from the source: it stays mostly valid as the code
# changes; a symbol it misses only costs memory. `bash deploy/agent-order.sh --check` (what
# package.sh runs) reports the share of the list found in the last size build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
order="$root/deploy/agent.order"

metadata=$(cargo metadata --format-version 1 --no-deps --locked)
target_dir=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["target_directory"])' "$metadata")

# --check: the link map agent/build.rs asks lld for (the newest, if cargo kept several build
# script folders), against the list.
if [ "${1:-}" = --check ]; then
  map=$(ls -t "$target_dir"/agent/build/vigie-agent-*/out/vigie-agent.map 2>/dev/null | head -n1 || true)
  [ -n "$map" ] || { echo "agent-order: no link map (build with --profile agent first)" >&2; exit 1; }
  python3 - "$order" "$map" <<'EOF'
import sys
wanted = [l.split('#')[0].strip() for l in open(sys.argv[1])]
wanted = [w for w in wanted if w]
# lld map, symbol lines: VMA LMA SIZE ALIGN NAME.
names = set()
for line in open(sys.argv[2], errors='replace'):
    parts = line.split()
    if len(parts) == 5:
        names.add(parts[4])
found = sum(1 for w in wanted if w in names)
share = found / len(wanted) if wanted else 0.0
print(f"agent-order: {found} of {len(wanted)} ordered symbols are in this build ({share:.0%})")
# Below half, most of the code the agent runs is scattered again: regenerate the list.
sys.exit(0 if share >= 0.5 else 1)
EOF
  exit
fi

seconds=${1:-150}
command -v valgrind >/dev/null || { echo "agent-order: needs valgrind" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== build: vigie-collector (release), vigie-agent (--profile agent, symbols kept)"
# VIGIE_ORDER_COLLECTOR: a collector already built (any recent one serves: init, serve, tokens).
collector=${VIGIE_ORDER_COLLECTOR:-}
if [ -z "$collector" ]; then
  cargo build --locked --release -p vigie-collector --bin vigie-collector
  collector="$target_dir/release/vigie-collector"
fi
# `cargo rustc` passes -C strip=none to the agent's final link only: the profile, and with it
# every crate's metadata hash (so every symbol name), stays the size build's.
cargo rustc --locked --profile agent -p vigie-agent --bin vigie-agent -- -C strip=none
install -m 0755 "$target_dir/agent/vigie-agent" "$work/vigie-agent"
agent="$work/vigie-agent"
# The next `cargo build --profile agent` relinks the stripped binary (its flags changed).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "agent-order: nothing listens on $1" >&2
  exit 1
}

echo "== collector on 127.0.0.1"
agent_port=$(free_port)
admin_port=$(free_port)
"$collector" init --data-dir "$work/collector" --agent-listen "127.0.0.1:$agent_port" \
  --admin-listen "127.0.0.1:$admin_port" --console-listen "127.0.0.1:$(free_port)" >/dev/null
"$collector" serve --data-dir "$work/collector" >"$work/collector.log" 2>&1 &
pids+=($!)
wait_port "$agent_port"
wait_port "$admin_port"
clinic=$("$collector" clinic add --data-dir "$work/collector" --name "Order clinic" --tier cmp1)
token=$("$collector" token create --data-dir "$work/collector" --clinic "$clinic")

echo "== enroll (not traced: its own process, once per machine)"
state="$work/state"
VIGIE_LOG=warn "$agent" enroll --token "$token" --role workstation --state-dir "$state" >/dev/null
# The default checks (what the packages install), one declared backup job, and the shortest
# snapshot interval so that many cycles fall in the run.
cat >"$work/agent.toml" <<EOF
[collection]
snapshot_interval = "10s"

[backup]
scan_interval = "10s"

[[backup.jobs]]
name = "nightly-nas"
every = "24h"
target = "NAS nas01"
EOF

echo "== vigie-agent run under callgrind for ${seconds}s"
valgrind --tool=callgrind --dump-instr=no --demangle=no --separate-threads=no \
  --callgrind-out-file="$work/callgrind.out" \
  "$agent" run --state-dir "$state" --config "$work/agent.toml" >"$work/agent.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")
sleep $((seconds / 3))
# A backup result in the spool, as a backup script's `vigie-agent exec` leaves it.
"$agent" backup-result --state-dir "$state" --config "$work/agent.toml" --job nightly-nas \
  --status success --started "$(date --iso-8601=seconds)" >/dev/null
sleep $((seconds - seconds / 3))
# Dump before SIGTERM: the shutdown path runs once, at the end, and stays out of the order.
callgrind_control --dump "$agent_pid" >/dev/null
for _ in $(seq 100); do
  compgen -G "$work/callgrind.out.*" >/dev/null && break
  sleep 0.2
done
kill -TERM "$agent_pid"
wait "$agent_pid" || true
dump=$(ls "$work"/callgrind.out.* | head -n1)
sent=$("$collector" agents --data-dir "$work/collector" --json \
  | python3 -c 'import json,sys; print(sum(a.get("reports", 0) for a in json.load(sys.stdin)))')
echo "   reports stored by the collector: $sent"

echo "== $order"
python3 - "$dump" "$agent" "$order" <<'EOF'
import re, sys
dump, binary, out = sys.argv[1:]
# Compressed callgrind names: "fn=(N) name" the first time, "fn=(N)" after; same for ob=;
# a name may first appear on a callee line (cfn=, cob=).
obs, fns, seen = {}, {}, []
current_ob = None
name_re = re.compile(r'^(c?)(ob|fn)=\((\d+)\)(?: (.*))?$')
for line in open(dump, errors='replace'):
    m = name_re.match(line.rstrip('\n'))
    if not m:
        continue
    callee, kind, ident, name = m.groups()
    table = obs if kind == 'ob' else fns
    if name is not None:
        table[ident] = name
    if callee:
        continue  # a callee that ran has its own fn= entry
    if kind == 'ob':
        current_ob = obs.get(ident)
    elif current_ob == binary:
        fname = re.sub(r"'\d+$", '', fns.get(ident, ''))
        # Valgrind's own names ("(below main)", "0x..." for code without a symbol) are not symbols.
        if fname and not fname.startswith(('0x', '(')) and fname not in seen:
            seen.append(fname)
with open(out, 'w') as f:
    f.write('# Functions `vigie-agent run` executes in a default configuration, hot first for\n'
            '# lld --symbol-ordering-file (agent/build.rs). Generated by deploy/agent-order.sh;\n'
            '# do not edit by hand.\n')
    for name in seen:
        f.write(name + '\n')
print(f"   {len(seen)} functions")
EOF
