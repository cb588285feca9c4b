//! Resource limit values as people write them ("4G", "70%", "max", "250%") and as systemd takes
//! them. Sizes use systemd's base-1024 suffixes (systemd.resource-control(5), "MemoryMax=").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::i18n::{gettext, gettext_f, gettext_noop};

/// An amount of memory in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes(pub u64);

impl Bytes {
    pub const KIB: u64 = 1024;
    pub const MIB: u64 = 1024 * 1024;
    pub const GIB: u64 = 1024 * 1024 * 1024;
}

impl fmt::Display for Bytes {
    /// Human-readable IEC form: "512 MiB", "4.0 GiB", "812 B".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut value = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        if value < 10.0 {
            write!(f, "{value:.1} {}", UNITS[unit])
        } else {
            write!(f, "{value:.0} {}", UNITS[unit])
        }
    }
}

/// A fraction of a whole in hundredths of a percent (systemd's "permyriad"), 0..=10000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent(u32);

impl Percent {
    pub const MAX_PERMYRIAD: u32 = 10_000;

    pub fn from_permyriad(permyriad: u32) -> Option<Percent> {
        (permyriad <= Self::MAX_PERMYRIAD).then_some(Percent(permyriad))
    }

    pub fn permyriad(self) -> u32 {
        self.0
    }

    /// The fraction as systemd's `*Scale` properties take it: scaled to `u32::MAX`.
    pub fn to_u32_scale(self) -> u32 {
        ((u64::from(self.0) * u64::from(u32::MAX) + 5_000) / 10_000) as u32
    }

    /// This share of `whole`, rounded down.
    pub fn of(self, whole: u64) -> u64 {
        (u128::from(whole) * u128::from(self.0) / 10_000) as u64
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 100, self.0 % 100);
        match frac {
            0 => write!(f, "{whole}%"),
            f2 if f2 % 10 == 0 => write!(f, "{whole}.{}%", f2 / 10),
            f2 => write!(f, "{whole}.{f2:02}%"),
        }
    }
}

/// A memory limit as configured: an absolute size, a share of the machine's RAM, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemoryLimit {
    Unlimited,
    Bytes(Bytes),
    /// Share of physical memory; systemd resolves it when the limit is applied.
    Percent(Percent),
}

impl MemoryLimit {
    /// The limit in bytes on a machine with `total_ram` bytes; `None` when unlimited.
    pub fn resolve(self, total_ram: u64) -> Option<u64> {
        match self {
            MemoryLimit::Unlimited => None,
            MemoryLimit::Bytes(b) => Some(b.0),
            MemoryLimit::Percent(p) => Some(p.of(total_ram)),
        }
    }
}

/// A CPU time limit in percent of one CPU ("250%" is two and a half CPUs), or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CpuQuota {
    Unlimited,
    Percent(u32),
}

impl CpuQuota {
    /// The largest quota accepted: 1024 CPUs' worth.
    pub const MAX_PERCENT: u32 = 102_400;

    /// CPU time allowed per second of wall time, as systemd's `CPUQuotaPerSecUSec` takes it.
    pub fn usec_per_sec(self) -> Option<u64> {
        match self {
            CpuQuota::Unlimited => None,
            CpuQuota::Percent(p) => Some(u64::from(p) * 10_000),
        }
    }
}

/// Relative CPU share against other units (systemd `CPUWeight=`), 1..=10000, default 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CpuWeight(u16);

impl CpuWeight {
    pub const MIN: u16 = 1;
    pub const MAX: u16 = 10_000;

    pub fn new(weight: u64) -> Result<CpuWeight, LimitError> {
        if (u64::from(Self::MIN)..=u64::from(Self::MAX)).contains(&weight) {
            Ok(CpuWeight(weight as u16))
        } else {
            Err(LimitError::new(
                weight.to_string(),
                LimitKind::CpuWeight,
                gettext_noop("it is out of range"),
            ))
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// The most processes and threads a unit may have (systemd `TasksMax=`), or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TasksLimit {
    Unlimited,
    Count(u64),
}

/// What a value was meant to be; picks the wording of errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Memory,
    CpuQuota,
    CpuWeight,
    Tasks,
}

impl LimitKind {
    /// "“4X” is not a valid memory limit: …; use a size such as …", translated whole, since
    /// the kind's noun changes the sentence around it in other languages.
    fn message(self, input: &str, reason: &str) -> String {
        let args: [(&str, &dyn fmt::Display); 2] = [("input", &input), ("reason", &reason)];
        match self {
            LimitKind::Memory => gettext_f(
                "“{input}” is not a valid memory limit: {reason}; use a size such as 512M or 4G (K, M, G, T are powers of 1024), a share of RAM such as 70%, or max",
                &args,
            ),
            LimitKind::CpuQuota => gettext_f(
                "“{input}” is not a valid CPU quota: {reason}; use a percentage of one CPU such as 50% or 250% (up to 102400%), or max",
                &args,
            ),
            LimitKind::CpuWeight => gettext_f(
                "“{input}” is not a valid CPU weight: {reason}; use a whole number from 1 to 10000 (100 is the default)",
                &args,
            ),
            LimitKind::Tasks => gettext_f(
                "“{input}” is not a valid tasks limit: {reason}; use a whole number of at least 1, or max",
                &args,
            ),
        }
    }
}

/// A limit that could not be understood; says what was given and what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .kind.message(.input, &gettext(.reason)))]
pub struct LimitError {
    pub input: String,
    pub kind: LimitKind,
    pub reason: &'static str,
}

impl LimitError {
    fn new(input: impl Into<String>, kind: LimitKind, reason: &'static str) -> LimitError {
        LimitError {
            input: input.into(),
            kind,
            reason,
        }
    }
}

fn is_max(s: &str) -> bool {
    matches!(s.to_ascii_lowercase().as_str(), "max" | "infinity" | "none")
}

/// Parses "70%" or "12.5%" (`s`, trimmed) into permyriad; `None` if `s` has no percent sign.
/// Errors quote `input`, the text as given, like every other limit error.
fn parse_percent(s: &str, input: &str, kind: LimitKind) -> Option<Result<u64, LimitError>> {
    let number = s.strip_suffix('%')?.trim();
    let err = |reason| Some(Err(LimitError::new(input, kind, reason)));
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return err(if whole.starts_with('-') {
            gettext_noop("it is negative")
        } else {
            gettext_noop("the part before % is not a plain number")
        });
    }
    if frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return err(gettext_noop("at most two decimals are allowed before %"));
    }
    let Ok(whole) = whole.parse::<u64>() else {
        return err(gettext_noop("it is far too large"));
    };
    let frac: u64 = format!("{frac:0<2}").parse().unwrap_or(0);
    match whole.checked_mul(100).and_then(|w| w.checked_add(frac)) {
        Some(permyriad) => Some(Ok(permyriad)),
        None => err(gettext_noop("it is far too large")),
    }
}

/// How much swap a unit may use: a size like a memory limit, where 0 (no swap) makes sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SwapLimit(pub MemoryLimit);

impl FromStr for SwapLimit {
    type Err = LimitError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        parse_memory(input, true).map(SwapLimit)
    }
}

impl fmt::Display for SwapLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for MemoryLimit {
    type Err = LimitError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        parse_memory(input, false)
    }
}

fn parse_memory(input: &str, allow_zero: bool) -> Result<MemoryLimit, LimitError> {
    {
        let s = input.trim();
        let err = |reason| Err(LimitError::new(input, LimitKind::Memory, reason));
        if s.is_empty() {
            return err(gettext_noop("it is empty"));
        }
        if is_max(s) {
            return Ok(MemoryLimit::Unlimited);
        }
        if let Some(permyriad) = parse_percent(s, input, LimitKind::Memory) {
            let permyriad = permyriad?;
            if permyriad == 0 && !allow_zero {
                return err(gettext_noop("a limit of 0% would stop the app at once"));
            }
            return match Percent::from_permyriad(u32::try_from(permyriad).unwrap_or(u32::MAX)) {
                Some(p) => Ok(MemoryLimit::Percent(p)),
                None => err(gettext_noop("a share of RAM cannot be more than 100%")),
            };
        }
        let digits_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(digits_end);
        if number.is_empty() {
            return err(if s.starts_with('-') {
                gettext_noop("it is negative")
            } else {
                gettext_noop("it does not start with a number")
            });
        }
        let multiplier: u64 = match suffix.trim().to_ascii_uppercase().as_str() {
            "" | "B" => 1,
            "K" | "KB" | "KI" | "KIB" => Bytes::KIB,
            "M" | "MB" | "MI" | "MIB" => Bytes::MIB,
            "G" | "GB" | "GI" | "GIB" => Bytes::GIB,
            "T" | "TB" | "TI" | "TIB" => Bytes::GIB * 1024,
            _ => {
                return err(gettext_noop(
                    "the unit after the number is not one of K, M, G, T",
                ));
            }
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() || frac.contains('.') {
            return err(gettext_noop("the number is malformed"));
        }
        let Ok(whole) = whole.parse::<u64>() else {
            return err(gettext_noop("it is far too large"));
        };
        let Some(mut bytes) = whole.checked_mul(multiplier) else {
            return err(gettext_noop("it is far too large"));
        };
        if !frac.is_empty() {
            // Decimals such as "1.5G": at most 9 digits, exact enough for any size.
            if frac.len() > 9 {
                return err(gettext_noop("the number has too many decimals"));
            }
            let scale = 10u64.pow(frac.len() as u32);
            let frac: u64 = frac.parse().unwrap_or(0);
            let extra = u128::from(frac) * u128::from(multiplier) / u128::from(scale);
            bytes = match bytes.checked_add(extra as u64) {
                Some(b) => b,
                None => return err(gettext_noop("it is far too large")),
            };
        }
        if bytes == 0 && !allow_zero {
            return err(gettext_noop(
                "a limit of 0 bytes would stop the app at once",
            ));
        }
        if bytes == u64::MAX {
            return Ok(MemoryLimit::Unlimited);
        }
        Ok(MemoryLimit::Bytes(Bytes(bytes)))
    }
}

impl FromStr for CpuQuota {
    type Err = LimitError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        let err = |reason| Err(LimitError::new(input, LimitKind::CpuQuota, reason));
        if s.is_empty() {
            return err(gettext_noop("it is empty"));
        }
        if is_max(s) {
            return Ok(CpuQuota::Unlimited);
        }
        let Some(permyriad) = parse_percent(s, input, LimitKind::CpuQuota) else {
            return err(gettext_noop("it has no % sign"));
        };
        let permyriad = permyriad?;
        if permyriad % 100 != 0 {
            return err(gettext_noop("use whole percent"));
        }
        match permyriad / 100 {
            0 => err(gettext_noop("a quota of 0% would stop the app at once")),
            p if p > u64::from(CpuQuota::MAX_PERCENT) => {
                err(gettext_noop("it is more than 1024 CPUs"))
            }
            p => Ok(CpuQuota::Percent(p as u32)),
        }
    }
}

impl FromStr for CpuWeight {
    type Err = LimitError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        match s.parse::<u64>() {
            Ok(n) => CpuWeight::new(n).map_err(|e| LimitError {
                input: input.into(),
                ..e
            }),
            Err(_) => Err(LimitError::new(
                input,
                LimitKind::CpuWeight,
                if s.starts_with('-') {
                    gettext_noop("it is negative")
                } else {
                    gettext_noop("it is not a whole number")
                },
            )),
        }
    }
}

impl FromStr for TasksLimit {
    type Err = LimitError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        if is_max(s) {
            return Ok(TasksLimit::Unlimited);
        }
        match s.parse::<u64>() {
            Ok(0) => Err(LimitError::new(
                input,
                LimitKind::Tasks,
                gettext_noop("a limit of 0 tasks would stop the app at once"),
            )),
            Ok(u64::MAX) => Ok(TasksLimit::Unlimited),
            Ok(n) => Ok(TasksLimit::Count(n)),
            Err(_) => Err(LimitError::new(
                input,
                LimitKind::Tasks,
                if s.starts_with('-') {
                    gettext_noop("it is negative")
                } else {
                    gettext_noop("it is not a whole number")
                },
            )),
        }
    }
}

impl fmt::Display for MemoryLimit {
    /// The form a person would write back into the config ("4G", "70%", "max").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryLimit::Unlimited => f.write_str("max"),
            MemoryLimit::Percent(p) => p.fmt(f),
            MemoryLimit::Bytes(Bytes(b)) => {
                for (unit, size) in [
                    ("T", Bytes::GIB * 1024),
                    ("G", Bytes::GIB),
                    ("M", Bytes::MIB),
                    ("K", Bytes::KIB),
                ] {
                    if *b >= size && b % size == 0 {
                        return write!(f, "{}{unit}", b / size);
                    }
                }
                write!(f, "{b}")
            }
        }
    }
}

impl fmt::Display for CpuQuota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuQuota::Unlimited => f.write_str("max"),
            CpuQuota::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl fmt::Display for CpuWeight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for TasksLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TasksLimit::Unlimited => f.write_str("max"),
            TasksLimit::Count(n) => write!(f, "{n}"),
        }
    }
}

/// Config files may write numbers bare (`cpu-weight = 20`) or as strings (`memory-max = "4G"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum StrOrInt {
    Str(String),
    Int(i64),
}

macro_rules! serde_via_str {
    ($($ty:ty),*) => {$(
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = match StrOrInt::deserialize(d)? {
                    StrOrInt::Str(s) => s,
                    StrOrInt::Int(n) => n.to_string(),
                };
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}

serde_via_str!(MemoryLimit, SwapLimit, CpuQuota, CpuWeight, TasksLimit);

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(s: &str) -> MemoryLimit {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(mem("512M"), MemoryLimit::Bytes(Bytes(512 * Bytes::MIB)));
        assert_eq!(mem("4G"), MemoryLimit::Bytes(Bytes(4 * Bytes::GIB)));
        assert_eq!(mem("4GiB"), MemoryLimit::Bytes(Bytes(4 * Bytes::GIB)));
        assert_eq!(mem("1.5g"), MemoryLimit::Bytes(Bytes(3 * Bytes::GIB / 2)));
        assert_eq!(mem(" 1024 "), MemoryLimit::Bytes(Bytes(1024)));
        assert_eq!(mem("2T"), MemoryLimit::Bytes(Bytes(2 * 1024 * Bytes::GIB)));
        assert_eq!(mem("max"), MemoryLimit::Unlimited);
        assert_eq!(mem("infinity"), MemoryLimit::Unlimited);
        assert_eq!(mem("70%").to_string(), "70%");
        assert_eq!(mem("12.5%").to_string(), "12.5%");
        assert_eq!(mem("33.33%").to_string(), "33.33%");
        assert_eq!(mem("999999T").to_string(), "999999T");
    }

    #[test]
    fn memory_errors_name_the_problem() {
        for (input, reason) in [
            ("", "empty"),
            ("0", "0 bytes"),
            ("0%", "0%"),
            ("-5G", "negative"),
            ("-5%", "negative"),
            ("4X", "unit"),
            ("G", "does not start with a number"),
            ("101%", "more than 100%"),
            ("1e9%", "plain number"),
            ("1.2.3G", "malformed"),
            ("99999999999999999999", "far too large"),
            ("20000000T", "far too large"),
            ("1.234%", "two decimals"),
        ] {
            let err = input.parse::<MemoryLimit>().unwrap_err();
            let text = err.to_string();
            assert!(text.contains(reason), "{input:?}: {text}");
            assert!(text.contains("512M or 4G"), "says what is accepted: {text}");
        }
    }

    #[test]
    fn errors_quote_the_input_as_given() {
        // Found by the limits fuzz target: errors from the percent parser quoted the trimmed
        // text while every other error quoted the input as given.
        let input = "%1%\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t";
        assert_eq!(input.parse::<MemoryLimit>().unwrap_err().input, input);
        assert_eq!(input.parse::<CpuQuota>().unwrap_err().input, input);
        assert_eq!(" -5% ".parse::<MemoryLimit>().unwrap_err().input, " -5% ");
        assert_eq!(
            " 1.234% ".parse::<CpuQuota>().unwrap_err().input,
            " 1.234% "
        );
    }

    #[test]
    fn swap_may_be_zero() {
        assert_eq!(
            "0".parse::<SwapLimit>(),
            Ok(SwapLimit(MemoryLimit::Bytes(Bytes(0))))
        );
        assert_eq!("0".parse::<SwapLimit>().unwrap().to_string(), "0");
        assert_eq!("1G".parse::<SwapLimit>().unwrap().0, mem("1G"));
        assert!("-1".parse::<SwapLimit>().is_err());
    }

    #[test]
    fn cpu_quota() {
        assert_eq!("50%".parse::<CpuQuota>(), Ok(CpuQuota::Percent(50)));
        assert_eq!("250%".parse::<CpuQuota>(), Ok(CpuQuota::Percent(250)));
        assert_eq!("max".parse::<CpuQuota>(), Ok(CpuQuota::Unlimited));
        assert_eq!(CpuQuota::Percent(20).usec_per_sec(), Some(200_000));
        assert_eq!(CpuQuota::Percent(250).to_string(), "250%");
        for bad in ["50", "0%", "-1%", "1e9%", "200000%", "12.5%", "abc"] {
            let err = bad.parse::<CpuQuota>().unwrap_err().to_string();
            assert!(err.contains("percentage of one CPU"), "{bad}: {err}");
        }
    }

    #[test]
    fn weight_and_tasks() {
        assert_eq!("20".parse::<CpuWeight>().map(CpuWeight::get), Ok(20));
        assert!("0".parse::<CpuWeight>().is_err());
        assert!("10001".parse::<CpuWeight>().is_err());
        assert!(
            "-3".parse::<CpuWeight>()
                .unwrap_err()
                .to_string()
                .contains("negative")
        );
        assert_eq!("512".parse::<TasksLimit>(), Ok(TasksLimit::Count(512)));
        assert_eq!("max".parse::<TasksLimit>(), Ok(TasksLimit::Unlimited));
        assert!("0".parse::<TasksLimit>().is_err());
    }

    #[test]
    fn scales_and_display() {
        let p = Percent::from_permyriad(7_000).unwrap();
        assert_eq!(p.of(1000), 700);
        assert_eq!(
            Percent::from_permyriad(10_000).unwrap().to_u32_scale(),
            u32::MAX
        );
        assert_eq!(p.to_u32_scale(), 3_006_477_107);
        assert_eq!(Bytes(512 * Bytes::MIB).to_string(), "512 MiB");
        assert_eq!(Bytes(3 * Bytes::GIB / 2).to_string(), "1.5 GiB");
        assert_eq!(Bytes(100).to_string(), "100 B");
        assert_eq!(mem("1536M").to_string(), "1536M");
        assert_eq!(mem("2048M").to_string(), "2G");
    }

    #[test]
    fn serde_round_trip() {
        #[derive(Deserialize, Serialize, PartialEq, Debug)]
        struct L {
            m: MemoryLimit,
            w: CpuWeight,
            t: TasksLimit,
        }
        let l: L = toml::from_str("m = \"4G\"\nw = 20\nt = \"max\"\n").unwrap();
        assert_eq!(l.w.get(), 20);
        let back = toml::to_string(&l).unwrap();
        assert_eq!(toml::from_str::<L>(&back).unwrap(), l);
        let err = toml::from_str::<L>("m = \"4X\"\nw = 20\nt = 1\n").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
