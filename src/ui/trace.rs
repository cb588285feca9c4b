//! The recent history the window's graphs draw: a fixed-size ring of memory and CPU points per
//! unit, plus the state changes (freeze, thaw, OOM kill) seen on the way.

use std::collections::VecDeque;
use std::time::SystemTime;

use crate::monitor::UnitSnapshot;
use crate::ui::unit_row::state_text;

#[derive(Debug, Clone, Copy)]
struct Point {
    at: SystemTime,
    memory: Option<u64>,
    cpu: Option<f64>,
}

#[derive(Debug, Default)]
pub struct Trace {
    points: VecDeque<Point>,
    events: VecDeque<(SystemTime, String)>,
    last_state: &'static str,
    last_oom_kills: u64,
}

impl Trace {
    /// Ten minutes at the default one-second refresh.
    const CAPACITY: usize = 600;
    pub const SPAN_SECS: f64 = 600.0;

    pub fn record(&mut self, snap: &UnitSnapshot, at: SystemTime) {
        let c = snap.cgroup.as_ref();
        if self.points.len() == Self::CAPACITY {
            self.points.pop_front();
        }
        self.points.push_back(Point {
            at,
            memory: c.and_then(|c| c.memory_current),
            cpu: snap.cpu_percent,
        });
        let state = state_text(snap);
        if !self.last_state.is_empty() && state != self.last_state {
            self.event(at, state);
        }
        self.last_state = state;
        let kills = c
            .and_then(|c| c.memory_events.as_ref())
            .and_then(|e| e.oom_kill)
            .unwrap_or(0);
        // The first sample only sets the baseline.
        if self.points.len() > 1 && kills > self.last_oom_kills {
            self.event(at, "OOM kill");
        }
        self.last_oom_kills = kills;
    }

    fn event(&mut self, at: SystemTime, what: &str) {
        if self.events.len() == 32 {
            self.events.pop_front();
        }
        self.events.push_back((at, what.to_owned()));
    }

    fn ago(now: SystemTime, at: SystemTime) -> f64 {
        now.duration_since(at)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }

    pub fn memory_points(&self, now: SystemTime) -> Vec<(f64, f64)> {
        self.points
            .iter()
            .filter_map(|p| Some((Self::ago(now, p.at), p.memory? as f64)))
            .collect()
    }

    pub fn cpu_points(&self, now: SystemTime) -> Vec<(f64, f64)> {
        self.points
            .iter()
            .filter_map(|p| Some((Self::ago(now, p.at), p.cpu?)))
            .collect()
    }

    pub fn events(&self, now: SystemTime) -> Vec<(f64, String)> {
        self.events
            .iter()
            .map(|(at, what)| (Self::ago(now, *at), what.clone()))
            .collect()
    }
}
