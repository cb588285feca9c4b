//! The tray icon (ksni StatusNotifierItem + dbusmenu): [`TrayModel`], display state built purely
//! from the monitor's; [`CorralTray`] renders it, and its menu only sends [`TrayAction`]s.

pub mod service;

use tokio::sync::mpsc::UnboundedSender;

use crate::apps::AppCatalog;
use crate::cgroup::Limit;
use crate::config::{Config, DEFAULT_PRESET};
use crate::i18n::{gettext, gettext_f, ngettext_f, pgettext};
use crate::identity::APP_ID;
use crate::limits::{Bytes, CpuQuota, MemoryLimit, Percent};
use crate::monitor::UnitSnapshot;
use crate::monitor::service::MonitorState;
use crate::systemd::names::Launcher;

/// What a person asked for from the tray menu. The tray sends these and does nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrayAction {
    OpenWindow,
    /// "Choose app…": the window's launcher.
    OpenLauncher,
    Launch {
        app_id: String,
        preset: String,
    },
    Freeze {
        unit: String,
    },
    Thaw {
        unit: String,
    },
    SetMemoryMax {
        unit: String,
        limit: MemoryLimit,
    },
    SetCpuQuota {
        unit: String,
        quota: CpuQuota,
    },
    /// The limit for this instance, and kept as the rule of its app for every start.
    KeepMemoryRule {
        unit: String,
        app_id: String,
        limit: MemoryLimit,
    },
    KeepCpuRule {
        unit: String,
        app_id: String,
        quota: CpuQuota,
    },
    Stop {
        unit: String,
    },
    Kill {
        unit: String,
    },
    Quit,
    /// The menu is about to show: its figures should be fresh, and the monitor awake.
    MenuOpened,
}

/// One radio choice of a limit submenu.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitChoice<T> {
    pub label: String,
    /// `None` for the "Custom" entry that only shows the current value: choosing it again
    /// changes nothing.
    pub value: Option<T>,
}

/// A radio group's choices and which one the unit has now.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitChoices<T> {
    pub choices: Vec<LimitChoice<T>>,
    pub selected: usize,
}

/// A contained app as the tray shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrayUnit {
    pub unit: String,
    pub name: String,
    /// "Firefox — 2.1 GiB of 4.0 GiB · 35 % CPU"
    pub label: String,
    pub frozen: bool,
    pub memory: LimitChoices<MemoryLimit>,
    pub cpu: LimitChoices<CpuQuota>,
    /// The app id a rule for this app is kept under; `None` when the unit's name carries none
    /// (`run-u42.service`), so no "Keep as Rule" is offered.
    pub app_id: Option<String>,
}

/// An app the Launch submenu offers, with the preset it would be launched with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayLauncher {
    pub app_id: String,
    pub name: String,
    pub preset: String,
}

/// Everything the tray shows; no handles, no logic beyond formatting.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrayModel {
    pub units: Vec<TrayUnit>,
    pub launchers: Vec<TrayLauncher>,
    /// An alert (near the memory limit, throttled, under pressure) is active for some app.
    pub alert: bool,
    /// Memory used by all the listed apps together.
    pub total_memory: u64,
    /// Contained apps left out of the menu (beyond [`MAX_APPS`]); the window lists them.
    pub more_apps: usize,
    /// Why the monitor cannot list apps, if it cannot.
    pub problem: Option<String>,
    /// What is wrong with the config file, if it has a mistake (the last good one is in force).
    pub config_problem: Option<String>,
}

/// Fixed memory steps offered when the machine has more RAM than them.
const MEMORY_STEPS_GIB: [u64; 4] = [1, 2, 4, 8];
/// Shares of RAM offered, in percent.
const MEMORY_SHARES: [u32; 2] = [50, 70];
/// CPU quotas offered, in percent of one CPU.
const CPU_STEPS: [u32; 4] = [25, 50, 100, 200];
/// How many apps the Launch submenu lists before "Choose app…".
const MAX_LAUNCHERS: usize = 8;
/// How many contained apps get a submenu: a menu taller than the screen helps nobody, and
/// with 300 apps (5 000 items) building the menu each second took 40 % of a CPU in the guest
/// and a panel's GetLayout 5 s. The ones using the most memory are kept, the runaway candidates.
pub const MAX_APPS: usize = 15;
/// The kernel keeps memory.max in whole pages, and systemd rounds percentages itself.
const PAGE: u64 = 4096;

impl TrayModel {
    /// Builds the display state from the monitor's latest state. `show_all` includes apps
    /// launched elsewhere (GNOME, KDE, Flatpak, systemd-run); `total_ram` resolves percentages.
    pub fn from_state(
        state: &MonitorState,
        launchers: Vec<TrayLauncher>,
        alert: bool,
        total_ram: u64,
        show_all: bool,
    ) -> TrayModel {
        let mut shown: Vec<&crate::monitor::UnitSnapshot> = state
            .units
            .iter()
            .filter(|s| show_all || s.info.launcher == Launcher::Corral)
            .collect();
        let more_apps = shown.len().saturating_sub(MAX_APPS);
        if more_apps > 0 {
            let used = |s: &crate::monitor::UnitSnapshot| {
                s.cgroup
                    .as_ref()
                    .and_then(|c| c.memory_current)
                    .unwrap_or(0)
            };
            // The biggest, then back in the monitor's order (by name) so the menu keeps still.
            let mut order: Vec<usize> = (0..shown.len()).collect();
            order.sort_by_key(|&i| std::cmp::Reverse(used(shown[i])));
            let mut keep: Vec<usize> = order.into_iter().take(MAX_APPS).collect();
            keep.sort_unstable();
            shown = keep.into_iter().map(|i| shown[i]).collect();
        }
        let units: Vec<TrayUnit> = shown.iter().map(|s| tray_unit(s, total_ram)).collect();
        let total_memory = state
            .units
            .iter()
            .filter(|s| show_all || s.info.launcher == Launcher::Corral)
            .filter_map(|s| s.cgroup.as_ref()?.memory_current)
            .sum();
        TrayModel {
            units,
            launchers,
            alert,
            total_memory,
            more_apps,
            problem: state.problem.clone(),
            config_problem: state.config_problem.clone(),
        }
    }

    /// "4 contained apps · 6.1 GiB"
    pub fn summary(&self) -> String {
        match self.units.len() + self.more_apps {
            0 => gettext("No contained apps"),
            n => ngettext_f(
                "{n} contained app · {size}",
                "{n} contained apps · {size}",
                n as u64,
                &[("n", &n), ("size", &Bytes(self.total_memory))],
            ),
        }
    }
}

/// The apps the Launch submenu offers: those with a rule in the config (a remembered preset
/// or a rule of their own), named as their desktop entry names them, each with the preset it
/// would get.
pub fn launchers(config: &Config, catalog: &AppCatalog) -> Vec<TrayLauncher> {
    let mut list: Vec<TrayLauncher> = config
        .rules()
        .filter_map(|(key, rule)| {
            // Only apps that can be launched from the menu: a desktop entry must exist.
            let app = catalog.get(key)?;
            let preset = rule
                .last_preset
                .clone()
                .or_else(|| rule.preset.clone())
                .unwrap_or_else(|| DEFAULT_PRESET.to_owned());
            Some(TrayLauncher {
                app_id: app.id.clone(),
                name: app.name.clone(),
                preset,
            })
        })
        .collect();
    list.sort_by_key(|a| a.name.to_lowercase());
    list.dedup_by(|a, b| a.app_id == b.app_id);
    list.truncate(MAX_LAUNCHERS);
    list
}

fn tray_unit(snap: &UnitSnapshot, total_ram: u64) -> TrayUnit {
    let sample = snap.cgroup.as_ref();
    let frozen = sample
        .and_then(|s| s.events.and_then(|e| e.frozen).or(s.freeze))
        .unwrap_or(false);
    let memory_max = sample.and_then(|s| s.memory_max);
    let cpu_percent_limit = sample.and_then(|s| s.cpu_max).map(|m| match m.quota {
        Limit::Max => None,
        Limit::Value(q) => Some(q.saturating_mul(100) / m.period_usec.max(1)),
    });
    TrayUnit {
        unit: snap.info.unit.clone(),
        name: snap.info.name.clone(),
        label: unit_label(snap, frozen),
        frozen,
        memory: memory_choices(memory_max, total_ram),
        cpu: cpu_choices(cpu_percent_limit),
        app_id: snap.info.app_id.clone().filter(|id| !id.is_empty()),
    }
}

/// "Firefox — 2.1 GiB of 4.0 GiB · 35 % CPU", or "Firefox — frozen · 2.1 GiB".
fn unit_label(snap: &UnitSnapshot, frozen: bool) -> String {
    let sample = snap.cgroup.as_ref();
    let mut parts = Vec::new();
    if frozen {
        parts.push(pgettext("app state", "frozen"));
    }
    match (
        sample.and_then(|s| s.memory_current),
        sample.and_then(|s| s.memory_max),
    ) {
        (Some(used), Some(Limit::Value(max))) => parts.push(gettext_f(
            "{used} of {limit}",
            &[("used", &Bytes(used)), ("limit", &Bytes(max))],
        )),
        (Some(used), _) => parts.push(Bytes(used).to_string()),
        (None, _) => {}
    }
    if !frozen && let Some(cpu) = snap.cpu_percent {
        parts.push(gettext_f(
            "{percent} % CPU",
            &[("percent", &format!("{cpu:.0}"))],
        ));
    }
    if parts.is_empty() {
        snap.info.name.clone()
    } else {
        format!("{} — {}", snap.info.name, parts.join(" · "))
    }
}

/// Memory steps below the machine's RAM, shares of RAM and "No limit"; the unit's current
/// memory.max is selected, or shown as a custom entry when it is none of them.
fn memory_choices(current: Option<Limit>, total_ram: u64) -> LimitChoices<MemoryLimit> {
    let mut choices: Vec<LimitChoice<MemoryLimit>> = MEMORY_STEPS_GIB
        .iter()
        .map(|gib| gib * Bytes::GIB)
        .filter(|bytes| total_ram == 0 || *bytes < total_ram)
        .map(|bytes| LimitChoice {
            label: Bytes(bytes).to_string(),
            value: Some(MemoryLimit::Bytes(Bytes(bytes))),
        })
        .collect();
    for share in MEMORY_SHARES {
        if let Some(percent) = Percent::from_permyriad(share * 100) {
            let label = if total_ram > 0 {
                gettext_f(
                    "{percent} % of RAM ({size})",
                    &[("percent", &share), ("size", &Bytes(percent.of(total_ram)))],
                )
            } else {
                gettext_f("{percent} % of RAM", &[("percent", &share)])
            };
            choices.push(LimitChoice {
                label,
                value: Some(MemoryLimit::Percent(percent)),
            });
        }
    }
    choices.push(LimitChoice {
        label: gettext("No limit"),
        value: Some(MemoryLimit::Unlimited),
    });
    let matches = |choice: &LimitChoice<MemoryLimit>| match (choice.value, current) {
        (Some(MemoryLimit::Unlimited), Some(Limit::Max)) => true,
        (Some(limit), Some(Limit::Value(actual))) => limit
            .resolve(total_ram)
            .is_some_and(|wanted| wanted.abs_diff(actual) <= PAGE.max(wanted / 200)),
        _ => false,
    };
    let selected = match choices.iter().position(matches) {
        Some(i) => i,
        None => {
            let label = match current {
                Some(Limit::Value(bytes)) => {
                    gettext_f("Custom: {value}", &[("value", &Bytes(bytes))])
                }
                // Unknown: the memory controller is missing or the cgroup is gone.
                Some(Limit::Max) | None => gettext("Unknown"),
            };
            choices.push(LimitChoice { label, value: None });
            choices.len() - 1
        }
    };
    LimitChoices { choices, selected }
}

/// CPU steps and "No limit"; `current` is the quota in percent of one CPU (`Some(None)`:
/// no quota; `None`: unknown).
fn cpu_choices(current: Option<Option<u64>>) -> LimitChoices<CpuQuota> {
    let mut choices: Vec<LimitChoice<CpuQuota>> = CPU_STEPS
        .iter()
        .map(|&p| LimitChoice {
            label: format!("{p} %"),
            value: Some(CpuQuota::Percent(p)),
        })
        .collect();
    choices.push(LimitChoice {
        label: gettext("No limit"),
        value: Some(CpuQuota::Unlimited),
    });
    let matches = |choice: &LimitChoice<CpuQuota>| match (choice.value, current) {
        (Some(CpuQuota::Unlimited), Some(None)) => true,
        (Some(CpuQuota::Percent(p)), Some(Some(actual))) => u64::from(p) == actual,
        _ => false,
    };
    let selected = match choices.iter().position(matches) {
        Some(i) => i,
        None => {
            let label = match current {
                Some(Some(percent)) => {
                    gettext_f("Custom: {value}", &[("value", &format!("{percent} %"))])
                }
                _ => gettext("Unknown"),
            };
            choices.push(LimitChoice { label, value: None });
            choices.len() - 1
        }
    };
    LimitChoices { choices, selected }
}

/// The ksni tray: the model plus the channel its menu sends on.
pub struct CorralTray {
    pub model: TrayModel,
    actions: UnboundedSender<TrayAction>,
    /// Told once when no StatusNotifierWatcher is there (or it went away).
    offline: Option<Box<dyn Fn(String) + Send>>,
    /// Counts the changes of which apps the menu lists, in which order (see [`Self::show`]).
    apps_changed: u64,
}

impl CorralTray {
    pub fn new(model: TrayModel, actions: UnboundedSender<TrayAction>) -> CorralTray {
        CorralTray {
            model,
            actions,
            offline: None,
            apps_changed: 0,
        }
    }

    /// Shows `model`. A panel addresses menu items by id, and ksni numbers them by their place
    /// in the menu, giving them new ids only when the menu's shape changes: had Firefox's
    /// submenu become Code's with the same shape, a panel still showing Firefox's would kill
    /// Code with the id of Firefox's Kill. So a change of which apps are listed, or of their
    /// order, changes the shape too (a hidden item comes or goes at the end), and the panel's
    /// old ids are refused (LayoutUpdated, new revision).
    pub fn show(&mut self, model: TrayModel) {
        let units = |m: &TrayModel| m.units.iter().map(|u| u.unit.clone()).collect::<Vec<_>>();
        if units(&self.model) != units(&model) {
            self.apps_changed += 1;
        }
        self.model = model;
    }

    /// Calls `hook` with the reason whenever the watcher is offline (ksni calls
    /// [`ksni::Tray::watcher_offline`]), so the app can fall back to its window.
    pub fn on_offline(mut self, hook: impl Fn(String) + Send + 'static) -> CorralTray {
        self.offline = Some(Box::new(hook));
        self
    }

    fn send(&self, action: TrayAction) {
        // The receiver only goes away when the app quits; nothing is left to do then.
        let _ = self.actions.send(action);
    }

    fn unit_menu(unit: &TrayUnit) -> ksni::MenuItem<Self> {
        use ksni::menu::{CheckmarkItem, StandardItem, SubMenu};
        let freeze = {
            let action = if unit.frozen {
                TrayAction::Thaw {
                    unit: unit.unit.clone(),
                }
            } else {
                TrayAction::Freeze {
                    unit: unit.unit.clone(),
                }
            };
            CheckmarkItem {
                label: gettext("Frozen"),
                checked: unit.frozen,
                activate: Box::new(move |tray: &mut Self| tray.send(action.clone())),
                ..Default::default()
            }
        };
        let memory = {
            let unit_name = unit.unit.clone();
            let keep = unit.app_id.clone().map(|app_id| {
                let unit_name = unit.unit.clone();
                keep_menu(&unit.memory, move |limit| TrayAction::KeepMemoryRule {
                    unit: unit_name.clone(),
                    app_id: app_id.clone(),
                    limit,
                })
            });
            radio_menu(
                &gettext("Memory limit"),
                &unit.memory,
                move |limit| TrayAction::SetMemoryMax {
                    unit: unit_name.clone(),
                    limit,
                },
                keep,
            )
        };
        let cpu = {
            let unit_name = unit.unit.clone();
            let keep = unit.app_id.clone().map(|app_id| {
                let unit_name = unit.unit.clone();
                keep_menu(&unit.cpu, move |quota| TrayAction::KeepCpuRule {
                    unit: unit_name.clone(),
                    app_id: app_id.clone(),
                    quota,
                })
            });
            radio_menu(
                &gettext("CPU limit"),
                &unit.cpu,
                move |quota| TrayAction::SetCpuQuota {
                    unit: unit_name.clone(),
                    quota,
                },
                keep,
            )
        };
        let item = |label: &str, action: TrayAction| {
            StandardItem {
                label: label.to_owned(),
                activate: Box::new(move |tray: &mut Self| tray.send(action.clone())),
                ..Default::default()
            }
            .into()
        };
        SubMenu {
            label: menu_label_text(&unit.label),
            submenu: vec![
                freeze.into(),
                memory,
                cpu,
                ksni::MenuItem::Separator,
                item(
                    &gettext("Stop"),
                    TrayAction::Stop {
                        unit: unit.unit.clone(),
                    },
                ),
                // A kill loses the app's unsaved work: confirmed in a submenu that names the
                // app, as the window confirms it in a dialog. A dialog from the tray would
                // pop up in front of whatever the person is doing (and may not be raised
                // at all on Wayland); a second deliberate click on the app's name is the
                // tray's own way to ask.
                SubMenu {
                    label: gettext("Kill…"),
                    submenu: vec![item(
                        &gettext_f("Kill {app} Now", &[("app", &menu_label_text(&unit.name))]),
                        TrayAction::Kill {
                            unit: unit.unit.clone(),
                        },
                    )],
                    ..Default::default()
                }
                .into(),
            ],
            ..Default::default()
        }
        .into()
    }
}

/// "Keep as Rule for This App": the same choices as plain items (a rule is not a state of this
/// instance that a radio item could show), each sending the action `to_action` makes of it.
fn keep_menu<V: Copy + Send + 'static>(
    choices: &LimitChoices<V>,
    to_action: impl Fn(V) -> TrayAction + Send + Sync + 'static,
) -> ksni::MenuItem<CorralTray> {
    use ksni::menu::{StandardItem, SubMenu};
    let to_action = std::sync::Arc::new(to_action);
    let items = choices
        .choices
        .iter()
        .filter_map(|c| {
            let value = c.value?;
            let to_action = std::sync::Arc::clone(&to_action);
            Some(
                StandardItem {
                    label: c.label.clone(),
                    activate: Box::new(move |tray: &mut CorralTray| tray.send(to_action(value))),
                    ..Default::default()
                }
                .into(),
            )
        })
        .collect();
    SubMenu {
        label: gettext("Keep as Rule for This App"),
        submenu: items,
        ..Default::default()
    }
    .into()
}

/// A submenu of radio choices; choosing one sends the action `to_action` makes of its value.
/// `keep`, when given, follows the choices after a separator.
fn radio_menu<V: Copy + Send + 'static>(
    label: &str,
    choices: &LimitChoices<V>,
    to_action: impl Fn(V) -> TrayAction + Send + 'static,
    keep: Option<ksni::MenuItem<CorralTray>>,
) -> ksni::MenuItem<CorralTray> {
    use ksni::menu::{RadioGroup, RadioItem, SubMenu};
    let values: Vec<Option<V>> = choices.choices.iter().map(|c| c.value).collect();
    let group = RadioGroup {
        selected: choices.selected,
        select: Box::new(move |tray: &mut CorralTray, i: usize| {
            // The custom entry has no value: it shows what is set, choosing it changes nothing.
            if let Some(Some(value)) = values.get(i) {
                tray.send(to_action(*value));
            }
        }),
        options: choices
            .choices
            .iter()
            .map(|c| RadioItem {
                label: c.label.clone(),
                ..Default::default()
            })
            .collect(),
    };
    let mut submenu = vec![group.into()];
    if let Some(keep) = keep {
        submenu.push(ksni::MenuItem::Separator);
        submenu.push(keep);
    }
    SubMenu {
        label: label.to_owned(),
        submenu,
        ..Default::default()
    }
    .into()
}

impl ksni::Tray for CorralTray {
    fn id(&self) -> String {
        APP_ID.to_owned()
    }

    fn title(&self) -> String {
        "Corral".to_owned()
    }

    fn category(&self) -> ksni::Category {
        ksni::Category::SystemServices
    }

    fn status(&self) -> ksni::Status {
        if self.model.alert {
            ksni::Status::NeedsAttention
        } else {
            ksni::Status::Active
        }
    }

    fn icon_name(&self) -> String {
        icon_name(self.model.alert)
    }

    /// A tray host asks before it shows the menu (com.canonical.dbusmenu AboutToShow): the
    /// monitor, which sleeps while the window is hidden and nothing is going on, samples now
    /// and keeps its full pace for a while.
    fn menu_about_to_show(&mut self) {
        let _ = self.actions.send(TrayAction::MenuOpened);
    }

    fn attention_icon_name(&self) -> String {
        icon_name(true)
    }

    /// For hosts that cannot find the themed icon (Corral run from its build folder).
    fn icon_pixmap(&self) -> Vec<ksni::Icon> {
        [22, 44]
            .into_iter()
            .map(|size| pixmap(size, self.model.alert))
            .collect()
    }

    fn tool_tip(&self) -> ksni::ToolTip {
        let description = match (&self.model.problem, &self.model.config_problem) {
            (Some(problem), _) | (None, Some(problem)) => problem.clone(),
            (None, None) if self.model.alert => gettext("An app needs attention"),
            (None, None) => String::new(),
        };
        ksni::ToolTip {
            icon_name: icon_name(self.model.alert),
            icon_pixmap: Vec::new(),
            title: self.model.summary(),
            description,
        }
    }

    /// A left click opens the window, as the menu's first entry does.
    fn activate(&mut self, _x: i32, _y: i32) {
        self.send(TrayAction::OpenWindow);
    }

    fn menu(&self) -> Vec<ksni::MenuItem<Self>> {
        use ksni::menu::{StandardItem, SubMenu};
        let item = |label: String, action: TrayAction| -> ksni::MenuItem<Self> {
            StandardItem {
                label,
                activate: Box::new(move |tray: &mut Self| tray.send(action.clone())),
                ..Default::default()
            }
            .into()
        };
        let mut launch: Vec<ksni::MenuItem<Self>> = self
            .model
            .launchers
            .iter()
            .map(|l| {
                item(
                    menu_label_text(&format!("{} ({})", l.name, l.preset)),
                    TrayAction::Launch {
                        app_id: l.app_id.clone(),
                        preset: l.preset.clone(),
                    },
                )
            })
            .collect();
        if !launch.is_empty() {
            launch.push(ksni::MenuItem::Separator);
        }
        launch.push(item(gettext("Choose App…"), TrayAction::OpenLauncher));

        let mut menu = vec![
            item(gettext("Open Corral"), TrayAction::OpenWindow),
            SubMenu {
                label: gettext("Launch"),
                submenu: launch,
                ..Default::default()
            }
            .into(),
            ksni::MenuItem::Separator,
        ];
        if self.model.units.is_empty() {
            menu.push(
                StandardItem {
                    // The whole reason is long: it is in the tooltip and the window's banner.
                    label: if self.model.problem.is_some() {
                        gettext("Cannot list apps: open Corral for why")
                    } else {
                        gettext("No contained apps")
                    },
                    enabled: false,
                    ..Default::default()
                }
                .into(),
            );
        }
        menu.extend(self.model.units.iter().map(Self::unit_menu));
        if self.model.more_apps > 0 {
            menu.push(item(
                ngettext_f(
                    "Open Corral for {n} More App",
                    "Open Corral for {n} More Apps",
                    self.model.more_apps as u64,
                    &[("n", &self.model.more_apps)],
                ),
                TrayAction::OpenWindow,
            ));
        }
        menu.push(ksni::MenuItem::Separator);
        menu.push(item(gettext("Quit"), TrayAction::Quit));
        // See `show`: the menu's shape changes with the list of apps.
        if self.apps_changed % 2 == 1 {
            menu.push(
                StandardItem {
                    visible: false,
                    enabled: false,
                    ..Default::default()
                }
                .into(),
            );
        }
        menu
    }

    fn watcher_offline(&self, reason: ksni::OfflineReason) -> bool {
        if let Some(hook) = &self.offline {
            let why = match reason {
                ksni::OfflineReason::Error(e) => e.to_string(),
                _ => gettext("the StatusNotifierWatcher went away"),
            };
            hook(why);
        }
        // Keep the item alive: a watcher that starts later (a panel restarting) gets it.
        true
    }
}

/// Text for a dbusmenu label, which gives `_` a meaning (com.canonical.dbusmenu "label": an
/// underscore marks the access key, two stand for one): an app named `my_app` keeps its
/// underscore instead of losing it to an access key.
pub fn menu_label_text(text: &str) -> String {
    text.replace('_', "__")
}

/// The themed icon: the app's symbolic icon, its alert variant while an alert is active.
pub fn icon_name(alert: bool) -> String {
    if alert {
        format!("{APP_ID}-alert-symbolic")
    } else {
        format!("{APP_ID}-symbolic")
    }
}

/// A fallback icon drawn in code, ARGB32 in network byte order as the spec asks: a ring (the
/// corral) with three fence posts, grey; orange while an alert is active.
pub fn pixmap(size: i32, alert: bool) -> ksni::Icon {
    let (r, g, b) = if alert {
        (0xe6, 0x61, 0x00)
    } else {
        (0xbe, 0xbe, 0xbe)
    };
    let n = size.max(1) as usize;
    let mut data = Vec::with_capacity(n * n * 4);
    let c = (n as f64 - 1.0) / 2.0;
    let outer = n as f64 / 2.0 - 0.5;
    let inner = outer - (n as f64 / 8.0).max(1.5);
    let post = (n as f64 / 11.0).max(1.0);
    for y in 0..n {
        for x in 0..n {
            let (dx, dy) = (x as f64 - c, y as f64 - c);
            let d = (dx * dx + dy * dy).sqrt();
            let ring = d <= outer && d >= inner;
            let posts = d < inner
                && dy.abs() < inner * 0.6
                && [-inner / 2.0, 0.0, inner / 2.0]
                    .iter()
                    .any(|px| (dx - px).abs() < post / 2.0 + 0.5);
            let alpha = if ring || posts { 0xff } else { 0 };
            data.extend_from_slice(&[alpha, r, g, b]);
        }
    }
    ksni::Icon {
        width: size,
        height: size,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::{CgroupEvents, CgroupSample, CpuMax};
    use crate::monitor::UnitInfo;

    const GIB: u64 = Bytes::GIB;
    const RAM: u64 = 16 * GIB;

    fn snapshot(
        unit: &str,
        description: &str,
        used: u64,
        memory_max: Limit,
        cpu_quota_percent: Option<u64>,
        cpu: f64,
        frozen: bool,
    ) -> UnitSnapshot {
        let sample = CgroupSample {
            memory_current: Some(used),
            memory_max: Some(memory_max),
            cpu_max: Some(CpuMax {
                quota: cpu_quota_percent.map_or(Limit::Max, |p| Limit::Value(p * 1000)),
                period_usec: 100_000,
            }),
            events: Some(CgroupEvents {
                populated: Some(true),
                frozen: Some(frozen),
            }),
            ..CgroupSample::default()
        };
        UnitSnapshot {
            info: UnitInfo::new(
                unit.to_owned(),
                description,
                "active".to_owned(),
                "running".to_owned(),
                Some(format!("/user.slice/app.slice/{unit}")),
            )
            .into(),
            cgroup: Some(sample),
            cpu_percent: Some(cpu),
        }
    }

    fn fixture() -> MonitorState {
        MonitorState {
            units: vec![
                snapshot(
                    "app-corral-firefox-1a2b3c4d.service",
                    "Firefox [corral: browser]",
                    2254857830, // 2.1 GiB
                    Limit::Value(4 * GIB),
                    Some(100),
                    35.2,
                    false,
                ),
                snapshot(
                    "app-corral-code-5e6f7a8b.service",
                    "Visual Studio Code [corral: relaxed]",
                    GIB,
                    // 3 GiB is none of the steps: shown as a custom value.
                    Limit::Value(3 * GIB),
                    Some(150),
                    0.0,
                    true,
                ),
                snapshot(
                    "app-gnome-org.gnome.Terminal-1234.scope",
                    "GNOME Terminal",
                    GIB / 2,
                    Limit::Max,
                    None,
                    1.0,
                    false,
                ),
            ],
            sampled_at: None,
            problem: None,
            alerts: Vec::new(),
            ..MonitorState::default()
        }
    }

    #[test]
    fn labels_show_usage_against_the_limit() {
        let model = TrayModel::from_state(&fixture(), Vec::new(), false, RAM, true);
        let labels: Vec<&str> = model.units.iter().map(|u| u.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "Firefox — 2.1 GiB of 4.0 GiB · 35 % CPU",
                "Visual Studio Code — frozen · 1.0 GiB of 3.0 GiB",
                "GNOME Terminal — 512 MiB · 1 % CPU",
            ]
        );
        assert!(model.units[1].frozen);
        assert!(!model.units[0].frozen);
    }

    /// The labels of a submenu's items, `-` for a separator.
    fn item_labels(items: &[ksni::MenuItem<CorralTray>]) -> Vec<String> {
        items
            .iter()
            .map(|item| match item {
                ksni::MenuItem::SubMenu(m) => m.label.clone(),
                ksni::MenuItem::Standard(i) => i.label.clone(),
                ksni::MenuItem::Checkmark(i) => i.label.clone(),
                ksni::MenuItem::RadioGroup(_) => "(radio)".into(),
                ksni::MenuItem::Separator => "-".into(),
            })
            .collect()
    }

    fn submenu<'a>(
        items: &'a [ksni::MenuItem<CorralTray>],
        label: &str,
    ) -> &'a [ksni::MenuItem<CorralTray>] {
        items
            .iter()
            .find_map(|item| match item {
                ksni::MenuItem::SubMenu(m) if m.label == label => Some(m.submenu.as_slice()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {label} in {:?}", item_labels(items)))
    }

    #[test]
    fn a_limit_can_be_kept_as_the_apps_rule_where_the_unit_names_an_app() {
        let mut state = fixture();
        state.units.push(snapshot(
            "run-u42.service",
            "sleep 600",
            GIB / 4,
            Limit::Max,
            None,
            0.0,
            false,
        ));
        let model = TrayModel::from_state(&state, Vec::new(), false, RAM, true);
        let firefox = &model.units[0];
        assert_eq!(firefox.app_id.as_deref(), Some("firefox"));
        let app = CorralTray::unit_menu(firefox);
        let ksni::MenuItem::SubMenu(app) = app else {
            panic!("not a submenu")
        };
        let memory = submenu(&app.submenu, "Memory limit");
        assert_eq!(
            item_labels(memory),
            ["(radio)", "-", "Keep as Rule for This App"]
        );
        let keep = submenu(memory, "Keep as Rule for This App");
        // The steps below RAM, the shares, "No limit"; never the custom entry.
        assert_eq!(
            item_labels(keep).first().map(String::as_str),
            Some("1.0 GiB")
        );
        assert_eq!(
            item_labels(keep).last().map(String::as_str),
            Some("No limit")
        );
        let cpu = submenu(&app.submenu, "CPU limit");
        assert_eq!(
            item_labels(submenu(cpu, "Keep as Rule for This App")).len(),
            5
        );

        let plain = model
            .units
            .iter()
            .find(|u| u.unit == "run-u42.service")
            .unwrap();
        assert_eq!(plain.app_id, None);
        let ksni::MenuItem::SubMenu(plain) = CorralTray::unit_menu(plain) else {
            panic!("not a submenu")
        };
        assert_eq!(
            item_labels(submenu(&plain.submenu, "Memory limit")),
            ["(radio)"]
        );
    }

    #[test]
    fn only_corrals_apps_unless_all_are_asked_for() {
        let model = TrayModel::from_state(&fixture(), Vec::new(), false, RAM, false);
        assert_eq!(model.units.len(), 2);
        assert_eq!(model.total_memory, 2254857830 + GIB);
        assert_eq!(model.summary(), "2 contained apps · 3.1 GiB");
    }

    #[test]
    fn tooltip_counts_apps_and_memory() {
        let all = TrayModel::from_state(&fixture(), Vec::new(), false, RAM, true);
        assert_eq!(all.summary(), "3 contained apps · 3.6 GiB");
        let none = TrayModel::from_state(&MonitorState::default(), Vec::new(), false, RAM, true);
        assert_eq!(none.summary(), "No contained apps");
        let mut one = fixture();
        one.units.truncate(1);
        let one = TrayModel::from_state(&one, Vec::new(), false, RAM, true);
        assert_eq!(one.summary(), "1 contained app · 2.1 GiB");
    }

    #[test]
    fn with_many_apps_the_menu_keeps_the_biggest_and_points_to_the_window() {
        let units: Vec<UnitSnapshot> = (0..300)
            .map(|i| {
                snapshot(
                    &format!("app-corral-app{i:03}-{i:08x}.service"),
                    &format!("App {i:03} [corral: test]"),
                    // App 150 uses the most; the others grow with their number, mod 100.
                    if i == 150 {
                        8 * GIB
                    } else {
                        (i % 100) * 1024 * 1024
                    },
                    Limit::Max,
                    None,
                    1.0,
                    false,
                )
            })
            .collect();
        let state = MonitorState {
            units,
            ..MonitorState::default()
        };
        let model = TrayModel::from_state(&state, Vec::new(), false, RAM, true);
        assert_eq!(model.units.len(), MAX_APPS);
        assert_eq!(model.more_apps, 300 - MAX_APPS);
        assert_eq!(
            model.summary(),
            format!("300 contained apps · {}", Bytes(model.total_memory))
        );
        let names: Vec<&str> = model.units.iter().map(|u| u.name.as_str()).collect();
        assert!(names.contains(&"App 150"), "{names:?}");
        assert!(names.is_sorted(), "kept in the list's order: {names:?}");
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let menu = ksni::Tray::menu(&CorralTray::new(model, tx));
        let labels: Vec<String> = menu
            .iter()
            .filter_map(|item| match item {
                ksni::MenuItem::Standard(s) => Some(s.label.clone()),
                _ => None,
            })
            .collect();
        assert!(
            labels.contains(&"Open Corral for 285 More Apps".to_owned()),
            "{labels:?}"
        );
    }

    #[test]
    fn tooltip_tells_of_a_config_mistake_after_a_lost_connection() {
        use ksni::Tray;
        let tooltip = |problem: Option<&str>, config_problem: Option<&str>| {
            let state = MonitorState {
                problem: problem.map(str::to_owned),
                config_problem: config_problem.map(str::to_owned),
                ..fixture()
            };
            let model = TrayModel::from_state(&state, Vec::new(), false, RAM, true);
            let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
            CorralTray::new(model, tx).tool_tip().description
        };
        assert_eq!(tooltip(None, None), "");
        assert_eq!(
            tooltip(None, Some("config.toml:3:14: bad")),
            "config.toml:3:14: bad"
        );
        assert_eq!(
            tooltip(Some("Lost the bus"), Some("config.toml:3:14: bad")),
            "Lost the bus"
        );
    }

    fn labels<T>(choices: &LimitChoices<T>) -> Vec<&str> {
        choices.choices.iter().map(|c| c.label.as_str()).collect()
    }

    #[test]
    fn memory_choices_are_steps_below_ram_with_the_current_one_selected() {
        let model = TrayModel::from_state(&fixture(), Vec::new(), false, RAM, true);
        let firefox = &model.units[0].memory;
        assert_eq!(
            labels(firefox),
            [
                "1.0 GiB",
                "2.0 GiB",
                "4.0 GiB",
                "8.0 GiB",
                "50 % of RAM (8.0 GiB)",
                "70 % of RAM (11 GiB)",
                "No limit"
            ]
        );
        assert_eq!(firefox.selected, 2);
        assert_eq!(
            firefox.choices[2].value,
            Some(MemoryLimit::Bytes(Bytes(4 * GIB)))
        );
        // No memory.max: "No limit".
        let terminal = &model.units[2].memory;
        assert_eq!(labels(terminal)[terminal.selected], "No limit");
    }

    #[test]
    fn a_custom_memory_limit_is_shown_as_such_and_changes_nothing() {
        let model = TrayModel::from_state(&fixture(), Vec::new(), false, RAM, true);
        let code = &model.units[1].memory;
        assert_eq!(labels(code).last(), Some(&"Custom: 3.0 GiB"));
        assert_eq!(code.selected, code.choices.len() - 1);
        assert_eq!(code.choices[code.selected].value, None);
    }

    #[test]
    fn a_share_of_ram_matches_its_percent_choice() {
        // systemd resolves 70 % itself and the kernel rounds to pages: still the 70 % choice.
        let seventy = (RAM as f64 * 0.7) as u64 / PAGE * PAGE;
        let choices = memory_choices(Some(Limit::Value(seventy)), RAM);
        assert_eq!(labels(&choices)[choices.selected], "70 % of RAM (11 GiB)");
    }

    #[test]
    fn small_machines_get_no_steps_above_their_ram() {
        let choices = memory_choices(Some(Limit::Max), 3 * GIB);
        assert_eq!(
            labels(&choices),
            [
                "1.0 GiB",
                "2.0 GiB",
                "50 % of RAM (1.5 GiB)",
                "70 % of RAM (2.1 GiB)",
                "No limit"
            ]
        );
    }

    #[test]
    fn cpu_choices_with_custom_and_unknown_values() {
        let model = TrayModel::from_state(&fixture(), Vec::new(), false, RAM, true);
        let firefox = &model.units[0].cpu;
        assert_eq!(
            labels(firefox),
            ["25 %", "50 %", "100 %", "200 %", "No limit"]
        );
        assert_eq!(firefox.selected, 2);
        let code = &model.units[1].cpu;
        assert_eq!(labels(code)[code.selected], "Custom: 150 %");
        let terminal = &model.units[2].cpu;
        assert_eq!(labels(terminal)[terminal.selected], "No limit");
        // No cpu.max file (no cpu controller): the value is unknown, not "No limit".
        let unknown = cpu_choices(None);
        assert_eq!(labels(&unknown)[unknown.selected], "Unknown");
    }

    #[test]
    fn an_alert_changes_icon_and_status() {
        use ksni::Tray;
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tray = CorralTray::new(TrayModel::default(), tx);
        assert_eq!(tray.icon_name(), "io.github.corral.Corral-symbolic");
        assert!(matches!(tray.status(), ksni::Status::Active));
        tray.model.alert = true;
        assert_eq!(tray.icon_name(), "io.github.corral.Corral-alert-symbolic");
        assert!(matches!(tray.status(), ksni::Status::NeedsAttention));
    }

    #[test]
    fn the_pixmap_is_argb32_of_its_size_with_something_drawn() {
        for size in [22, 44] {
            let icon = pixmap(size, false);
            assert_eq!(icon.data.len(), (size * size * 4) as usize);
            let opaque = icon.data.chunks(4).filter(|p| p[0] == 0xff).count();
            let total = (size * size) as usize;
            assert!(
                opaque > total / 10 && opaque < total / 2,
                "{opaque} of {total}"
            );
        }
        assert_ne!(pixmap(22, true).data, pixmap(22, false).data);
    }

    #[test]
    fn launchers_come_from_rules_with_their_remembered_preset() {
        let dir = tempfile::tempdir().unwrap();
        let apps = dir.path().join("applications");
        std::fs::create_dir(&apps).unwrap();
        for (id, name) in [
            ("org.mozilla.firefox", "Firefox"),
            ("org.gnome.Gedit", "Text Editor"),
        ] {
            std::fs::write(
                apps.join(format!("{id}.desktop")),
                format!("[Desktop Entry]\nType=Application\nName={name}\nExec=sh\n"),
            )
            .unwrap();
        }
        let catalog = AppCatalog::load_from(&[apps]);
        let config = Config::parse(
            "[apps.\"org.mozilla.firefox\"]\npreset = \"browser\"\nlast-preset = \"strict\"\n\
             [apps.\"org.gnome.Gedit\"]\nmemory-max = \"1G\"\n\
             [apps.\"not-installed\"]\npreset = \"strict\"\n",
            std::path::Path::new("config.toml"),
        )
        .unwrap();
        let list = launchers(&config, &catalog);
        assert_eq!(
            list,
            [
                TrayLauncher {
                    app_id: "org.mozilla.firefox".into(),
                    name: "Firefox".into(),
                    preset: "strict".into(),
                },
                TrayLauncher {
                    app_id: "org.gnome.Gedit".into(),
                    name: "Text Editor".into(),
                    preset: "relaxed".into(),
                },
            ]
        );
    }
}
