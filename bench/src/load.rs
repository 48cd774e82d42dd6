//! Load patterns against the agent listener: a closed loop (every agent sends its next batch as
//! soon as the previous one is acknowledged: the most the collector sustains) and an open loop
//! (each agent sends on its own fixed schedule, so latency is measured from when a batch was
//! due, not from when it could be sent: no coordinated omission).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tokio::sync::Mutex;

use crate::fleet::SimAgent;
use crate::payload;
use crate::stats::Latencies;

/// What one load run measured (only batches acknowledged inside the measured window count).
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    pub window: Duration,
    pub reports_acked: u64,
    pub batches: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub latencies: Latencies,
}

impl LoadResult {
    pub fn reports_per_second(&self) -> f64 {
        self.reports_acked as f64 / self.window.as_secs_f64().max(1e-9)
    }
}

#[derive(Default)]
struct Shared {
    reports_acked: u64,
    batches: u64,
    errors: u64,
    first_error: Option<String>,
    latencies: Vec<Duration>,
}

/// The schedule of one load run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub batch: usize,
    pub warmup: Duration,
    pub measure: Duration,
    /// `None`: closed loop. `Some(rate)`: open loop at `rate` reports per second in total.
    pub rate: Option<f64>,
}

async fn send(agent: &mut SimAgent, seq: &mut u64, size: usize) -> Result<usize, String> {
    let batch = payload::batch(agent.index, seq, size);
    match agent.client.report(batch).await {
        Ok(ack) => {
            let ack = ack.into_inner();
            if !ack.rejected.is_empty() {
                return Err(format!("rejected: {:?}", ack.rejected[0]));
            }
            Ok(ack.stored_ids.len())
        }
        Err(status) => Err(format!("{:?}: {}", status.code(), status.message())),
    }
}

/// Runs `plan` with every agent of `agents`; returns what the measured window saw.
pub async fn run(agents: &[SimAgent], plan: Plan) -> Result<LoadResult> {
    if agents.is_empty() {
        bail!("no agents to load with");
    }
    let shared = Arc::new(Mutex::new(Shared::default()));
    let start = Instant::now();
    let window_start = start + plan.warmup;
    let end = window_start + plan.measure;
    let period = plan
        .rate
        .map(|rate| Duration::from_secs_f64(agents.len() as f64 * plan.batch as f64 / rate));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, agent) in agents.iter().enumerate() {
        let mut agent = agent.clone();
        let shared = shared.clone();
        let offset = period.map(|p| p.mul_f64(i as f64 / agents.len() as f64));
        tasks.spawn(async move {
            let mut seq = 0u64;
            let mut due = start + offset.unwrap_or_default();
            loop {
                if period.is_some() {
                    tokio::time::sleep_until(due.into()).await;
                }
                if Instant::now() >= end || due >= end {
                    break;
                }
                // Open loop: latency counts from when the batch was due.
                let sent_at = if period.is_some() {
                    due
                } else {
                    Instant::now()
                };
                let result = send(&mut agent, &mut seq, plan.batch).await;
                let acked_at = Instant::now();
                if let Some(p) = period {
                    due += p;
                }
                let mut s = shared.lock().await;
                match result {
                    Ok(n)
                        if acked_at >= window_start
                            && acked_at <= end
                            && sent_at >= window_start =>
                    {
                        s.reports_acked += n as u64;
                        s.batches += 1;
                        s.latencies.push(acked_at - sent_at);
                    }
                    Ok(_) => {}
                    Err(error) => {
                        s.errors += 1;
                        s.first_error.get_or_insert(error);
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let s = std::mem::take(&mut *shared.lock().await);
    Ok(LoadResult {
        window: plan.measure,
        reports_acked: s.reports_acked,
        batches: s.batches,
        errors: s.errors,
        first_error: s.first_error,
        latencies: Latencies::from(s.latencies),
    })
}
