//! The system snapshot: OS, uptime, CPU, memory and disks, read with `sysinfo`. Only what the
//! snapshot needs is refreshed (no process list), so a collection costs a few milliseconds.

use serde::Serialize;
use sysinfo::{CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, System};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemSnapshot {
    pub hostname: String,
    pub os_name: String,
    pub os_version: String,
    pub kernel_version: String,
    pub uptime_seconds: u64,
    pub cpu_count: u32,
    /// Architecture, e.g. `x86_64`.
    pub cpu_arch: String,
    /// 1, 5 and 15 minute load averages; zero where the OS has none (Windows).
    pub load_1: f64,
    pub load_5: f64,
    pub load_15: f64,
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    pub swap_total_bytes: u64,
    pub swap_free_bytes: u64,
    pub disks: Vec<Disk>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disk {
    pub mount_point: String,
    pub file_system: String,
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub removable: bool,
    pub kind: DiskKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskKind {
    Hdd,
    Ssd,
    Unknown,
}

impl DiskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiskKind::Hdd => "hdd",
            DiskKind::Ssd => "ssd",
            DiskKind::Unknown => "unknown",
        }
    }
}

impl From<sysinfo::DiskKind> for DiskKind {
    fn from(kind: sysinfo::DiskKind) -> Self {
        match kind {
            sysinfo::DiskKind::HDD => DiskKind::Hdd,
            sysinfo::DiskKind::SSD => DiskKind::Ssd,
            sysinfo::DiskKind::Unknown(_) => DiskKind::Unknown,
        }
    }
}

/// Reads the snapshot now. Never fails: a value the OS does not give is left empty or zero
/// (and logged at debug), because a partial snapshot still tells the technician something.
pub fn collect() -> SystemSnapshot {
    let (cpu_count, memory) = match System::new() {
        Ok(mut sys) => {
            sys.refresh_cpu_list(CpuRefreshKind::nothing());
            sys.refresh_memory_specifics(MemoryRefreshKind::everything());
            let cpus = u32::try_from(sys.cpus().len()).unwrap_or(u32::MAX);
            let memory = [
                sys.total_memory(),
                sys.available_memory(),
                sys.total_swap(),
                sys.free_swap(),
            ];
            (cpus, memory)
        }
        Err(error) => {
            tracing::debug!(%error, "cannot read CPU and memory");
            (0, [0; 4])
        }
    };
    let load = System::load_average()
        .map(|l| [l.one, l.five, l.fifteen])
        .unwrap_or_default();
    let disks = match Disks::new_with_refreshed_list_specifics(
        DiskRefreshKind::nothing().with_kind().with_storage(),
    ) {
        Ok(disks) => disks
            .iter()
            .map(|d| Disk {
                mount_point: d.mount_point().to_string_lossy().into_owned(),
                file_system: d.file_system().to_string_lossy().into_owned(),
                total_bytes: d.total_space(),
                available_bytes: d.available_space(),
                removable: d.is_removable(),
                kind: d.kind().into(),
            })
            .collect(),
        Err(error) => {
            tracing::debug!(%error, "cannot list disks");
            Vec::new()
        }
    };
    SystemSnapshot {
        hostname: text("hostname", System::host_name()),
        os_name: text("os_name", System::name()),
        os_version: text("os_version", System::os_version()),
        kernel_version: text("kernel_version", System::kernel_version()),
        uptime_seconds: System::uptime().unwrap_or_default(),
        cpu_count,
        cpu_arch: System::cpu_arch(),
        load_1: load[0],
        load_5: load[1],
        load_15: load[2],
        memory_total_bytes: memory[0],
        memory_available_bytes: memory[1],
        swap_total_bytes: memory[2],
        swap_free_bytes: memory[3],
        disks,
    }
}

fn text(field: &str, value: Result<String, sysinfo::Error>) -> String {
    value.unwrap_or_else(|error| {
        tracing::debug!(field, %error, "value not available");
        String::new()
    })
}

/// The machine's host name, as sent at enrollment.
pub fn hostname() -> String {
    text("hostname", System::host_name())
}

/// Free-text OS description sent at enrollment, e.g. "Debian GNU/Linux 12" or "Windows 11 Pro".
pub fn os_description() -> String {
    describe_os(
        System::name().ok(),
        System::os_version().ok(),
        System::long_os_version().ok(),
    )
}

fn describe_os(name: Option<String>, version: Option<String>, long: Option<String>) -> String {
    // Windows' long version names the edition ("Windows 11 Pro"), which matters to a technician;
    // elsewhere name + version reads best ("Debian GNU/Linux 12").
    if let Some(long) = long.filter(|l| cfg!(windows) && !l.is_empty()) {
        return long;
    }
    let joined = [name, version]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if joined.is_empty() {
        std::env::consts::OS.to_owned()
    } else {
        joined
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_snapshot() -> SystemSnapshot {
        SystemSnapshot {
            hostname: "cab-accueil".into(),
            os_name: "Debian GNU/Linux".into(),
            os_version: "12".into(),
            kernel_version: "6.1.0-18-amd64".into(),
            uptime_seconds: 3600,
            cpu_count: 4,
            cpu_arch: "x86_64".into(),
            load_1: 0.5,
            load_5: 0.25,
            load_15: 0.125,
            memory_total_bytes: 8 << 30,
            memory_available_bytes: 4 << 30,
            swap_total_bytes: 1 << 30,
            swap_free_bytes: 1 << 30,
            disks: vec![Disk {
                mount_point: "/".into(),
                file_system: "ext4".into(),
                total_bytes: 100 << 30,
                available_bytes: 40 << 30,
                removable: false,
                kind: DiskKind::Ssd,
            }],
        }
    }

    #[test]
    fn collect_reads_this_machine() {
        let s = collect();
        assert!(s.cpu_count > 0);
        assert!(s.memory_total_bytes > 0);
        assert!(!s.cpu_arch.is_empty());
    }

    #[test]
    fn os_description_joins_what_is_known() {
        let some = |s: &str| Some(s.to_owned());
        if !cfg!(windows) {
            assert_eq!(
                describe_os(some("Debian GNU/Linux"), some("12"), some("Linux 12")),
                "Debian GNU/Linux 12"
            );
            assert_eq!(describe_os(some("Alpine"), None, None), "Alpine");
        }
        assert!(!describe_os(None, None, None).is_empty());
    }

    #[test]
    fn proto_conversion_keeps_every_field() {
        let s = sample_snapshot();
        let p = s.to_proto();
        assert_eq!(p.hostname, s.hostname);
        assert_eq!(p.os_version, "12");
        assert_eq!(p.cpu_count, 4);
        assert_eq!(p.load_15, 0.125);
        assert_eq!(p.swap_free_bytes, 1 << 30);
        assert_eq!(p.disks.len(), 1);
        assert_eq!(p.disks[0].available_bytes, 40 << 30);
        assert_eq!(p.cpu_arch, "x86_64");
    }
}
