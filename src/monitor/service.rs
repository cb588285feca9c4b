//! The long-running monitor the window and the tray render: keeps the list of contained units
//! current from systemd's UnitNew/UnitRemoved signals, samples their cgroups at the refresh
//! interval, and publishes each result on a watch channel. One per process.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use tokio::sync::{Notify, watch};

use crate::cgroup::CgroupFs;
use crate::monitor::{self, Sampler, UnitSnapshot};
use crate::systemd::Systemd;

/// Units that might be apps; other units' signals do not trigger a new listing.
fn may_be_app_unit(name: &str) -> bool {
    (name.starts_with("app-") || name.starts_with("run-"))
        && (name.ends_with(".service") || name.ends_with(".scope"))
}

/// Even without signals, list again this often: a safety net for missed signals.
const RELIST_EVERY: Duration = Duration::from_secs(10);

/// What the views show: every contained unit's latest snapshot.
#[derive(Debug, Clone, Default)]
pub struct MonitorState {
    pub units: Vec<UnitSnapshot>,
    pub sampled_at: Option<SystemTime>,
    /// Set while systemd cannot be listed; the views show it instead of failing.
    pub problem: Option<String>,
}

/// A running monitor: its latest state, and ways to nudge it.
#[derive(Clone)]
pub struct Monitor {
    state: watch::Receiver<Arc<MonitorState>>,
    refresh: Arc<Notify>,
    interval: watch::Sender<Duration>,
}

impl Monitor {
    /// Starts the monitor on the current tokio runtime.
    pub fn spawn(systemd: Systemd, cgroups: CgroupFs, interval: Duration) -> Monitor {
        let (state_tx, state) = watch::channel(Arc::new(MonitorState::default()));
        let refresh = Arc::new(Notify::new());
        let (interval_tx, interval_rx) = watch::channel(interval);
        tokio::spawn(run(
            systemd,
            cgroups,
            state_tx,
            Arc::clone(&refresh),
            interval_rx,
        ));
        Monitor {
            state,
            refresh,
            interval: interval_tx,
        }
    }

    /// A receiver that wakes on every new state.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MonitorState>> {
        self.state.clone()
    }

    pub fn latest(&self) -> Arc<MonitorState> {
        self.state.borrow().clone()
    }

    /// Lists and samples again now, e.g. right after an action changed something.
    pub fn refresh(&self) {
        self.refresh.notify_one();
    }

    pub fn set_interval(&self, interval: Duration) {
        let _ = self.interval.send(interval);
    }
}

async fn run(
    systemd: Systemd,
    cgroups: CgroupFs,
    state: watch::Sender<Arc<MonitorState>>,
    refresh: Arc<Notify>,
    mut interval: watch::Receiver<Duration>,
) {
    let mut sampler = Sampler::new(cgroups);
    let manager = systemd.manager().clone();
    let (mut new_units, mut removed_units) = match (
        manager.receive_unit_new().await,
        manager.receive_unit_removed().await,
    ) {
        (Ok(new), Ok(removed)) => (Some(new), Some(removed)),
        _ => (None, None),
    };
    let mut units = Vec::new();
    let mut listed_at: Option<tokio::time::Instant> = None;
    let mut problem = None;
    let mut must_list = true;
    let mut ticker = tokio::time::interval(*interval.borrow());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if must_list || listed_at.is_none_or(|t| t.elapsed() >= RELIST_EVERY) {
            match monitor::list_units(&systemd, true).await {
                Ok(list) => {
                    units = list;
                    problem = None;
                }
                Err(e) => problem = Some(e.to_string()),
            }
            listed_at = Some(tokio::time::Instant::now());
            must_list = false;
        }
        let snapshot = MonitorState {
            units: sampler.sample(&units),
            sampled_at: Some(SystemTime::now()),
            problem: problem.clone(),
        };
        if state.send(Arc::new(snapshot)).is_err() {
            return; // nobody watches any more
        }
        // Wait for the next tick, or earlier when units come or go.
        loop {
            tokio::select! {
                _ = ticker.tick() => break,
                _ = refresh.notified() => { must_list = true; break }
                Ok(()) = interval.changed() => {
                    ticker = tokio::time::interval(*interval.borrow());
                    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                }
                Some(signal) = next(&mut new_units) => {
                    if signal.args().is_ok_and(|a| may_be_app_unit(&a.id)) {
                        must_list = true;
                        break;
                    }
                }
                Some(signal) = next(&mut removed_units) => {
                    if signal.args().is_ok_and(|a| may_be_app_unit(&a.id)) {
                        must_list = true;
                        break;
                    }
                }
            }
        }
    }
}

/// The next item of an optional stream; never ready when there is no stream.
async fn next<S: futures_util::Stream + Unpin>(stream: &mut Option<S>) -> Option<S::Item> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_app_units_trigger_a_listing() {
        assert!(may_be_app_unit("app-corral-firefox-12345678.service"));
        assert!(may_be_app_unit("run-u12.scope"));
        assert!(!may_be_app_unit("app.slice"));
        assert!(!may_be_app_unit("dbus.service"));
        assert!(!may_be_app_unit("app-gnome-x.slice"));
    }
}
