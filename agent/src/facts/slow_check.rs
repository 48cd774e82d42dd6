//! What the checks that start programs (`[updates]`, `[antivirus]`, `[software]`) share:
//! the bounds of their interval and of each command's deadline.

use std::time::Duration;

/// Default deadline of one external command of these checks (`apt-get -s`, PowerShell...).
pub const DEFAULT_CHECK_COMMAND_TIMEOUT: Duration = Duration::from_secs(90);
/// These checks start programs; more often than this would cost the clinic PC for nothing.
const MIN_SLOW_CHECK_INTERVAL: Duration = Duration::from_secs(60);
/// A command must end before the check's own deadline (120 s) to report its own failure.
const MAX_CHECK_COMMAND_TIMEOUT: Duration = Duration::from_secs(110);

/// Problems of one such section's `interval` and `command_timeout`.
pub fn problems(section: &str, interval: Duration, timeout: Duration) -> Vec<String> {
    let mut problems = Vec::new();
    if interval < MIN_SLOW_CHECK_INTERVAL {
        problems.push(format!(
            "{section}.interval = {} is below the minimum of {}",
            humantime::format_duration(interval),
            humantime::format_duration(MIN_SLOW_CHECK_INTERVAL),
        ));
    }
    if timeout.is_zero() || timeout > MAX_CHECK_COMMAND_TIMEOUT {
        problems.push(format!(
            "{section}.command_timeout = {} must be more than zero and at most {}",
            humantime::format_duration(timeout),
            humantime::format_duration(MAX_CHECK_COMMAND_TIMEOUT),
        ));
    }
    problems
}
