//! The agents MSPs already deploy, run beside Vigie's for comparison: Prometheus
//! `node_exporter` (Debian's `prometheus-node-exporter`) and Zabbix `zabbix_agentd` and
//! `zabbix_agent2`, each on a loopback high port with a minimal configuration, and the tiny
//! clients that poll them: an HTTP/1.1 GET of `/metrics`, and the Zabbix passive protocol
//! (`ZBXD\x01`, 8-byte little-endian length, the item key; one connection per item).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::process::{self, Daemon};

pub const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
pub const ZABBIX_AGENTD: &str = "/usr/sbin/zabbix_agentd";
pub const ZABBIX_AGENT2: &str = "/usr/sbin/zabbix_agent2";

/// The items of one Zabbix poll: roughly what Vigie's system snapshot covers.
pub const ZABBIX_ITEMS: [&str; 5] = [
    "system.uptime",
    "system.cpu.load[all,avg1]",
    "vm.memory.size[available]",
    "vm.memory.size[total]",
    "vfs.fs.size[/,pfree]",
];

const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    NodeExporter,
    ZabbixAgentd,
    ZabbixAgent2,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::NodeExporter, Kind::ZabbixAgentd, Kind::ZabbixAgent2];

    pub fn name(self) -> &'static str {
        match self {
            Kind::NodeExporter => "node_exporter",
            Kind::ZabbixAgentd => "zabbix_agentd",
            Kind::ZabbixAgent2 => "zabbix_agent2",
        }
    }

    pub fn binary(self) -> &'static Path {
        Path::new(match self {
            Kind::NodeExporter => NODE_EXPORTER,
            Kind::ZabbixAgentd => ZABBIX_AGENTD,
            Kind::ZabbixAgent2 => ZABBIX_AGENT2,
        })
    }

    /// What one poll is, for the table.
    pub fn poll_unit(self) -> &'static str {
        match self {
            Kind::NodeExporter => "scrape of /metrics",
            Kind::ZabbixAgentd | Kind::ZabbixAgent2 => "5-item passive poll",
        }
    }
}

/// One running peer agent.
#[derive(Debug)]
pub struct Peer {
    pub kind: Kind,
    pub addr: SocketAddr,
    pub daemon: Daemon,
}

impl Peer {
    /// Starts `kind` in `dir` on a free loopback port and waits until it answers.
    pub fn start(kind: Kind, dir: &Path) -> Result<Peer> {
        if !kind.binary().exists() {
            bail!(
                "{} is not installed (run `bash bench/setup.sh`)",
                kind.binary().display()
            );
        }
        let port = process::free_low_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let log = dir.join(format!("{}.log", kind.name()));
        let mut cmd = Command::new(kind.binary());
        match kind {
            Kind::NodeExporter => {
                cmd.arg(format!("--web.listen-address={addr}"));
            }
            Kind::ZabbixAgentd => {
                let conf = write_conf(dir, kind, port, "AllowRoot=1\nStartAgents=3\n")?;
                cmd.arg("-f").arg("-c").arg(conf);
            }
            Kind::ZabbixAgent2 => {
                let socket = dir.join("zabbix_agent2.sock");
                let extra = format!("ControlSocket={}\n", socket.display());
                let conf = write_conf(dir, kind, port, &extra)?;
                cmd.arg("-c").arg(conf);
            }
        }
        let mut daemon = Daemon::spawn(kind.name(), &mut cmd, &log)?;
        if let Err(e) = process::wait_for_port(addr, Duration::from_secs(20)) {
            daemon.check_alive()?;
            return Err(e);
        }
        let mut peer = Peer { kind, addr, daemon };
        // The first poll proves the configuration works (and warms caches, as a real
        // monitoring server's first scrape would).
        peer.poll()
            .with_context(|| format!("first poll of {}", kind.name()))?;
        Ok(peer)
    }

    /// One poll: a `/metrics` scrape, or the five Zabbix items. Returns bytes received.
    pub fn poll(&mut self) -> Result<usize> {
        match self.kind {
            Kind::NodeExporter => scrape(self.addr),
            Kind::ZabbixAgentd | Kind::ZabbixAgent2 => {
                let mut total = 0;
                for key in ZABBIX_ITEMS {
                    total += zabbix_get(self.addr, key)?.len();
                }
                Ok(total)
            }
        }
    }
}

fn write_conf(dir: &Path, kind: Kind, port: u16, extra: &str) -> Result<PathBuf> {
    let path = dir.join(format!("{}.conf", kind.name()));
    let text = format!(
        "# Minimal configuration written by vigie-bench: passive checks on loopback only.\n\
         PidFile={}\nLogType=console\nServer=127.0.0.1\nListenIP=127.0.0.1\nListenPort={port}\n\
         Hostname=vigie-bench\n{extra}",
        dir.join(format!("{}.pid", kind.name())).display()
    );
    std::fs::write(&path, text)?;
    Ok(path)
}

/// HTTP/1.1 GET /metrics (no compression: the cheapest scrape for node_exporter).
fn scrape(addr: SocketAddr) -> Result<usize> {
    let mut tcp = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
    write!(
        tcp,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: vigie-bench\r\n\
         Accept: text/plain;version=0.0.4\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = Vec::new();
    tcp.read_to_end(&mut body)?;
    if !body.starts_with(b"HTTP/1.1 200") {
        bail!(
            "node_exporter answered {:?}",
            String::from_utf8_lossy(&body[..body.len().min(80)])
        );
    }
    Ok(body.len())
}

/// One Zabbix passive check: returns the value, fails on ZBX_NOTSUPPORTED.
pub fn zabbix_get(addr: SocketAddr, key: &str) -> Result<String> {
    let mut tcp = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut request = Vec::with_capacity(13 + key.len());
    request.extend_from_slice(b"ZBXD\x01");
    request.extend_from_slice(&(key.len() as u64).to_le_bytes());
    request.extend_from_slice(key.as_bytes());
    tcp.write_all(&request)?;
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer)?;
    let value = parse_zabbix(&answer).with_context(|| format!("item {key}"))?;
    if value.starts_with("ZBX_NOTSUPPORTED") {
        bail!("item {key} not supported: {value}");
    }
    Ok(value)
}

fn parse_zabbix(answer: &[u8]) -> Result<String> {
    let Some(rest) = answer.strip_prefix(b"ZBXD\x01") else {
        bail!("no ZBXD header in a {}-byte answer", answer.len());
    };
    // Zabbix 4+: data length (4 bytes, little endian), then 4 reserved bytes (zabbix_agent2
    // writes the uncompressed length there).
    let Some((header, body)) = rest.split_first_chunk::<8>() else {
        bail!("truncated header");
    };
    let [a, b, c, d, ..] = *header;
    let len = usize::try_from(u32::from_le_bytes([a, b, c, d]))?;
    let Some(value) = body.get(..len) else {
        bail!("answer shorter than its length {len}");
    };
    Ok(String::from_utf8_lossy(value).replace('\0', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zabbix_answers_parse_and_bad_ones_fail() {
        let mut ok = b"ZBXD\x01".to_vec();
        ok.extend_from_slice(&4u64.to_le_bytes());
        ok.extend_from_slice(b"1234");
        assert_eq!(parse_zabbix(&ok).expect("parses"), "1234");
        let mut agent2 = b"ZBXD\x01\x02\0\0\0\x02\0\0\0".to_vec();
        agent2.extend_from_slice(b"42");
        assert_eq!(parse_zabbix(&agent2).expect("parses"), "42");
        assert!(parse_zabbix(b"nope").is_err());
        assert!(parse_zabbix(b"ZBXD\x01\x09\0\0\0\0\0\0\0abc").is_err());
        assert!(parse_zabbix(b"ZBXD\x01\x01").is_err());
    }
}
