//! Group commit: many writers wait for durability, one flusher flushes for all of them.
//!
//! A writer does its inserts, then awaits [`GroupCommit::durable`], which queues a waiter. The
//! flusher task takes every queued waiter, runs one flush (on the blocking pool) and wakes them
//! all with its result. A waiter is only ever answered by a flush that *started after* it was
//! queued, so the writes it made before queueing are always covered; a waiter that arrives
//! while a flush runs stays queued for the next one.
//!
//! A failed flush is final ("fsyncgate": after a failed `fsync` the kernel may have dropped the
//! dirty pages and a later `fsync` succeeds without them). From then on no flush runs and every
//! waiter, queued or later, gets [`DurabilityError::Lost`]; [`GroupCommit::lost`] tells the
//! server to exit so that its service manager restarts it on a freshly opened database.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurabilityError {
    #[error("flush to disk failed: {0}")]
    Flush(String),
    #[error(
        "an earlier flush to disk failed ({0}): nothing is acknowledged until the collector restarts"
    )]
    Lost(String),
    #[error("the flusher has stopped (collector shutting down)")]
    Stopped,
}

type Waiter = oneshot::Sender<Result<(), DurabilityError>>;

/// Handle writers use to wait for durability; cheap to clone.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    queue: mpsc::UnboundedSender<Waiter>,
    flushes: Arc<AtomicU64>,
    /// The first failed flush's error, once there was one; never cleared.
    lost: Arc<watch::Sender<Option<String>>>,
}

impl GroupCommit {
    /// Starts the flusher task on the current tokio runtime. `flush` must make every write that
    /// completed before it was called durable. The task ends when every handle is dropped.
    pub fn spawn<F, E>(flush: F) -> (Self, tokio::task::JoinHandle<()>)
    where
        F: Fn() -> Result<(), E> + Send + Sync + 'static,
        E: std::fmt::Display + 'static,
    {
        let (queue, rx) = mpsc::unbounded_channel();
        let flushes = Arc::new(AtomicU64::new(0));
        let lost = Arc::new(watch::channel(None).0);
        let task = tokio::spawn(run_flusher(
            rx,
            Arc::new(flush),
            flushes.clone(),
            lost.clone(),
        ));
        (
            GroupCommit {
                queue,
                flushes,
                lost,
            },
            task,
        )
    }

    /// Waits until a flush that started after this call has completed.
    pub async fn durable(&self) -> Result<(), DurabilityError> {
        self.check()?;
        let (tx, rx) = oneshot::channel();
        self.queue.send(tx).map_err(|_| DurabilityError::Stopped)?;
        rx.await.map_err(|_| DurabilityError::Stopped)?
    }

    /// `Err` once a flush has failed: a writer checks this before writing anything it would
    /// have to acknowledge.
    pub fn check(&self) -> Result<(), DurabilityError> {
        match self.lost.borrow().as_ref() {
            Some(error) => Err(DurabilityError::Lost(error.clone())),
            None => Ok(()),
        }
    }

    /// Completes, with the error, once a flush has failed (never, while flushes succeed).
    pub async fn lost(&self) -> String {
        let mut lost = self.lost.subscribe();
        match lost.wait_for(Option::is_some).await {
            Ok(error) => error.clone().unwrap_or_default(),
            // Unreachable while `self` holds the sender; wait forever rather than guess.
            Err(_) => std::future::pending().await,
        }
    }

    /// A write outside the flusher failed in a way that leaves the database unusable until it
    /// is reopened (sled keeps an I/O error and fails every later write): same as a failed flush.
    pub fn declare_lost(&self, error: String) {
        self.lost.send_if_modified(|lost| {
            if lost.is_some() {
                return false;
            }
            tracing::error!(%error, "database write failed: acknowledging nothing more");
            *lost = Some(error);
            true
        });
    }

    /// Flushes run so far.
    pub fn flush_count(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
}

async fn run_flusher<F, E>(
    mut rx: mpsc::UnboundedReceiver<Waiter>,
    flush: Arc<F>,
    flushes: Arc<AtomicU64>,
    lost: Arc<watch::Sender<Option<String>>>,
) where
    F: Fn() -> Result<(), E> + Send + Sync + 'static,
    E: std::fmt::Display + 'static,
{
    let mut waiters = Vec::new();
    while rx.recv_many(&mut waiters, usize::MAX).await > 0 {
        if let Some(error) = lost.borrow().clone() {
            for waiter in waiters.drain(..) {
                let _ = waiter.send(Err(DurabilityError::Lost(error.clone())));
            }
            continue;
        }
        // Everything queued so far was queued before this flush starts.
        let started = Instant::now();
        let flush = flush.clone();
        let result = tokio::task::spawn_blocking(move || flush().map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|e| Err(format!("flush task failed: {e}")));
        flushes.fetch_add(1, Ordering::Relaxed);
        match &result {
            Ok(()) => tracing::debug!(
                waiters = waiters.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "group commit flushed"
            ),
            Err(error) => {
                tracing::error!(
                    waiters = waiters.len(),
                    %error,
                    "group commit flush failed: acknowledging nothing more"
                );
                lost.send_if_modified(|lost| {
                    lost.get_or_insert_with(|| error.clone());
                    true
                });
            }
        }
        let result = result.map_err(DurabilityError::Flush);
        for waiter in waiters.drain(..) {
            // A writer that gave up (client went away) no longer listens; nothing to do.
            let _ = waiter.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_writers_share_few_flushes() {
        let (commit, _task) = GroupCommit::spawn(|| {
            std::thread::sleep(Duration::from_millis(20));
            Ok::<(), String>(())
        });
        let writers: Vec<_> = (0..200)
            .map(|_| {
                let commit = commit.clone();
                tokio::spawn(async move { commit.durable().await })
            })
            .collect();
        for writer in writers {
            assert_eq!(writer.await.expect("join"), Ok(()));
        }
        let flushes = commit.flush_count();
        assert!((1..200).contains(&flushes), "flushes = {flushes}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flush_in_progress_does_not_answer_later_waiters() {
        // The flush records whether the "write" had happened when it started.
        let written = Arc::new(AtomicBool::new(false));
        let covered = Arc::new(AtomicBool::new(false));
        let (w, c) = (written.clone(), covered.clone());
        let (commit, _task) = GroupCommit::spawn(move || {
            let seen = w.load(Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(50));
            c.store(seen, Ordering::SeqCst);
            Ok::<(), String>(())
        });
        let early = {
            let commit = commit.clone();
            tokio::spawn(async move { commit.durable().await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await; // the first flush is running
        written.store(true, Ordering::SeqCst);
        commit.durable().await.expect("durable");
        assert!(
            covered.load(Ordering::SeqCst),
            "answered by a flush that started before the write"
        );
        early.await.expect("join").expect("durable");
        assert_eq!(commit.flush_count(), 2);
    }

    #[tokio::test]
    async fn flush_errors_reach_every_waiter() {
        let (commit, _task) = GroupCommit::spawn(|| Err("disk on fire"));
        let error = commit.durable().await.expect_err("must fail");
        assert_eq!(error, DurabilityError::Flush("disk on fire".into()));
    }

    #[tokio::test]
    async fn after_a_failed_flush_nothing_is_durable_any_more() {
        // The first flush fails, every later one would succeed: they must not run.
        let calls = Arc::new(AtomicU64::new(0));
        let seen = calls.clone();
        let (commit, _task) = GroupCommit::spawn(move || {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                Err("EIO")
            } else {
                Ok(())
            }
        });
        assert!(commit.check().is_ok());
        assert_eq!(
            commit.durable().await,
            Err(DurabilityError::Flush("EIO".into()))
        );
        assert_eq!(commit.lost().await, "EIO");
        for _ in 0..3 {
            assert_eq!(
                commit.durable().await,
                Err(DurabilityError::Lost("EIO".into()))
            );
        }
        assert_eq!(commit.check(), Err(DurabilityError::Lost("EIO".into())));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "no flush after the failure"
        );
    }
}
