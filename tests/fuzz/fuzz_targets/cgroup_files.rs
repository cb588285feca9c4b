//! Every cgroup interface file parser of src/cgroup/parse.rs on any text, as a garbage or
//! truncated kernel file would give. Beyond "no panic": errors name line 1..=lines and stay
//! short however long the garbage, values print back to the kernel's text, and a parsed
//! pressure file holds only percentages a kernel could write.
#![no_main]

use corral::cgroup::{self as parse, Limit, ParseError, PressureLine};
use libfuzzer_sys::fuzz_target;

fn check_error(text: &str, error: &ParseError) {
    let lines = text.lines().count().max(1);
    assert!(
        (1..=lines).contains(&error.line),
        "line {} of {lines}",
        error.line
    );
    // Quoted garbage is cut at 40 characters: a message fits on a screen.
    assert!(error.message.chars().count() <= 120, "{}", error.message);
}

fn check_pressure_line(text: &str, line: &PressureLine) {
    for avg in [line.avg10, line.avg60, line.avg300] {
        assert!((0.0..=100.0).contains(&avg), "{text:?}: average {avg}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse::parse_u64(text) {
        Ok(n) => assert_eq!(parse::parse_u64(&n.to_string()), Ok(n)),
        Err(e) => check_error(text, &e),
    }
    match parse::parse_limit(text) {
        Ok(limit) => {
            assert_eq!(parse::parse_limit(&format!("{limit}\n")), Ok(limit));
            assert_eq!(limit.is_max(), text.trim() == "max");
        }
        Err(e) => check_error(text, &e),
    }
    match parse::parse_bool(text) {
        Ok(on) => assert_eq!(text.trim(), if on { "1" } else { "0" }),
        Err(e) => check_error(text, &e),
    }
    match parse::parse_cpu_max(text) {
        Ok(max) => {
            let shown = format!("{} {}\n", max.quota, max.period_usec);
            assert_eq!(parse::parse_cpu_max(&shown), Ok(max));
            if let (Limit::Value(_), 0) = (max.quota, max.period_usec) {
                assert_eq!(max.cpus(), None);
            }
        }
        Err(e) => check_error(text, &e),
    }
    let pairs: Vec<_> = parse::parse_flat_keyed(text).collect();
    assert!(pairs.len() <= text.lines().count());
    for (key, _) in &pairs {
        // Keys split on ASCII whitespace, as the kernel separates them; other characters
        // (a vertical tab, a non-breaking space) are part of an unknown key.
        assert!(!key.is_empty() && !key.contains(|c: char| c.is_ascii_whitespace()));
    }
    let _ = parse::parse_memory_events(text);
    let _ = parse::parse_cpu_stat(text);
    let _ = parse::parse_cgroup_events(text);
    match parse::parse_pressure(text) {
        Ok(pressure) => {
            check_pressure_line(text, &pressure.some);
            if let Some(full) = &pressure.full {
                check_pressure_line(text, full);
            }
        }
        Err(e) => check_error(text, &e),
    }
    let controllers = parse::parse_controllers(text);
    assert_eq!(
        parse::parse_controllers(&controllers.to_string()),
        controllers
    );
});
