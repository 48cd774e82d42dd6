//! What `[[lan.targets]]` lists: a device, its kind, its address and the probes to run on it,
//! with the checks that need more than one field.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default SNMP agent port.
pub const DEFAULT_SNMP_PORT: u16 = 161;
/// Default DICOM port (the well-known one; many modalities use 11112 or 4242).
pub const DEFAULT_DICOM_PORT: u16 = 104;
/// Calling AE title when the config names none.
pub const DEFAULT_CALLING_AE: &str = "VIGIE";

/// One device on the clinic LAN.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Unique name a technician recognises, e.g. `printer-accueil`.
    pub name: String,
    pub kind: DeviceKind,
    /// IP address or host name.
    pub address: String,
    pub probes: Vec<Probe>,
    /// How often this device is probed; `[lan] interval` when absent.
    #[serde(default, with = "crate::duration_text::option")]
    pub interval: Option<Duration>,
    /// In a clinic's central configuration: the agent that probes this device, by id ...
    #[serde(default)]
    pub agent: Option<String>,
    /// ... or every agent of the clinic with this role (`server`, `workstation`, `imaging`).
    /// The collector delivers each target only to its agents; an agent ignores both.
    #[serde(default)]
    pub role: Option<vigie_domain::AgentRole>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceKind {
    Router,
    Switch,
    Printer,
    Nas,
    Ups,
    ImagingModality,
    Pacs,
    Other,
}

impl DeviceKind {
    /// The wire name (`DeviceHealth.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Router => "router",
            DeviceKind::Switch => "switch",
            DeviceKind::Printer => "printer",
            DeviceKind::Nas => "nas",
            DeviceKind::Ups => "ups",
            DeviceKind::ImagingModality => "imaging-modality",
            DeviceKind::Pacs => "pacs",
            DeviceKind::Other => "other",
        }
    }
}

/// One way of asking a device whether it is well: `{ type = "tcp", port = 443 }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Probe {
    /// ICMP echo. A struct variant so that `deny_unknown_fields` covers it too.
    Icmp {},
    /// TCP connect.
    Tcp { port: u16 },
    /// HTTP(S) GET of a URL: status, latency, certificate expiry.
    Http { url: String },
    /// SNMP GET of sysDescr/sysUpTime, plus the MIB of the device's kind.
    Snmp(SnmpProbe),
    /// DICOM C-ECHO.
    Dicom(DicomProbe),
}

impl Probe {
    /// The probe's name in results and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Probe::Icmp {} => "icmp",
            Probe::Tcp { .. } => "tcp",
            Probe::Http { .. } => "http",
            Probe::Snmp(_) => "snmp",
            Probe::Dicom(_) => "dicom",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnmpProbe {
    #[serde(default = "default_snmp_port")]
    pub port: u16,
    pub version: SnmpVersion,
    /// v2c only.
    pub community: Option<String>,
    /// v3 only: the USM user name.
    pub user: Option<String>,
    /// v3: authentication protocol; absent means noAuthNoPriv.
    pub auth: Option<SnmpAuth>,
    pub auth_password: Option<String>,
    /// v3: privacy protocol; needs `auth`.
    pub privacy: Option<SnmpPrivacy>,
    pub privacy_password: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnmpVersion {
    V2c,
    V3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnmpAuth {
    Md5,
    Sha,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnmpPrivacy {
    Des,
    Aes,
    Aes192,
    Aes256,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DicomProbe {
    #[serde(default = "default_dicom_port")]
    pub port: u16,
    /// Our AE title, as the device knows it.
    #[serde(default = "default_calling_ae")]
    pub calling_ae: String,
    /// The device's AE title.
    pub called_ae: String,
}

fn default_snmp_port() -> u16 {
    DEFAULT_SNMP_PORT
}

fn default_dicom_port() -> u16 {
    DEFAULT_DICOM_PORT
}

fn default_calling_ae() -> String {
    DEFAULT_CALLING_AE.to_owned()
}

/// Every problem in a target list, each prefixed with where it is.
pub fn validate(targets: &[Target]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names = HashSet::new();
    for (i, target) in targets.iter().enumerate() {
        let at = if target.name.is_empty() {
            format!("lan.targets[{i}]")
        } else {
            format!("lan.targets[{i}] ({})", target.name)
        };
        if target.name.trim().is_empty() {
            problems.push(format!("{at}: name is empty"));
        } else if !names.insert(target.name.as_str()) {
            problems.push(format!("{at}: name is used by another target"));
        }
        if target.address.trim().is_empty() {
            problems.push(format!("{at}: address is empty"));
        }
        if target.probes.is_empty() {
            problems.push(format!("{at}: no probes (add e.g. {{ type = \"icmp\" }})"));
        }
        if target.interval.is_some_and(|d| d < super::MIN_INTERVAL) {
            problems.push(format!(
                "{at}: interval is below the minimum of {}",
                humantime::format_duration(super::MIN_INTERVAL)
            ));
        }
        for probe in &target.probes {
            problems.extend(
                probe_problems(probe)
                    .into_iter()
                    .map(|p| format!("{at}: {p}")),
            );
        }
    }
    problems
}

fn probe_problems(probe: &Probe) -> Vec<String> {
    let mut problems = Vec::new();
    match probe {
        Probe::Icmp {} => {}
        Probe::Tcp { port } => {
            if *port == 0 {
                problems.push("tcp port 0".to_owned());
            }
        }
        Probe::Http { url } => {
            if let Err(e) = super::http::Url::parse(url) {
                problems.push(format!("http url {url:?}: {e}"));
            }
        }
        Probe::Snmp(s) => problems.extend(snmp_problems(s)),
        Probe::Dicom(d) => {
            for (field, title) in [("calling_ae", &d.calling_ae), ("called_ae", &d.called_ae)] {
                // PS3.8: 1-16 characters, no backslash or control characters.
                let valid = !title.trim().is_empty()
                    && title.len() <= 16
                    && title
                        .chars()
                        .all(|c| c.is_ascii() && !c.is_ascii_control() && c != '\\');
                if !valid {
                    problems.push(format!(
                        "dicom {field} {title:?} must be 1 to 16 ASCII characters"
                    ));
                }
            }
        }
    }
    problems
}

fn snmp_problems(s: &SnmpProbe) -> Vec<String> {
    let mut problems = Vec::new();
    match s.version {
        SnmpVersion::V2c => {
            if s.community.as_deref().is_none_or(str::is_empty) {
                problems.push("snmp v2c needs a community".to_owned());
            }
            if s.user.is_some() || s.auth.is_some() || s.privacy.is_some() {
                problems.push(
                    "snmp v2c takes no user, auth or privacy (use version = \"v3\")".to_owned(),
                );
            }
        }
        SnmpVersion::V3 => {
            if s.user.as_deref().is_none_or(str::is_empty) {
                problems.push("snmp v3 needs a user".to_owned());
            }
            if s.community.is_some() {
                problems.push("snmp v3 takes no community".to_owned());
            }
            // net-snmp refuses pass phrases under 8 characters, and so do most devices.
            if s.auth.is_some() && s.auth_password.as_deref().is_none_or(|p| p.len() < 8) {
                problems.push(
                    "snmp v3 auth needs an auth_password of at least 8 characters".to_owned(),
                );
            }
            if s.privacy.is_some() {
                if s.auth.is_none() {
                    problems.push("snmp v3 privacy needs auth too".to_owned());
                }
                if s.privacy_password.as_deref().is_none_or(|p| p.len() < 8) {
                    problems.push(
                        "snmp v3 privacy needs a privacy_password of at least 8 characters"
                            .to_owned(),
                    );
                }
            }
        }
    }
    problems
}
