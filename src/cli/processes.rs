//! `corral ps --processes` and `corral adopt`: which process of an app uses what, and moving a
//! process tree that escaped into a contained unit of its own.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;

use super::{AdoptArgs, connect, control_group_of, print_checks, terminal_cell};
use crate::adopt;
use crate::apps::AppCatalog;
use crate::cgroup::CgroupFs;
use crate::config::Config;
use crate::controller::{Controller, LimitCheck};
use crate::i18n::{gettext, gettext_f, ngettext_f};
use crate::limits::Bytes;
use crate::monitor::processes::{ProcessRow, ProcessTable};
use crate::monitor::{UnitInfo, UnitSnapshot};
use crate::procfs::ProcFs;
use crate::systemd::ManagerKind;

/// The processes of each listed unit, read twice for their CPU use (as `ps` reads cgroups).
pub struct Tables {
    cgroups: CgroupFs,
    tables: Option<HashMap<String, ProcessTable>>,
}

impl Tables {
    /// Reads nothing unless `enabled`.
    pub fn new(ctl: &Controller, enabled: bool) -> Tables {
        Tables {
            cgroups: ctl.cgroups.clone(),
            tables: enabled.then(HashMap::new),
        }
    }

    /// Each unit's processes, heaviest first, in the order of `units`.
    pub fn read(&mut self, units: &[UnitInfo]) -> Option<Vec<Vec<ProcessRow>>> {
        let tables = self.tables.as_mut()?;
        Some(
            units
                .iter()
                .map(|unit| match &unit.control_group {
                    Some(cg) => tables
                        .entry(unit.unit.clone())
                        .or_insert_with(|| ProcessTable::new(ProcFs::system()))
                        .read(&self.cgroups.path_of(cg)),
                    None => Vec::new(),
                })
                .collect(),
        )
    }
}

/// `ps --json`: the units, each with its processes when they were read.
pub fn print_json(snapshots: &[UnitSnapshot], rows: Option<&[Vec<ProcessRow>]>) -> Result<()> {
    let Some(rows) = rows else {
        println!("{}", serde_json::to_string_pretty(snapshots)?);
        return Ok(());
    };
    let mut units = Vec::with_capacity(snapshots.len());
    for (snapshot, processes) in snapshots.iter().zip(rows) {
        let mut unit = serde_json::to_value(snapshot)?;
        if let Some(object) = unit.as_object_mut() {
            object.insert("processes".to_owned(), serde_json::to_value(processes)?);
        }
        units.push(unit);
    }
    println!("{}", serde_json::to_string_pretty(&units)?);
    Ok(())
}

/// Each unit's processes as a table under its name.
pub fn print_tables(snapshots: &[UnitSnapshot], rows: &[Vec<ProcessRow>]) {
    let mut out = std::io::stdout().lock();
    // TRANSLATORS: the headers of `corral ps --processes`, in capitals.
    let header = [
        gettext("PID"),
        gettext("MEMORY"),
        gettext("CPU"),
        gettext("COMMAND"),
    ];
    for (snapshot, processes) in snapshots.iter().zip(rows) {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{}",
            ngettext_f(
                "{app} ({unit}): {n} process",
                "{app} ({unit}): {n} processes",
                processes.len() as u64,
                &[
                    ("app", &terminal_cell(&snapshot.info.name)),
                    ("unit", &snapshot.info.unit),
                    ("n", &processes.len()),
                ],
            )
        );
        let cells: Vec<[String; 4]> = processes
            .iter()
            .map(|p| {
                let command = if p.info.command.is_empty() {
                    format!("[{}]", p.info.name)
                } else {
                    p.info.command.clone()
                };
                [
                    p.info.pid.to_string(),
                    p.info
                        .memory_bytes
                        .map_or_else(|| "-".to_owned(), |m| Bytes(m).to_string()),
                    p.cpu_percent
                        .map_or_else(|| "-".to_owned(), |c| format!("{c:.0}%")),
                    terminal_cell(&command).into_owned(),
                ]
            })
            .collect();
        let mut widths = header.clone().map(|h| h.chars().count());
        for row in &cells {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |row: [&str; 4]| {
            format!(
                "  {:<w0$}  {:>w1$}  {:>w2$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
            )
        };
        let _ = writeln!(
            out,
            "{}",
            line([&header[0], &header[1], &header[2], &header[3]])
        );
        for row in &cells {
            let _ = writeln!(out, "{}", line([&row[0], &row[1], &row[2], &row[3]]));
        }
    }
}

pub async fn adopt(manager: ManagerKind, args: AdoptArgs) -> Result<i32> {
    let config = Config::load()?;
    let catalog = AppCatalog::load();
    let proc = ProcFs::system();
    let mut overrides = args.limits.settings();
    overrides.oom_policy = args.oom_policy;
    let request = adopt::request(
        &proc,
        args.pid,
        &config,
        &catalog,
        args.preset.as_deref(),
        &overrides,
    )?;
    let ctl = connect(manager).await?;
    let adopted = adopt::adopt(&ctl.systemd, &proc, &request).await?;
    println!(
        "{}",
        adopted.words(&terminal_cell(&request.app_name), args.pid, &request.preset)
    );
    if let Some(pids) = adopted.left_behind_list() {
        eprintln!(
            "corral: {}",
            gettext_f(
                "warning: {pids} stayed where they were (started during the move, or not yours); `corral adopt PID` moves them too",
                &[("pids", &pids)],
            )
        );
    }
    let checks = match control_group_of(&ctl, &adopted.unit).await {
        Some(cg) => ctl.verify_limits(&cg, &request.settings),
        None => Vec::new(),
    };
    print_checks(&checks, false);
    if checks.is_empty() && !request.settings.is_empty() {
        eprintln!(
            "corral: {}",
            gettext("the new unit has no cgroup any more: its processes ended during the move")
        );
    }
    Ok(if checks.iter().all(LimitCheck::applied) {
        0
    } else {
        2
    })
}
