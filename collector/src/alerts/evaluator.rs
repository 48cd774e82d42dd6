//! The evaluator task: evaluates an agent when its reports were stored (after the ack, so the
//! ack path only pays for a channel send) and every agent on a timer (missing backups, silent
//! agents). Evaluations run one at a time on the blocking pool, each agent at most once per
//! [`AGENT_GAP`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::engine::AlertEngine;
use crate::group_commit::GroupCommit;

/// The shortest time between two evaluations of one agent. An agent sending its backlog
/// delivers a batch every few milliseconds, and evaluating after each would cost more than
/// storing them; an evaluation reads the facts recorded until it starts, so one after the gap
/// judges every batch that came meanwhile. A request after a quiet gap is evaluated at once: a
/// lone failed backup alerts without waiting.
pub const AGENT_GAP: Duration = Duration::from_millis(50);

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

/// Which requested agents are evaluated now, and which wait for the end of their
/// [`AGENT_GAP`].
#[derive(Debug, Default)]
struct AgentGaps {
    /// When each agent's last evaluation started; only those within the gap are kept.
    recent: HashMap<String, Instant>,
    /// Agents asked for again within their gap, with when it ends.
    deferred: HashMap<String, Instant>,
}

impl AgentGaps {
    /// The agent, if it is to be evaluated now; else it waits for its gap to end.
    fn request(&mut self, agent: String, now: Instant) -> Option<String> {
        if self.deferred.contains_key(&agent) {
            return None;
        }
        match self.recent.get(&agent) {
            Some(last) if now < *last + AGENT_GAP => {
                self.deferred.insert(agent, *last + AGENT_GAP);
                None
            }
            _ => Some(agent),
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.deferred.values().min().copied()
    }

    /// The deferred agents whose gap has ended.
    fn take_due(&mut self, now: Instant) -> BTreeSet<String> {
        let mut due = BTreeSet::new();
        self.deferred.retain(|agent, end| {
            let waiting = *end > now;
            if !waiting {
                due.insert(agent.clone());
            }
            waiting
        });
        due
    }

    /// Notes that these agents' evaluation starts now.
    fn started(&mut self, agents: &BTreeSet<String>, now: Instant) {
        self.recent.retain(|_, last| now < *last + AGENT_GAP);
        for agent in agents {
            self.recent.insert(agent.clone(), now);
        }
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
        let mut gaps = AgentGaps::default();
        loop {
            let due = gaps.next_due();
            let agents: Option<BTreeSet<String>> = tokio::select! {
                n = rx.recv_many(&mut batch, 1024) => {
                    if n == 0 {
                        break;
                    }
                    let now = Instant::now();
                    Some(batch.drain(..).filter_map(|agent| gaps.request(agent, now)).collect())
                }
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    Some(gaps.take_due(Instant::now()))
                }
                _ = timer.tick() => None,
                _ = stop.wait_for(|s| *s) => break,
            };
            if let Some(ready) = &agents {
                if ready.is_empty() {
                    continue;
                }
                gaps.started(ready, Instant::now());
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_is_evaluated_at_once_then_at_most_once_per_gap() {
        let mut gaps = AgentGaps::default();
        let t0 = Instant::now();
        let ready = |gaps: &mut AgentGaps, agent: &str, at: Instant| gaps.request(agent.into(), at);
        // A first request, and one for another agent: both at once.
        assert_eq!(ready(&mut gaps, "a", t0).as_deref(), Some("a"));
        gaps.started(&BTreeSet::from(["a".to_string()]), t0);
        assert_eq!(ready(&mut gaps, "b", t0).as_deref(), Some("b"));
        // Asked again within its gap, twice: one evaluation, when the gap ends.
        let soon = t0 + AGENT_GAP / 4;
        assert_eq!(ready(&mut gaps, "a", soon), None);
        assert_eq!(ready(&mut gaps, "a", soon + AGENT_GAP / 4), None);
        assert_eq!(gaps.next_due(), Some(t0 + AGENT_GAP));
        assert!(gaps.take_due(soon).is_empty(), "not before its gap ends");
        assert_eq!(
            gaps.take_due(t0 + AGENT_GAP),
            BTreeSet::from(["a".to_string()])
        );
        assert_eq!(gaps.next_due(), None, "nothing left waiting");
        // After a quiet gap, at once again.
        let later = t0 + AGENT_GAP * 3;
        gaps.started(&BTreeSet::new(), later);
        assert_eq!(ready(&mut gaps, "a", later).as_deref(), Some("a"));
    }
}
