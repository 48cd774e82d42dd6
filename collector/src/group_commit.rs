//! Group commit: many writers wait for durability, one flusher flushes for all of them.
//!
//! A writer does its inserts, then awaits [`GroupCommit::durable`], which queues a waiter. The
//! flusher task takes every queued waiter, runs one flush (on the blocking pool) and wakes them
//! all with its result. A waiter is only ever answered by a flush that *started after* it was
//! queued, so the writes it made before queueing are always covered; a waiter that arrives
//! while a flush runs stays queued for the next one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurabilityError {
    #[error("flush to disk failed: {0}")]
    Flush(String),
    #[error("the flusher has stopped (collector shutting down)")]
    Stopped,
}

type Waiter = oneshot::Sender<Result<(), DurabilityError>>;

/// Handle writers use to wait for durability; cheap to clone.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    queue: mpsc::UnboundedSender<Waiter>,
    flushes: Arc<AtomicU64>,
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
        let task = tokio::spawn(run_flusher(rx, Arc::new(flush), flushes.clone()));
        (GroupCommit { queue, flushes }, task)
    }

    /// Waits until a flush that started after this call has completed.
    pub async fn durable(&self) -> Result<(), DurabilityError> {
        let (tx, rx) = oneshot::channel();
        self.queue.send(tx).map_err(|_| DurabilityError::Stopped)?;
        rx.await.map_err(|_| DurabilityError::Stopped)?
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
) where
    F: Fn() -> Result<(), E> + Send + Sync + 'static,
    E: std::fmt::Display + 'static,
{
    let mut waiters = Vec::new();
    while rx.recv_many(&mut waiters, usize::MAX).await > 0 {
        // Everything queued so far was queued before this flush starts.
        let started = Instant::now();
        let flush = flush.clone();
        let result = tokio::task::spawn_blocking(move || flush().map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|e| Err(format!("flush task failed: {e}")))
            .map_err(DurabilityError::Flush);
        flushes.fetch_add(1, Ordering::Relaxed);
        match &result {
            Ok(()) => tracing::debug!(
                waiters = waiters.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "group commit flushed"
            ),
            Err(error) => {
                tracing::error!(waiters = waiters.len(), %error, "group commit flush failed")
            }
        }
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
}
