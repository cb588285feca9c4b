//! The monitor's sweep timer: one wakeup per tick.
//!
//! tokio's timers live in a hierarchical wheel. A timer more than 64 ms out sits in a coarse
//! slot, and the runtime's thread wakes at the start of that slot only to move it to a finer
//! one, then again at its deadline: every sweep a second apart cost its thread two wakeups,
//! and each wakeup of an idle thread is what an app in the panel all day must not spend (it
//! is also the dearest thing under emulation, where a context switch flushes the emulated TLB).
//! A timerfd wakes the thread once, at the deadline, through the runtime's epoll.

use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A periodic tick that, when late, waits a whole period again rather than catching up (as
/// tokio's `MissedTickBehavior::Delay`). The first tick comes at once.
pub struct Ticker {
    period: Duration,
    clock: Clock,
}

enum Clock {
    Timerfd(AsyncFd<OwnedFd>),
    /// Where no timerfd can be made (out of descriptors): tokio's timer, two wakeups a tick.
    Tokio(tokio::time::Interval),
}

impl Ticker {
    /// Must be called within a tokio runtime with I/O enabled.
    pub fn new(period: Duration) -> Ticker {
        let clock = match Self::timerfd() {
            Some(fd) => Clock::Timerfd(fd),
            None => Clock::Tokio(tokio_interval(period)),
        };
        let mut ticker = Ticker { period, clock };
        ticker.arm(Duration::ZERO);
        ticker
    }

    fn timerfd() -> Option<AsyncFd<OwnedFd>> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .ok()?;
        // SAFETY: an OwnedFd keeps its one descriptor open, unchanged, until it is dropped.
        unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.ok()
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// The next tick comes a whole period from now.
    pub fn reset(&mut self) {
        self.arm(self.period);
    }

    /// Ticks every `period` from now on, the next a whole `period` from now.
    pub fn set_period(&mut self, period: Duration) {
        self.period = period;
        if let Clock::Tokio(interval) = &mut self.clock {
            *interval = tokio_interval(period);
        }
        self.reset();
    }

    /// Waits for the next tick; the one after it is armed a period from when this one came.
    pub async fn tick(&mut self) {
        match &mut self.clock {
            Clock::Tokio(interval) => {
                interval.tick().await;
            }
            Clock::Timerfd(fd) => loop {
                let Ok(mut guard) = fd.readable().await else {
                    // The runtime is shutting down: no more ticks.
                    return std::future::pending().await;
                };
                let mut expirations = [0u8; 8];
                match rustix::io::read(guard.get_inner(), &mut expirations) {
                    Ok(_) => {
                        // Read to empty: the next expiry is a new edge for the runtime's epoll.
                        guard.clear_ready();
                        break;
                    }
                    // Not expired yet (a wakeup the reset made stale): wait again.
                    Err(rustix::io::Errno::AGAIN) => guard.clear_ready(),
                    Err(_) => {
                        guard.clear_ready();
                        break;
                    }
                }
            },
        }
        // One-shot, re-armed here: a late tick never brings a burst of catching up.
        self.arm(self.period);
    }

    /// The next tick `after` from now (zero: at once).
    fn arm(&mut self, after: Duration) {
        match &mut self.clock {
            Clock::Tokio(interval) => {
                if !after.is_zero() {
                    interval.reset();
                }
            }
            Clock::Timerfd(fd) => {
                // A zero it_value disarms a timerfd: "at once" is the shortest non-zero time.
                let value =
                    Timespec::try_from(after.max(Duration::from_nanos(1))).unwrap_or(Timespec {
                        tv_sec: i64::MAX,
                        tv_nsec: 0,
                    });
                let zero = Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                let spec = Itimerspec {
                    it_interval: zero,
                    it_value: value,
                };
                // Only EINVAL is possible, for values the conversion above cannot produce.
                let _ = timerfd_settime(fd.get_ref(), TimerfdTimerFlags::empty(), &spec);
            }
        }
    }
}

fn tokio_interval(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    // Each bound below is measured from before the call that arms the timer, so that it holds
    // however long the test is held up between the calls on a busy machine.
    const PERIOD: Duration = Duration::from_millis(80);

    #[tokio::test]
    async fn the_first_tick_comes_at_once() {
        let mut ticker = Ticker::new(Duration::from_secs(3600));
        assert!(matches!(ticker.clock, Clock::Timerfd(_)));
        let first = tokio::time::timeout(Duration::from_secs(60), ticker.tick()).await;
        assert!(first.is_ok(), "the first tick does not wait for a period");
    }

    #[tokio::test]
    async fn ticks_come_a_period_apart() {
        let start = Instant::now();
        let mut ticker = Ticker::new(PERIOD);
        ticker.tick().await;
        ticker.tick().await;
        ticker.tick().await;
        assert!(start.elapsed() >= PERIOD * 2);
    }

    #[tokio::test]
    async fn a_reset_puts_the_next_tick_a_whole_period_out() {
        let mut ticker = Ticker::new(PERIOD);
        ticker.tick().await;
        tokio::time::sleep(PERIOD / 2).await;
        let reset_at = Instant::now();
        ticker.reset();
        ticker.tick().await;
        assert!(reset_at.elapsed() >= PERIOD);
        // A new ticker reset before its first tick waits too.
        let start = Instant::now();
        let mut ticker = Ticker::new(PERIOD);
        ticker.reset();
        ticker.tick().await;
        assert!(start.elapsed() >= PERIOD);
    }

    #[tokio::test]
    async fn a_new_period_starts_from_now() {
        let mut ticker = Ticker::new(PERIOD);
        ticker.tick().await;
        let start = Instant::now();
        ticker.set_period(PERIOD * 2);
        ticker.tick().await;
        assert!(start.elapsed() >= PERIOD * 2);
        ticker.tick().await;
        assert!(start.elapsed() >= PERIOD * 4, "the new period holds");
    }

    #[tokio::test]
    async fn a_late_tick_does_not_catch_up() {
        let mut ticker = Ticker::new(PERIOD);
        ticker.tick().await;
        // Busy for three periods: one tick is due, not three.
        std::thread::sleep(PERIOD * 3);
        let late = Instant::now();
        ticker.tick().await;
        ticker.tick().await;
        assert!(late.elapsed() >= PERIOD, "no burst after a late tick");
    }
}
