//! The limit parsers of src/limits.rs, on any text. Beyond "no panic": a value that parses
//! prints (Display, the form written back into the config) as text that parses to the same
//! value, and an error always quotes the input and says what would be accepted.
#![no_main]

use std::fmt::{Debug, Display};
use std::str::FromStr;

use corral::limits::{CpuQuota, CpuWeight, LimitError, MemoryLimit, SwapLimit, TasksLimit};
use libfuzzer_sys::fuzz_target;

fn round_trip<T>(input: &str)
where
    T: FromStr<Err = LimitError> + Display + Debug + PartialEq,
{
    match input.parse::<T>() {
        Ok(value) => {
            let shown = value.to_string();
            let again = shown.parse::<T>().unwrap_or_else(|e| {
                panic!("{input:?} parsed to {value:?}, shown as {shown:?}, which fails: {e}")
            });
            assert_eq!(again, value, "{input:?} shown as {shown:?}");
            // The shown form is canonical: printing it again changes nothing.
            assert_eq!(again.to_string(), shown);
        }
        Err(error) => {
            assert_eq!(error.input, input, "the error keeps the input as given");
            let text = error.to_string();
            assert!(text.contains("not a valid"), "{text}");
            assert!(text.contains("use "), "says what is accepted: {text}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    round_trip::<MemoryLimit>(input);
    round_trip::<SwapLimit>(input);
    round_trip::<CpuQuota>(input);
    round_trip::<CpuWeight>(input);
    round_trip::<TasksLimit>(input);

    if let Ok(limit) = input.parse::<MemoryLimit>() {
        // A memory limit is never 0 (only swap may be), and resolving it never overflows.
        assert_ne!(
            limit,
            MemoryLimit::Bytes(corral::limits::Bytes(0)),
            "{input:?}"
        );
        for ram in [0, 1, 16 << 30, u64::MAX] {
            if let (MemoryLimit::Percent(_), Some(bytes)) = (limit, limit.resolve(ram)) {
                assert!(bytes <= ram, "{input:?} of {ram} is {bytes}");
            }
        }
    }
    if let Ok(CpuQuota::Percent(p)) = input.parse::<CpuQuota>() {
        assert!((1..=CpuQuota::MAX_PERCENT).contains(&p), "{input:?} -> {p}");
    }
});
