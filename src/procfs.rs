//! The processes of a cgroup, read from /proc (proc(5)) and `cgroup.procs`; a process that
//! exits while it is read is left out.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// What one process is and uses, at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: u32,
    /// The kernel's short name (`comm`, at most 15 bytes).
    pub name: String,
    /// The command line, arguments separated by spaces; empty for a zombie.
    pub command: String,
    /// Resident memory in bytes (`statm`'s resident pages).
    pub memory_bytes: Option<u64>,
    /// User and system CPU time, in clock ticks (`stat` fields 14 and 15).
    #[serde(skip)]
    pub cpu_ticks: u64,
    /// When it started, in clock ticks after boot (`stat` field 22): with the PID, what tells
    /// one process from a later one that got the same PID.
    #[serde(skip)]
    pub start_ticks: u64,
    /// The kernel's OOM badness, 0 to 2000: the process with the highest is killed first.
    pub oom_score: Option<u32>,
    /// The adjustment added to it, -1000 to 1000.
    pub oom_score_adj: Option<i32>,
}

/// Where the kernel's process files are.
#[derive(Debug, Clone)]
pub struct ProcFs {
    proc: PathBuf,
    page_size: u64,
}

impl ProcFs {
    /// The machine's own `/proc`.
    pub fn system() -> ProcFs {
        ProcFs::at("/proc", rustix::param::page_size() as u64)
    }

    pub fn at(proc: impl Into<PathBuf>, page_size: u64) -> ProcFs {
        ProcFs {
            proc: proc.into(),
            page_size,
        }
    }

    fn pid_dir(&self, pid: u32) -> PathBuf {
        self.proc.join(pid.to_string())
    }

    /// One process; `None` when it is gone (or was never there).
    pub fn process(&self, pid: u32) -> Option<ProcessInfo> {
        let dir = self.pid_dir(pid);
        let stat = parse_stat(&fs::read_to_string(dir.join("stat")).ok()?)?;
        let memory_bytes = fs::read_to_string(dir.join("statm"))
            .ok()
            .and_then(|text| text.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map(|pages| pages.saturating_mul(self.page_size));
        let command = fs::read(dir.join("cmdline"))
            .map(|bytes| command_line(&bytes))
            .unwrap_or_default();
        let read = |file: &str| fs::read_to_string(dir.join(file)).ok();
        Some(ProcessInfo {
            pid,
            ppid: stat.ppid,
            name: stat.name,
            command,
            memory_bytes,
            cpu_ticks: stat.cpu_ticks,
            start_ticks: stat.start_ticks,
            oom_score: read("oom_score").and_then(|t| t.trim().parse().ok()),
            oom_score_adj: read("oom_score_adj").and_then(|t| t.trim().parse().ok()),
        })
    }

    /// The real user id a process runs as (`status`'s first Uid), `None` when it is gone.
    pub fn uid(&self, pid: u32) -> Option<u32> {
        let status = fs::read_to_string(self.pid_dir(pid).join("status")).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Whether the process is on its way out: SIGKILL pending, exiting, a zombie, or gone.
    /// The OOM killer counts its kill in memory.events just before it sends SIGKILL
    /// (mm/oom_kill.c, `__oom_kill_process`), so its victim may still be listed when the count
    /// is read.
    pub fn is_dying(&self, pid: u32) -> bool {
        let dir = self.pid_dir(pid);
        let Ok(stat) = fs::read_to_string(dir.join("stat")) else {
            return true;
        };
        stat_says_exiting(&stat)
            || fs::read_to_string(dir.join("status")).is_ok_and(|s| sigkill_pending(&s))
    }

    /// The file the process runs (`exe`), when this user may see it.
    pub fn executable(&self, pid: u32) -> Option<PathBuf> {
        fs::read_link(self.pid_dir(pid).join("exe")).ok()
    }

    /// The cgroup a process is in (cgroup v2's `0::PATH` line of `cgroup`).
    pub fn cgroup_of(&self, pid: u32) -> Option<String> {
        let text = fs::read_to_string(self.pid_dir(pid).join("cgroup")).ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix("0::"))
            .map(str::to_owned)
    }

    /// Raises (never lowers) a process's OOM adjustment; the kernel lets a process's owner
    /// raise it without privileges (proc(5), "oom_score_adj").
    pub fn raise_oom_score_adj(&self, pid: u32, adj: i32) -> io::Result<()> {
        fs::write(self.pid_dir(pid).join("oom_score_adj"), adj.to_string())
    }

    /// Every process's PID and parent PID, for walking process trees.
    pub fn parents(&self) -> Vec<(u32, u32)> {
        let Ok(entries) = fs::read_dir(&self.proc) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                let stat = parse_stat(&fs::read_to_string(entry.path().join("stat")).ok()?)?;
                Some((pid, stat.ppid))
            })
            .collect()
    }

    /// `pid` and every process descending from it, parents before their children.
    pub fn tree(&self, pid: u32) -> Vec<u32> {
        descendants(pid, &self.parents())
    }
}

/// `root` and its descendants in `parents` (pid, ppid), breadth first.
pub fn descendants(root: u32, parents: &[(u32, u32)]) -> Vec<u32> {
    let mut tree = vec![root];
    let mut next = 0;
    while next < tree.len() {
        let parent = tree[next];
        let mut children: Vec<u32> = parents
            .iter()
            .filter(|(pid, ppid)| *ppid == parent && *pid != parent && !tree.contains(pid))
            .map(|(pid, _)| *pid)
            .collect();
        children.sort_unstable();
        tree.extend(children);
        next += 1;
    }
    tree
}

/// The processes of a cgroup and of the cgroups below it: `dir` is the cgroup's directory.
pub fn cgroup_pids(dir: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
        if let Ok(entries) = fs::read_dir(&dir) {
            dirs.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The fields of `/proc/PID/stat` Corral uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stat {
    name: String,
    ppid: u32,
    cpu_ticks: u64,
    start_ticks: u64,
}

/// Parses `/proc/PID/stat`. The name is in parentheses and may itself hold spaces and `)`,
/// so the fields are counted from the last `)` (proc(5)).
fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_owned();
    // Field 3 (state) onwards.
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    Some(Stat {
        name,
        ppid: u32::try_from(field(4)?).ok()?,
        cpu_ticks: field(14)?.saturating_add(field(15)?),
        start_ticks: field(22)?,
    })
}

/// A zombie or dead state (`stat` field 3), or `PF_EXITING` in its flags (field 9).
fn stat_says_exiting(text: &str) -> bool {
    const PF_EXITING: u64 = 0x4;
    let Some(close) = text.rfind(')') else {
        return false;
    };
    let mut fields = text[close + 1..].split_whitespace();
    let state = fields.next().unwrap_or("");
    let flags: u64 = fields.nth(5).and_then(|f| f.parse().ok()).unwrap_or(0);
    matches!(state, "Z" | "X" | "x") || flags & PF_EXITING != 0
}

/// SIGKILL among the signals pending for the thread or the whole process (`status`'s SigPnd
/// and ShdPnd masks, bit 8 for signal 9).
fn sigkill_pending(status: &str) -> bool {
    const SIGKILL_BIT: u64 = 1 << 8;
    status
        .lines()
        .filter_map(|line| {
            line.strip_prefix("SigPnd:")
                .or_else(|| line.strip_prefix("ShdPnd:"))
        })
        .filter_map(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .any(|mask| mask & SIGKILL_BIT != 0)
}

/// `cmdline`'s NUL-separated arguments as one line.
fn command_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let args: Vec<&str> = text.split('\0').filter(|a| !a.is_empty()).collect();
    args.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_exiting_or_zombie_process_is_dying() {
        assert!(!stat_says_exiting(STAT));
        assert!(stat_says_exiting(&STAT.replacen(") S ", ") Z ", 1)));
        // PF_EXITING (0x4) in the flags, field 9.
        assert!(stat_says_exiting(&STAT.replacen(
            " 4194560 ",
            " 4194564 ",
            1
        )));
        let status = |sig: &str, shd: &str| format!("Name:\tx\nSigPnd:\t{sig}\nShdPnd:\t{shd}\n");
        assert!(!sigkill_pending(&status(
            "0000000000000000",
            "0000000000004000"
        )));
        assert!(sigkill_pending(&status(
            "0000000000000000",
            "0000000000000100"
        )));
        assert!(sigkill_pending(&status(
            "0000000000000100",
            "0000000000000000"
        )));
        assert!(!sigkill_pending("garbage"));
    }

    const STAT: &str = "4242 (Web Content) S 4200 4200 4200 0 -1 4194560 9000 0 0 0 \
        150 30 0 0 20 0 30 0 123456 2000000000 50000 18446744073709551615 1 1 0 0 0 0 0 \
        4096 1260 0 0 0 17 1 0 0 0 0 0";

    fn fixture() -> (tempfile::TempDir, ProcFs) {
        let dir = tempfile::tempdir().unwrap();
        let proc = dir.path().join("proc");
        let add = |pid: u32, ppid: u32, name: &str, cmdline: &[u8], rss: u64, adj: i32| {
            let d = proc.join(pid.to_string());
            fs::create_dir_all(&d).unwrap();
            fs::write(
                d.join("stat"),
                STAT.replacen("4242", &pid.to_string(), 1)
                    .replacen("Web Content", name, 1)
                    .replacen(" 4200 ", &format!(" {ppid} "), 1),
            )
            .unwrap();
            fs::write(d.join("statm"), format!("90000 {rss} 500 1 0 2000 0\n")).unwrap();
            fs::write(d.join("cmdline"), cmdline).unwrap();
            fs::write(d.join("oom_score_adj"), format!("{adj}\n")).unwrap();
            fs::write(d.join("oom_score"), "866\n").unwrap();
            fs::write(d.join("status"), "Name:\tx\nUid:\t1001\t1001\t1001\t1001\n").unwrap();
        };
        add(4200, 1, "firefox", b"/usr/lib/firefox/firefox\0", 100, 200);
        add(
            4242,
            4200,
            "Web Content",
            b"/usr/lib/firefox/firefox\0-contentproc\0-childID\x003\0",
            50,
            100,
        );
        add(4243, 4200, "Isolated ) 1", b"", 10, 233);
        add(4300, 4242, "helper", b"helper\0", 1, 200);
        (dir, ProcFs::at(proc, 4096))
    }

    #[test]
    fn stat_is_read_past_a_name_with_spaces_and_parentheses() {
        let stat = parse_stat(&STAT.replacen("Web Content", "a) (b", 1)).unwrap();
        assert_eq!(stat.name, "a) (b");
        assert_eq!(stat.ppid, 4200);
        assert_eq!(stat.cpu_ticks, 180);
        assert_eq!(stat.start_ticks, 123456);
        assert_eq!(parse_stat("4242 (x"), None);
        assert_eq!(parse_stat("4242 (x) S"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn a_process_is_read_whole() {
        let (_dir, proc) = fixture();
        let p = proc.process(4242).unwrap();
        assert_eq!(p.name, "Web Content");
        assert_eq!(p.ppid, 4200);
        assert_eq!(
            p.command,
            "/usr/lib/firefox/firefox -contentproc -childID 3"
        );
        assert_eq!(p.memory_bytes, Some(50 * 4096));
        assert_eq!(p.oom_score, Some(866));
        assert_eq!(p.oom_score_adj, Some(100));
        assert_eq!(proc.process(4243).unwrap().name, "Isolated ) 1");
        assert_eq!(proc.process(4243).unwrap().command, "");
        assert_eq!(proc.uid(4242), Some(1001));
        assert_eq!(proc.process(9), None);
        assert_eq!(proc.uid(9), None);
    }

    #[test]
    fn trees_come_parents_first() {
        let (_dir, proc) = fixture();
        assert_eq!(proc.tree(4200), [4200, 4242, 4243, 4300]);
        assert_eq!(proc.tree(4242), [4242, 4300]);
        assert_eq!(proc.tree(9), [9]);
        // A loop in what was read (a PID reused meanwhile) does not loop forever.
        assert_eq!(descendants(1, &[(2, 1), (1, 2)]), [1, 2]);
    }

    #[test]
    fn a_cgroups_processes_include_those_of_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let cg = dir.path().join("app.scope");
        fs::create_dir_all(cg.join("sub")).unwrap();
        fs::write(cg.join("cgroup.procs"), "12\n10\n").unwrap();
        fs::write(cg.join("sub/cgroup.procs"), "11\n").unwrap();
        assert_eq!(cgroup_pids(&cg), [10, 11, 12]);
        assert!(cgroup_pids(&dir.path().join("gone")).is_empty());
    }
}
