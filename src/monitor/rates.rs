//! Rates from cumulative counters: CPU % from cpu.stat usage_usec deltas.

use std::time::Instant;

/// One reading of a cumulative CPU-time counter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuReading {
    pub at: Instant,
    pub usage_usec: u64,
}

/// CPU use between two readings in percent of one CPU (200 % = two CPUs busy).
/// `None` when the readings are too close to tell or the counter went backwards (a new
/// cgroup under the same unit name).
pub fn cpu_percent(previous: CpuReading, current: CpuReading) -> Option<f64> {
    let wall = current.at.checked_duration_since(previous.at)?.as_micros() as f64;
    let used = current.usage_usec.checked_sub(previous.usage_usec)? as f64;
    (wall >= 1_000.0).then(|| used / wall * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn percent_of_one_cpu() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let r = |ms, usage_usec| CpuReading {
            at: at(ms),
            usage_usec,
        };
        assert_eq!(cpu_percent(r(0, 0), r(1000, 200_000)), Some(20.0));
        assert_eq!(cpu_percent(r(0, 0), r(500, 1_000_000)), Some(200.0));
        assert_eq!(cpu_percent(r(0, 5), r(1000, 5)), Some(0.0));
        assert_eq!(cpu_percent(r(0, 500), r(1000, 100)), None, "counter reset");
        assert_eq!(
            cpu_percent(r(1000, 0), r(0, 100)),
            None,
            "time went backwards"
        );
        assert_eq!(cpu_percent(r(0, 0), r(0, 100)), None, "no time passed");
    }
}
