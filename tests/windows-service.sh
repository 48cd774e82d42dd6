#!/usr/bin/env bash
# The Windows service under wine, against a real collector on 127.0.0.1:
#   1. `vigie-agent.exe service install` (no token) registers "VigieAgent": `sc query` shows it
#      stopped, `sc qc` shows automatic start, LocalSystem and `service run`;
#   2. started that way, the service refuses: wine's icacls is a dummy that cannot read access
#      lists, and the agent says so in its log file and event log (the refusal path, for real);
#   3. `service install --token T --unverified-state-access` enrolls once and starts it: the log
#      file shows it started and the collector lists the agent with reports;
#   4. `sc stop` stops it cleanly (log: stop requested, stopped); `service uninstall` removes
#      it (`sc query` no longer finds it, nor does the registry) and keeps the state; the event log calls are checked in
#      wine's eventlog debug channel (wine has no event viewer: ReportEventW only traces).
# What wine cannot do, so this does not test it (checked on Windows by hand, deploy/README.md):
# the NTFS access list icacls sets (a no-op under wine), delayed automatic start and recovery
# actions (wine's SCM stores neither: ChangeServiceConfig2 is accepted, `sc qfailure` absent),
# and system shutdown (wine never sends SERVICE_CONTROL_SHUTDOWN here).
#
# Needs: the Linux collector built (cargo build -p vigie-collector --bins), mingw-w64, wine.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
echo "== build vigie-agent.exe (debug) and vigie-collector"
cargo build -p vigie-agent --target x86_64-pc-windows-gnu --locked
cargo build --workspace --bins --locked
exe="$target_dir/x86_64-pc-windows-gnu/debug/vigie-agent.exe"
collector="$target_dir/debug/vigie-collector"

work=$(mktemp -d)
serve_pid=""
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null || true
  wineserver -k >/dev/null 2>&1 || true
  [ -n "${VIGIE_KEEP_WORK:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
cp "$exe" "$work/"
x86_64-w64-mingw32-gcc -shared -O2 -o "$work/bcryptprimitives.dll" tests/wine/bcryptprimitives.c -ladvapi32

log_file=/nonexistent
fail() {
  trap - ERR
  echo "FAIL: $*"
  echo "--- service log"; cat "$log_file" 2>/dev/null | tail -40 || true
  echo "--- wine debug (event log channel)"; tail -40 "$work/wine.err" || true
  exit 1
}

trap 'fail "a command failed at line $LINENO"' ERR

echo "== collector on 127.0.0.1"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
agent_port=$(port); admin_port=$(port)
data="$work/collector"
"$collector" init --data-dir "$data" --agent-listen "127.0.0.1:$agent_port" --admin-listen "127.0.0.1:$admin_port" >/dev/null
VIGIE_LOG=info "$collector" serve --data-dir "$data" >"$work/collector.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 300); do
  "$collector" clinic list --data-dir "$data" >/dev/null 2>&1 && break
  sleep 0.1
done
clinic=$("$collector" clinic add --data-dir "$data" --name "Cabinet de Salazie" --tier cmp3)
token=$("$collector" token create --data-dir "$data" --clinic "$clinic")

wine=$(command -v wine64 || true)
[ -n "$wine" ] || wine=/usr/lib/wine/wine64
# The eventlog channel: wine's ReportEventW traces each message (ERR for errors, WARN for
# warnings, TRACE otherwise) instead of storing it. services.exe, started by wineboot, passes
# this environment and stderr on to the service process.
export WINEPREFIX="$work/prefix" WINEDEBUG="-all,trace+eventlog,warn+eventlog,err+eventlog" \
  WINEDLLOVERRIDES="mscoree,mshtml=" VIGIE_LOG=info
# One persistent wineserver once the prefix is made: a single services.exe for the whole test
# (a new wineserver boots a new one, which auto-starts the service by itself).
"$wine" wineboot --init >/dev/null 2>"$work/wine.err" || true
wineserver -w
wineserver -p
log_file="$WINEPREFIX/drive_c/ProgramData/Vigie/logs/vigie-agent.log"
state_dir="$WINEPREFIX/drive_c/ProgramData/Vigie/state"
agent() { timeout 120 "$wine" "$work/vigie-agent.exe" "$@" 2>>"$work/wine.err"; }
# wine's sc now and then fails with no output right after another wine process: retry.
sc() {
  local out rc
  for _ in 1 2 3 4 5; do
    rc=0
    out=$(timeout 60 "$wine" sc "$@" 2>>"$work/wine.err") || rc=$?
    [ "$rc" -eq 0 ] && break
    sleep 0.5
  done
  tr -d '\r' <<<"$out"
  return "$rc"
}
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2
  shift 2
  for _ in $(seq 1 $((seconds * 4))); do
    "$@" && return 0
    sleep 0.25
  done
  fail "$what (after ${seconds}s)"
}
state_is() { local out; out=$(sc query VigieAgent) || return 1; grep -q "STATE.*$1" <<<"$out"; }

echo "== 1. service install, no token: registered, not started"
agent service install | tee "$work/install.out"
grep -q "not enrolled yet" "$work/install.out" || fail "install without token says the agent is not enrolled"
# Wine's SCM refuses these settings (ERROR_INVALID_LEVEL); the install names each and goes on.
for refused in "delayed automatic start" "the recovery actions" "recovery on error exits"; do
  grep -q "warning: cannot set $refused" "$work/wine.err" || echo "note: wine accepted: $refused"
done
listed() { sc query VigieAgent >"$work/query.out" && grep -q "SERVICE_NAME: VigieAgent" "$work/query.out"; }
wait_for 30 "sc query shows VigieAgent" listed
cat "$work/query.out"
state_is STOPPED || fail "not started before enrollment: $(sc query VigieAgent)"
# wine's sc has no qc: the SCM's registry key says the same.
timeout 60 "$wine" reg query 'HKLM\System\CurrentControlSet\Services\VigieAgent' 2>>"$work/wine.err" | tr -d '\r' | tee "$work/qc.out"
grep -qP "Start\s+REG_DWORD\s+0x2$" "$work/qc.out" || fail "automatic start (Start=2)"
grep -qP "ImagePath\s+REG_SZ\s+.*vigie-agent.exe service run --state-dir C:\\\\ProgramData\\\\Vigie\\\\state" "$work/qc.out" \
  || fail "the SCM starts 'service run' with the state folder"
grep -qP "ObjectName\s+REG_SZ\s+LocalSystem$" "$work/qc.out" || fail "runs as LocalSystem"
agent service status >"$work/status0.out"
grep -q "start: AutoStart" "$work/status0.out" || fail "service status: automatic start"
[ -f "$WINEPREFIX/drive_c/ProgramData/Vigie/agent.toml" ] || fail "agent.toml written"
agent check-config --config 'C:\ProgramData\Vigie\agent.toml' || fail "the installed agent.toml is valid"

echo "== 2. started without a readable access list: refused, said in the log and event log"
sc start VigieAgent >/dev/null || true
wait_for 60 "the refusal in the log" grep -q "cannot check who can read" "$log_file"
grep -q 'icacls \\"C:\\\\ProgramData\\\\Vigie\\\\state\\" /inheritance:r' "$log_file" \
  || grep -q 'icacls "C:\\ProgramData\\Vigie\\state" /inheritance:r' "$log_file" \
  || fail "the refusal says how to fix it"
wait_for 30 "stopped after the refusal" state_is STOPPED
grep -q "Vigie Agent stopped: .*cannot check who can read" "$work/wine.err" \
  || fail "the fatal error goes to the event log (ReportEventW)"

echo "== 3. install again with a token: enrolled once, started, reporting"
agent service install --token "$token" --role server --unverified-state-access | tee "$work/install2.out"
grep -q "enrolled agent" "$work/install2.out" || fail "enrolled with the token"
[ -f "$state_dir/agent.json" ] || fail "agent.json in C:\\ProgramData\\Vigie\\state"
wait_for 60 "running" state_is RUNNING
wait_for 60 "'service started' in the log" grep -q "service started" "$log_file"
wait_for 60 "'agent running' in the log" grep -q "agent running" "$log_file"
grep -q "Vigie Agent started" "$work/wine.err" || fail "start in the event log"
grep -q "was not verified" "$work/wine.err" || fail "the unverified access list is a warning in the event log"
reports() { "$collector" agents --data-dir "$data" --json | python3 -c 'import json,sys; a=json.load(sys.stdin); print(a[0]["reports"] if a else 0)'; }
has_reports() { [ "$(reports)" -gt 0 ]; }
wait_for 90 "the collector stores the service's reports" has_reports
agent service install --token "$token" --unverified-state-access | tee "$work/install3.out"
grep -q "already enrolled" "$work/install3.out" || fail "a second install does not enroll again"

echo "== 4. sc stop: clean stop; service uninstall: removed, state kept"
wait_for 30 "running again after the reinstall" state_is RUNNING
sc stop VigieAgent >/dev/null || true
wait_for 30 "stopped on sc stop" state_is STOPPED
grep -q "stop requested by the service control manager" "$log_file" || fail "the stop request is logged"
grep -q "stopping" "$log_file" || fail "the run loop stopped"
grep -q "service stopped" "$log_file" || fail "stopped in the log"
grep -q "Vigie Agent stopped$" "$work/wine.err" || grep -q '"Vigie Agent stopped"' "$work/wine.err" \
  || fail "stop in the event log"
agent service status | tee "$work/status.out"
grep -q "state: Stopped" "$work/status.out" || fail "service status says stopped"
agent service uninstall | tee "$work/uninstall.out"
if sc query VigieAgent >"$work/query2.out"; then cat "$work/query2.out"; fail "sc query still finds VigieAgent"; fi
if timeout 60 "$wine" reg query 'HKLM\System\CurrentControlSet\Services\VigieAgent' >/dev/null 2>&1; then
  fail "the service's registry key is gone"
fi
[ -f "$state_dir/agent.json" ] || fail "uninstall keeps the enrollment"
echo "== 5. service uninstall --purge deletes the state"
agent service uninstall --purge >/dev/null
[ ! -e "$state_dir" ] || fail "purge removes the state"
echo "windows service test OK"
