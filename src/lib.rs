//! Corral: launch desktop apps in systemd transient units with resource limits, and watch them.
//!
//! The library holds all of Corral's logic so that the binary, the tests and the benchmarks
//! share one engine; see DESIGN in the README for how the layers depend on each other.

pub mod limits;
