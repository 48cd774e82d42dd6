#!/usr/bin/env bash
# Installs the agents MSPs already deploy, for vigie-bench to run beside Vigie's own:
# Prometheus node_exporter, Zabbix zabbix_agentd and zabbix_agent2 (Debian's packages), and
# linux-perf for profiling. The packages start system services on install; they are stopped and
# disabled here, because vigie-bench runs its own instances on loopback high ports with minimal
# configurations. Safe to run again.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends \
    prometheus-node-exporter zabbix-agent zabbix-agent2 linux-perf

# The packages' own services would compete with the benchmark's instances (same binaries,
# default ports): stop and disable them, whether systemd runs here or not.
for unit in prometheus-node-exporter zabbix-agent zabbix-agent2; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
        $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true
    fi
    if command -v service >/dev/null 2>&1; then
        $SUDO service "$unit" stop >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null 2>&1; then
        $SUDO update-rc.d "$unit" disable >/dev/null 2>&1 || true
    fi
done
# Without an init system the packages' daemons may still run: stop exactly those (by their
# pid files), never anything else.
for pidfile in /run/zabbix/zabbix_agentd.pid /run/zabbix/zabbix_agent2.pid \
    /run/prometheus-node-exporter.pid /run/prometheus/prometheus-node-exporter.pid; do
    if [ -s "$pidfile" ]; then
        $SUDO kill "$(cat "$pidfile")" 2>/dev/null || true
    fi
done

for bin in prometheus-node-exporter zabbix_agentd zabbix_agent2; do
    path=$(command -v "$bin" || true)
    [ -n "$path" ] || path=$(ls /usr/sbin/$bin /usr/bin/$bin 2>/dev/null | head -n1 || true)
    echo "setup: $bin -> ${path:-MISSING}"
done
# perf exits 0 even when the counter is "<not supported>" (virtual machines): read its output.
if perf stat -e instructions true 2>&1 | grep -q "not supported\|not counted"; then
    echo "setup: perf samples (perf record) but has no instruction counter here; for counts use valgrind --tool=callgrind"
else
    echo "setup: perf counts instructions here"
fi
