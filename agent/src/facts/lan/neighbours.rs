//! Passive discovery: the OS neighbour table (`ip -j neigh` on Linux, `Get-NetNeighbor` on
//! Windows) lists the devices this machine has talked to lately. Those that no target lists
//! are reported for a technician to adopt. Nothing is sent on the network: no sweep, ever.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Target;
use crate::command::ExternalCommand;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveredDevice {
    pub ip: String,
    /// Lower-case, colon-separated.
    pub mac: String,
    /// As the OS says it, upper-case: "REACHABLE", "STALE", ...
    pub state: String,
}

/// Neighbours that match no target address. A failure to read the table is logged and gives
/// an empty list: discovery is a courtesy, the device probes are the report.
pub async fn discover(targets: &[Target], timeout: Duration) -> Vec<DiscoveredDevice> {
    let read = tokio::task::spawn_blocking(move || read_table(timeout)).await;
    let entries = match read {
        Ok(Ok(entries)) => entries,
        Ok(Err(error)) => {
            tracing::warn!(probe = "neighbours", %error, "cannot read the neighbour table");
            return Vec::new();
        }
        Err(error) => {
            tracing::warn!(probe = "neighbours", %error, "neighbour task failed");
            return Vec::new();
        }
    };
    unlisted(entries, targets)
}

#[cfg(not(windows))]
fn read_table(timeout: Duration) -> Result<Vec<DiscoveredDevice>, String> {
    let output = ExternalCommand::new("ip")
        .args(["-j", "neigh", "show"])
        .env("LC_ALL", "C")
        .timeout(timeout)
        .run()
        .map_err(|e| e.to_string())?;
    if output.success() {
        return parse_ip_json(&output.stdout_text());
    }
    // BusyBox and old iproute2 have no JSON output.
    let output = ExternalCommand::new("ip")
        .args(["neigh", "show"])
        .env("LC_ALL", "C")
        .timeout(timeout)
        .run()
        .map_err(|e| e.to_string())?;
    if output.success() {
        Ok(parse_ip_text(&output.stdout_text()))
    } else {
        Err(output.failure_summary())
    }
}

#[cfg(windows)]
fn read_table(timeout: Duration) -> Result<Vec<DiscoveredDevice>, String> {
    // State as text: ConvertTo-Json writes enums as numbers.
    const SCRIPT: &str = "Get-NetNeighbor | Select-Object IPAddress,LinkLayerAddress,\
        @{n='State';e={$_.State.ToString()}} | ConvertTo-Json -Compress";
    let output = ExternalCommand::new("powershell.exe")
        .args(["-NoProfile", "-NonInteractive", "-Command", SCRIPT])
        .timeout(timeout.max(Duration::from_secs(20)))
        .run()
        .map_err(|e| e.to_string())?;
    if output.success() {
        parse_get_net_neighbor(&output.stdout_text())
    } else {
        Err(output.failure_summary())
    }
}

/// `ip -j neigh show`: `[{"dst":"192.168.1.1","dev":"eth0","lladdr":"..","state":["REACHABLE"]}]`.
pub fn parse_ip_json(text: &str) -> Result<Vec<DiscoveredDevice>, String> {
    #[derive(Deserialize)]
    struct Entry {
        dst: String,
        lladdr: Option<String>,
        #[serde(default)]
        state: Vec<String>,
    }
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let entries: Vec<Entry> =
        serde_json::from_str(text).map_err(|e| format!("unreadable `ip -j neigh` output: {e}"))?;
    Ok(entries
        .into_iter()
        .filter_map(|e| entry(&e.dst, e.lladdr.as_deref()?, &e.state.join(",")))
        .collect())
}

/// `ip neigh show`: `192.168.1.1 dev eth0 lladdr aa:bb:cc:dd:ee:ff REACHABLE`.
pub fn parse_ip_text(text: &str) -> Vec<DiscoveredDevice> {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let ip = words.first()?;
            let mac = words
                .iter()
                .position(|w| *w == "lladdr")
                .and_then(|i| words.get(i + 1))?;
            let state = words.last().copied().unwrap_or_default();
            entry(ip, mac, state)
        })
        .collect()
}

/// `Get-NetNeighbor | ConvertTo-Json`: one object, or an array; State as text or number.
pub fn parse_get_net_neighbor(text: &str) -> Result<Vec<DiscoveredDevice>, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        #[serde(rename = "IPAddress")]
        ip_address: String,
        link_layer_address: Option<String>,
        state: Option<serde_json::Value>,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<Entry>),
        One(Entry),
    }
    // PowerShell 5 may start its output with a byte-order mark.
    let text = text.trim().trim_start_matches('\u{feff}');
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let entries = match serde_json::from_str(text)
        .map_err(|e| format!("unreadable Get-NetNeighbor output: {e}"))?
    {
        OneOrMany::Many(v) => v,
        OneOrMany::One(e) => vec![e],
    };
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            let state = match e.state {
                Some(serde_json::Value::String(s)) => s,
                Some(serde_json::Value::Number(n)) => windows_state(n.as_u64()).to_owned(),
                _ => String::new(),
            };
            entry(&e.ip_address, e.link_layer_address.as_deref()?, &state)
        })
        .collect())
}

/// MSFT_NetNeighbor.State values.
fn windows_state(n: Option<u64>) -> &'static str {
    match n {
        Some(0) => "UNREACHABLE",
        Some(1) => "INCOMPLETE",
        Some(2) => "PROBE",
        Some(3) => "DELAY",
        Some(4) => "STALE",
        Some(5) => "REACHABLE",
        Some(6) => "PERMANENT",
        _ => "",
    }
}

/// A neighbour worth showing: a unicast MAC, not a failed or incomplete entry.
fn entry(ip: &str, mac: &str, state: &str) -> Option<DiscoveredDevice> {
    let ip: IpAddr = ip.split('%').next()?.parse().ok()?;
    let octets: Vec<u8> = mac
        .split([':', '-'])
        .map(|o| u8::from_str_radix(o, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    // Multicast/broadcast MACs (Windows lists them as permanent entries) and all-zero ones.
    if octets.len() != 6 || octets[0] & 1 == 1 || octets.iter().all(|&o| o == 0) {
        return None;
    }
    let state = state.to_uppercase();
    if ["FAILED", "INCOMPLETE", "UNREACHABLE"].contains(&state.as_str()) {
        return None;
    }
    Some(DiscoveredDevice {
        ip: ip.to_string(),
        mac: octets
            .iter()
            .map(|o| format!("{o:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        state,
    })
}

/// Entries whose IP is no target's address, once each.
fn unlisted(entries: Vec<DiscoveredDevice>, targets: &[Target]) -> Vec<DiscoveredDevice> {
    let listed: Vec<IpAddr> = targets
        .iter()
        .filter_map(|t| t.address.trim_matches(['[', ']']).parse().ok())
        .collect();
    let mut seen = std::collections::HashSet::new();
    entries
        .into_iter()
        .filter(|e| {
            let ip: Option<IpAddr> = e.ip.parse().ok();
            ip.is_some_and(|ip| !listed.contains(&ip)) && seen.insert(e.ip.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::lan::{DeviceKind, Probe};

    fn found(ip: &str, mac: &str, state: &str) -> DiscoveredDevice {
        DiscoveredDevice {
            ip: ip.to_owned(),
            mac: mac.to_owned(),
            state: state.to_owned(),
        }
    }

    #[test]
    fn ip_json_output() {
        let text = r#"[{"dst":"192.168.1.1","dev":"eth0","lladdr":"AA:BB:CC:00:11:22","state":["REACHABLE"]},
            {"dst":"fd00::1","dev":"eth0","state":["FAILED"]},
            {"dst":"192.168.1.30","dev":"eth0","lladdr":"aa:bb:cc:00:11:33","state":["STALE"]},
            {"dst":"192.168.1.31","dev":"eth0","lladdr":"00:00:00:00:00:00","state":["INCOMPLETE"]},
            {"dst":"224.0.0.251","dev":"eth0","lladdr":"01:00:5e:00:00:fb","state":["NOARP"]}]"#;
        assert_eq!(
            parse_ip_json(text),
            Ok(vec![
                found("192.168.1.1", "aa:bb:cc:00:11:22", "REACHABLE"),
                found("192.168.1.30", "aa:bb:cc:00:11:33", "STALE"),
            ])
        );
        assert_eq!(parse_ip_json(""), Ok(vec![]));
        assert!(parse_ip_json("{not json").is_err());
    }

    #[test]
    fn ip_text_output() {
        let text = "192.168.1.1 dev eth0 lladdr aa:bb:cc:00:11:22 REACHABLE\n\
                    192.168.1.9 dev eth0  FAILED\n\
                    fe80::1 dev eth0 lladdr aa:bb:cc:00:11:23 router STALE\n\
                    garbage\n";
        assert_eq!(
            parse_ip_text(text),
            vec![
                found("192.168.1.1", "aa:bb:cc:00:11:22", "REACHABLE"),
                found("fe80::1", "aa:bb:cc:00:11:23", "STALE"),
            ]
        );
    }

    #[test]
    fn get_net_neighbor_output() {
        let many = "\u{feff}[{\"IPAddress\":\"192.168.1.20\",\"LinkLayerAddress\":\"00-1B-A9-12-34-56\",\"State\":\"Reachable\"},\
                    {\"IPAddress\":\"192.168.1.255\",\"LinkLayerAddress\":\"FF-FF-FF-FF-FF-FF\",\"State\":\"Permanent\"},\
                    {\"IPAddress\":\"192.168.1.21\",\"LinkLayerAddress\":\"00-1B-A9-12-34-57\",\"State\":4},\
                    {\"IPAddress\":\"192.168.1.22\",\"LinkLayerAddress\":\"00-00-00-00-00-00\",\"State\":\"Unreachable\"}]";
        assert_eq!(
            parse_get_net_neighbor(many),
            Ok(vec![
                found("192.168.1.20", "00:1b:a9:12:34:56", "REACHABLE"),
                found("192.168.1.21", "00:1b:a9:12:34:57", "STALE"),
            ])
        );
        let one =
            r#"{"IPAddress":"10.0.0.2","LinkLayerAddress":"00-1B-A9-00-00-01","State":"Stale"}"#;
        assert_eq!(
            parse_get_net_neighbor(one),
            Ok(vec![found("10.0.0.2", "00:1b:a9:00:00:01", "STALE")])
        );
        assert!(parse_get_net_neighbor("[{").is_err());
    }

    #[test]
    fn listed_addresses_and_duplicates_are_left_out() {
        let target = Target {
            name: "router".to_owned(),
            kind: DeviceKind::Router,
            address: "192.168.1.1".to_owned(),
            probes: vec![Probe::Icmp {}],
            interval: None,
            agent: None,
            role: None,
        };
        let entries = vec![
            found("192.168.1.1", "aa:bb:cc:00:11:22", "REACHABLE"),
            found("192.168.1.30", "aa:bb:cc:00:11:33", "STALE"),
            found("192.168.1.30", "aa:bb:cc:00:11:33", "STALE"),
        ];
        assert_eq!(
            unlisted(entries, &[target]),
            vec![found("192.168.1.30", "aa:bb:cc:00:11:33", "STALE")]
        );
    }
}
