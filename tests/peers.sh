#!/usr/bin/env bash
# Installs the real peers the LAN-probe tests talk to on loopback (tests/e2e/lan.rs):
# net-snmp's snmpd (+ snmpget), dcmtk's dcmqrscp (a PACS that checks the called AE title) and
# echoscu, openssl and python3 for the self-signed HTTPS server, util-linux's setpriv (ICMP
# without privileges) and iproute2 (`ip neigh`).
# Safe to run again: installs only what is missing, and runs `apt-get update` at most once.
set -euo pipefail

packages=(snmpd snmp dcmtk openssl python3 util-linux iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing test peers: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for tool in snmpd snmpget dcmqrscp echoscu openssl python3 setpriv ip; do
  command -v "$tool" >/dev/null || { echo "tests/peers.sh: $tool is still missing" >&2; exit 1; }
done
