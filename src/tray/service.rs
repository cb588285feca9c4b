//! Runs the tray inside the GTK application: keeps [`CorralTray`]'s model current from the
//! shared monitor, and carries out its [`TrayAction`]s through the shared `Controller` (the
//! window's), reporting failures with a desktop notification.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use adw::prelude::*;
use ksni::TrayMethods;
use tokio::sync::mpsc;

use super::{CorralTray, TrayAction, TrayModel, launchers};
use crate::apps::AppCatalog;
use crate::config::RulePreset;
use crate::config::{Config, ConfigEditor, Settings};
use crate::controller::{Controller, physical_memory};
use crate::engine::rules::{RuleDraft, RuleService};
use crate::engine::{ConfigStore, Engine, Services};
use crate::i18n::{gettext, gettext_f, gettext_noop};
use crate::identity::APP_ID;
use crate::launch;
use crate::monitor::service::Monitor;
use crate::notify::{Notification, Notifier, Urgency};

/// Starts the tray for `app`: the window opens on demand, and the application stays alive
/// with its window closed while `hold` is kept. Without a StatusNotifierWatcher it says so
/// once on stderr, drops the hold and shows the window instead.
pub fn attach(
    app: &adw::Application,
    engine: Engine,
    show_all: bool,
    hold: Rc<RefCell<Option<gtk::gio::ApplicationHoldGuard>>>,
) {
    let (actions_tx, mut actions) = mpsc::unbounded_channel();
    let (offline_tx, mut offline) = mpsc::unbounded_channel::<String>();
    relm4::spawn(drive(engine.clone(), actions_tx, offline_tx, show_all));

    let ctx = gtk::glib::MainContext::default();
    {
        let app = app.clone();
        ctx.spawn_local(async move {
            while let Some(action) = actions.recv().await {
                dispatch(&app, &engine, action);
            }
        });
    }
    let app = app.clone();
    ctx.spawn_local(async move {
        // Only the first report matters: from then on Corral runs as a window.
        if offline.recv().await.is_some() {
            hold.borrow_mut().take();
            app.activate_action("run-as-window", None);
        }
    });
}

/// Keeps the tray's model current; ends when the monitor or the tray is gone.
async fn drive(
    engine: Engine,
    actions: mpsc::UnboundedSender<TrayAction>,
    offline: mpsc::UnboundedSender<String>,
    show_all: bool,
) {
    let config = Config::load().unwrap_or_default();
    let catalog = AppCatalog::load_for(engine.manager());
    let mut launch_list = launchers(&config, &catalog);
    let told = AtomicBool::new(false);
    let report = move |why: String| {
        if !told.swap(true, Ordering::Relaxed) {
            eprintln!(
                "corral: {}",
                gettext_f(
                    "no tray: {reason}. Is a tray (StatusNotifierItem host) running in your panel? Corral keeps running with its window instead.",
                    &[("reason", &why)],
                )
            );
            let _ = offline.send(why);
        }
    };
    let report = Arc::new(report);
    let tray = CorralTray::new(
        TrayModel {
            launchers: launch_list.clone(),
            ..TrayModel::default()
        },
        actions.clone(),
    )
    .on_offline({
        let report = Arc::clone(&report);
        move |why| report(why)
    });
    // Told when the session bus went away and is back: ksni's connection died with the old
    // bus, and panels on the new one know nothing of the item.
    let mut bus_back = session_bus_returns();
    // A watcher that is missing now is waited for (reported through watcher_offline), so a
    // panel that starts after Corral still gets the icon.
    let mut handle = match tray.assume_sni_available(true).spawn().await {
        Ok(handle) => handle,
        Err(e) => {
            report(e.to_string());
            return;
        }
    };
    let monitor = match engine.get().await {
        Ok(services) => services.monitor,
        Err(e) => {
            let problem = gettext_f("Not connected to systemd: {error}", &[("error", &e)]);
            handle
                .update(|tray| tray.model.problem = Some(problem))
                .await;
            // The handle must outlive the tray service (ksni stops serving the item when it is
            // dropped): the icon stays, showing the problem, until Quit.
            std::future::pending::<()>().await;
            return;
        }
    };
    // The monitor follows the config file (and keeps the last good one when it has a mistake).
    let mut config_in_force: Option<Arc<Config>> = None;
    let mut updates = monitor.subscribe();
    // What the tray shows now, as given to CorralTray::new above.
    let mut shown = TrayModel {
        launchers: launch_list.clone(),
        ..TrayModel::default()
    };
    loop {
        let state = updates.borrow_and_update().clone();
        // A launch remembers its preset in the config: the Launch submenu follows the file.
        let published = state.sampled_at.is_some();
        if published
            && !config_in_force
                .as_ref()
                .is_some_and(|c| Arc::ptr_eq(c, &state.config))
        {
            let config = Arc::clone(&state.config);
            launch_list = launchers(&config, &catalog);
            config_in_force = Some(config);
        }
        // The monitor's own alerts, the ones its notifications tell of.
        let alert = !state.alerts.is_empty();
        let model = TrayModel::from_state(
            &state,
            launch_list.clone(),
            alert,
            physical_memory(),
            show_all,
        );
        // Only a changed model is sent: ksni rebuilds and diffs the whole menu on every
        // update, which for an unchanged model (idle apps, most ticks) is work for nothing.
        if model != shown {
            shown = model.clone();
            if handle.update(|tray| tray.show(model)).await.is_none() {
                return; // the tray service ended
            }
        }
        tokio::select! {
            changed = updates.changed() => if changed.is_err() {
                let problem =
                    gettext("Corral stopped watching apps; restart it to see them again");
                handle
                    .update(|tray| tray.model.problem = Some(problem))
                    .await;
                std::future::pending::<()>().await;
            },
            Some(()) = bus_back.recv() => {
                let model = handle.update(|tray| tray.model.clone()).await.unwrap_or_default();
                handle.shutdown().await;
                // A panel that is not back yet is waited for; this time that is no reason to
                // fall back to the window.
                let tray = CorralTray::new(model, actions.clone()).on_offline(|why| {
                    eprintln!("corral: tray: waiting for a tray host on the new session bus ({why})");
                });
                handle = match tray.assume_sni_available(true).spawn().await {
                    Ok(handle) => handle,
                    Err(e) => {
                        eprintln!("corral: tray: cannot show the tray icon again: {e}");
                        return;
                    }
                };
                eprintln!("corral: tray: the session bus is back; the tray icon is offered again");
            }
        }
    }
}

/// Watches the session bus with a connection of its own and sends a message each time it
/// went away and is back, checking again with a growing delay (0.5 s to 30 s) while it is away.
fn session_bus_returns() -> mpsc::UnboundedReceiver<()> {
    let (tx, rx) = mpsc::unbounded_channel();
    relm4::spawn(async move {
        let mut lost = false;
        let mut delay = Duration::from_millis(500);
        loop {
            match zbus::Connection::session().await {
                Ok(connection) => {
                    if lost && tx.send(()).is_err() {
                        return;
                    }
                    delay = Duration::from_millis(500);
                    connection.closed().await;
                    lost = true;
                }
                Err(_) => {
                    if tx.is_closed() {
                        return;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    });
    rx
}

/// Runs one action: window actions here on the main loop, the rest off it.
fn dispatch(app: &adw::Application, engine: &Engine, action: TrayAction) {
    match action {
        // The application's actions (src/app.rs): the window is built when first shown.
        TrayAction::OpenWindow => app.activate_action("show-window", Some(&"".to_variant())),
        TrayAction::OpenLauncher => {
            app.activate_action("show-window", Some(&"win.launch".to_variant()));
        }
        TrayAction::Quit => app.quit(),
        action => {
            let engine = engine.clone();
            relm4::spawn(async move {
                let result = match engine.get().await {
                    Ok(Services {
                        controller,
                        monitor,
                    }) => perform(&controller, &monitor, action).await,
                    Err(e) => Err(gettext_f(
                        "Corral is not connected to systemd ({error}), so nothing was changed.",
                        &[("error", &e)],
                    )),
                };
                if let Err(message) = result {
                    report_failure(&message).await;
                }
            });
        }
    }
}

/// Carries out a unit or launch action through the controller and reads the result back;
/// `Err` says in plain words what did not happen.
pub async fn perform(
    ctl: &Arc<Controller>,
    monitor: &Monitor,
    action: TrayAction,
) -> Result<(), String> {
    let find = |unit: &str| {
        monitor
            .latest()
            .units
            .iter()
            .find(|s| s.info.unit == unit)
            .map(|s| crate::monitor::UnitInfo::clone(&s.info))
            .ok_or_else(|| {
                gettext_f(
                    "{unit} is no longer running, so nothing was changed.",
                    &[("unit", &unit)],
                )
            })
    };
    let result = match action {
        TrayAction::Freeze { unit } => {
            let info = find(&unit)?;
            ctl.freeze(&info).await.map_err(|e| {
                failed(
                    gettext_noop("Could not freeze {app}: {error}"),
                    &info.name,
                    &e,
                )
            })
        }
        TrayAction::Thaw { unit } => {
            let info = find(&unit)?;
            ctl.thaw(&info).await.map_err(|e| {
                failed(
                    gettext_noop("Could not thaw {app}: {error}"),
                    &info.name,
                    &e,
                )
            })
        }
        TrayAction::Stop { unit } => {
            let info = find(&unit)?;
            ctl.stop(&info).await.map_err(|e| {
                failed(
                    gettext_noop("Could not stop {app}: {error}"),
                    &info.name,
                    &e,
                )
            })
        }
        TrayAction::Kill { unit } => {
            let info = find(&unit)?;
            ctl.kill(&info, libc::SIGKILL).await.map_err(|e| {
                failed(
                    gettext_noop("Could not kill {app}: {error}"),
                    &info.name,
                    &e,
                )
            })
        }
        TrayAction::SetMemoryMax { unit, limit } => {
            let settings = Settings {
                memory_max: Some(limit),
                ..Settings::default()
            };
            apply_limits(ctl, &find(&unit)?, &settings).await
        }
        TrayAction::SetCpuQuota { unit, quota } => {
            let settings = Settings {
                cpu_quota: Some(quota),
                ..Settings::default()
            };
            apply_limits(ctl, &find(&unit)?, &settings).await
        }
        TrayAction::KeepMemoryRule {
            unit,
            app_id,
            limit,
        } => {
            let settings = Settings {
                memory_max: Some(limit),
                ..Settings::default()
            };
            keep_rule(ctl, &find(&unit)?, &app_id, "memory-max", settings).await
        }
        TrayAction::KeepCpuRule {
            unit,
            app_id,
            quota,
        } => {
            let settings = Settings {
                cpu_quota: Some(quota),
                ..Settings::default()
            };
            keep_rule(ctl, &find(&unit)?, &app_id, "cpu-quota", settings).await
        }
        TrayAction::Launch { app_id, preset } => {
            quick_launch(ctl, &monitor.latest().config, &app_id, &preset).await
        }
        // The menu opened: fresh figures from the refresh below, which also keeps the monitor
        // at its full pace for a while.
        TrayAction::MenuOpened => Ok(()),
        // Window actions are handled on the main loop.
        TrayAction::OpenWindow | TrayAction::OpenLauncher | TrayAction::Quit => Ok(()),
    };
    monitor.refresh();
    result
}

/// A failure message: `message` (a marked msgid) with the app's name and the error.
fn failed(message: &str, app: &str, error: &dyn std::fmt::Display) -> String {
    gettext_f(message, &[("app", &app), ("error", error)])
}

async fn apply_limits(
    ctl: &Controller,
    info: &crate::monitor::UnitInfo,
    settings: &Settings,
) -> Result<(), String> {
    let checks = ctl.set_limits(info, settings).await.map_err(|e| {
        gettext_f(
            "Could not change the limits of {app}: {error}",
            &[("app", &info.name), ("error", &e)],
        )
    })?;
    let problems: Vec<String> = checks
        .iter()
        .filter_map(|c| Some(format!("{}: {}", c.setting_label(), c.problem.as_deref()?)))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(gettext_f(
            "The new limit of {app} did not take. {problems}",
            &[("app", &info.name), ("problems", &problems.join("; "))],
        ))
    }
}

/// Keeps `key` of `settings` as the app's rule (its other settings stay), through the engine:
/// the drop-ins reach every instance, and this one gets the limit at runtime too, so that a
/// change made earlier from the tray (which outranks a rule, see `crate::rules`) does not hide it.
async fn keep_rule(
    ctl: &Arc<Controller>,
    info: &crate::monitor::UnitInfo,
    app_id: &str,
    key: &'static str,
    settings: Settings,
) -> Result<(), String> {
    if ctl.systemd.kind() == crate::systemd::ManagerKind::System {
        return Err(gettext(
            "Rules are for the apps of your own session; the system's units get no rule.",
        ));
    }
    let store = ConfigStore::spawn(Config::path(), Duration::ZERO);
    let rules = RuleService::for_user(store, Some(Arc::clone(ctl)));
    let draft = RuleDraft {
        app_id: app_id.to_owned(),
        preset: RulePreset::Keep,
        keys: vec![key],
        settings: settings.clone(),
    };
    let outcome = rules.save(draft).await.map_err(|e| {
        gettext_f(
            "Could not keep the rule for {app}: {error}",
            &[("app", &info.name), ("error", &e)],
        )
    })?;
    apply_limits(ctl, info, &settings).await?;
    match &outcome.problem {
        Some(_) => Err(outcome.summary()),
        None => Ok(()),
    }
}

/// Launches an installed app with a preset, as the launcher would without overrides.
/// `in_force` is the last config that loaded, used when the file now has a mistake.
async fn quick_launch(
    ctl: &Controller,
    in_force: &Config,
    app_id: &str,
    preset: &str,
) -> Result<(), String> {
    let catalog = AppCatalog::load_for(ctl.systemd.kind());
    let app = catalog.get(app_id).ok_or_else(|| {
        gettext_f(
            "Could not launch {app}: it is no longer installed (no desktop entry found).",
            &[("app", &app_id)],
        )
    })?;
    let fail = |e: String| {
        gettext_f(
            "Could not launch {app}: {error}",
            &[("app", &app.name), ("error", &e)],
        )
    };
    let config = Config::load().unwrap_or_else(|_| in_force.clone());
    let request =
        launch::desktop_app_request(app, &config, Some(preset), &Settings::default(), &[])
            .map_err(|e| fail(e.to_string()))?;
    let unit = launch::launch_service(&ctl.systemd, &request, None)
        .await
        .map_err(|e| fail(e.to_string()))?;
    ctl.systemd.unref(&unit).await;
    // Only a hint for next time: a config that cannot be written does not undo the launch,
    // and is only logged.
    let remembered = ConfigEditor::open(Config::path()).and_then(|mut editor| {
        editor.set_last_preset(&app.id, preset)?;
        editor.save()
    });
    if let Err(e) = remembered {
        eprintln!("corral: could not remember the preset of {}: {e}", app.name);
    }
    Ok(())
}

/// Tells the person an action failed: a desktop notification, and stderr for when no
/// notification server runs.
async fn report_failure(message: &str) {
    eprintln!("corral: {message}");
    let notification = Notification {
        summary: gettext("Corral could not do that"),
        body: message.to_owned(),
        actions: Vec::new(),
        urgency: Urgency::Normal,
        raise: None,
    };
    if let Ok(notifier) = Notifier::connect().await {
        let _ = notifier
            .with_desktop_entry(APP_ID)
            .show(&notification, None)
            .await;
    }
}
