#!/usr/bin/env bash
# Windows smoke test under wine: builds vigie-agent.exe with mingw-w64, runs
# `vigie-agent.exe report --json`, and checks that it prints a JSON array in which what wine
# lacks (PowerShell, Windows Update, Defender...) shows up as check_failure facts, not a crash.
#
# Needs: rustup target x86_64-pc-windows-gnu, gcc-mingw-w64-x86-64, wine + wine64 (Debian).
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
echo "== build vigie-agent.exe"
cargo build -p vigie-agent --target x86_64-pc-windows-gnu --locked
exe="$target_dir/x86_64-pc-windows-gnu/debug/vigie-agent.exe"

work=$(mktemp -d)
trap 'wineserver -k >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
cp "$exe" "$work/"
echo "== build the bcryptprimitives.dll shim (wine 8 lacks it; see tests/wine/)"
x86_64-w64-mingw32-gcc -shared -O2 -o "$work/bcryptprimitives.dll" tests/wine/bcryptprimitives.c -ladvapi32

wine=$(command -v wine64 || true)
[ -n "$wine" ] || wine=/usr/lib/wine/wine64
export WINEPREFIX="$work/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" VIGIE_LOG=warn
echo "== prepare a throwaway wine prefix"
"$wine" wineboot --init >/dev/null 2>&1 || true
echo "== wine vigie-agent.exe report --json"
started=$(date +%s)
set +e
timeout 600 "$wine" "$work/vigie-agent.exe" report --json >"$work/out.json" 2>"$work/err.txt"
rc=$?
set -e
echo "exit $rc after $(( $(date +%s) - started ))s"
if [ "$rc" -ne 0 ]; then
  echo "vigie-agent.exe failed under wine"; cat "$work/err.txt"; head -c 4000 "$work/out.json"; exit 1
fi
python3 - "$work/out.json" <<'PY'
import json, sys
facts = json.load(open(sys.argv[1], encoding="utf-8"))
assert isinstance(facts, list) and facts, "a non-empty JSON array"
kinds = [f["kind"] for f in facts]
failures = {f["check_failure"]["check"]: f["check_failure"]["error"] for f in facts if f["kind"] == "check_failure"}
print("kinds:", kinds)
for check, error in sorted(failures.items()):
    print(f"  check_failure {check}: {error}")
assert "system_snapshot" in kinds, "the system snapshot"
# Wine has no PowerShell: the Windows sources report why, each on its own.
for check in ["os_updates.windows_update", "antivirus.defender", "antivirus.security_center"]:
    assert check in failures, f"a failure fact for {check}"
assert "antivirus" not in kinds, "no antivirus verdict when every source failed"
print("windows smoke test OK")
PY
