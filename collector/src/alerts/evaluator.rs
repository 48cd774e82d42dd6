//! The evaluator task: evaluates an agent when its reports were stored (after the ack, so the
//! ack path only pays for a channel send) and every agent on a timer (missing backups, silent
//! agents). Evaluations run one at a time on the blocking pool.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::engine::AlertEngine;
use crate::group_commit::GroupCommit;

/// Asks the evaluator to look at an agent; cheap to clone.
#[derive(Debug, Clone)]
pub struct Evaluator {
    queue: mpsc::UnboundedSender<String>,
}

impl Evaluator {
    /// Queues an evaluation of the agent; never blocks.
    pub fn request(&self, agent_id: &str) {
        // A closed queue means the collector is stopping: nothing left to evaluate for.
        let _ = self.queue.send(agent_id.to_owned());
    }
}

/// Starts the evaluator; it stops when `stop` turns true.
pub fn spawn(
    engine: Arc<AlertEngine>,
    commit: GroupCommit,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> (Evaluator, JoinHandle<()>) {
    let (queue, mut rx) = mpsc::unbounded_channel::<String>();
    let task = tokio::spawn(async move {
        let mut timer = tokio::time::interval(every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::new();
        loop {
            let agents: Option<BTreeSet<String>> = tokio::select! {
                n = rx.recv_many(&mut batch, 1024) => {
                    if n == 0 {
                        break;
                    }
                    Some(batch.drain(..).collect())
                }
                _ = timer.tick() => None,
                _ = stop.wait_for(|s| *s) => break,
            };
            let engine = engine.clone();
            let result = tokio::task::spawn_blocking(move || match agents {
                Some(agents) => agents.iter().fold(0, |n, id| {
                    // One agent's failure never costs the others their evaluation.
                    match engine.evaluate_agent(id) {
                        Ok(changed) => n + changed,
                        Err(error) => {
                            tracing::error!(agent_id = %id, %error, "alert evaluation of an agent failed");
                            n
                        }
                    }
                }),
                None => engine.evaluate_all(),
            })
            .await;
            match result {
                Ok(0) => {}
                Ok(changed) => {
                    if let Err(error) = commit.durable().await {
                        tracing::error!(%error, changed, "alert changes not flushed");
                    }
                }
                Err(error) => tracing::error!(%error, "alert evaluation task failed"),
            }
        }
        tracing::debug!("alert evaluator stopped");
    });
    (Evaluator { queue }, task)
}
