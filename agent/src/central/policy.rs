//! What the collector's configuration may make this agent do, and whether a version can run
//! on this machine. Central configuration only selects built-in checks, paths and targets:
//! the format has no command (wrapped runs are `vigie-agent exec`, set up on the machine),
//! the sections of how the agent reaches the collector are local only (`config::Source`),
//! and a target outside the private ranges, the loopback, link-local addresses and this
//! machine's own subnets is refused unless the local `[central]` allows its network.
//! Whoever takes over a collector must not gain a window into the clinic's PCs from here.
//!
//! ```toml
//! [central]                                  # in the local agent.toml only
//! enabled = true                             # false: ignore the collector's configuration
//! allowed_networks = ["203.0.113.0/28"]      # targets the collector may name beyond the LAN
//! ```

use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;

use serde::Deserialize;

use crate::config::Config;
use crate::facts::lan::{Probe, Target};

/// `[central]`, local only: what this agent accepts from the collector.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CentralConfig {
    /// Follow the collector's configuration (default). `false` runs the local file alone.
    pub enabled: bool,
    /// Networks (`ADDR/PREFIX`) the collector may name targets in beyond the private ranges.
    pub allowed_networks: Vec<String>,
}

impl Default for CentralConfig {
    fn default() -> Self {
        CentralConfig {
            enabled: true,
            allowed_networks: Vec::new(),
        }
    }
}

impl CentralConfig {
    pub fn validate(&self) -> Vec<String> {
        self.allowed_networks
            .iter()
            .enumerate()
            .filter_map(|(i, text)| {
                Network::parse(text).err().map(|e| {
                    format!("central.allowed_networks[{i}]: {text:?} {e} (write e.g. \"203.0.113.0/28\")")
                })
            })
            .collect()
    }

    fn networks(&self) -> Vec<Network> {
        self.allowed_networks
            .iter()
            .filter_map(|t| Network::parse(t).ok())
            .collect()
    }
}

/// An address and a prefix length: `192.168.1.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Network {
    pub fn parse(text: &str) -> Result<Network, &'static str> {
        let (addr, prefix) = text.trim().split_once('/').ok_or("has no /PREFIX")?;
        let addr: IpAddr = addr.parse().map_err(|_| "is not an IP address")?;
        let prefix: u8 = prefix.parse().map_err(|_| "has no valid prefix length")?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err("has a prefix longer than the address");
        }
        Ok(Network { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u32) {
            match ip {
                IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
                IpAddr::V6(v6) => (u128::from(v6), 128),
            }
        };
        let ((net, width), (addr, addr_width)) = (bits(self.addr), bits(ip));
        if width != addr_width {
            return false;
        }
        let host_bits = width - u32::from(self.prefix);
        if host_bits >= width {
            return true;
        }
        (net >> host_bits) == (addr >> host_bits)
    }
}

/// Private (RFC 1918, IPv6 unique-local), loopback and link-local addresses.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// The networks of this machine's own interfaces (none when the OS will not say: only the
/// private ranges and the local allowances are then accepted).
pub fn own_subnets() -> Vec<Network> {
    let networks = match sysinfo::Networks::new_with_refreshed_list() {
        Ok(networks) => networks,
        Err(error) => {
            tracing::warn!(%error, "cannot list this machine's networks");
            return Vec::new();
        }
    };
    networks
        .values()
        .flat_map(|data| data.ip_networks().iter())
        .map(|n| Network {
            addr: n.addr,
            prefix: n.prefix,
        })
        .collect()
}

/// What a target address may be, here.
#[derive(Debug, Clone, Default)]
pub struct AllowedTargets {
    /// This machine's subnets and the local `[central] allowed_networks`.
    pub networks: Vec<Network>,
}

impl AllowedTargets {
    /// For this machine and its local file.
    pub fn here(local: &Config) -> Self {
        let mut networks = own_subnets();
        networks.extend(local.central.networks());
        AllowedTargets { networks }
    }

    fn allows(&self, ip: IpAddr) -> bool {
        is_private(ip) || self.networks.iter().any(|n| n.contains(ip))
    }

    /// Why `host` may not be probed on the collector's word, if it may not: every address it
    /// names (or resolves to, now) must be allowed.
    pub fn refusal(&self, host: &str) -> Option<String> {
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => match (host, 0).to_socket_addrs() {
                Ok(addrs) => addrs.map(|a| a.ip()).collect(),
                Err(e) => return Some(format!("{host} does not resolve here ({e})")),
            },
        };
        if addrs.is_empty() {
            return Some(format!("{host} does not resolve here"));
        }
        addrs.iter().find(|ip| !self.allows(**ip)).map(|ip| {
            format!(
                "{host} ({ip}) is outside the private ranges and this machine's subnets \
                 (allow its network in the local [central] allowed_networks)"
            )
        })
    }
}

/// Why this machine cannot run what the collector configured (`central`, the collector's text
/// parsed alone), if so: a target it may not probe, a file that does not exist here, a source
/// this OS lacks. Any reason refuses the whole version.
pub fn refusals(central: &Config, allowed: &AllowedTargets) -> Vec<String> {
    let mut reasons = Vec::new();
    for target in &central.lan.targets {
        reasons.extend(target_refusals(target, allowed));
    }
    for job in &central.backup.jobs {
        let source = job.source.name();
        if WINDOWS_ONLY_SOURCES.contains(&source) && !cfg!(windows) {
            reasons.push(format!(
                "backup job {:?}: source {source} exists only on Windows",
                job.name
            ));
        }
        if let Some(path) = &job.path
            && !Path::new(path).exists()
        {
            reasons.push(format!(
                "backup job {:?}: {} does not exist on this machine",
                job.name,
                path.display()
            ));
        }
    }
    reasons
}

/// Backup sources read from Windows event logs.
const WINDOWS_ONLY_SOURCES: &[&str] = &["windows_server_backup", "veeam"];

fn target_refusals(target: &Target, allowed: &AllowedTargets) -> Vec<String> {
    let mut hosts = vec![target.address.clone()];
    for probe in &target.probes {
        if let Probe::Http { url } = probe
            && let Ok(url) = crate::facts::lan::http::Url::parse(url)
        {
            hosts.push(url.host);
        }
    }
    hosts.sort();
    hosts.dedup();
    hosts
        .iter()
        .filter_map(|host| allowed.refusal(host))
        .map(|why| format!("LAN target {:?}: {why}", target.name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, parse_text};

    fn central(text: &str) -> Config {
        parse_text(text, Source::Central, &[]).expect("valid").0
    }

    fn target(address: &str) -> String {
        format!(
            "[[lan.targets]]\nname = \"t\"\nkind = \"other\"\naddress = \"{address}\"\nprobes = [{{ type = \"icmp\" }}]\n"
        )
    }

    #[test]
    fn private_ranges_table() {
        let check = |ip: &str, private: bool| {
            assert_eq!(is_private(ip.parse().expect("ip")), private, "{ip}");
        };
        check("10.1.2.3", true);
        check("172.16.0.1", true);
        check("172.32.0.1", false);
        check("192.168.1.20", true);
        check("169.254.10.1", true);
        check("127.0.0.1", true);
        check("::1", true);
        check("fe80::1", true);
        check("fd12::1", true);
        check("::ffff:192.168.1.1", true);
        check("8.8.8.8", false);
        check("2001:db8::1", false);
        check("::ffff:8.8.8.8", false);
    }

    #[test]
    fn networks_parse_and_contain() {
        let net = Network::parse("203.0.113.0/28").expect("valid");
        assert!(net.contains("203.0.113.15".parse().expect("ip")));
        assert!(!net.contains("203.0.113.16".parse().expect("ip")));
        assert!(
            Network::parse("0.0.0.0/0")
                .expect("valid")
                .contains("8.8.8.8".parse().expect("ip"))
        );
        assert!(Network::parse("10.0.0.0").is_err());
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("nas/24").is_err());
    }

    #[test]
    fn a_public_target_is_refused_unless_the_local_file_allows_its_network() {
        let config = central(&target("8.8.8.8"));
        let nothing = AllowedTargets::default();
        let reasons = refusals(&config, &nothing);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(
            reasons[0].contains("outside the private ranges"),
            "{reasons:?}"
        );
        let local = crate::config::parse_config("[central]\nallowed_networks = [\"8.8.8.0/24\"]\n")
            .expect("valid local");
        let allowed = AllowedTargets {
            networks: local.central.networks(),
        };
        assert!(refusals(&config, &allowed).is_empty());
        assert!(refusals(&central(&target("192.168.1.10")), &nothing).is_empty());
        assert!(refusals(&central(&target("127.0.0.1")), &nothing).is_empty());
    }

    #[test]
    fn an_http_url_to_a_public_host_is_refused() {
        let text = "[[lan.targets]]\nname = \"web\"\nkind = \"other\"\naddress = \"192.168.1.2\"\nprobes = [{ type = \"http\", url = \"https://8.8.4.4/\" }]\n";
        let reasons = refusals(&central(text), &AllowedTargets::default());
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains("8.8.4.4"), "{reasons:?}");
    }

    #[test]
    fn a_name_that_does_not_resolve_is_refused() {
        let reasons = refusals(
            &central(&target("no-such-host.invalid")),
            &AllowedTargets::default(),
        );
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains("does not resolve"), "{reasons:?}");
    }

    #[test]
    fn a_missing_path_and_a_source_this_os_lacks_are_refused() {
        let text = "[[backup.jobs]]\nname = \"nightly\"\nevery = \"24h\"\nsource = \"robocopy\"\npath = \"/no/such/robocopy.log\"\n";
        let reasons = refusals(&central(text), &AllowedTargets::default());
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains("does not exist"), "{reasons:?}");
        if !cfg!(windows) {
            let text = "[[backup.jobs]]\nname = \"wsb\"\nevery = \"24h\"\nsource = \"windows_server_backup\"\n";
            let reasons = refusals(&central(text), &AllowedTargets::default());
            assert!(
                reasons.iter().any(|r| r.contains("only on Windows")),
                "{reasons:?}"
            );
        }
    }

    #[test]
    fn what_only_the_local_file_sets_is_refused_centrally() {
        let text = "[sender]\nbatch_max_reports = 10\n[central]\nenabled = false\n[backup]\nspool_dir = \"/tmp\"\n[outbox]\nmax_bytes = 2097152\n";
        let errors = parse_text(text, Source::Central, &[]).expect_err("refused");
        let messages = errors.messages();
        assert_eq!(messages.len(), 4, "{messages:?}");
        for (section, line) in [("[sender]", 1), ("[central]", 3), ("[outbox]", 7)] {
            assert!(
                errors
                    .0
                    .iter()
                    .any(|p| p.message.starts_with(section) && p.line == Some(line)),
                "{section} at line {line}: {errors:?}"
            );
        }
        assert!(
            messages.iter().any(|m| m.starts_with("backup.spool_dir")),
            "{messages:?}"
        );
        // The same text is fine locally.
        assert!(parse_text(text, Source::Local, &[]).is_ok());
    }

    #[test]
    fn the_format_has_no_command_to_run() {
        for text in [
            "[[backup.jobs]]\nname = \"x\"\nevery = \"24h\"\ncommand = \"cmd.exe /c whoami\"\n",
            "[[backup.jobs]]\nname = \"x\"\nevery = \"24h\"\nexec = \"sh\"\n",
            "[[backup.jobs]]\nname = \"x\"\nevery = \"24h\"\nsource = \"command\"\n",
            "[updates]\ncommand = \"sh -c id\"\n",
        ] {
            assert!(
                parse_text(text, Source::Central, &[]).is_err(),
                "accepted: {text}"
            );
        }
    }
}
