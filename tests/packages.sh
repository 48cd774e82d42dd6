#!/usr/bin/env bash
# The packages, on this (root, throwaway CI) machine:
#   - `vigie-agent service install|uninstall` on Linux writes, enables and removes its own unit;
#   - deploy/package.sh builds the .debs (from the debug builds), the MSI and SHA256SUMS;
#   - lintian passes (errors and warnings; overrides explained in deploy/debian/*/lintian-overrides);
#   - the MSI's tables: the service, its control events, the custom actions, the properties;
#   - dpkg -i: files, owners, modes, the system user, the units enabled and verified;
#     an upgrade keeps an edited conffile and the state; remove keeps the state; purge removes it.
# Leaves the machine as it found it (both packages purged; the "vigie" user stays, as in Debian).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "FAIL: $*"; exit 1; }
mode_owner() { stat -c '%a %U:%G' "$1"; }
expect_mode() { # expect_mode PATH "MODE USER:GROUP"
  [ -e "$1" ] || fail "$1 is missing"
  [ "$(mode_owner "$1")" = "$2" ] || fail "$1 is $(mode_owner "$1"), expected $2"
}
purge_all() { dpkg -P vigie-agent vigie-collector >/dev/null 2>&1 || true; }
for p in vigie-agent vigie-collector; do
  if dpkg -s "$p" >/dev/null 2>&1; then fail "$p is already installed here: this test installs and purges it"; fi
done
trap purge_all EXIT

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
version=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print([p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="vigie-agent"][0])')

echo "== vigie-agent service install/uninstall (Linux, its own unit)"
work=$(mktemp -d)
trap 'rm -rf "$work"; rm -f /etc/systemd/system/vigie-agent.service; purge_all' EXIT
cargo build --workspace --bins --locked
install -m 0755 "$target_dir/debug/vigie-agent" "$work/vigie-agent"
mkdir -m 0755 "$work/state"
"$work/vigie-agent" service install --state-dir "$work/state" --config "$work/agent.toml" >"$work/install.out" 2>&1 \
  && fail "install with a missing --config file succeeds"
"$work/vigie-agent" service install --state-dir "$work/state" | tee "$work/install.out"
[ "$(stat -c %a "$work/state")" = 700 ] || fail "service install narrows the state directory to 0700"
grep -q "not enrolled yet" "$work/install.out" || fail "says the agent is not enrolled"
unit=/etc/systemd/system/vigie-agent.service
grep -q "^ExecStart=$work/vigie-agent run --state-dir $work/state --config /etc/vigie/agent.toml$" "$unit" \
  || { cat "$unit"; fail "the unit runs this binary with these paths"; }
grep -q "^ReadWritePaths=$work/state$" "$unit" || fail "a state dir outside /var/lib is writable"
[ -L /etc/systemd/system/multi-user.target.wants/vigie-agent.service ] || fail "the unit is enabled"
systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit"
grep -q "is-enabled: enabled" <<<"$("$work/vigie-agent" service status)" || fail "service status: enabled"
chmod 0755 "$work/state"
"$work/vigie-agent" run --state-dir "$work/state" >"$work/run.out" 2>&1 && fail "run with a 0755 state dir"
grep -q "chmod 700 $work/state" "$work/run.out" || { cat "$work/run.out"; fail "the refusal says how to fix it"; }
"$work/vigie-agent" service uninstall --state-dir "$work/state"
[ ! -e "$unit" ] || fail "uninstall removes the unit it wrote"
[ ! -e /etc/systemd/system/multi-user.target.wants/vigie-agent.service ] || fail "uninstall disables the unit"
[ -d "$work/state" ] || fail "uninstall keeps the state"
rm -f /etc/vigie/agent.toml
rmdir /etc/vigie 2>/dev/null || true

echo "== deploy/package.sh (debug builds)"
started=$(date +%s)
VIGIE_PACKAGE_PROFILE=debug bash deploy/package.sh
echo "package.sh took $(( $(date +%s) - started ))s"
out="$target_dir/packages"
agent_deb="$out/vigie-agent_${version}_amd64.deb"
collector_deb="$out/vigie-collector_${version}_amd64.deb"
msi="$out/vigie-agent-$version-x64.msi"
(cd "$out" && sha256sum --check --strict SHA256SUMS) || fail "SHA256SUMS"
for f in "$agent_deb" "$collector_deb" "$msi" "$out/install.ps1"; do
  grep -q " $(basename "$f")$" "$out/SHA256SUMS" || fail "$(basename "$f") in SHA256SUMS"
done

echo "== lintian"
lintian --fail-on error,warning --tag-display-limit 0 "$agent_deb" "$collector_deb" || fail "lintian"

echo "== MSI tables (msiinfo)"
table() { msiinfo export "$msi" "$1" | tr -d '\r'; }
grep -P '^AgentService\tVigieAgent\tVigie Agent\t16\t2\t1\t\t\tLocalSystem\t\tservice run --state-dir "\[CommonAppDataFolder\]Vigie\\state" --config "\[CommonAppDataFolder\]Vigie\\agent.toml" --log-dir "\[CommonAppDataFolder\]Vigie\\logs"\tAgentExe\t' <<<"$(table ServiceInstall)" \
  || fail "ServiceInstall: VigieAgent, own process (16), automatic (2), LocalSystem, 'service run'"
# 0x2 stop at install, 0x20 stop at uninstall, 0x80 delete at uninstall; wait.
table ServiceControl | grep -P "^AgentServiceControl\tVigieAgent\t162\t\t1\tAgentExe$" || fail "ServiceControl"
grep -P '^AgentSetup\t3090\tAgentExe\tservice setup --token "\[TOKEN\]" --role \[ROLE\]' <<<"$(table CustomAction)" \
  || fail "the setup custom action passes TOKEN and ROLE (deferred, not impersonated: 3090)"
table CustomAction | grep -P '^AgentPurge\t\d+\tAgentExe\tservice uninstall --purge' || fail "purge action"
table InstallExecuteSequence | grep -P '^AgentSetup\tNOT REMOVE="ALL"\t' || fail "setup on install/upgrade"
grep -P '^AgentPurge\tREMOVE="ALL" AND NOT UPGRADINGPRODUCTCODE AND PURGE="1"\t' <<<"$(table InstallExecuteSequence)" \
  || fail "purge only on a real uninstall with PURGE=1"
table Property | grep -P "^ROLE\tworkstation$" || fail "ROLE defaults to workstation"
table Property | grep -P "^PURGE\t0$" || fail "PURGE defaults to 0"
table Property | grep -P "^ProductVersion\t$version$" || fail "ProductVersion"
grep -q "WIX_UPGRADE_DETECTED" <<<"$(table Upgrade)" || fail "major upgrade"
grep -q "vigie-agent.exe" <<<"$(table File)" || fail "the exe is in the MSI"

echo "== dpkg -i: files, owners, modes, user, units"
dpkg -i "$agent_deb" "$collector_deb"
expect_mode /usr/bin/vigie-agent "755 root:root"
expect_mode /usr/bin/vigie-collector "755 root:root"
expect_mode /var/lib/vigie-agent "700 root:root"
expect_mode /etc/vigie/agent.toml "644 root:root"
expect_mode /lib/systemd/system/vigie-agent.service "644 root:root"
expect_mode /lib/systemd/system/vigie-collector.service "644 root:root"
expect_mode /var/lib/vigie-collector "700 vigie:vigie"
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd vigie) || fail "the vigie user exists"
[ "$uid" -lt 1000 ] || fail "vigie is a system user (uid $uid)"
[ "$home" = /var/lib/vigie-collector ] || fail "vigie's home is its data dir ($home)"
[ "$shell" = /usr/sbin/nologin ] || fail "vigie cannot log in ($shell)"
for unit in vigie-agent vigie-collector; do
  [ -L "/etc/systemd/system/multi-user.target.wants/$unit.service" ] || fail "$unit enabled"
  systemd-analyze verify "/lib/systemd/system/$unit.service" || fail "systemd-analyze verify $unit"
done
grep -q "^ExecStart=/usr/bin/vigie-agent run " /lib/systemd/system/vigie-agent.service || fail "agent unit runs /usr/bin"
grep -q "/etc/vigie/agent.toml" <<<"$(dpkg-query -W -f='${Conffiles}\n' vigie-agent)" || fail "agent.toml is a conffile"
vigie-agent check-config --config /etc/vigie/agent.toml || fail "the packaged config is valid"
grep -q "is-enabled: enabled" <<<"$(vigie-agent service status)" || fail "service status after dpkg -i"

echo "== upgrade (dpkg -i again): edited conffile and state kept"
echo "# edited by the technician" >>/etc/vigie/agent.toml
mkdir -p /var/lib/vigie-agent/outbox && echo queued >/var/lib/vigie-agent/outbox/marker
echo data >/var/lib/vigie-collector/marker
dpkg -i --force-confold "$agent_deb" "$collector_deb"
grep -q "edited by the technician" /etc/vigie/agent.toml || fail "upgrade keeps the edited conffile"
[ -f /var/lib/vigie-agent/outbox/marker ] || fail "upgrade keeps the agent state"
expect_mode /var/lib/vigie-agent "700 root:root"

echo "== remove keeps state and config; purge removes them"
dpkg -r vigie-agent vigie-collector
[ ! -e /usr/bin/vigie-agent ] || fail "remove deletes the binary"
[ -f /var/lib/vigie-agent/outbox/marker ] || fail "remove keeps the agent state"
[ -f /var/lib/vigie-collector/marker ] || fail "remove keeps the collector data"
[ -f /etc/vigie/agent.toml ] || fail "remove keeps the conffile"
dpkg -P vigie-agent vigie-collector
[ ! -e /var/lib/vigie-agent ] || fail "purge removes the agent state"
[ ! -e /var/lib/vigie-collector ] || fail "purge removes the collector data"
[ ! -e /etc/vigie/agent.toml ] || fail "purge removes the conffile"
[ ! -e /etc/systemd/system/multi-user.target.wants/vigie-agent.service ] || fail "purge removes the enablement"
echo "packages test OK"
