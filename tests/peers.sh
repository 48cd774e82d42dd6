#!/usr/bin/env bash
# Installs the real peers the LAN-probe tests talk to on loopback (tests/e2e/lan.rs):
# net-snmp's snmpd (+ snmpget to check it), dcmtk's storescp/echoscu, openssl for the
# self-signed HTTPS certificate, and util-linux's setpriv (ICMP without privileges).
# Safe to run again: installs only what is missing, and runs `apt-get update` at most once.
set -euo pipefail

packages=(snmpd snmp dcmtk openssl util-linux iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing test peers: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for tool in snmpd snmpget storescp echoscu openssl setpriv ip; do
  command -v "$tool" >/dev/null || { echo "tests/peers.sh: $tool is still missing" >&2; exit 1; }
done
