//! Wakes the backup check when something lands in the spool, so a result reaches the collector
//! in seconds rather than at the next rescan. The periodic rescan stays the safety net: a
//! watcher that cannot start (or misses an event on a network folder) only costs latency.

use std::path::Path;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

/// Events in a burst (temp file created, written, renamed) are taken as one.
const SETTLE: Duration = Duration::from_millis(300);

/// A live watch on the spool folder.
#[derive(Debug)]
pub struct SpoolWatch {
    // Dropping the watcher stops it; kept for as long as the watch lives.
    _watcher: Option<notify::RecommendedWatcher>,
    events: mpsc::Receiver<()>,
}

impl SpoolWatch {
    /// Watches `dir` (created if missing). Never fails: without a watcher, [`Self::changed`]
    /// simply never resolves and the rescan does the work.
    pub fn start(dir: &Path) -> SpoolWatch {
        let (tx, events) = mpsc::channel(1);
        let watcher = std::fs::create_dir_all(dir)
            .map_err(notify::Error::io)
            .and_then(|()| {
                let mut watcher =
                    notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                        if event.is_ok_and(|e| !e.kind.is_access()) {
                            // Full channel: a wake-up is already pending, which is enough.
                            let _ = tx.try_send(());
                        }
                    })?;
                watcher.watch(dir, RecursiveMode::NonRecursive)?;
                Ok(watcher)
            });
        let watcher = match watcher {
            Ok(watcher) => {
                tracing::debug!(dir = %dir.display(), "watching backup spool");
                Some(watcher)
            }
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "cannot watch backup spool: relying on the rescan");
                None
            }
        };
        SpoolWatch {
            _watcher: watcher,
            events,
        }
    }

    /// Resolves once the spool changed (after a short settle, so a burst is one wake-up).
    pub async fn changed(&mut self) {
        if self.events.recv().await.is_none() {
            // The watcher is gone: never wake.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(SETTLE).await;
        while self.events.try_recv().is_ok() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_file_wakes_the_watch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = dir.path().join("spool");
        let mut watch = SpoolWatch::start(&spool);
        std::fs::write(spool.join("r.json"), b"{}").expect("write");
        tokio::time::timeout(Duration::from_secs(10), watch.changed())
            .await
            .expect("woken within 10 s");
    }
}
