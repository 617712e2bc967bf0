//! Latency summaries (exact percentiles over every sample) as they appear in the JSON report.

use serde::Serialize;
use std::time::Duration;

/// Percentiles of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    /// Nearest-rank percentiles; an empty set gives all zeros with `count` 0.
    pub fn of(samples: &mut [Duration]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let rank = |p: f64| {
            let i = (p / 100.0 * samples.len() as f64).ceil() as usize;
            samples[i.clamp(1, samples.len()) - 1]
        };
        let total: Duration = samples.iter().sum();
        Self {
            count: samples.len(),
            p50_ms: ms(rank(50.0)),
            p95_ms: ms(rank(95.0)),
            p99_ms: ms(rank(99.0)),
            max_ms: ms(samples[samples.len() - 1]),
            mean_ms: ms(total) / samples.len() as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let l = Latency::of(&mut v);
        assert_eq!(l.count, 100);
        assert_eq!(l.p50_ms, 50.0);
        assert_eq!(l.p95_ms, 95.0);
        assert_eq!(l.p99_ms, 99.0);
        assert_eq!(l.max_ms, 100.0);
        assert!((l.mean_ms - 50.5).abs() < 1e-9);
    }

    #[test]
    fn empty_is_zero() {
        assert_eq!(Latency::of(&mut []), Latency::default());
    }
}
