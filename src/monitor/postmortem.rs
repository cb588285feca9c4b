//! Post-mortems of apps that were OOM-killed or failed, and their journal
//! `$XDG_STATE_HOME/corral/events.jsonl` (JSON Lines, appended atomically; see ARCHITECTURE.md).

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::cgroup::Limit;
use crate::i18n::{gettext, gettext_f, ngettext_f};
use crate::limits::Bytes;
use crate::systemd::UnitOutcome;

use super::alerts::{Alert, AlertDetail};
use super::history::UnitStatus;
use super::processes::KilledProcess;

/// The version of the record format written in each line's "v"; lines of a newer version are
/// skipped by older readers rather than misread.
pub const FORMAT_VERSION: u32 = 1;

/// Why a unit ended, as systemd recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EndCause {
    /// The kernel's OOM killer killed the unit's processes (Result=oom-kill, or its
    /// memory.events oom_kill count rose).
    OomKill,
    /// The main process exited with a non-zero status (Result=exit-code).
    ExitCode { code: i32 },
    /// The main process was killed by a signal (Result=signal or core-dump).
    Signal { signal: i32, core_dumped: bool },
    /// Another failure systemd reports only as its Result (timeout, watchdog, resources, …).
    Other,
    /// The kernel's OOM killer killed one of the unit's processes, and the unit went on
    /// (OOMPolicy=continue): a browser that lost a tab. `killed_process` says which, when
    /// Corral saw it go.
    ProcessOomKilled,
}

impl EndCause {
    /// Why a unit ended, from systemd's outcome and the OOM kills its cgroup counted; `None`
    /// when it ended successfully and nothing of it was OOM-killed: nothing to report.
    pub fn of(outcome: &UnitOutcome, oom_kills: u64) -> Option<EndCause> {
        Some(match (outcome.result.as_str(), outcome.status) {
            ("success", _) if oom_kills == 0 => return None,
            ("oom-kill", _) => EndCause::OomKill,
            // A unit that ended after the OOM killer took some of its processes: the kill is
            // the likely reason, whatever the main process did afterwards.
            (_, _) if oom_kills > 0 => EndCause::OomKill,
            ("exit-code", Some(code)) => EndCause::ExitCode { code },
            ("signal" | "core-dump", Some(signal)) => EndCause::Signal {
                signal,
                core_dumped: outcome.result == "core-dump",
            },
            _ => EndCause::Other,
        })
    }
}

/// The limits the unit had when it ended, as the kernel held them; `None` is unlimited or
/// unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedLimits {
    pub memory_high_bytes: Option<u64>,
    pub memory_max_bytes: Option<u64>,
    /// cpu.max as a percentage of one CPU.
    pub cpu_quota_percent: Option<u32>,
}

/// What happened to one app, for `corral events` and the window's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostMortem {
    pub app_name: String,
    pub app_id: Option<String>,
    pub unit: String,
    pub preset: Option<String>,
    pub limits: RecordedLimits,
    /// The most memory the unit was seen using: the larger of the history's maximum and the
    /// kernel's memory.peak.
    pub peak_memory_bytes: Option<u64>,
    /// Seconds since the Unix epoch.
    pub started_at: Option<u64>,
    pub ended_at: u64,
    pub cause: EndCause,
    /// systemd's Result for the unit: "oom-kill", "exit-code", "signal", "timeout", …
    pub result: String,
    /// Processes of the unit the OOM killer killed during its life (memory.events oom_kill).
    #[serde(default)]
    pub oom_kills: u64,
    /// The process the OOM killer took, for [`EndCause::ProcessOomKilled`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub killed_process: Option<KilledProcess>,
}

fn epoch_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl PostMortem {
    /// The post-mortem of a unit that ended, from its history and systemd's outcome; `None`
    /// when it ended successfully and nothing of it was OOM-killed: nothing to report.
    /// `started_at` is systemd's ActiveEnterTimestamp when known; otherwise the time Corral
    /// first saw the unit stands in.
    pub fn from_history(
        status: &UnitStatus,
        outcome: &UnitOutcome,
        started_at: Option<SystemTime>,
        ended_at: SystemTime,
    ) -> Option<PostMortem> {
        let sample = status.cgroup.as_ref();
        let oom_kills = sample
            .and_then(|s| s.memory_events)
            .and_then(|e| e.oom_kill)
            .unwrap_or(0);
        let cause = EndCause::of(outcome, oom_kills)?;
        let bytes = |limit: Option<Limit>| limit.and_then(Limit::value);
        let kernel_peak = sample.and_then(|s| s.memory_peak);
        let peak = status.peak_memory.map(|b| b.0).max(kernel_peak);
        Some(PostMortem {
            app_name: status.info.name.clone(),
            app_id: status.info.app_id.clone(),
            unit: status.info.unit.clone(),
            preset: status.info.preset.clone(),
            limits: RecordedLimits {
                memory_high_bytes: bytes(sample.and_then(|s| s.memory_high)),
                memory_max_bytes: bytes(sample.and_then(|s| s.memory_max)),
                cpu_quota_percent: sample
                    .and_then(|s| s.cpu_max)
                    .and_then(|m| m.cpus())
                    .map(|cpus| (cpus * 100.0).round() as u32),
            },
            peak_memory_bytes: peak,
            started_at: Some(epoch_seconds(started_at.unwrap_or(status.first_seen))),
            ended_at: epoch_seconds(ended_at),
            cause,
            result: outcome.result.clone(),
            oom_kills,
            killed_process: None,
        })
    }

    /// The record of a unit that lost a process to the OOM killer and went on, from the
    /// unit's history and the alert that said so.
    pub fn process_killed(
        status: &UnitStatus,
        alert: &Alert,
        at: SystemTime,
    ) -> Option<PostMortem> {
        let AlertDetail::OomKilled {
            kills,
            unit_ended: false,
            victim,
            ..
        } = &alert.detail
        else {
            return None;
        };
        let sample = status.cgroup.as_ref();
        let bytes = |limit: Option<Limit>| limit.and_then(Limit::value);
        let peak = status
            .peak_memory
            .map(|b| b.0)
            .max(sample.and_then(|s| s.memory_peak));
        Some(PostMortem {
            app_name: status.info.name.clone(),
            app_id: status.info.app_id.clone(),
            unit: status.info.unit.clone(),
            preset: status.info.preset.clone(),
            limits: RecordedLimits {
                memory_high_bytes: bytes(sample.and_then(|s| s.memory_high)),
                memory_max_bytes: bytes(sample.and_then(|s| s.memory_max)),
                cpu_quota_percent: sample
                    .and_then(|s| s.cpu_max)
                    .and_then(|m| m.cpus())
                    .map(|cpus| (cpus * 100.0).round() as u32),
            },
            peak_memory_bytes: peak,
            started_at: Some(epoch_seconds(status.first_seen)),
            ended_at: epoch_seconds(at),
            cause: EndCause::ProcessOomKilled,
            result: "oom-kill".to_owned(),
            oom_kills: *kills,
            killed_process: victim.clone(),
        })
    }

    /// Whether two records tell of the same event: a unit ends once, however many Corral
    /// processes saw it, and loses each process once.
    fn same_event(&self, other: &PostMortem) -> bool {
        let lost_a_process = |r: &PostMortem| r.cause == EndCause::ProcessOomKilled;
        self.unit == other.unit
            && lost_a_process(self) == lost_a_process(other)
            && (!lost_a_process(self) || self.oom_kills == other.oom_kills)
    }

    pub fn ended_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.ended_at)
    }

    /// One line in plain words after the time, e.g. "Firefox killed by the OOM killer at its
    /// 4.0 GiB limit (peak 4.0 GiB), preset browser".
    pub fn describe(&self) -> String {
        let peak = self
            .peak_memory_bytes
            .map(|p| gettext_f(" (peak {size})", &[("size", &Bytes(p))]))
            .unwrap_or_default();
        let app = &self.app_name;
        let mut line = match self.cause {
            EndCause::OomKill => match self.limits.memory_max_bytes {
                Some(max) => gettext_f(
                    "{app} killed by the OOM killer at its {limit} limit{peak}",
                    &[("app", app), ("limit", &Bytes(max)), ("peak", &peak)],
                ),
                None => gettext_f(
                    "{app} killed by the OOM killer{peak}",
                    &[("app", app), ("peak", &peak)],
                ),
            },
            EndCause::ExitCode { code } => gettext_f(
                "{app} failed with exit code {code}{peak}",
                &[("app", app), ("code", &code), ("peak", &peak)],
            ),
            EndCause::Signal {
                signal,
                core_dumped: false,
            } => gettext_f(
                "{app} killed by signal {signal}{peak}",
                &[
                    ("app", app),
                    ("signal", &signal_name(signal)),
                    ("peak", &peak),
                ],
            ),
            EndCause::Signal {
                signal,
                core_dumped: true,
            } => gettext_f(
                "{app} killed by signal {signal}, core dumped{peak}",
                &[
                    ("app", app),
                    ("signal", &signal_name(signal)),
                    ("peak", &peak),
                ],
            ),
            EndCause::Other => gettext_f(
                "{app} failed ({result}){peak}",
                &[("app", app), ("result", &self.result), ("peak", &peak)],
            ),
            EndCause::ProcessOomKilled => {
                let at = self
                    .limits
                    .memory_max_bytes
                    .map(|max| gettext_f(" at its {limit} limit", &[("limit", &Bytes(max))]))
                    .unwrap_or_default();
                match &self.killed_process {
                    Some(p) => gettext_f(
                        "{app} lost its process {process} (PID {pid}, {size}) to the OOM killer{at} and went on",
                        &[
                            ("app", app),
                            ("process", &p.name),
                            ("pid", &p.pid),
                            (
                                "size",
                                &p.memory_bytes
                                    .map(Bytes)
                                    .map_or("?".to_owned(), |b| b.to_string()),
                            ),
                            ("at", &at),
                        ],
                    ),
                    None => gettext_f(
                        "{app} lost a process to the OOM killer{at} and went on",
                        &[("app", app), ("at", &at)],
                    ),
                }
            }
        };
        if !matches!(self.cause, EndCause::OomKill | EndCause::ProcessOomKilled)
            && self.oom_kills > 0
        {
            line.push_str(&ngettext_f(
                ", after the OOM killer killed {n} of its processes",
                ", after the OOM killer killed {n} of its processes",
                self.oom_kills,
                &[("n", &self.oom_kills)],
            ));
        }
        if let Some(preset) = &self.preset {
            line.push_str(&gettext_f(", preset {preset}", &[("preset", preset)]));
        }
        line
    }
}

/// "9 (SIGKILL)" for the signals people meet; the number alone otherwise.
fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        _ => return signal.to_string(),
    };
    format!("{signal} ({name})")
}

/// A wall-clock time in the local time zone, for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
}

impl LocalTime {
    /// `at` in the local time zone (localtime_r(3), which reads TZ and /etc/localtime).
    pub fn of(at: SystemTime) -> Option<LocalTime> {
        let seconds = libc::time_t::try_from(epoch_seconds(at)).ok()?;
        // SAFETY: localtime_r writes only to the tm we pass; a zeroed tm is a valid value.
        let tm = unsafe {
            let mut tm: libc::tm = std::mem::zeroed();
            if libc::localtime_r(&seconds, &mut tm).is_null() {
                return None;
            }
            tm
        };
        Some(LocalTime {
            year: tm.tm_year + 1900,
            month: u32::try_from(tm.tm_mon + 1).ok()?,
            day: u32::try_from(tm.tm_mday).ok()?,
            hour: u32::try_from(tm.tm_hour).ok()?,
            minute: u32::try_from(tm.tm_min).ok()?,
        })
    }

    /// "14:02" on the same day as `today`, "2024-05-02 14:02" otherwise.
    pub fn label(&self, today: Option<LocalTime>) -> String {
        let same_day =
            today.is_some_and(|t| (t.year, t.month, t.day) == (self.year, self.month, self.day));
        if same_day {
            format!("{:02}:{:02}", self.hour, self.minute)
        } else {
            format!(
                "{}-{:02}-{:02} {:02}:{:02}",
                self.year, self.month, self.day, self.hour, self.minute
            )
        }
    }
}

/// Why the journal could not be read or written; each says which file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    #[error(
        "{}",
        gettext(
            "cannot find where to keep Corral's event log: neither XDG_STATE_HOME nor HOME is set; set one of them"
        )
    )]
    NoStateDir,
    #[error("{}", gettext_f("cannot create the folder {path}: {error}; check its permissions", &[("path", &.path.display()), ("error", .source)]))]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}", gettext_f("cannot read the event log {path}: {error}", &[("path", &.path.display()), ("error", .source)]))]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}", gettext_f("cannot write to the event log {path}: {error}; the event was not recorded (is the disk full?)", &[("path", &.path.display()), ("error", .source)]))]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}", gettext_f("cannot trim the event log {path}: {error}; the old log is unchanged and the event was not recorded (is the disk full?)", &[("path", &.path.display()), ("error", .source)]))]
    Rotate {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What a journal holds: its readable records, oldest first, and how many lines were skipped
/// (a torn last line after a crash, or records of a newer format).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventLogContents {
    pub records: Vec<PostMortem>,
    pub skipped_lines: usize,
}

#[derive(Serialize)]
struct LineOut<'a> {
    v: u32,
    #[serde(flatten)]
    record: &'a PostMortem,
}

#[derive(Deserialize)]
struct LineIn {
    v: u32,
    #[serde(flatten)]
    record: PostMortem,
}

/// Corral's journal of post-mortems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLog {
    path: PathBuf,
    max_bytes: u64,
}

impl EventLog {
    /// 1 MiB: a few thousand post-mortems, read whole in a few milliseconds.
    pub const DEFAULT_MAX_BYTES: u64 = 1 << 20;

    pub fn new(path: impl Into<PathBuf>) -> EventLog {
        EventLog {
            path: path.into(),
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }

    /// The journal at its usual place, [`EventLog::default_path`].
    pub fn open_default() -> Result<EventLog, EventLogError> {
        Ok(EventLog::new(Self::default_path()?))
    }

    /// The size the file is kept under (at least 4 KiB, so a record always fits).
    pub fn with_max_bytes(mut self, max_bytes: u64) -> EventLog {
        self.max_bytes = max_bytes.max(4096);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `$XDG_STATE_HOME/corral/events.jsonl`, or `~/.local/state/corral/events.jsonl`; as
    /// root, root's own (crate::paths).
    pub fn default_path() -> Result<PathBuf, EventLogError> {
        crate::paths::base_dirs()
            .event_log_file()
            .ok_or(EventLogError::NoStateDir)
    }

    /// [`EventLog::default_path`] from given variable values for a user other than root,
    /// testable without the process environment.
    pub fn path_from(
        xdg_state_home: Option<&OsStr>,
        home: Option<&OsStr>,
    ) -> Result<PathBuf, EventLogError> {
        crate::paths::user_dirs(
            &crate::paths::XdgEnv {
                home: home.map(Into::into),
                state_home: xdg_state_home.map(Into::into),
                ..Default::default()
            },
            None,
        )
        .event_log_file()
        .ok_or(EventLogError::NoStateDir)
    }

    /// Appends one record, trimming the file first if it would grow past its size limit.
    pub fn append(&self, record: &PostMortem) -> Result<(), EventLogError> {
        let file = self.open_locked()?;
        self.append_locked(file, record)
    }

    /// Appends a record unless one of the same unit is already there: the window, `corral
    /// watch` and `corral run --wait` may all see the same app end, and unit names carry a
    /// random part, so one unit is one event. Returns whether it was appended. The check and
    /// the append happen under the file's lock, so two of them cannot both append.
    pub fn append_unless_recorded(&self, record: &PostMortem) -> Result<bool, EventLogError> {
        let file = self.open_locked()?;
        if self.read()?.records.iter().any(|r| r.same_event(record)) {
            return Ok(false);
        }
        self.append_locked(file, record).map(|()| true)
    }

    fn append_locked(&self, file: File, record: &PostMortem) -> Result<(), EventLogError> {
        let mut line = serde_json::to_vec(&LineOut {
            v: FORMAT_VERSION,
            record,
        })
        .map_err(|e| self.write_error(io::Error::other(e)))?;
        line.push(b'\n');
        let size = file.metadata().map_err(|e| self.write_error(e))?.len();
        if size + line.len() as u64 > self.max_bytes {
            return self.rotate(&file, &line);
        }
        // A line torn by a crash or a full disk would swallow this record: end it first.
        let mut buf = Vec::with_capacity(line.len() + 1);
        if size > 0 {
            let mut last = [0u8; 1];
            file.read_exact_at(&mut last, size - 1)
                .map_err(|e| self.write_error(e))?;
            if last[0] != b'\n' {
                buf.push(b'\n');
            }
        }
        buf.extend_from_slice(&line);
        // One write(2): O_APPEND places it atomically at the end.
        match (&file).write(&buf) {
            Ok(n) if n == buf.len() => {}
            // A full disk can take part of the line (what is left of the file's last block):
            // cut it off again, so the file is exactly as it was. Our flock keeps other
            // Corrals from appending meanwhile.
            Ok(n) => {
                let _ = file.set_len(size);
                return Err(self.write_error(io::Error::new(
                    io::ErrorKind::StorageFull,
                    gettext_f(
                        "only {written} of {total} bytes were written",
                        &[("written", &n), ("total", &buf.len())],
                    ),
                )));
            }
            Err(e) => {
                let _ = file.set_len(size);
                return Err(self.write_error(e));
            }
        }
        file.sync_data().map_err(|e| self.write_error(e))
    }

    /// Every readable record, oldest first. A missing file is an empty journal.
    pub fn read(&self) -> Result<EventLogContents, EventLogError> {
        // Never through a link, and capped (crate::paths).
        match crate::paths::read_capped(&self.path, crate::paths::EVENT_LOG_MAX_BYTES, false) {
            Ok(bytes) => Ok(parse_lines(&bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(EventLogContents::default()),
            Err(source) => Err(EventLogError::Read {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn write_error(&self, source: io::Error) -> EventLogError {
        EventLogError::Write {
            path: self.path.clone(),
            source,
        }
    }

    /// Opens the file for appending (creating it and its folder, private to the user) and
    /// takes an exclusive flock(2), which orders appends against another Corral's rotation.
    fn open_locked(&self) -> Result<File, EventLogError> {
        if let Some(dir) = self.path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| EventLogError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
        // Another process may rotate between our open and our lock, leaving us holding the
        // replaced file: check that the path still names what we locked, else open again.
        for _ in 0..8 {
            // Never through a link, and only our own file (crate::paths).
            let file =
                crate::paths::open_own_for_append(&self.path).map_err(|e| self.write_error(e))?;
            // flock(2), as every Corral process takes it.
            file.lock().map_err(|e| self.write_error(e))?;
            let ours = file.metadata().map_err(|e| self.write_error(e))?;
            match fs::metadata(&self.path) {
                Ok(named) if named.ino() == ours.ino() && named.dev() == ours.dev() => {
                    return Ok(file);
                }
                _ => continue,
            }
        }
        Err(self.write_error(io::Error::other(gettext(
            "the file kept being replaced while Corral tried to write to it",
        ))))
    }

    /// Writes the newest records that fill half the limit, plus `line`, to a new file and
    /// renames it over the old one. Called with the old file locked.
    fn rotate(&self, file: &File, line: &[u8]) -> Result<(), EventLogError> {
        let rotate_error = |source| EventLogError::Rotate {
            path: self.path.clone(),
            source,
        };
        let mut old = Vec::new();
        (&*file).read_to_end(&mut old).map_err(rotate_error)?;
        let budget = (self.max_bytes / 2).saturating_sub(line.len() as u64);
        let mut kept: Vec<&[u8]> = Vec::new();
        let mut size = 0u64;
        for candidate in old.split(|&b| b == b'\n').rev() {
            if !is_record(candidate) {
                continue;
            }
            let len = candidate.len() as u64 + 1;
            if size + len > budget {
                break;
            }
            size += len;
            kept.push(candidate);
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let name = self.path.file_name().map_or_else(
            || "events.jsonl".into(),
            |n| n.to_string_lossy().into_owned(),
        );
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let write = || -> io::Result<()> {
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)?;
            let mut buf = Vec::with_capacity(size as usize + line.len());
            for record in kept.iter().rev() {
                buf.extend_from_slice(record);
                buf.push(b'\n');
            }
            buf.extend_from_slice(line);
            out.write_all(&buf)?;
            out.sync_all()?;
            fs::rename(&temp, &self.path)?;
            // The rename itself is durable only once the folder is synced.
            File::open(dir)?.sync_all()
        };
        write().map_err(|source| {
            let _ = fs::remove_file(&temp);
            rotate_error(source)
        })
    }
}

fn is_record(line: &[u8]) -> bool {
    matches!(serde_json::from_slice::<LineIn>(line), Ok(l) if l.v <= FORMAT_VERSION)
}

fn parse_lines(bytes: &[u8]) -> EventLogContents {
    let mut contents = EventLogContents::default();
    for line in bytes.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<LineIn>(line) {
            Ok(parsed) if parsed.v <= FORMAT_VERSION => contents.records.push(parsed.record),
            _ => contents.skipped_lines += 1,
        }
    }
    contents
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::{CgroupSample, CpuMax, MemoryEvents};
    use crate::monitor::UnitInfo;
    use std::os::unix::fs::PermissionsExt;

    const GIB: u64 = Bytes::GIB;

    fn status() -> UnitStatus {
        UnitStatus {
            info: UnitInfo::new(
                "app-corral-firefox-1a2b3c4d.service".to_owned(),
                "Firefox [corral: browser]",
                "failed".to_owned(),
                "failed".to_owned(),
                None,
            ),
            first_seen: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            sampled_at: None,
            cgroup: Some(CgroupSample {
                memory_current: Some(4 * GIB - 4096),
                memory_peak: Some(4 * GIB),
                memory_high: Some(Limit::Value(3 * GIB)),
                memory_max: Some(Limit::Value(4 * GIB)),
                cpu_max: Some(CpuMax {
                    quota: Limit::Value(300_000),
                    period_usec: 100_000,
                }),
                memory_events: Some(MemoryEvents {
                    oom_kill: Some(0),
                    ..MemoryEvents::default()
                }),
                ..CgroupSample::default()
            }),
            cpu_percent: None,
            peak_memory: Some(Bytes(4 * GIB - 8192)),
            ended_at: None,
        }
    }

    fn outcome(result: &str, status: Option<i32>) -> UnitOutcome {
        UnitOutcome {
            result: result.to_owned(),
            status,
            killed: false,
        }
    }

    fn ended() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_003_600)
    }

    #[test]
    fn an_oom_killed_app() {
        let pm = PostMortem::from_history(&status(), &outcome("oom-kill", Some(9)), None, ended())
            .unwrap();
        assert_eq!(pm.app_name, "Firefox");
        assert_eq!(pm.app_id.as_deref(), Some("firefox"));
        assert_eq!(pm.preset.as_deref(), Some("browser"));
        assert_eq!(pm.cause, EndCause::OomKill);
        assert_eq!(
            pm.limits,
            RecordedLimits {
                memory_high_bytes: Some(3 * GIB),
                memory_max_bytes: Some(4 * GIB),
                cpu_quota_percent: Some(300),
            }
        );
        assert_eq!(
            pm.peak_memory_bytes,
            Some(4 * GIB),
            "memory.peak beats the history"
        );
        assert_eq!(
            (pm.started_at, pm.ended_at),
            (Some(1_700_000_000), 1_700_003_600)
        );
        assert_eq!(
            pm.describe(),
            "Firefox killed by the OOM killer at its 4.0 GiB limit (peak 4.0 GiB), preset browser"
        );
    }

    #[test]
    fn causes_from_systemd_results() {
        let cause = |result: &str, exit: Option<i32>| {
            PostMortem::from_history(&status(), &outcome(result, exit), None, ended())
                .map(|pm| pm.cause)
        };
        assert_eq!(cause("success", Some(0)), None, "nothing to report");
        assert_eq!(
            cause("exit-code", Some(3)),
            Some(EndCause::ExitCode { code: 3 })
        );
        assert_eq!(
            cause("signal", Some(11)),
            Some(EndCause::Signal {
                signal: 11,
                core_dumped: false
            })
        );
        assert_eq!(
            cause("core-dump", Some(6)),
            Some(EndCause::Signal {
                signal: 6,
                core_dumped: true
            })
        );
        assert_eq!(cause("timeout", None), Some(EndCause::Other));
        // A scope has no ExecMain*: its Result alone.
        assert_eq!(cause("oom-kill", None), Some(EndCause::OomKill));

        // Processes OOM-killed during its life: reported even after a clean exit.
        let mut killed = status();
        if let Some(events) = killed
            .cgroup
            .as_mut()
            .and_then(|c| c.memory_events.as_mut())
        {
            events.oom_kill = Some(2);
        }
        let pm =
            PostMortem::from_history(&killed, &outcome("success", Some(0)), None, ended()).unwrap();
        assert_eq!((pm.cause, pm.oom_kills), (EndCause::OomKill, 2));
    }

    #[test]
    fn descriptions_in_plain_words() {
        let pm = |result: &str, exit: Option<i32>| {
            PostMortem::from_history(&status(), &outcome(result, exit), None, ended()).unwrap()
        };
        assert_eq!(
            pm("exit-code", Some(1)).describe(),
            "Firefox failed with exit code 1 (peak 4.0 GiB), preset browser"
        );
        assert_eq!(
            pm("signal", Some(9)).describe(),
            "Firefox killed by signal 9 (SIGKILL) (peak 4.0 GiB), preset browser"
        );
        assert_eq!(
            pm("core-dump", Some(11)).describe(),
            "Firefox killed by signal 11 (SIGSEGV), core dumped (peak 4.0 GiB), preset browser"
        );
        let mut other = pm("timeout", None);
        other.preset = None;
        other.peak_memory_bytes = None;
        other.oom_kills = 1;
        assert_eq!(
            other.describe(),
            "Firefox failed (timeout), after the OOM killer killed 1 of its processes"
        );
        let mut unlimited = pm("oom-kill", None);
        unlimited.limits.memory_max_bytes = None;
        assert_eq!(
            unlimited.describe(),
            "Firefox killed by the OOM killer (peak 4.0 GiB), preset browser"
        );
    }

    #[test]
    fn local_time_labels() {
        let at = LocalTime {
            year: 2024,
            month: 5,
            day: 2,
            hour: 14,
            minute: 2,
        };
        assert_eq!(at.label(Some(at)), "14:02");
        assert_eq!(
            at.label(Some(LocalTime { day: 3, ..at })),
            "2024-05-02 14:02"
        );
        assert_eq!(at.label(None), "2024-05-02 14:02");
        assert!(LocalTime::of(SystemTime::now()).is_some());
    }

    #[test]
    fn appending_never_writes_through_a_link() {
        // Root given a user's XDG_STATE_HOME (sudo -E) finds there the user's events.jsonl, a
        // link to a file of root's: before, O_APPEND|O_CREAT followed it and appended a line.
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "root's file\n").unwrap();
        let link = dir.path().join("events.jsonl");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let log = EventLog::new(&link);
        let error = log.append(&record(1)).unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "root's file\n");
        assert!(log.read().is_err(), "reading does not follow it either");
    }

    #[test]
    fn default_path_follows_xdg() {
        let path = |state: Option<&str>, home: Option<&str>| {
            EventLog::path_from(state.map(OsStr::new), home.map(OsStr::new))
        };
        assert_eq!(
            path(Some("/s"), Some("/home/u")).unwrap(),
            Path::new("/s/corral/events.jsonl")
        );
        assert_eq!(
            path(Some("relative"), Some("/home/u")).unwrap(),
            Path::new("/home/u/.local/state/corral/events.jsonl")
        );
        assert_eq!(
            path(None, Some("/home/u")).unwrap(),
            Path::new("/home/u/.local/state/corral/events.jsonl")
        );
        assert!(matches!(path(None, None), Err(EventLogError::NoStateDir)));
    }

    fn record(n: u64) -> PostMortem {
        let mut pm =
            PostMortem::from_history(&status(), &outcome("oom-kill", None), None, ended()).unwrap();
        pm.ended_at = n;
        pm
    }

    #[test]
    fn a_process_lost_to_the_oom_killer_is_recorded_once_per_kill() {
        use crate::monitor::alerts::UnitLimits;
        let victim = KilledProcess {
            pid: 4242,
            name: "Web Content".to_owned(),
            command: "firefox -contentproc".to_owned(),
            memory_bytes: Some(3 << 30),
        };
        let alert = |kills| Alert {
            unit: status().info.unit.clone(),
            app_name: "Firefox".to_owned(),
            app_id: None,
            preset: None,
            limits: UnitLimits::default(),
            detail: AlertDetail::OomKilled {
                kills,
                limit: None,
                peak: None,
                unit_ended: false,
                victim: Some(victim.clone()),
            },
        };
        let first = PostMortem::process_killed(&status(), &alert(1), ended()).unwrap();
        assert_eq!(first.cause, EndCause::ProcessOomKilled);
        assert_eq!(first.killed_process.as_ref(), Some(&victim));
        let line = first.describe();
        assert!(
            line.contains("lost its process Web Content (PID 4242, 3.0 GiB)")
                && line.contains("went on"),
            "{line}"
        );
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::new(dir.path().join("events.jsonl"));
        assert!(log.append_unless_recorded(&first).unwrap());
        assert!(
            !log.append_unless_recorded(&first).unwrap(),
            "the same kill"
        );
        let second = PostMortem::process_killed(&status(), &alert(2), ended()).unwrap();
        assert!(
            log.append_unless_recorded(&second).unwrap(),
            "a second kill"
        );
        // The unit's end is an event of its own.
        assert!(log.append_unless_recorded(&record(9)).unwrap());
        let read = log.read().unwrap().records;
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].killed_process.as_ref(), Some(&victim));
        // An alert for a unit that ended is no lost process.
        let mut ended_alert = alert(1);
        if let AlertDetail::OomKilled { unit_ended, .. } = &mut ended_alert.detail {
            *unit_ended = true;
        }
        assert!(PostMortem::process_killed(&status(), &ended_alert, ended()).is_none());
    }

    #[test]
    fn one_unit_is_recorded_once_whoever_sees_it_end() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::new(dir.path().join("events.jsonl"));
        assert!(log.append_unless_recorded(&record(1)).unwrap());
        // The window and `corral run --wait` saw the same unit end a moment later.
        assert!(!log.append_unless_recorded(&record(2)).unwrap());
        let mut other = record(3);
        other.unit = "app-corral-firefox-99999999.service".to_owned();
        assert!(log.append_unless_recorded(&other).unwrap());
        assert_eq!(log.read().unwrap().records, [record(1), other]);
    }

    #[test]
    fn appends_private_lines_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::new(dir.path().join("state/corral/events.jsonl"));
        assert_eq!(log.read().unwrap(), EventLogContents::default());
        log.append(&record(1)).unwrap();
        log.append(&record(2)).unwrap();
        let contents = log.read().unwrap();
        assert_eq!(contents.skipped_lines, 0);
        assert_eq!(contents.records, [record(1), record(2)]);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(log.path()), 0o600);
        assert_eq!(mode(log.path().parent().unwrap()), 0o700);
        let text = fs::read_to_string(log.path()).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(
            text.starts_with("{\"v\":1,\"app_name\":\"Firefox\""),
            "{text}"
        );
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_closed_off() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::new(dir.path().join("events.jsonl"));
        log.append(&record(1)).unwrap();
        // A crash in the middle of a write: half a record, no newline.
        let whole = serde_json::to_string(&LineOut {
            v: 1,
            record: &record(2),
        })
        .unwrap();
        let mut file = OpenOptions::new().append(true).open(log.path()).unwrap();
        file.write_all(&whole.as_bytes()[..whole.len() / 2])
            .unwrap();
        let contents = log.read().unwrap();
        assert_eq!((contents.records.len(), contents.skipped_lines), (1, 1));
        // The next record starts on a line of its own.
        log.append(&record(3)).unwrap();
        let contents = log.read().unwrap();
        assert_eq!(contents.records, [record(1), record(3)]);
        assert_eq!(contents.skipped_lines, 1);
        // A record of a newer format is skipped, not misread.
        file.write_all(b"{\"v\":2,\"something\":\"else\"}\n")
            .unwrap();
        assert_eq!(log.read().unwrap().skipped_lines, 2);
    }

    #[test]
    fn rotation_keeps_the_newest_records_under_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::new(dir.path().join("events.jsonl")).with_max_bytes(8192);
        for n in 0..100 {
            log.append(&record(n)).unwrap();
            let size = fs::metadata(log.path()).unwrap().len();
            assert!(size <= 8192, "{size} bytes after record {n}");
        }
        let contents = log.read().unwrap();
        assert_eq!(contents.skipped_lines, 0);
        let kept: Vec<u64> = contents.records.iter().map(|r| r.ended_at).collect();
        assert_eq!(kept.last(), Some(&99));
        assert!(kept.len() > 5, "{kept:?}");
        assert!(
            kept.windows(2).all(|w| w[1] == w[0] + 1),
            "newest, in order: {kept:?}"
        );
        let mode = fs::metadata(log.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No temporary file left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_rotation_leaves_the_old_file_intact() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::new(dir.path().join("events.jsonl")).with_max_bytes(4096);
        let mut n = 0;
        while fs::metadata(log.path()).map_or(0, |m| m.len()) < 3500 {
            log.append(&record(n)).unwrap();
            n += 1;
        }
        let before = fs::read(log.path()).unwrap();
        // Something in the way of the temporary file (as a full disk would fail its write).
        let temp = dir
            .path()
            .join(format!(".events.jsonl.{}.tmp", std::process::id()));
        fs::create_dir(&temp).unwrap();
        let mut result = Ok(());
        for _ in 0..3 {
            result = log.append(&record(n));
            if result.is_err() {
                break;
            }
        }
        let error = result.unwrap_err();
        assert!(matches!(error, EventLogError::Rotate { .. }), "{error}");
        assert!(
            error.to_string().contains("the old log is unchanged"),
            "{error}"
        );
        let after = fs::read(log.path()).unwrap();
        assert!(after.starts_with(&before), "old records intact");
        assert_eq!(log.read().unwrap().skipped_lines, 0);
    }
}
