#!/usr/bin/env bash
# Runs every Vigie test on a fresh Debian machine: installs what the tests need, checks
# formatting and lints, builds the real binaries, runs unit and end-to-end tests, and checks
# that the agent compiles for Windows.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
export CARGO_INCREMENTAL=0

# faketime, fiu-utils: fault injection; restic, borgbackup, rsync: the backup e2e tests run
# them for real through `vigie-agent exec`; dpkg-dev, lintian, wixl, msitools, systemd: packages.
apt_packages=(gcc-mingw-w64-x86-64 wine wine64 faketime fiu-utils restic borgbackup rsync dpkg-dev lintian wixl msitools systemd poppler-utils chromium chromium-driver)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add x86_64-pc-windows-gnu >/dev/null

echo "== test peers (snmpd, dcmtk, ...)"
bash tests/peers.sh

echo "== escalation test servers (python3-aiosmtpd)"
bash tests/servers.sh

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== Windows: the agent compiles for x86_64-pc-windows-gnu"
cargo check -p vigie-agent --target x86_64-pc-windows-gnu --locked

echo "== Windows: vigie-agent.exe report --json under wine"
bash tests/windows-smoke.sh

echo "== build the binaries the end-to-end tests run"
cargo build --workspace --bins --locked

echo "== Windows service under wine: install, refusal, enroll once, run, sc stop, uninstall"
bash tests/windows-service.sh

echo "== packages: deploy/package.sh, lintian, MSI tables, dpkg -i / upgrade / remove / purge"
bash tests/packages.sh

echo "== tests"
cargo test --workspace --locked
