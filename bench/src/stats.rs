//! Latency percentiles from a sorted vector (exact, no histogram buckets).

use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Latencies(Vec<Duration>);

impl From<Vec<Duration>> for Latencies {
    fn from(mut v: Vec<Duration>) -> Self {
        v.sort_unstable();
        Latencies(v)
    }
}

impl Latencies {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `p`-th percentile (0 < p ≤ 100) in milliseconds, nearest rank; `None` if empty.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.0.len()) - 1;
        Some(self.0[i].as_secs_f64() * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let l = Latencies::from(
            (1..=100)
                .rev()
                .map(Duration::from_millis)
                .collect::<Vec<_>>(),
        );
        assert_eq!(l.percentile_ms(50.0), Some(50.0));
        assert_eq!(l.percentile_ms(99.0), Some(99.0));
        assert_eq!(l.percentile_ms(100.0), Some(100.0));
        assert_eq!(Latencies::default().percentile_ms(50.0), None);
    }
}
