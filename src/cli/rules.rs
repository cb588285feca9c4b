//! `corral rules` and `corral budget`: app rules and the memory budget of all apps, kept in the
//! config file and written as systemd drop-ins that hold however an app is started
//! (see [`crate::rules`]).

use anyhow::{Result, bail};
use serde::Serialize;

use super::{BudgetArgs, RuleSetArgs, RulesAction, connect, print_checks};
use crate::apps::AppCatalog;
use crate::config::{Config, ConfigEditor, Settings};
use crate::controller::LimitCheck;
use crate::i18n::{gettext, gettext_f, ngettext_f};
use crate::limits::{Bytes, MemoryLimit};
use crate::rules::live::{self, Applied, Instance};
use crate::rules::store::{DropInStore, SyncReport};
use crate::rules::{self as engine, DropIn};
use crate::systemd::ManagerKind;

pub async fn run(manager: ManagerKind, action: Option<RulesAction>, json: bool) -> Result<i32> {
    user_manager_only(manager)?;
    match action {
        None => list(json).await,
        Some(RulesAction::Set(args)) => set(args).await,
        Some(RulesAction::Remove { app_id }) => remove(&app_id).await,
        Some(RulesAction::Apply) => {
            let config = Config::load()?;
            apply_and_report(&config, None).await
        }
    }
}

/// Drop-ins go to the person's own user manager; the system manager's units are not apps.
fn user_manager_only(manager: ManagerKind) -> Result<()> {
    if manager == ManagerKind::System {
        bail!(gettext(
            "rules and the budget are for apps, which run under your user manager; run the command without --system"
        ));
    }
    Ok(())
}

/// One rule as `corral rules --json` prints it.
#[derive(Serialize)]
struct RuleView<'a> {
    app_id: &'a str,
    preset: Option<&'a str>,
    /// The rule's own settings, in the file's spelling.
    settings: std::collections::BTreeMap<&'static str, String>,
    /// Every setting in force: the preset's with the rule's on top.
    resolved: std::collections::BTreeMap<&'static str, String>,
    patterns: Vec<String>,
    dropins: Vec<String>,
    running: Vec<Instance>,
}

async fn list(json: bool) -> Result<i32> {
    let path = Config::path();
    let config = Config::load()?;
    let store = DropInStore::for_user()?;
    let desired = engine::desired(&config, &path, ManagerKind::User);
    let in_sync = same_files(&desired, &store.owned()?);
    // Instances need systemd; the rules themselves do not.
    let ctl = connect(ManagerKind::User).await;
    let instances = match &ctl {
        Ok(ctl) => live::instances(ctl, &config, None).await.ok(),
        Err(_) => None,
    };
    let views: Vec<RuleView> = engine::rules(&config)
        .map(|(key, rule)| {
            let resolved = engine::rule_settings(&config, key).unwrap_or_default();
            RuleView {
                app_id: key,
                preset: rule.preset.as_deref(),
                settings: rule.settings.entries().into_iter().collect(),
                resolved: resolved.entries().into_iter().collect(),
                patterns: engine::patterns(key),
                dropins: desired
                    .iter()
                    .filter(|d| crate::systemd::names::app_dropin_folders(key).contains(&d.folder))
                    .map(|d| store.path_of(&d.folder).display().to_string())
                    .collect(),
                running: instances
                    .iter()
                    .flatten()
                    .filter(|i| i.rule == key)
                    .cloned()
                    .collect(),
            }
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(0);
    }
    if views.is_empty() {
        println!(
            "{}",
            gettext(
                "No app rules yet. `corral rules set APP_ID -p PRESET` makes one (see `corral rules --help`)."
            )
        );
    }
    let labels = [
        gettext("preset"),
        gettext("limits"),
        gettext("covers"),
        gettext("running"),
    ];
    let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(8);
    let line = |label: &str, text: &str| {
        println!(
            "  {label}{}  {text}",
            " ".repeat(width - label.chars().count())
        );
    };
    for view in &views {
        println!("{}", super::terminal_cell(view.app_id));
        let (key, rule) = config
            .rules()
            .find(|(k, _)| *k == view.app_id)
            .expect("listed from the config");
        let preset = match (&rule.preset, rule.settings.is_empty()) {
            (Some(p), true) => p.clone(),
            (Some(p), false) => gettext_f(
                "{preset}, with {settings}",
                &[("preset", p), ("settings", &rule.settings.summary())],
            ),
            (None, _) => gettext_f(
                "{preset} (the default), with {settings}",
                &[
                    ("preset", &crate::config::DEFAULT_PRESET),
                    ("settings", &rule.settings.summary()),
                ],
            ),
        };
        line(&labels[0], &preset);
        let words = engine::rule_settings(&config, key)
            .map(|s| s.plain_words())
            .unwrap_or_default();
        line(&labels[1], &words);
        for (i, pattern) in compact_patterns(key).iter().enumerate() {
            line(if i == 0 { &labels[2] } else { "" }, pattern);
        }
        match &instances {
            None => line(&labels[3], &gettext("unknown: systemd cannot be reached")),
            Some(_) if view.running.is_empty() => line(&labels[3], &gettext("none")),
            Some(_) => {
                for (i, instance) in view.running.iter().enumerate() {
                    let failed = instance.checks.iter().filter(|c| !c.applied()).count();
                    let mut text = format!(
                        "{} ({})",
                        super::terminal_cell(&instance.name),
                        instance.unit
                    );
                    if failed > 0 {
                        text.push_str(" — ");
                        text.push_str(&ngettext_f(
                            "{n} limit did not take: `corral rules set {app}` shows why",
                            "{n} limits did not take: `corral rules set {app}` shows why",
                            failed as u64,
                            &[("n", &failed), ("app", &key)],
                        ));
                    }
                    line(if i == 0 { &labels[3] } else { "" }, &text);
                }
            }
        }
    }
    println!();
    println!(
        "{}",
        gettext_f(
            "Rules are kept in {config}, and written as drop-ins ({name}) in {folder}.",
            &[
                ("config", &path.display()),
                ("name", &engine::DROPIN_NAME),
                ("folder", &store.root().display()),
            ],
        )
    );
    if !in_sync {
        println!(
            "{}",
            gettext(
                "The drop-ins do not match the config file (was it edited while Corral did not run?): `corral rules apply` writes them."
            )
        );
    }
    Ok(0)
}

/// Whether the files on disk are exactly the ones wanted.
fn same_files(desired: &[DropIn], owned: &[DropIn]) -> bool {
    let mut desired = desired.to_vec();
    desired.sort_by(|a, b| a.folder.cmp(&b.folder));
    desired == owned
}

/// The ten unit-name globs of a rule, in two lines of brace patterns a shell would expand.
fn compact_patterns(key: &str) -> Vec<String> {
    let patterns = engine::patterns(key);
    if patterns.len() != 10 {
        return patterns;
    }
    let id = crate::systemd::names::escape(key);
    vec![
        format!("app-{{,gnome-,kde-,flatpak-}}{id}{{@*.service,-*.scope}}"),
        format!("app-corral-{id}-*.{{service,scope}}"),
    ]
}

async fn set(args: RuleSetArgs) -> Result<i32> {
    let path = Config::path();
    let mut editor = ConfigEditor::open(&path)?;
    let app = args.app_id.as_str();
    let mut overrides = args.limits.settings();
    overrides.oom_policy = args.oom_policy;
    if args.preset.is_none() && overrides.is_empty() && args.unset.is_empty() {
        bail!(gettext_f(
            "say what the rule for {app} sets: a preset (-p browser) or a limit (--memory-max 4G); see `corral rules set --help`",
            &[("app", &app)],
        ));
    }
    if let Some(preset) = &args.preset {
        editor.set_rule_preset(app, preset)?;
    }
    for (key, value) in overrides.entries() {
        editor.set_rule_setting(app, key, &value)?;
    }
    for key in &args.unset {
        if !editor.remove_rule_setting(app, key)? {
            eprintln!(
                "corral: {}",
                gettext_f(
                    "note: the rule for {app} had no {key} of its own",
                    &[("app", &app), ("key", key)],
                )
            );
        }
    }
    let config = editor.config()?;
    editor.save()?;
    note_installed(app);
    match engine::rules(&config).find(|(k, _)| *k == app) {
        Some(_) => {
            let settings = engine::rule_settings(&config, app).unwrap_or_default();
            println!(
                "{}",
                gettext_f(
                    "Rule for {app}: {words}.",
                    &[
                        ("app", &super::terminal_cell(app)),
                        ("words", &settings.plain_words()),
                    ],
                )
            );
        }
        None => println!(
            "{}",
            gettext_f(
                "The rule for {app} sets nothing any more; its drop-ins go.",
                &[("app", &super::terminal_cell(app))],
            )
        ),
    }
    apply_and_report(&config, Some(app)).await
}

/// Says when no installed app has this id, and when one has a longer id that the launchers
/// name their units after.
fn note_installed(app: &str) {
    let catalog = AppCatalog::load();
    match catalog.get(app) {
        Some(entry) if entry.id == app => {}
        Some(entry) => eprintln!(
            "corral: {}",
            gettext_f(
                "note: the installed app's id is {id}, and GNOME, KDE and Flatpak name its units after that id: this rule reaches only units named after “{app}” (such as `corral run -- {app}`). For the app however it starts: `corral rules set {id} …`",
                &[("id", &entry.id), ("app", &app)],
            )
        ),
        None => eprintln!(
            "corral: {}",
            gettext_f(
                "note: no installed app has the id “{app}”; the rule still applies to any unit named after it, such as `corral run -- {app}`",
                &[("app", &app)],
            )
        ),
    }
}

async fn remove(app: &str) -> Result<i32> {
    let path = Config::path();
    let mut editor = ConfigEditor::open(&path)?;
    let had_rule = editor
        .config()?
        .rules()
        .any(|(key, rule)| key == app && engine::is_rule(rule));
    if !had_rule {
        bail!(gettext_f(
            "there is no rule for “{app}”; `corral rules` lists them",
            &[("app", &app)],
        ));
    }
    editor.remove_rule(app)?;
    let config = editor.config()?;
    editor.save()?;
    println!(
        "{}",
        gettext_f(
            "Removed the rule for {app}. Its running instances go back to the limits they started with.",
            &[("app", &super::terminal_cell(app))],
        )
    );
    apply_and_report(&config, None).await
}

/// Brings the drop-ins in line with `config`, reloads systemd once, and reads back the running
/// instances of `rule` (and the budget when `rule` is none). Exit status 2 when a limit did
/// not take, as `corral limit`.
async fn apply_and_report(config: &Config, rule: Option<&str>) -> Result<i32> {
    let path = Config::path();
    let store = DropInStore::for_user()?;
    let ctl = connect(ManagerKind::User).await;
    let applied = match &ctl {
        Ok(ctl) => live::apply(&ctl.systemd, &store, config, &path).await?,
        Err(e) => Applied {
            files: live::sync_files(&store, config, &path)?,
            reload_problem: Some(e.to_string()),
            ..Applied::default()
        },
    };
    report_files(&applied, &store);
    let Ok(ctl) = ctl else {
        return Ok(0);
    };
    let Some(rule) = rule else {
        return Ok(0);
    };
    let instances = live::instances(&ctl, config, Some(rule)).await?;
    Ok(report_instances(&instances))
}

fn report_files(applied: &Applied, store: &DropInStore) {
    let SyncReport {
        written,
        removed,
        foreign,
    } = &applied.files;
    let folder = store.root().display();
    if !written.is_empty() {
        println!(
            "{}",
            ngettext_f(
                "Wrote {n} drop-in in {folder}.",
                "Wrote {n} drop-ins in {folder}.",
                written.len() as u64,
                &[("n", &written.len()), ("folder", &folder)],
            )
        );
    }
    if !removed.is_empty() {
        println!(
            "{}",
            ngettext_f(
                "Removed {n} drop-in from {folder}.",
                "Removed {n} drop-ins from {folder}.",
                removed.len() as u64,
                &[("n", &removed.len()), ("folder", &folder)],
            )
        );
    }
    if !applied.files.changed() {
        println!("{}", gettext("The drop-ins were up to date."));
    }
    for folder in foreign {
        eprintln!(
            "corral: {}",
            gettext_f(
                "warning: {path} was not written by Corral, so it stays as it is, and the rule does not reach these units through it; remove or rename it to let Corral write its own",
                &[("path", &store.path_of(folder).display())],
            )
        );
    }
    match (&applied.reload, &applied.reload_problem) {
        (Some(took), _) => println!(
            "{}",
            gettext_f(
                "systemd reloaded them in {seconds} s.",
                &[("seconds", &format!("{:.1}", took.as_secs_f64()))],
            )
        ),
        (None, Some(problem)) => eprintln!(
            "corral: {}",
            gettext_f(
                "warning: systemd could not be told ({problem}); the drop-ins apply when your user manager next loads them (at your next login, or `systemctl --user daemon-reload`)",
                &[("problem", problem)],
            )
        ),
        (None, None) => {}
    }
}

/// Prints each instance's read-back; returns the exit status (2 when a limit did not take).
fn report_instances(instances: &[Instance]) -> i32 {
    if instances.is_empty() {
        println!(
            "{}",
            gettext("No instance of the app runs now; the rule applies when it next starts.")
        );
        return 0;
    }
    for instance in instances {
        println!(
            "{}",
            gettext_f(
                "Running now: {app} ({unit})",
                &[
                    ("app", &super::terminal_cell(&instance.name)),
                    ("unit", &instance.unit),
                ],
            )
        );
        print_checks(&instance.checks, false);
    }
    if instances
        .iter()
        .all(|i| i.checks.iter().all(LimitCheck::applied))
    {
        0
    } else {
        2
    }
}

/// `corral budget --json`.
#[derive(Serialize)]
struct BudgetView {
    memory_high: Option<String>,
    memory_max: Option<String>,
    /// The limits in bytes on this machine.
    memory_high_bytes: Option<u64>,
    memory_max_bytes: Option<u64>,
    /// What all apps use together now (app.slice's memory.current).
    memory_current: Option<u64>,
    apps: Option<usize>,
    checks: Vec<LimitCheck>,
}

pub async fn budget(manager: ManagerKind, args: BudgetArgs) -> Result<i32> {
    user_manager_only(manager)?;
    let changing = args.memory_high.is_some() || args.memory_max.is_some();
    if changing {
        let path = Config::path();
        let mut editor = ConfigEditor::open(&path)?;
        for (key, value) in [
            ("apps-memory-high", args.memory_high),
            ("apps-memory-max", args.memory_max),
        ] {
            match value {
                // `max` is no limit: the key goes.
                Some(MemoryLimit::Unlimited) => editor.set_general_text(key, None)?,
                Some(limit) => editor.set_general_text(key, Some(&limit.to_string()))?,
                None => {}
            }
        }
        let config = editor.config()?;
        editor.save()?;
        let store = DropInStore::for_user()?;
        let ctl = connect(ManagerKind::User).await?;
        let applied = live::apply(&ctl.systemd, &store, &config, &path).await?;
        if !args.json {
            report_files(&applied, &store);
        }
    }
    show_budget(args.json).await
}

async fn show_budget(json: bool) -> Result<i32> {
    let config = Config::load()?;
    let ctl = connect(ManagerKind::User).await?;
    let settings = engine::budget_settings(&config);
    let cgroup = live::budget_cgroup(&ctl.systemd).await;
    let sample = cgroup
        .as_deref()
        .and_then(|cg| ctl.cgroups.unit(cg).sample().ok());
    let apps = crate::monitor::list_units(&ctl.systemd, true)
        .await
        .ok()
        .map(|units| units.len());
    let checks = live::budget_check(&ctl, &config)
        .await
        .map(|i| i.checks)
        .unwrap_or_default();
    let ram = crate::controller::physical_memory();
    let view = BudgetView {
        memory_high: settings.memory_high.map(|l| l.to_string()),
        memory_max: settings.memory_max.map(|l| l.to_string()),
        memory_high_bytes: settings.memory_high.and_then(|l| l.resolve(ram)),
        memory_max_bytes: settings.memory_max.and_then(|l| l.resolve(ram)),
        memory_current: sample.as_ref().and_then(|s| s.memory_current),
        apps,
        checks,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(exit_status(&view.checks));
    }
    print_budget(&view, &settings);
    Ok(exit_status(&view.checks))
}

fn print_budget(view: &BudgetView, settings: &Settings) {
    let words = if settings.is_empty() {
        gettext("none: the apps may use all memory together")
    } else {
        let mut parts = Vec::new();
        if let (Some(text), Some(bytes)) = (&view.memory_high, view.memory_high_bytes) {
            parts.push(gettext_f(
                "slowed down above {limit} ({bytes})",
                &[("limit", text), ("bytes", &Bytes(bytes))],
            ));
        }
        if let (Some(text), Some(bytes)) = (&view.memory_max, view.memory_max_bytes) {
            parts.push(gettext_f(
                "the biggest app killed above {limit} ({bytes})",
                &[("limit", text), ("bytes", &Bytes(bytes))],
            ));
        }
        parts.join(", ")
    };
    println!(
        "{}",
        gettext_f(
            "Memory budget of all apps (app.slice): {words}",
            &[("words", &words)],
        )
    );
    if let Some(used) = view.memory_current {
        let of = view
            .memory_high_bytes
            .or(view.memory_max_bytes)
            .filter(|&limit| limit > 0)
            .map(|limit| {
                gettext_f(
                    " ({percent} % of the budget)",
                    &[("percent", &(used * 100 / limit))],
                )
            })
            .unwrap_or_default();
        let apps = view.apps.unwrap_or(0);
        println!(
            "{}{of}",
            ngettext_f(
                "In use now: {used} by {n} app",
                "In use now: {used} by {n} apps",
                apps as u64,
                &[("used", &Bytes(used)), ("n", &apps)],
            )
        );
    }
    print_checks(&view.checks, false);
    if settings.is_empty() {
        println!(
            "{}",
            gettext(
                "`corral budget --memory-high 80%` slows all apps together down before they take the memory the session needs."
            )
        );
    }
}

fn exit_status(checks: &[LimitCheck]) -> i32 {
    if checks.iter().all(LimitCheck::applied) {
        0
    } else {
        2
    }
}
