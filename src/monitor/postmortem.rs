//! Post-mortems (in progress).
