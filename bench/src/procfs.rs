//! What `/proc` says about a process and its children: resident memory (RSS, PSS) and CPU time.
//!
//! CPU comes from `/proc/PID/stat` (`utime + stime`, in USER_HZ = 100 ticks per second on
//! Linux), which includes threads that have already exited; so it is precise to 10 ms per read
//! and only meaningful over windows of many cycles. Short-lived processes are measured with
//! `getrusage(RUSAGE_CHILDREN)` instead (see `cpu_of_children`).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

/// Ticks per second of the times in `/proc/PID/stat` (USER_HZ, fixed at 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// Memory and CPU of one process tree at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    pub processes: usize,
    pub rss_kib: u64,
    pub pss_kib: u64,
    /// Anonymous memory (heap, stacks): RSS minus the pages of mapped files (code, libraries).
    pub anon_kib: u64,
    pub cpu_seconds: f64,
    /// Bytes the tree caused to be written to the disk (`write_bytes` of `/proc/PID/io`).
    pub disk_write_bytes: u64,
}

impl Sample {
    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }
    pub fn pss_mib(&self) -> f64 {
        self.pss_kib as f64 / 1024.0
    }
    pub fn anon_mib(&self) -> f64 {
        self.anon_kib as f64 / 1024.0
    }
}

/// `pid` and every process whose parent is `pid` (one level: zabbix_agentd forks its workers
/// from the main process).
pub fn tree(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if child != pid && stat_fields(child).is_some_and(|f| f.ppid == pid) {
            pids.push(child);
        }
    }
    pids
}

/// Sums memory and CPU over `pid` and its children.
pub fn sample_tree(pid: u32) -> Result<Sample> {
    let mut total = Sample::default();
    for p in tree(pid) {
        // A worker may exit between the listing and the read: skip it, not the whole sample.
        let Some(stat) = stat_fields(p) else { continue };
        let (rss, pss, anon) = match smaps_rollup(p) {
            Ok(mem) => mem,
            Err(_) if p != pid => continue,
            Err(e) => return Err(e),
        };
        total.processes += 1;
        total.rss_kib += rss;
        total.pss_kib += pss;
        total.anon_kib += anon;
        total.cpu_seconds += stat.cpu_ticks as f64 / TICKS_PER_SECOND;
        total.disk_write_bytes += disk_write_bytes(p).unwrap_or(0);
    }
    anyhow::ensure!(total.processes > 0, "process {pid} is gone");
    Ok(total)
}

/// `write_bytes` of `/proc/PID/io`: what the process sent to the block layer (page cache
/// write-back it dirtied included), the measure of write amplification.
fn disk_write_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("write_bytes:"))
        .and_then(|n| n.trim().parse().ok())
}

struct StatFields {
    ppid: u32,
    cpu_ticks: u64,
}

fn stat_fields(pid: u32) -> Option<StatFields> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(StatFields {
        ppid,
        cpu_ticks: utime + stime,
    })
}

/// (RSS, PSS, anonymous) in KiB from `/proc/PID/smaps_rollup`.
pub fn smaps_rollup(pid: u32) -> Result<(u64, u64, u64)> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let rss = field("Rss:").with_context(|| format!("no Rss in {path}"))?;
    let pss = field("Pss:").with_context(|| format!("no Pss in {path}"))?;
    let anon = field("Anonymous:").unwrap_or(0);
    Ok((rss, pss, anon))
}

/// CPU time (user + system) of all waited-for children of this process so far, to the
/// microsecond.
pub fn cpu_of_children() -> Result<Duration> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).context("getrusage")?;
    let micros = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().max(0) as u64)
            + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    Ok(micros(usage.user_time()) + micros(usage.system_time()))
}

/// CPU time of this process (the load generator), for the record.
pub fn own_cpu_seconds() -> f64 {
    stat_fields(std::process::id()).map_or(0.0, |s| s.cpu_ticks as f64 / TICKS_PER_SECOND)
}

/// Size of a file in bytes, if it exists.
pub fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// Whether an ELF file still has a symbol table (i.e. is not stripped).
pub fn has_symtab(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes.windows(8).any(|w| w == b".symtab\0"))
}

/// The 1-minute load average, to show how busy the machine was.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// Raises this process's soft limit of open files to its hard limit (children inherit it).
pub fn raise_fd_limit() -> Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("getrlimit")?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).context("setrlimit")?;
    Ok(hard)
}
