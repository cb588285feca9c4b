//! An app's processes: which of them uses the memory and the CPU (the details pane, `corral ps
//! APP --processes`), the order in which the kernel's OOM killer would pick them, and which
//! one it took when a unit under `OOMPolicy=continue` lost a process and went on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::procfs::{self, ProcFs, ProcessInfo};

/// One process of an app, with its CPU use since the previous look.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessRow {
    #[serde(flatten)]
    pub info: ProcessInfo,
    /// CPU use in percent of one CPU since the previous reading; `None` at the first.
    pub cpu_percent: Option<f64>,
}

/// A process the kernel's OOM killer took, as it was last seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct KilledProcess {
    pub pid: u32,
    pub name: String,
    pub command: String,
    /// Its resident memory at the last look before the kill.
    pub memory_bytes: Option<u64>,
}

impl From<&ProcessInfo> for KilledProcess {
    fn from(p: &ProcessInfo) -> KilledProcess {
        KilledProcess {
            pid: p.pid,
            name: p.name.clone(),
            command: p.command.clone(),
            memory_bytes: p.memory_bytes,
        }
    }
}

/// Reads a cgroup's processes again and again, for their CPU use between readings.
#[derive(Debug)]
pub struct ProcessTable {
    proc: ProcFs,
    ticks_per_second: f64,
    /// Each process's CPU ticks at the last reading, by (PID, start time).
    last: HashMap<(u32, u64), u64>,
    last_at: Option<Instant>,
}

impl ProcessTable {
    pub fn new(proc: ProcFs) -> ProcessTable {
        ProcessTable {
            proc,
            ticks_per_second: rustix::param::clock_ticks_per_second() as f64,
            last: HashMap::new(),
            last_at: None,
        }
    }

    /// The processes of the cgroup at `dir`, heaviest in memory first.
    pub fn read(&mut self, dir: &Path) -> Vec<ProcessRow> {
        let now = Instant::now();
        let elapsed = self.last_at.map(|at| now.duration_since(at).as_secs_f64());
        let infos: Vec<ProcessInfo> = procfs::cgroup_pids(dir)
            .into_iter()
            .filter_map(|pid| self.proc.process(pid))
            .collect();
        let mut rows: Vec<ProcessRow> = infos
            .into_iter()
            .map(|info| {
                let before = self.last.get(&(info.pid, info.start_ticks)).copied();
                let cpu_percent = match (before, elapsed) {
                    (Some(before), Some(secs)) if secs > 0.0 => Some(
                        info.cpu_ticks.saturating_sub(before) as f64 / self.ticks_per_second / secs
                            * 100.0,
                    ),
                    _ => None,
                };
                ProcessRow { info, cpu_percent }
            })
            .collect();
        self.last = rows
            .iter()
            .map(|r| ((r.info.pid, r.info.start_ticks), r.info.cpu_ticks))
            .collect();
        self.last_at = Some(now);
        sort_heaviest_first(&mut rows);
        rows
    }
}

/// Heaviest in memory first, then in CPU, then by PID.
pub fn sort_heaviest_first(rows: &mut [ProcessRow]) {
    rows.sort_by(|a, b| {
        b.info
            .memory_bytes
            .cmp(&a.info.memory_bytes)
            .then(
                b.cpu_percent
                    .unwrap_or(0.0)
                    .total_cmp(&a.cpu_percent.unwrap_or(0.0)),
            )
            .then(a.info.pid.cmp(&b.info.pid))
    });
}

/// The highest OOM adjustment the kernel allows.
const OOM_SCORE_ADJ_MAX: i32 = 1000;

/// How far above the processes that started an app its children are put. The kernel's
/// badness is a process's memory plus `oom_score_adj` thousandths of all memory
/// (mm/oom_kill.c, `oom_badness`), so 300 puts a tab ahead of its browser unless the browser
/// uses 30 % of the machine's memory more than the tab does.
const OOM_ORDER_MARGIN: i32 = 300;

/// What keeps an app whole when the kernel's OOM killer takes one of its processes: the
/// processes that started the app (those whose parent is not in the unit: a browser's main
/// process) must be picked after every one of their children (its tabs). The kernel picks the
/// highest badness, which counts memory plus `oom_score_adj`; browsers raise their tabs'
/// adjustment for this, but a user manager gives its services 200 (DefaultOOMScoreAdjust=) and
/// a tab that sets 100 is then below its browser, which uses more memory anyway.
///
/// Returns the raises that restore the order: every child less than [`OOM_ORDER_MARGIN`] above
/// the highest adjustment of the roots is moved up by one offset, which keeps the children's
/// order among themselves. Nothing is ever lowered (which takes a privilege), and nothing
/// above the maximum.
pub fn oom_order_fixes(processes: &[ProcessInfo]) -> Vec<(u32, i32)> {
    let pids: std::collections::HashSet<u32> = processes.iter().map(|p| p.pid).collect();
    let (roots, children): (Vec<&ProcessInfo>, Vec<&ProcessInfo>) =
        processes.iter().partition(|p| !pids.contains(&p.ppid));
    let Some(root_adj) = roots.iter().filter_map(|p| p.oom_score_adj).max() else {
        return Vec::new();
    };
    let floor = (root_adj + OOM_ORDER_MARGIN).min(OOM_SCORE_ADJ_MAX);
    let below: Vec<(&ProcessInfo, i32)> = children
        .iter()
        .filter_map(|p| Some((*p, p.oom_score_adj?)))
        .filter(|(_, adj)| *adj < floor)
        .collect();
    let Some(lowest) = below.iter().map(|(_, adj)| *adj).min() else {
        return Vec::new();
    };
    let offset = floor - lowest;
    below
        .into_iter()
        .map(|(p, adj)| (p.pid, (adj + offset).min(OOM_SCORE_ADJ_MAX)))
        .collect()
}

/// The process the OOM killer took, judged from the processes seen just before the kill and
/// those left after it: of the ones gone, the one the kernel ranked highest (its badness at
/// the last look), which is the one it kills. `None` when none of them is gone.
pub fn oom_victim<'a>(before: &'a [ProcessInfo], after: &[u32]) -> Option<&'a ProcessInfo> {
    before
        .iter()
        .filter(|p| !after.contains(&p.pid))
        .max_by_key(|p| (p.oom_score.unwrap_or(0), p.memory_bytes.unwrap_or(0)))
}

/// Units under `OOMPolicy=continue`, whose processes the monitor keeps in the order the OOM
/// killer should take them ([`oom_order_fixes`]) and remembers, to tell which one it took.
#[derive(Debug)]
pub struct OomGuard {
    proc: ProcFs,
    units: HashMap<String, Guarded>,
}

#[derive(Debug)]
struct Guarded {
    dir: PathBuf,
    pids: Vec<u32>,
    processes: Vec<ProcessInfo>,
    looked_at: Option<Instant>,
    /// Processes seen at one look and gone at the next, with when that was noticed: the
    /// kernel's notice of a kill (memory.events) can come after a look that already found the
    /// process gone.
    gone: Vec<(ProcessInfo, Instant)>,
    /// Processes already blamed for a kill while still listed (dying), by PID and start time:
    /// when they vanish they explain nothing more.
    blamed: Vec<(u32, u64)>,
}

/// How long a process that vanished stays a candidate for the kill that explains it.
const GONE_FOR: Duration = Duration::from_secs(5);

impl OomGuard {
    pub fn new(proc: ProcFs) -> OomGuard {
        OomGuard {
            proc,
            units: HashMap::new(),
        }
    }

    /// Starts guarding `unit`, whose cgroup directory is `dir`.
    pub fn guard(&mut self, unit: &str, dir: PathBuf) {
        self.units.entry(unit.to_owned()).or_insert(Guarded {
            dir,
            pids: Vec::new(),
            processes: Vec::new(),
            looked_at: None,
            gone: Vec::new(),
            blamed: Vec::new(),
        });
    }

    pub fn is_guarded(&self, unit: &str) -> bool {
        self.units.contains_key(unit)
    }

    /// Forgets the units `keep` says no to.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.units.retain(|unit, _| keep(unit));
    }

    /// Looks at a guarded unit's processes: reads them whole when they changed or the last
    /// whole reading is older than `max_age`, and raises the OOM adjustment of children that
    /// their parent would be killed before. Returns the raises that were made.
    pub fn look(&mut self, unit: &str, now: Instant, max_age: Duration) -> Vec<(u32, i32)> {
        let Some(guarded) = self.units.get_mut(unit) else {
            return Vec::new();
        };
        let pids = procfs::cgroup_pids(&guarded.dir);
        let fresh = guarded
            .looked_at
            .is_some_and(|at| now.duration_since(at) < max_age);
        if pids == guarded.pids && fresh {
            return Vec::new();
        }
        let mut processes: Vec<ProcessInfo> = pids
            .iter()
            .filter_map(|&pid| self.proc.process(pid))
            .collect();
        let mut raised = Vec::new();
        for (pid, adj) in oom_order_fixes(&processes) {
            // A process that is gone meanwhile, or one that changed hands, is not raised.
            if self.proc.raise_oom_score_adj(pid, adj).is_ok() {
                raised.push((pid, adj));
                if let Some(p) = processes.iter_mut().find(|p| p.pid == pid) {
                    p.oom_score_adj = Some(adj);
                }
            }
        }
        let vanished: Vec<ProcessInfo> = std::mem::replace(&mut guarded.processes, processes)
            .into_iter()
            .filter(|p| !pids.contains(&p.pid))
            .collect();
        let blamed = &mut guarded.blamed;
        let unexplained = vanished.into_iter().filter(|p| {
            let key = (p.pid, p.start_ticks);
            let was_blamed = blamed.contains(&key);
            blamed.retain(|k| *k != key);
            !was_blamed
        });
        guarded.gone.extend(unexplained.map(|p| (p, now)));
        guarded
            .gone
            .retain(|(_, at)| now.duration_since(*at) < GONE_FOR);
        guarded.pids = pids;
        guarded.looked_at = Some(now);
        raised
    }

    /// After the OOM killer took a process of `unit`: the one it took ([`oom_victim`]) of
    /// those that vanished in the last seconds and those still listed but dying (the kernel
    /// counts the kill just before it sends SIGKILL). The unit is looked at again, ready for
    /// the next kill.
    pub fn victim(&mut self, unit: &str, now: Instant) -> Option<KilledProcess> {
        // What the last look saw: a dying process read now has given back its memory and
        // its command line already.
        let before = self.units.get(unit)?.processes.clone();
        self.look(unit, now, Duration::ZERO);
        let guarded = self.units.get_mut(unit)?;
        let dying: Vec<ProcessInfo> = guarded
            .processes
            .iter()
            .filter(|p| !guarded.blamed.contains(&(p.pid, p.start_ticks)))
            .filter(|p| self.proc.is_dying(p.pid))
            .map(|p| {
                before
                    .iter()
                    .find(|b| (b.pid, b.start_ticks) == (p.pid, p.start_ticks))
                    .unwrap_or(p)
                    .clone()
            })
            .collect();
        let candidates: Vec<ProcessInfo> = guarded
            .gone
            .iter()
            .map(|(p, _)| p.clone())
            .chain(dying.iter().cloned())
            .collect();
        let living: Vec<u32> = guarded
            .pids
            .iter()
            .copied()
            .filter(|pid| !dying.iter().any(|p| p.pid == *pid))
            .collect();
        let victim = oom_victim(&candidates, &living)?.clone();
        let key = (victim.pid, victim.start_ticks);
        // One kill, one process: a second kill is explained by another.
        guarded.gone.retain(|(p, _)| (p.pid, p.start_ticks) != key);
        if guarded.pids.contains(&victim.pid) {
            guarded.blamed.push(key);
        }
        Some(KilledProcess::from(&victim))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn process(pid: u32, ppid: u32, adj: i32, memory_mib: u64) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid,
            name: format!("p{pid}"),
            command: String::new(),
            memory_bytes: Some(memory_mib << 20),
            cpu_ticks: 0,
            start_ticks: pid as u64,
            oom_score: Some((adj.max(0) as u32) + memory_mib as u32),
            oom_score_adj: Some(adj),
        }
    }

    #[test]
    fn children_below_their_browser_are_raised_above_it_in_order() {
        // A browser at 200 (from the user manager), tabs at 100 and 233 as Firefox sets them,
        // and a helper at 200 as it inherited.
        let firefox = [
            process(10, 1, 200, 900),
            process(11, 10, 100, 300),
            process(12, 10, 233, 200),
            process(13, 11, 200, 5),
        ];
        let mut fixes = oom_order_fixes(&firefox);
        fixes.sort_unstable();
        // The lowest child (100) goes the margin above the browser; the others below that
        // keep their distance to it.
        assert_eq!(fixes, [(11, 500), (12, 633), (13, 600)]);
        // Once fixed, nothing more to do.
        let fixed: Vec<ProcessInfo> = firefox
            .iter()
            .map(|p| {
                let mut p = p.clone();
                if let Some((_, adj)) = fixes.iter().find(|(pid, _)| *pid == p.pid) {
                    p.oom_score_adj = Some(*adj);
                }
                p
            })
            .collect();
        assert!(oom_order_fixes(&fixed).is_empty());
    }

    #[test]
    fn nothing_goes_past_the_maximum_or_is_lowered() {
        let at_top = [process(1, 0, 900, 10), process(2, 1, 500, 10)];
        assert_eq!(oom_order_fixes(&at_top), [(2, 1000)]);
        let full = [process(1, 0, 1000, 10), process(2, 1, 1000, 10)];
        assert!(oom_order_fixes(&full).is_empty(), "no room above the root");
        let chromium = [process(1, 0, 200, 10), process(2, 1, 600, 10)];
        assert!(
            oom_order_fixes(&chromium).is_empty(),
            "far enough above already"
        );
        let alone = [process(1, 0, 200, 10)];
        assert!(oom_order_fixes(&alone).is_empty());
    }

    #[test]
    fn the_victim_is_the_highest_ranked_process_that_is_gone() {
        let before = [
            process(10, 1, 200, 900),
            process(11, 10, 300, 400),
            process(12, 10, 300, 100),
        ];
        assert_eq!(oom_victim(&before, &[10, 12]).unwrap().pid, 11);
        // Two gone (a helper exited with its tab): the one the kernel ranked higher.
        assert_eq!(oom_victim(&before, &[10]).unwrap().pid, 11);
        assert!(oom_victim(&before, &[10, 11, 12]).is_none());
    }

    /// A unit's cgroup and /proc with a browser (100), its two tabs (101, 102) and the
    /// runaway tab using the most of them.
    fn guarded_browser() -> (tempfile::TempDir, OomGuard, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let proc = dir.path().join("proc");
        let cg = dir.path().join("app-corral-tabs-1.service");
        fs::create_dir_all(&cg).unwrap();
        fs::write(cg.join("cgroup.procs"), "100\n101\n102\n").unwrap();
        for (pid, ppid, name, rss, score) in [
            (100, 1, "firefox", 900, 500),
            (101, 100, "Web Content", 100, 120),
            (102, 100, "Web Content", 400, 300),
        ] {
            let d = proc.join(pid.to_string());
            fs::create_dir_all(&d).unwrap();
            fs::write(
                d.join("stat"),
                format!("{pid} ({name}) S {ppid} 1 1 0 -1 0 0 0 0 0 5 5 0 0 20 0 1 0 {pid} 1 1"),
            )
            .unwrap();
            fs::write(d.join("statm"), format!("1 {rss} 1 1 0 1 0")).unwrap();
            fs::write(d.join("cmdline"), format!("{name}\0")).unwrap();
            fs::write(d.join("oom_score"), format!("{score}")).unwrap();
            fs::write(d.join("oom_score_adj"), "200").unwrap();
        }
        let mut guard = OomGuard::new(ProcFs::at(proc, 4096));
        guard.guard("tabs", cg.clone());
        (dir, guard, cg)
    }

    #[test]
    fn the_guard_puts_tabs_above_their_browser() {
        let (dir, mut guard, _) = guarded_browser();
        let mut raised = guard.look("tabs", Instant::now(), GONE_FOR);
        raised.sort_unstable();
        assert_eq!(raised, [(101, 500), (102, 500)]);
        let adj = fs::read_to_string(dir.path().join("proc/102/oom_score_adj")).unwrap();
        assert_eq!(adj, "500");
        // Nothing changed: no second reading within the age given.
        assert!(guard.look("tabs", Instant::now(), GONE_FOR).is_empty());
        assert!(guard.look("other", Instant::now(), GONE_FOR).is_empty());
    }

    #[test]
    fn the_victim_is_found_even_when_a_look_saw_it_gone_before_the_kill_was_noticed() {
        let (_dir, mut guard, cg) = guarded_browser();
        let start = Instant::now();
        guard.look("tabs", start, GONE_FOR);
        // The kernel takes the runaway tab; a tick looks before memory.events says so.
        fs::write(cg.join("cgroup.procs"), "100\n101\n").unwrap();
        guard.look("tabs", start + Duration::from_millis(300), GONE_FOR);
        let victim = guard
            .victim("tabs", start + Duration::from_millis(310))
            .unwrap();
        assert_eq!((victim.pid, victim.name.as_str()), (102, "Web Content"));
        assert_eq!(victim.memory_bytes, Some(400 * 4096));
        // The same kill is not blamed twice, and an old disappearance explains nothing.
        assert_eq!(
            guard.victim("tabs", start + Duration::from_millis(320)),
            None
        );
        fs::write(cg.join("cgroup.procs"), "100\n").unwrap();
        guard.look("tabs", start + Duration::from_secs(1), GONE_FOR);
        assert_eq!(guard.victim("tabs", start + Duration::from_secs(10)), None);
    }

    #[test]
    fn the_victim_is_found_while_it_is_still_listed_with_sigkill_pending() {
        let (dir, mut guard, cg) = guarded_browser();
        let start = Instant::now();
        guard.look("tabs", start, GONE_FOR);
        // memory.events counted the kill; the runaway tab has SIGKILL pending, still listed.
        let d = dir.path().join("proc/102");
        fs::write(
            d.join("status"),
            "Name:\tWeb Content\nSigPnd:\t0\nShdPnd:\t100\n",
        )
        .unwrap();
        // Dying, it has given back its memory and its command line.
        fs::write(d.join("statm"), "0 0 0 0 0 0 0").unwrap();
        fs::write(d.join("cmdline"), "").unwrap();
        let victim = guard
            .victim("tabs", start + Duration::from_millis(10))
            .unwrap();
        assert_eq!(victim.pid, 102);
        assert_eq!(
            victim.memory_bytes,
            Some(400 * 4096),
            "as the look before the kill saw it"
        );
        assert_eq!(victim.command, "Web Content");
        // Blamed once: neither its SIGKILL nor its leaving explains a later kill.
        assert_eq!(
            guard.victim("tabs", start + Duration::from_millis(20)),
            None
        );
        fs::write(cg.join("cgroup.procs"), "100\n101\n").unwrap();
        fs::remove_dir_all(dir.path().join("proc/102")).unwrap();
        assert_eq!(
            guard.victim("tabs", start + Duration::from_millis(30)),
            None
        );
    }

    #[test]
    fn rows_come_heaviest_first() {
        let mut rows: Vec<ProcessRow> = [process(1, 0, 0, 10), process(2, 1, 0, 30)]
            .into_iter()
            .map(|info| ProcessRow {
                info,
                cpu_percent: None,
            })
            .collect();
        sort_heaviest_first(&mut rows);
        assert_eq!(rows[0].info.pid, 2);
    }
}
