//! The event log when the disk fills up in the middle of an append: the kernel writes what fits
//! and returns a short count, and the log must be left exactly as it was rather than with a
//! torn line. A file size limit (RLIMIT_FSIZE) stands in for the full disk here: a write that
//! crosses it is cut short the same way (write(2), "EFBIG"; Linux's generic_write_checks). The
//! guest suite (tests/vm/guest/faults.sh) fills a real tmpfs.
//!
//! Its own test binary: the limit is per process, and no other test may write files meanwhile.

use std::fs;

use corral::monitor::postmortem::{EventLog, PostMortem};

fn record(unit: &str) -> PostMortem {
    serde_json::from_value(serde_json::json!({
        "app_name": "Firefox",
        "app_id": "firefox",
        "unit": unit,
        "preset": "browser",
        "limits": {"memory_high_bytes": null, "memory_max_bytes": 4294967296u64, "cpu_quota_percent": null},
        "peak_memory_bytes": 4294967296u64,
        "started_at": 1700000000,
        "ended_at": 1700000600,
        "cause": {"kind": "oom-kill"},
        "result": "oom-kill",
        "oom_kills": 1,
    }))
    .unwrap()
}

fn set_file_size_limit(bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall on a struct we own.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &limit) }, 0);
}

#[test]
fn an_append_cut_short_by_a_full_disk_leaves_the_log_as_it_was() {
    // A write that starts past the limit would raise SIGXFSZ, which ends the process.
    // SAFETY: ignoring a signal, before any thread of ours writes files.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::new(dir.path().join("events.jsonl"));
    log.append(&record("app-corral-firefox-00000001.service"))
        .unwrap();
    let before = fs::read(log.path()).unwrap();

    // Room for 40 more bytes: the next record (some 300) only partly fits.
    set_file_size_limit(before.len() as u64 + 40);
    let error = log
        .append(&record("app-corral-firefox-00000002.service"))
        .unwrap_err();
    let after = fs::read(log.path()).unwrap();
    set_file_size_limit(libc::RLIM_INFINITY);

    let message = error.to_string();
    assert!(message.contains("is the disk full?"), "{message}");
    assert!(message.contains("only 40 of"), "{message}");
    assert_eq!(
        String::from_utf8_lossy(&after),
        String::from_utf8_lossy(&before),
        "the log is as it was"
    );
    // And the next append, with room again, is whole.
    log.append(&record("app-corral-firefox-00000003.service"))
        .unwrap();
    let contents = log.read().unwrap();
    assert_eq!(contents.skipped_lines, 0);
    assert_eq!(contents.records.len(), 2);
}
