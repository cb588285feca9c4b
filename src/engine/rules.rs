//! Rules and the memory budget of all apps as the window and the tray change them: the edit goes
//! through the config store, the drop-ins are brought in line at once (the monitor's keeper
//! would do it within a tick; doing it here lets the face read each running instance back),
//! and what took is read back from the kernel, as `corral rules set` and `corral budget` do.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::config::{Config, RulePreset, Settings};
use crate::controller::{Controller, LimitCheck};
use crate::engine::{ConfigEdit, ConfigStore};
use crate::i18n::{gettext, gettext_f, ngettext_f};
use crate::limits::{Bytes, MemoryLimit};
use crate::monitor::UnitInfo;
use crate::rules::live::{self, Instance};
use crate::rules::store::DropInStore;
use crate::systemd::ManagerKind;
use crate::systemd::names::{app_dropin_folders, dropin_folders_of};

/// The settings a rule is edited by from the window and the tray, in the order they show.
pub const RULE_KEYS: [&str; 5] = [
    "memory-high",
    "memory-max",
    "cpu-quota",
    "tasks-max",
    "oom-policy",
];

/// A rule as a face wants it: the preset, and the settings of `keys` (set, or removed when
/// `settings` lacks them). The rule's other settings stay as the file has them.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDraft {
    pub app_id: String,
    pub preset: RulePreset,
    pub keys: Vec<&'static str>,
    pub settings: Settings,
}

/// What saving or removing a rule did.
#[derive(Debug, Clone)]
pub struct RuleOutcome {
    pub app_id: String,
    /// What the rule does now, in plain words; `None` once the app has no rule.
    pub words: Option<String>,
    /// Each running instance the rule reaches, read back from its cgroup; `None` when systemd
    /// could not be asked.
    pub instances: Option<Vec<Instance>>,
    /// Why the rule may not be in force yet (the drop-ins are written but systemd was not
    /// reloaded, or they could not be written).
    pub problem: Option<String>,
}

impl RuleOutcome {
    /// The limits that did not take, over every running instance.
    pub fn failures(&self) -> usize {
        self.instances
            .iter()
            .flatten()
            .flat_map(|i| &i.checks)
            .filter(|c| !c.applied())
            .count()
    }

    /// One sentence for a toast or a notification.
    pub fn summary(&self) -> String {
        let app = &self.app_id;
        let saved = match &self.words {
            Some(words) if !words.is_empty() => gettext_f(
                "Rule for {app}: {words}.",
                &[("app", app), ("words", words)],
            ),
            Some(_) => gettext_f("Rule for {app} saved.", &[("app", app)]),
            None => gettext_f("Removed the rule for {app}.", &[("app", app)]),
        };
        let after = if let Some(problem) = &self.problem {
            problem.clone()
        } else {
            match (&self.instances, self.failures()) {
                (None, _) => String::new(),
                (Some(list), _) if list.is_empty() && self.words.is_some() => {
                    gettext("No instance runs now; it applies at the next start.")
                }
                (Some(list), 0) if self.words.is_some() => ngettext_f(
                    "It holds for the {n} running instance.",
                    "It holds for the {n} running instances.",
                    list.len() as u64,
                    &[("n", &list.len())],
                ),
                (Some(_), 0) => String::new(),
                (Some(_), n) => ngettext_f(
                    "{n} limit did not take: the details say why.",
                    "{n} limits did not take: the details say why.",
                    n as u64,
                    &[("n", &n)],
                ),
            }
        };
        if after.is_empty() {
            saved
        } else {
            format!("{saved} {after}")
        }
    }

    /// Per running instance, what took and why not, a line each.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for instance in self.instances.iter().flatten() {
            lines.push(gettext_f(
                "{app} ({unit}):",
                &[("app", &instance.name), ("unit", &instance.unit)],
            ));
            lines.extend(instance.checks.iter().map(check_line));
        }
        lines
    }
}

/// "✓ memory max 96M: applied", "✗ CPU quota 50%: not applied — why".
pub fn check_line(check: &LimitCheck) -> String {
    match &check.problem {
        None => gettext_f(
            "✓ {setting} {value}: applied",
            &[
                ("setting", &check.setting_label()),
                ("value", &check.wanted),
            ],
        ),
        Some(problem) => gettext_f(
            "✗ {setting} {value}: not applied — {problem}",
            &[
                ("setting", &check.setting_label()),
                ("value", &check.wanted),
                ("problem", problem),
            ],
        ),
    }
}

/// What all apps use together against their budget (app.slice's cgroup).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetUsage {
    /// memory.current of app.slice.
    pub used: Option<u64>,
    /// memory.high and memory.max in force on app.slice; `None` without a limit.
    pub high: Option<u64>,
    pub max: Option<u64>,
}

impl BudgetUsage {
    /// The limit the use is measured against: the soft one, where the apps are slowed down,
    /// else the hard one.
    pub fn budget(&self) -> Option<u64> {
        self.high.or(self.max)
    }

    /// "All apps: 3.2 GiB of 12.5 GiB budget", "All apps: 3.2 GiB · no budget".
    pub fn words(&self) -> String {
        let used = self
            .used
            .map_or_else(|| "—".to_owned(), |u| Bytes(u).to_string());
        match self.budget() {
            Some(limit) => gettext_f(
                "All apps: {used} of {limit} budget",
                &[("used", &used), ("limit", &Bytes(limit))],
            ),
            None => gettext_f("All apps: {used} · no budget", &[("used", &used)]),
        }
    }

    /// What the limits do, for a tooltip.
    pub fn explanation(&self) -> String {
        let mut parts = vec![gettext(
            "What every app of the desktop uses together (app.slice), whoever started it.",
        )];
        if let Some(high) = self.high {
            parts.push(gettext_f(
                "Above {size} all apps are slowed down to reclaim memory.",
                &[("size", &Bytes(high))],
            ));
        }
        if let Some(max) = self.max {
            parts.push(gettext_f(
                "Above {size} the kernel kills the biggest.",
                &[("size", &Bytes(max))],
            ));
        }
        if self.budget().is_none() {
            parts.push(gettext("Preferences set a budget."));
        }
        parts.join(" ")
    }

    /// The share of the budget in use, 0 to 1; `None` without a budget.
    pub fn fraction(&self) -> Option<f64> {
        let budget = self.budget().filter(|&b| b > 0)?;
        Some((self.used.unwrap_or(0) as f64 / budget as f64).min(1.0))
    }
}

/// The budget's limits as `[general]` keeps them: `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub high: Option<MemoryLimit>,
    pub max: Option<MemoryLimit>,
}

/// Which rule reaches a unit, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitRule {
    /// `[apps.ID]` of the config file reaches the unit through these drop-ins.
    Rule {
        app_id: String,
        /// The rule's preset, when it names one.
        preset: Option<String>,
        /// What the rule does, in plain words.
        words: String,
        config_path: PathBuf,
        /// Corral's drop-in files that systemd reads for this unit.
        dropins: Vec<PathBuf>,
    },
    /// No rule reaches the unit; one can be made for `app_id`.
    None { app_id: String },
    /// No rule can be made for this unit, and why.
    Impossible(String),
}

impl UnitRule {
    /// The app id a rule for the unit is (or would be) kept under.
    pub fn app_id(&self) -> Option<&str> {
        match self {
            UnitRule::Rule { app_id, .. } | UnitRule::None { app_id } => Some(app_id),
            UnitRule::Impossible(_) => None,
        }
    }
}

/// Rules and the budget for the person's own user manager: its config store, its drop-in
/// folder, and the controller to reload systemd and read instances back with (none before
/// Corral is connected: then the files are written and apply at systemd's next reload).
#[derive(Clone)]
pub struct RuleService {
    store: ConfigStore,
    dropins: Result<DropInStore, String>,
    controller: Option<Arc<Controller>>,
    budget_cgroup: Arc<OnceLock<String>>,
}

impl std::fmt::Debug for RuleService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RuleService")
    }
}

impl RuleService {
    pub fn new(
        store: ConfigStore,
        dropins: Result<DropInStore, String>,
        controller: Option<Arc<Controller>>,
    ) -> RuleService {
        RuleService {
            store,
            dropins,
            controller,
            budget_cgroup: Arc::default(),
        }
    }

    /// The user's drop-in folder.
    pub fn for_user(store: ConfigStore, controller: Option<Arc<Controller>>) -> RuleService {
        RuleService::new(
            store,
            DropInStore::for_user().map_err(|e| e.to_string()),
            controller,
        )
    }

    pub fn store(&self) -> &ConfigStore {
        &self.store
    }

    /// Which rule reaches `info`'s unit in `config` (the config in force), and through which
    /// files; or why none can. Rules are for apps of the user manager whose unit name carries
    /// an app id (systemd's desktop naming): `run-u42.service` has none to key a rule by.
    pub fn rule_of(&self, config: &Config, info: &UnitInfo, manager: ManagerKind) -> UnitRule {
        if manager == ManagerKind::System {
            return UnitRule::Impossible(gettext(
                "Rules are for the apps of your own session: this window manages the system's units.",
            ));
        }
        if let Some((key, rule)) = crate::rules::rule_for_unit(config, &info.unit) {
            let read = dropin_folders_of(&info.unit);
            let dropins = match &self.dropins {
                Ok(store) => app_dropin_folders(key)
                    .iter()
                    .filter(|f| read.contains(f))
                    .map(|f| store.path_of(f))
                    .collect(),
                Err(_) => Vec::new(),
            };
            return UnitRule::Rule {
                app_id: key.to_owned(),
                preset: rule.preset.clone(),
                words: crate::rules::rule_settings(config, key)
                    .map(|s| s.plain_words())
                    .unwrap_or_default(),
                config_path: self.store.path().to_owned(),
                dropins,
            };
        }
        match &info.app_id {
            Some(app_id) if !app_id.is_empty() => UnitRule::None {
                app_id: app_id.clone(),
            },
            _ => UnitRule::Impossible(gettext_f(
                "{unit} names no app, so no rule can follow the app to its next start. Apps started from the app grid, the dock, Flatpak or Corral have one.",
                &[("unit", &info.unit)],
            )),
        }
    }

    /// The running instances each rule of `config` reaches, read back; `None` before Corral
    /// is connected or when systemd cannot be asked.
    pub async fn running(&self, config: &Config) -> Option<Vec<Instance>> {
        let ctl = self.controller.as_ref()?;
        live::instances(ctl, config, None).await.ok()
    }

    /// The config file, as it is once every queued edit is written.
    pub async fn load(&self) -> Result<Config, String> {
        self.store.load().await
    }

    /// Saves `draft` as the app's rule, writes its drop-ins, reloads systemd and reads the
    /// running instances back. `Err` when the config refused the rule (with the config's own
    /// words, as the command line gives them): nothing was changed then.
    pub async fn save(&self, draft: RuleDraft) -> Result<RuleOutcome, String> {
        let app_id = draft.app_id.trim().to_owned();
        if app_id.is_empty() {
            return Err(gettext(
                "Say which app the rule is for: its desktop app id, such as org.mozilla.firefox.",
            ));
        }
        self.store
            .save(ConfigEdit::Rule {
                app_id: app_id.clone(),
                preset: draft.preset,
                keys: draft.keys,
                settings: draft.settings,
            })
            .await?;
        let (config, problem) = self.apply().await?;
        let words = crate::rules::rules(&config)
            .any(|(key, _)| key == app_id)
            .then(|| {
                crate::rules::rule_settings(&config, &app_id)
                    .map(|s| s.plain_words())
                    .unwrap_or_default()
            });
        let instances = self.instances(&config, &app_id).await;
        Ok(RuleOutcome {
            app_id,
            words,
            instances,
            problem,
        })
    }

    /// Removes the app's rule and its drop-ins; its running instances keep the limits they
    /// have until they end.
    pub async fn remove(&self, app_id: &str) -> Result<RuleOutcome, String> {
        self.store
            .save(ConfigEdit::RemoveRule {
                app_id: app_id.to_owned(),
            })
            .await?;
        let (_, problem) = self.apply().await?;
        Ok(RuleOutcome {
            app_id: app_id.to_owned(),
            words: None,
            instances: None,
            problem,
        })
    }

    /// Sets the budget of all apps (app.slice), writes its drop-in, reloads systemd and reads
    /// app.slice's limits back.
    pub async fn set_budget(&self, budget: Budget) -> Result<Vec<LimitCheck>, String> {
        let text = |limit: Option<MemoryLimit>| match limit {
            // `max` is no limit: the key goes, as `corral budget --memory-high max` does.
            None | Some(MemoryLimit::Unlimited) => None,
            Some(limit) => Some(limit.to_string()),
        };
        self.store
            .save(ConfigEdit::GeneralTexts(vec![
                ("apps-memory-high", text(budget.high)),
                ("apps-memory-max", text(budget.max)),
            ]))
            .await?;
        let (config, problem) = self.apply().await?;
        if let Some(problem) = problem {
            return Err(problem);
        }
        let Some(ctl) = &self.controller else {
            return Ok(Vec::new());
        };
        Ok(live::budget_check(ctl, &config)
            .await
            .map(|i| i.checks)
            .unwrap_or_default())
    }

    /// What all apps use now against the budget in force, read from app.slice's cgroup;
    /// `None` before Corral is connected or when the slice cannot be read.
    pub async fn budget_usage(&self) -> Option<BudgetUsage> {
        let ctl = self.controller.clone()?;
        let cgroup = match self.budget_cgroup.get() {
            Some(cg) => cg.clone(),
            None => {
                let cg = live::budget_cgroup(&ctl.systemd).await?;
                self.budget_cgroup.get_or_init(|| cg).clone()
            }
        };
        tokio::task::spawn_blocking(move || {
            // The three files the line shows, not a whole sample: this runs at every tick.
            let mut slice = ctl.cgroups.unit(&cgroup);
            let value = |limit: Option<crate::cgroup::Limit>| match limit {
                Some(crate::cgroup::Limit::Value(v)) => Some(v),
                _ => None,
            };
            Some(BudgetUsage {
                used: slice.memory_current().ok()?,
                high: value(slice.memory_high().ok().flatten()),
                max: value(slice.memory_max().ok().flatten()),
            })
        })
        .await
        .ok()
        .flatten()
    }

    /// Brings the drop-ins in line with the file; returns the config and why the change may
    /// not be in force yet.
    async fn apply(&self) -> Result<(Config, Option<String>), String> {
        let config = self.store.load().await?;
        let dropins = match &self.dropins {
            Ok(dropins) => dropins.clone(),
            Err(e) => return Ok((config, Some(e.clone()))),
        };
        let path = self.store.path().to_owned();
        let applied = match &self.controller {
            Some(ctl) => live::apply(&ctl.systemd, &dropins, &config, &path)
                .await
                .map_err(|e| e.to_string())?,
            None => {
                let config = config.clone();
                tokio::task::spawn_blocking(move || {
                    live::sync_files(&dropins, &config, &path).map(|files| live::Applied {
                        files,
                        reload: None,
                        reload_problem: Some(gettext("Corral is not connected to systemd")),
                    })
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?
            }
        };
        let problem = applied.reload_problem.map(|problem| {
            gettext_f(
                "The drop-ins are written, but systemd could not reload them now ({problem}); they apply at its next reload.",
                &[("problem", &problem)],
            )
        });
        Ok((config, problem))
    }

    async fn instances(&self, config: &Config, app_id: &str) -> Option<Vec<Instance>> {
        let ctl = self.controller.as_ref()?;
        live::instances(ctl, config, Some(app_id)).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn service(dir: &std::path::Path) -> RuleService {
        let store = ConfigStore::spawn(dir.join("config.toml"), Duration::ZERO);
        let dropins = DropInStore::new(dir.join("units"), dir.join("state"));
        RuleService::new(store, Ok(dropins), None)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_saved_rule_writes_its_drop_ins_and_a_removed_one_takes_them_away() {
        let dir = tempfile::tempdir().unwrap();
        let rules = service(dir.path());
        let rt = runtime();
        let draft = RuleDraft {
            app_id: "org.example.App".into(),
            preset: RulePreset::Named("browser".into()),
            keys: RULE_KEYS.to_vec(),
            settings: Settings {
                memory_max: "96M".parse().ok(),
                ..Settings::default()
            },
        };
        let outcome = rt.block_on(rules.save(draft.clone())).unwrap();
        let words = outcome.words.clone().unwrap();
        assert!(words.contains("killed above 96 MiB"), "{words}");
        // Not connected: the files are there, and the outcome says systemd was not told.
        assert!(outcome.problem.is_some());
        assert!(outcome.summary().starts_with("Rule for org.example.App: "));
        let file = dir
            .path()
            .join("units/app-gnome-org.example.App-.scope.d/40-corral.conf");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("MemoryMax=100663296"), "{text}");

        // A value the config refuses is refused with its words, and changes nothing.
        let wrong = RuleDraft {
            settings: Settings {
                memory_high: "1G".parse().ok(),
                memory_max: "96M".parse().ok(),
                ..Settings::default()
            },
            ..draft
        };
        let error = rt.block_on(rules.save(wrong)).unwrap_err();
        assert!(error.contains("memory-high"), "{error}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

        let removed = rt.block_on(rules.remove("org.example.App")).unwrap();
        assert!(removed.words.is_none());
        assert!(!file.exists());
    }

    #[test]
    fn a_rule_needs_an_app() {
        let dir = tempfile::tempdir().unwrap();
        let rules = service(dir.path());
        let draft = RuleDraft {
            app_id: "  ".into(),
            preset: RulePreset::Keep,
            keys: Vec::new(),
            settings: Settings::default(),
        };
        assert!(runtime().block_on(rules.save(draft)).is_err());
    }

    #[test]
    fn the_budget_is_measured_against_its_soft_limit() {
        let usage = BudgetUsage {
            used: Some(3 * Bytes::GIB),
            high: Some(12 * Bytes::GIB),
            max: Some(14 * Bytes::GIB),
        };
        assert_eq!(usage.words(), "All apps: 3.0 GiB of 12 GiB budget");
        assert_eq!(usage.fraction(), Some(0.25));
        let none = BudgetUsage {
            used: Some(Bytes::GIB),
            ..BudgetUsage::default()
        };
        assert_eq!(none.words(), "All apps: 1.0 GiB · no budget");
        assert_eq!(none.fraction(), None);
    }
}
