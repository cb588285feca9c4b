//! Pure, allocation-free parsers for the cgroup v2 interface files (cgroup-v2.rst "Interface
//! Files > Conventions" and "PSI"); they never touch the file system.

use std::fmt;

use serde::Serialize;

/// A value that is either unlimited (the kernel writes "max") or a number.
///
/// The kernel's "max" is kept as its own variant rather than a sentinel such as -1 or
/// `u64::MAX`, so no caller can mistake it for a real byte count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Limit {
    Max,
    Value(u64),
}

impl Limit {
    /// The number, or `None` for "max".
    pub fn value(self) -> Option<u64> {
        match self {
            Limit::Max => None,
            Limit::Value(value) => Some(value),
        }
    }

    pub fn is_max(self) -> bool {
        self == Limit::Max
    }
}

impl fmt::Display for Limit {
    /// The kernel's own spelling, so the text can be written back to the file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Max => f.write_str("max"),
            Limit::Value(value) => write!(f, "{value}"),
        }
    }
}

/// cpu.max: at most `quota` µs of CPU time in each `period_usec` µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct CpuMax {
    pub quota: Limit,
    pub period_usec: u64,
}

impl CpuMax {
    /// The quota in CPUs (1.5 = one and a half CPUs' worth of time), `None` when unlimited.
    pub fn cpus(&self) -> Option<f64> {
        match (self.quota, self.period_usec) {
            (Limit::Value(quota), period) if period > 0 => Some(quota as f64 / period as f64),
            _ => None,
        }
    }
}

/// memory.events: how often each memory boundary was hit. Counts are cumulative and include
/// descendants (memory.events.local does not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub struct MemoryEvents {
    pub low: Option<u64>,
    pub high: Option<u64>,
    pub max: Option<u64>,
    pub oom: Option<u64>,
    pub oom_kill: Option<u64>,
    /// Since Linux 5.17.
    pub oom_group_kill: Option<u64>,
}

/// cpu.stat. The `usage`/`user`/`system` keys are always there; the throttling keys only when
/// the cpu controller is enabled for the cgroup (a user manager may lack it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub struct CpuStat {
    pub usage_usec: Option<u64>,
    pub user_usec: Option<u64>,
    pub system_usec: Option<u64>,
    pub nr_periods: Option<u64>,
    pub nr_throttled: Option<u64>,
    pub throttled_usec: Option<u64>,
}

/// cgroup.events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub struct CgroupEvents {
    /// Any live process in the cgroup or its descendants.
    pub populated: Option<bool>,
    /// The cgroup is fully frozen (since Linux 5.2).
    pub frozen: Option<bool>,
}

/// A pressure (PSI) file: memory.pressure, cpu.pressure, io.pressure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Pressure {
    /// Share of time at least one task was stalled on the resource.
    pub some: PressureLine,
    /// Share of time all non-idle tasks were stalled at once. cpu.pressure only has this
    /// line since Linux 5.13.
    pub full: Option<PressureLine>,
}

/// One line of a pressure file. Averages are percentages of wall time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PressureLine {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    /// Total stall time in µs; a counter, so rates come from differences.
    pub total_usec: u64,
}

/// What was wrong with a file's text. `line` counts from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl ParseError {
    fn new(line: usize, message: String) -> ParseError {
        ParseError { line, message }
    }
}

/// Garbage can be long; an error message only needs enough of it to be recognised.
fn quoted(text: &str) -> String {
    const SHOWN: usize = 40;
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("\"{}…\"", &text[..cut]),
        None => format!("\"{text}\""),
    }
}

/// The single token of a one-value file such as memory.current ("1234\n").
fn single_token(text: &str) -> Result<&str, ParseError> {
    let mut tokens = text.split_ascii_whitespace();
    match (tokens.next(), tokens.next()) {
        (Some(token), None) => Ok(token),
        (None, _) => Err(ParseError::new(1, "the file is empty".to_owned())),
        (Some(_), Some(_)) => Err(ParseError::new(
            1,
            format!("expected a single value, got {}", quoted(text.trim())),
        )),
    }
}

fn number(token: &str, line: usize) -> Result<u64, ParseError> {
    token
        .parse()
        .map_err(|_| ParseError::new(line, format!("expected a number, got {}", quoted(token))))
}

fn limit(token: &str, line: usize) -> Result<Limit, ParseError> {
    if token == "max" {
        return Ok(Limit::Max);
    }
    token.parse().map(Limit::Value).map_err(|_| {
        ParseError::new(
            line,
            format!("expected a number or \"max\", got {}", quoted(token)),
        )
    })
}

/// A single-value file holding a number: memory.current, memory.peak, pids.current, cpu.weight.
pub fn parse_u64(text: &str) -> Result<u64, ParseError> {
    number(single_token(text)?, 1)
}

/// A single-value file holding a number or "max": memory.max, memory.high, pids.max, ...
pub fn parse_limit(text: &str) -> Result<Limit, ParseError> {
    limit(single_token(text)?, 1)
}

/// A single-value file holding "0" or "1": cgroup.freeze.
pub fn parse_bool(text: &str) -> Result<bool, ParseError> {
    match single_token(text)? {
        "0" => Ok(false),
        "1" => Ok(true),
        other => Err(ParseError::new(
            1,
            format!("expected 0 or 1, got {}", quoted(other)),
        )),
    }
}

/// cpu.max: "$MAX $PERIOD", e.g. "max 100000" or "150000 100000".
pub fn parse_cpu_max(text: &str) -> Result<CpuMax, ParseError> {
    let mut tokens = text.split_ascii_whitespace();
    match (tokens.next(), tokens.next(), tokens.next()) {
        (Some(quota), Some(period), None) => Ok(CpuMax {
            quota: limit(quota, 1)?,
            period_usec: number(period, 1)?,
        }),
        _ => Err(ParseError::new(
            1,
            format!(
                "expected \"<quota|max> <period>\", got {}",
                quoted(text.trim())
            ),
        )),
    }
}

/// A flat keyed file ("key value" per line: memory.events, cpu.stat, cgroup.events) as
/// (key, value) pairs in file order. A value that is not a number is `None`, so one bad line
/// costs only its own key. Lines without a key are skipped.
pub fn parse_flat_keyed(text: &str) -> impl Iterator<Item = (&str, Option<u64>)> {
    text.lines().filter_map(|line| {
        let mut tokens = line.split_ascii_whitespace();
        let key = tokens.next()?;
        let value = match (tokens.next(), tokens.next()) {
            (Some(value), None) => value.parse().ok(),
            _ => None,
        };
        Some((key, value))
    })
}

/// memory.events. Unknown keys (newer kernels add some) are ignored.
pub fn parse_memory_events(text: &str) -> MemoryEvents {
    let mut events = MemoryEvents::default();
    for (key, value) in parse_flat_keyed(text) {
        match key {
            "low" => events.low = value,
            "high" => events.high = value,
            "max" => events.max = value,
            "oom" => events.oom = value,
            "oom_kill" => events.oom_kill = value,
            "oom_group_kill" => events.oom_group_kill = value,
            _ => {}
        }
    }
    events
}

/// cpu.stat. Unknown keys (nr_bursts, burst_usec, core_sched.*, ...) are ignored.
pub fn parse_cpu_stat(text: &str) -> CpuStat {
    let mut stat = CpuStat::default();
    for (key, value) in parse_flat_keyed(text) {
        match key {
            "usage_usec" => stat.usage_usec = value,
            "user_usec" => stat.user_usec = value,
            "system_usec" => stat.system_usec = value,
            "nr_periods" => stat.nr_periods = value,
            "nr_throttled" => stat.nr_throttled = value,
            "throttled_usec" => stat.throttled_usec = value,
            _ => {}
        }
    }
    stat
}

/// cgroup.events ("populated 1\nfrozen 0\n"). A value other than 0 or 1 is `None`.
pub fn parse_cgroup_events(text: &str) -> CgroupEvents {
    let as_bool = |value: Option<u64>| match value {
        Some(0) => Some(false),
        Some(1) => Some(true),
        _ => None,
    };
    let mut events = CgroupEvents::default();
    for (key, value) in parse_flat_keyed(text) {
        match key {
            "populated" => events.populated = as_bool(value),
            "frozen" => events.frozen = as_bool(value),
            _ => {}
        }
    }
    events
}

/// The fields of one pressure line after its "some"/"full" tag:
/// "avg10=0.00 avg60=0.00 avg300=0.00 total=0". All four are required.
fn pressure_line<'a>(
    fields: impl Iterator<Item = &'a str>,
    line: usize,
) -> Result<PressureLine, ParseError> {
    let (mut avg10, mut avg60, mut avg300, mut total) = (None, None, None, None);
    for field in fields {
        let bad = || ParseError::new(line, format!("malformed field {}", quoted(field)));
        let (key, value) = field.split_once('=').ok_or_else(bad)?;
        // The averages are shares of wall time in percent (psi.rst), so 0 to 100. f64's
        // parser also takes "NaN", "inf" and "1e300", which no kernel writes: refused, so
        // garbage never reaches the alert rules as a number.
        let average = || {
            value
                .parse::<f64>()
                .ok()
                .filter(|share| (0.0..=100.0).contains(share))
                .ok_or_else(bad)
        };
        match key {
            "avg10" => avg10 = Some(average()?),
            "avg60" => avg60 = Some(average()?),
            "avg300" => avg300 = Some(average()?),
            "total" => total = Some(value.parse::<u64>().map_err(|_| bad())?),
            _ => {}
        }
    }
    match (avg10, avg60, avg300, total) {
        (Some(avg10), Some(avg60), Some(avg300), Some(total_usec)) => Ok(PressureLine {
            avg10,
            avg60,
            avg300,
            total_usec,
        }),
        _ => Err(ParseError::new(
            line,
            "expected avg10=, avg60=, avg300= and total=".to_owned(),
        )),
    }
}

/// A pressure file:
/// "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n".
///
/// The "some" line is required. A missing or malformed "full" line only makes `full` `None`,
/// since the "some" numbers are still right.
pub fn parse_pressure(text: &str) -> Result<Pressure, ParseError> {
    let mut some = None;
    let mut full = None;
    for (index, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        match fields.next() {
            Some("some") => some = Some(pressure_line(fields, index + 1)?),
            Some("full") => full = pressure_line(fields, index + 1).ok(),
            _ => {}
        }
    }
    match some {
        Some(some) => Ok(Pressure { some, full }),
        None => Err(ParseError::new(1, "no \"some\" line".to_owned())),
    }
}

/// A set of controller names ("cpu", "memory", "pids", ...) in the kernel's order.
///
/// Names rather than an enum: kernels add controllers (misc, dmem) and Corral only needs to ask
/// about the few it uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Controllers {
    names: Vec<String>,
}

impl Controllers {
    pub fn contains(&self, name: &str) -> bool {
        self.names.iter().any(|known| known == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }
}

impl<'a> FromIterator<&'a str> for Controllers {
    fn from_iter<I: IntoIterator<Item = &'a str>>(names: I) -> Controllers {
        let mut controllers = Controllers::default();
        for name in names {
            if !controllers.contains(name) {
                controllers.names.push(name.to_owned());
            }
        }
        controllers
    }
}

impl fmt::Display for Controllers {
    /// Space-separated, as the kernel writes it: "cpu memory pids".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, name) in self.names.iter().enumerate() {
            if index > 0 {
                f.write_str(" ")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

/// cgroup.controllers or cgroup.subtree_control: space-separated names, possibly none.
pub fn parse_controllers(text: &str) -> Controllers {
    text.split_ascii_whitespace().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Texts below are what the kernel writes (see cgroup-v2.rst and psi.rst), byte for byte.

    #[test]
    fn u64_single_values() {
        assert_eq!(parse_u64("1234567\n"), Ok(1_234_567));
        assert_eq!(parse_u64("0\n"), Ok(0));
        assert_eq!(parse_u64("18446744073709551615\n"), Ok(u64::MAX));
        assert_eq!(parse_u64("  42  \n"), Ok(42));
    }

    #[test]
    fn u64_rejects_garbage_empty_and_max() {
        assert_eq!(parse_u64("").map_err(|e| e.line), Err(1));
        assert!(parse_u64("\n").is_err());
        assert!(parse_u64("12a\n").is_err());
        assert!(parse_u64("-1\n").is_err());
        assert!(parse_u64("max\n").is_err());
        assert!(parse_u64("1 2\n").is_err());
        assert!(parse_u64("18446744073709551616\n").is_err());
    }

    #[test]
    fn limit_values() {
        assert_eq!(parse_limit("max\n"), Ok(Limit::Max));
        assert_eq!(parse_limit("4294967296\n"), Ok(Limit::Value(4_294_967_296)));
        assert_eq!(parse_limit("0\n"), Ok(Limit::Value(0)));
    }

    #[test]
    fn limit_rejects_garbage() {
        let error = parse_limit("lots\n").unwrap_err();
        assert_eq!(error.line, 1);
        assert!(error.message.contains("\"lots\""), "{error}");
        assert!(parse_limit("MAX\n").is_err());
        assert!(parse_limit("").is_err());
        assert!(parse_limit("max max\n").is_err());
    }

    #[test]
    fn limit_display_is_the_kernel_spelling() {
        assert_eq!(Limit::Max.to_string(), "max");
        assert_eq!(Limit::Value(1024).to_string(), "1024");
        assert_eq!(Limit::Max.value(), None);
        assert_eq!(Limit::Value(7).value(), Some(7));
        assert!(Limit::Max.is_max());
    }

    #[test]
    fn long_garbage_is_shortened_in_messages() {
        let garbage = "x".repeat(10_000);
        let error = parse_limit(&garbage).unwrap_err();
        assert!(error.message.len() < 100, "{}", error.message);
        assert!(error.message.ends_with("…\""));
    }

    #[test]
    fn bool_values() {
        assert_eq!(parse_bool("0\n"), Ok(false));
        assert_eq!(parse_bool("1\n"), Ok(true));
        assert!(parse_bool("2\n").is_err());
        assert!(parse_bool("yes\n").is_err());
        assert!(parse_bool("").is_err());
    }

    #[test]
    fn cpu_max_unlimited_and_limited() {
        assert_eq!(
            parse_cpu_max("max 100000\n"),
            Ok(CpuMax {
                quota: Limit::Max,
                period_usec: 100_000
            })
        );
        let limited = parse_cpu_max("150000 100000\n").unwrap();
        assert_eq!(limited.quota, Limit::Value(150_000));
        assert_eq!(limited.period_usec, 100_000);
        assert_eq!(limited.cpus(), Some(1.5));
        assert_eq!(parse_cpu_max("max 100000\n").unwrap().cpus(), None);
    }

    #[test]
    fn cpu_max_rejects_garbage() {
        assert!(parse_cpu_max("max\n").is_err());
        assert!(parse_cpu_max("\n").is_err());
        assert!(parse_cpu_max("lots 100000\n").is_err());
        assert!(parse_cpu_max("max often\n").is_err());
        assert!(parse_cpu_max("max 100000 1\n").is_err());
    }

    #[test]
    fn cpu_max_with_zero_period_has_no_cpu_count() {
        let odd = CpuMax {
            quota: Limit::Value(1),
            period_usec: 0,
        };
        assert_eq!(odd.cpus(), None);
    }

    #[test]
    fn flat_keyed_pairs_in_order() {
        let pairs: Vec<_> = parse_flat_keyed("a 1\nb x\n\nc\nd 4 5\ne 5\n").collect();
        assert_eq!(
            pairs,
            [
                ("a", Some(1)),
                ("b", None),
                ("c", None),
                ("d", None),
                ("e", Some(5))
            ]
        );
    }

    #[test]
    fn memory_events_full() {
        let events =
            parse_memory_events("low 0\nhigh 12\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n");
        assert_eq!(
            events,
            MemoryEvents {
                low: Some(0),
                high: Some(12),
                max: Some(3),
                oom: Some(1),
                oom_kill: Some(1),
                oom_group_kill: Some(0),
            }
        );
    }

    #[test]
    fn memory_events_from_an_older_kernel_and_a_newer_one() {
        // Before 5.17 there is no oom_group_kill.
        let old = parse_memory_events("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
        assert_eq!(old.oom_kill, Some(0));
        assert_eq!(old.oom_group_kill, None);
        // Keys added later are ignored.
        let new = parse_memory_events(
            "low 0\nhigh 5\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\nsock_throttled 2\n",
        );
        assert_eq!(new.high, Some(5));
    }

    #[test]
    fn memory_events_garbage_costs_one_key() {
        let events = parse_memory_events("low 0\nhigh twelve\nmax 3\noom\noom_kill 1\n");
        assert_eq!(events.low, Some(0));
        assert_eq!(events.high, None);
        assert_eq!(events.max, Some(3));
        assert_eq!(events.oom, None);
        assert_eq!(events.oom_kill, Some(1));
    }

    #[test]
    fn memory_events_empty() {
        assert_eq!(parse_memory_events(""), MemoryEvents::default());
    }

    #[test]
    fn cpu_stat_with_cpu_controller() {
        let text = "usage_usec 8542118\nuser_usec 6012380\nsystem_usec 2529738\n\
                    core_sched.force_idle_usec 0\nnr_periods 1540\nnr_throttled 37\n\
                    throttled_usec 912345\nnr_bursts 0\nburst_usec 0\n";
        assert_eq!(
            parse_cpu_stat(text),
            CpuStat {
                usage_usec: Some(8_542_118),
                user_usec: Some(6_012_380),
                system_usec: Some(2_529_738),
                nr_periods: Some(1540),
                nr_throttled: Some(37),
                throttled_usec: Some(912_345),
            }
        );
    }

    #[test]
    fn cpu_stat_without_cpu_controller() {
        let stat = parse_cpu_stat("usage_usec 100\nuser_usec 60\nsystem_usec 40\n");
        assert_eq!(stat.usage_usec, Some(100));
        assert_eq!(stat.nr_periods, None);
        assert_eq!(stat.nr_throttled, None);
        assert_eq!(stat.throttled_usec, None);
    }

    #[test]
    fn cpu_stat_garbage_and_empty() {
        let stat = parse_cpu_stat("usage_usec -5\nuser_usec 60\n\u{fffd}\u{fffd}\n");
        assert_eq!(stat.usage_usec, None);
        assert_eq!(stat.user_usec, Some(60));
        assert_eq!(parse_cpu_stat(""), CpuStat::default());
    }

    #[test]
    fn cgroup_events() {
        assert_eq!(
            parse_cgroup_events("populated 1\nfrozen 0\n"),
            CgroupEvents {
                populated: Some(true),
                frozen: Some(false)
            }
        );
        // Before 5.2 there is no freezer and no "frozen" key.
        let old = parse_cgroup_events("populated 0\n");
        assert_eq!(old.populated, Some(false));
        assert_eq!(old.frozen, None);
        let garbage = parse_cgroup_events("populated yes\nfrozen 2\n");
        assert_eq!(garbage, CgroupEvents::default());
        assert_eq!(parse_cgroup_events(""), CgroupEvents::default());
    }

    #[test]
    fn pressure_with_some_and_full() {
        let text = "some avg10=1.53 avg60=0.87 avg300=0.22 total=3108457\n\
                    full avg10=0.71 avg60=0.40 avg300=0.10 total=1456234\n";
        assert_eq!(
            parse_pressure(text),
            Ok(Pressure {
                some: PressureLine {
                    avg10: 1.53,
                    avg60: 0.87,
                    avg300: 0.22,
                    total_usec: 3_108_457,
                },
                full: Some(PressureLine {
                    avg10: 0.71,
                    avg60: 0.40,
                    avg300: 0.10,
                    total_usec: 1_456_234,
                }),
            })
        );
    }

    #[test]
    fn cpu_pressure_before_and_after_5_13() {
        let old = parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").unwrap();
        assert_eq!(old.some, PressureLine::default());
        assert_eq!(old.full, None);
        let new = parse_pressure(
            "some avg10=12.50 avg60=3.00 avg300=1.00 total=99\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        )
        .unwrap();
        assert_eq!(new.some.avg10, 12.5);
        assert_eq!(new.full, Some(PressureLine::default()));
    }

    #[test]
    fn pressure_garbage() {
        let error = parse_pressure("some avg10=lots avg60=0.00 avg300=0.00 total=0\n").unwrap_err();
        assert_eq!(error.line, 1);
        assert!(error.message.contains("avg10=lots"), "{error}");
        // A missing field.
        assert!(parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00\n").is_err());
        // No "some" line at all.
        assert!(parse_pressure("").is_err());
        assert!(parse_pressure("full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").is_err());
        assert!(parse_pressure("some avg10 avg60=0.00 avg300=0.00 total=0\n").is_err());
    }

    #[test]
    fn pressure_averages_are_percentages() {
        // Found by the cgroup_files fuzz target: any f64 was taken as an average, so a garbage
        // file could report 666666660 % pressure, NaN or infinity.
        let crash = "some avg10=0.00 avg60=.00 avg300=666666660.00 total=0\n";
        let error = parse_pressure(crash).unwrap_err();
        assert_eq!(error.line, 1);
        assert!(error.message.contains("avg300=666666660.00"), "{error}");
        for garbage in ["NaN", "inf", "-inf", "-0.5", "100.01", "1e300"] {
            let text = format!("some avg10={garbage} avg60=0.00 avg300=0.00 total=0\n");
            assert!(parse_pressure(&text).is_err(), "{text}");
        }
        // The edges are real values; a garbage "full" line still only loses `full`.
        let text = "some avg10=100.00 avg60=0 avg300=.5 total=1\n\
                    full avg10=NaN avg60=0.00 avg300=0.00 total=0\n";
        let pressure = parse_pressure(text).unwrap();
        assert_eq!(pressure.some.avg10, 100.0);
        assert_eq!(pressure.some.avg300, 0.5);
        assert_eq!(pressure.full, None);
    }

    #[test]
    fn pressure_garbage_full_line_keeps_some() {
        let text = "some avg10=0.50 avg60=0.25 avg300=0.10 total=777\nfull avg10=?? total=1\n";
        let pressure = parse_pressure(text).unwrap();
        assert_eq!(pressure.some.total_usec, 777);
        assert_eq!(pressure.full, None);
    }

    #[test]
    fn parse_error_display_names_the_line() {
        let error = parse_pressure("\nsome avg10=x avg60=0 avg300=0 total=0\n").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.to_string().starts_with("line 2: "), "{error}");
    }

    #[test]
    fn controllers_list() {
        let controllers = parse_controllers("cpuset cpu io memory hugetlb pids rdma misc\n");
        assert_eq!(controllers.len(), 8);
        assert!(controllers.contains("memory"));
        assert!(!controllers.contains("mem"));
        assert_eq!(controllers.iter().nth(1), Some("cpu"));
        assert_eq!(
            controllers.to_string(),
            "cpuset cpu io memory hugetlb pids rdma misc"
        );
    }

    #[test]
    fn controllers_empty_and_duplicated() {
        // A user manager's slice often enables nothing for its children: the file is "\n".
        assert!(parse_controllers("\n").is_empty());
        assert!(parse_controllers("").is_empty());
        assert_eq!(
            parse_controllers("memory pids memory\n").to_string(),
            "memory pids"
        );
    }
}
