#!/usr/bin/env bash
# Installs what the escalation tests talk to on loopback (tests/e2e/escalation.rs): Debian's
# python3-aiosmtpd (a real SMTP server) and python3 for tests/servers/ (the GLPI API mock and
# the webhook receiver, standard library only).
# Safe to run again: installs only what is missing, and runs `apt-get update` at most once.
set -euo pipefail

packages=(python3 python3-aiosmtpd)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing escalation test servers: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's interpreter, which the tests run (a python3 earlier in PATH may lack the module).
/usr/bin/python3 -c 'import aiosmtpd' || { echo "tests/servers.sh: python3-aiosmtpd is still missing" >&2; exit 1; }
