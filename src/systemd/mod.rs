//! Talking to systemd: unit names, the pure property builder, and a typed D-Bus client for the
//! user manager (default) or the system manager.

pub mod client;
pub mod names;
pub mod properties;
pub mod proxy;

pub use client::{EndWatch, EndWatches, Systemd, SystemdError, UnitOutcome};
pub use names::{Launcher, UnitKind};
pub use properties::{ManagerKind, TransientSpec};
