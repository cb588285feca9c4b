//! Policies: what Corral does by itself when an alert is raised for a unit whose preset or rule
//! asks for it (opt-in), and the limit steps a "Raise limit" takes; deciding is pure.

use std::collections::HashMap;

use crate::config::{Config, PolicyAction, Setting, Settings};
use crate::controller::Controller;
use crate::i18n::{gettext, gettext_f};
use crate::limits::{Bytes, CpuQuota, MemoryLimit};
use crate::monitor::alerts::{Alert, AlertDetail, Condition, MemoryBoundary};

/// A limit-changing policy acts at most this many times per unit and condition, so that an
/// app that keeps growing is not raised without end (and a lowered quota not ground to zero).
pub const MAX_LIMIT_STEPS: u32 = 3;

/// The lowest CPU quota `lower-cpu` sets, in percent of one CPU.
const MIN_CPU_PERCENT: u32 = 10;

/// The setting that holds the policy for a condition; OOM kills have none (the app is dead or
/// the kernel is mid-kill: there is nothing left to decide).
pub fn policy_key(condition: Condition) -> Option<&'static str> {
    Setting::for_condition(condition).map(|(setting, _)| setting.key)
}

/// The policy `settings` set for a condition (notify when none).
pub fn policy_for(settings: &Settings, condition: Condition) -> PolicyAction {
    Setting::for_condition(condition)
        .and_then(|(_, policy)| (policy.action)(settings))
        .unwrap_or_default()
}

/// The policy for an alert, which acts only where it was asked for. An app Corral launched
/// gets the policies of the preset it was launched with (from its description), with its
/// app's rule on top, as at launch. An app anyone else started gets a policy only from a rule
/// whose drop-ins reach its unit: the rule's own, and those of the preset the rule names.
/// Every other app, and a unit whose preset no longer exists, only gets notified.
pub fn resolve(config: &Config, alert: &Alert) -> PolicyAction {
    let settings = match &alert.preset {
        Some(preset) => {
            let app_id = alert.app_id.as_deref().unwrap_or("");
            match config.resolve(app_id, None, Some(preset), &Settings::default()) {
                Ok(resolved) => resolved.settings,
                Err(_) => return PolicyAction::Notify,
            }
        }
        None => {
            let Some((_, rule)) = crate::rules::rule_for_unit(config, &alert.unit) else {
                return PolicyAction::Notify;
            };
            let mut settings = match &rule.preset {
                Some(named) => match config.preset(named) {
                    Ok(preset) => preset.settings,
                    Err(_) => return PolicyAction::Notify,
                },
                None => Settings::default(),
            };
            settings.overlay(&rule.settings);
            settings
        }
    };
    policy_for(&settings, alert.condition())
}

/// New limits one "Raise limit" step sets; `None` leaves a limit as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitRaise {
    pub memory_high: Option<Bytes>,
    pub memory_max: Option<Bytes>,
    pub cpu_quota: Option<CpuQuota>,
}

impl LimitRaise {
    /// As settings for [`crate::controller::Controller::set_limits`].
    pub fn settings(&self) -> Settings {
        Settings {
            memory_high: self.memory_high.map(MemoryLimit::Bytes),
            memory_max: self.memory_max.map(MemoryLimit::Bytes),
            cpu_quota: self.cpu_quota,
            ..Settings::default()
        }
    }

    /// What the step does, as a button label: "Raise limit to 5.0 GiB".
    pub fn label(&self) -> String {
        match (self.memory_high, self.memory_max, self.cpu_quota) {
            (_, Some(max), _) => gettext_f("Raise limit to {size}", &[("size", &max)]),
            (Some(high), None, _) => gettext_f("Raise soft limit to {size}", &[("size", &high)]),
            (None, None, Some(CpuQuota::Percent(p))) => {
                gettext_f("Raise CPU limit to {percent} %", &[("percent", &p)])
            }
            _ => gettext("Raise limit"),
        }
    }
}

/// One step up from a memory limit: about a quarter more, rounded up to a size a person would
/// pick (64 MiB steps below 1 GiB, 256 MiB below 8 GiB, whole GiB above).
pub fn next_memory_limit(current: Bytes) -> Bytes {
    let grain = match current.0 {
        b if b < Bytes::GIB => 64 * Bytes::MIB,
        b if b < 8 * Bytes::GIB => 256 * Bytes::MIB,
        _ => Bytes::GIB,
    };
    let wanted = current.0.saturating_add(current.0 / 4).max(current.0 + 1);
    Bytes(wanted.div_ceil(grain).saturating_mul(grain))
}

/// One step up from a CPU quota in percent of one CPU: a quarter more, rounded up to half CPUs.
pub fn next_cpu_quota(percent: u32) -> u32 {
    let wanted = percent.saturating_add(percent / 4).max(percent + 1);
    wanted
        .div_ceil(50)
        .saturating_mul(50)
        .min(CpuQuota::MAX_PERCENT)
}

/// The limits one "Raise limit" press changes for this alert, or `None` where raising a limit
/// cannot help (no limit is set, or the unit is gone).
pub fn raise_step(alert: &Alert) -> Option<LimitRaise> {
    let limits = &alert.limits;
    let raise_max = || LimitRaise {
        memory_max: limits.memory_max.map(next_memory_limit),
        ..LimitRaise::default()
    };
    // Raising memory.high to or past memory.max would make it meaningless: move max too.
    let raise_high = |high: Bytes| {
        let new_high = next_memory_limit(high);
        LimitRaise {
            memory_high: Some(new_high),
            memory_max: limits
                .memory_max
                .filter(|max| new_high >= *max)
                .map(next_memory_limit),
            cpu_quota: None,
        }
    };
    let step = match alert.detail {
        AlertDetail::MemoryNearLimit {
            boundary: MemoryBoundary::Max,
            ..
        } => raise_max(),
        AlertDetail::MemoryNearLimit {
            boundary: MemoryBoundary::High,
            limit,
            ..
        } => raise_high(limit),
        AlertDetail::MemoryThrottled { high, .. } => raise_high(high),
        // Pressure inside a unit comes from reclaim at its own limits: the soft one first.
        AlertDetail::MemoryPressure { .. } => match limits.memory_high {
            Some(high) => raise_high(high),
            None => raise_max(),
        },
        AlertDetail::CpuThrottled {
            quota: CpuQuota::Percent(p),
            ..
        } => LimitRaise {
            cpu_quota: Some(CpuQuota::Percent(next_cpu_quota(p))),
            ..LimitRaise::default()
        },
        AlertDetail::CpuThrottled { .. } => LimitRaise::default(),
        AlertDetail::OomKilled {
            unit_ended: false, ..
        } => raise_max(),
        AlertDetail::OomKilled {
            unit_ended: true, ..
        } => LimitRaise::default(),
    };
    (step != LimitRaise::default()).then_some(step)
}

/// What a policy will do to the unit.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyStep {
    Freeze,
    /// New limits, and the words for them ("its memory limit to 80 MiB"), translated.
    SetLimits(LimitRaise, String),
}

/// What the policy `action` does for `alert`, given how often it has already changed this
/// unit's limits for this condition; `None` when there is nothing it can do (no limit to
/// raise, the quota already at its floor, the step budget used up, or "notify").
pub fn plan(action: PolicyAction, alert: &Alert, steps_taken: u32) -> Option<PolicyStep> {
    match action {
        PolicyAction::Notify => None,
        PolicyAction::Freeze => Some(PolicyStep::Freeze),
        _ if steps_taken >= MAX_LIMIT_STEPS => None,
        PolicyAction::RaiseLimit => {
            let raise = raise_step(alert)?;
            // TRANSLATORS: these complete "Corral raised … for {app}" and "Corral lowered …
            // for {app}".
            let what = match (raise.memory_high, raise.memory_max, raise.cpu_quota) {
                (_, Some(max), _) => gettext_f("its memory limit to {size}", &[("size", &max)]),
                (Some(high), None, _) => {
                    gettext_f("its soft memory limit to {size}", &[("size", &high)])
                }
                (None, None, Some(quota)) => cpu_limit_words(quota),
                (None, None, None) => return None,
            };
            Some(PolicyStep::SetLimits(raise, what))
        }
        PolicyAction::LowerCpu => {
            let lowered = match alert.limits.cpu_quota {
                Some(CpuQuota::Percent(p)) if p <= MIN_CPU_PERCENT => return None,
                Some(CpuQuota::Percent(p)) => (p / 2).max(MIN_CPU_PERCENT),
                // No quota yet: one CPU is the first step down from "all of them".
                Some(CpuQuota::Unlimited) | None => 100,
            };
            let quota = CpuQuota::Percent(lowered);
            Some(PolicyStep::SetLimits(
                LimitRaise {
                    cpu_quota: Some(quota),
                    ..LimitRaise::default()
                },
                cpu_limit_words(quota),
            ))
        }
    }
}

/// "its CPU limit to 50 % of one CPU".
fn cpu_limit_words(quota: CpuQuota) -> String {
    let cpu = match quota {
        CpuQuota::Percent(p) => gettext_f("{percent} % of one CPU", &[("percent", &p)]),
        CpuQuota::Unlimited => gettext("no limit"),
    };
    gettext_f("its CPU limit to {cpu}", &[("cpu", &cpu)])
}

/// What a policy did, or why it could not.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyOutcome {
    pub action: PolicyAction,
    /// The setting that asked for it, e.g. `on-memory-near-limit`.
    pub key: &'static str,
    /// The unit ended up frozen by the policy.
    pub froze: bool,
    /// A sentence for the notification: what Corral did and which setting made it.
    pub message: String,
    pub failed: bool,
}

/// How many limit steps each unit has had from its policies (an entry only for units a limit
/// policy changed: a handful, so they are kept for the process's life).
#[derive(Debug, Default)]
pub struct Policies {
    steps: HashMap<(String, Condition), u32>,
}

impl Policies {
    /// Applies the policy for a newly raised alert, if its preset or rule has one. `config` is
    /// the one in force: the monitor follows the file and keeps the last good one.
    pub async fn enforce(
        &mut self,
        controller: &Controller,
        config: &Config,
        alert: &Alert,
    ) -> Option<PolicyOutcome> {
        let key = policy_key(alert.condition())?;
        let action = resolve(config, alert);
        let counted = (alert.unit.clone(), alert.condition());
        let step = plan(
            action,
            alert,
            self.steps.get(&counted).copied().unwrap_or(0),
        )?;
        let app = &alert.app_name;
        let setting = format!("{key} = \"{action}\"");
        let result = match &step {
            PolicyStep::Freeze => match controller.find(&alert.unit).await {
                Ok(unit) => controller
                    .freeze(&unit)
                    .await
                    .map(|()| {
                        gettext_f(
                            "Corral froze {app}, as its setting {setting} asks.",
                            &[("app", app), ("setting", &setting)],
                        )
                    })
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            PolicyStep::SetLimits(limits, what) => {
                *self.steps.entry(counted).or_default() += 1;
                let applied = match controller.find(&alert.unit).await {
                    Ok(unit) => controller
                        .set_limits(&unit, &limits.settings())
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                applied.and_then(|checks| {
                    match checks
                        .iter()
                        .find_map(|c| c.problem.as_ref().map(|p| (c, p)))
                    {
                        Some((check, problem)) => Err(gettext_f(
                            "the new {setting} ({value}) did not apply: {problem}",
                            &[
                                ("setting", &check.setting_label()),
                                ("value", &check.wanted),
                                ("problem", problem),
                            ],
                        )),
                        None => {
                            let args: [(&str, &dyn std::fmt::Display); 3] =
                                [("what", what), ("app", app), ("setting", &setting)];
                            Ok(if action == PolicyAction::LowerCpu {
                                gettext_f(
                                    "Corral lowered {what} for {app}, as its setting {setting} asks.",
                                    &args,
                                )
                            } else {
                                gettext_f(
                                    "Corral raised {what} for {app}, as its setting {setting} asks.",
                                    &args,
                                )
                            })
                        }
                    }
                })
            }
        };
        Some(match result {
            Ok(message) => PolicyOutcome {
                action,
                key,
                froze: step == PolicyStep::Freeze,
                message,
                failed: false,
            },
            Err(e) => PolicyOutcome {
                action,
                key,
                froze: false,
                message: gettext_f(
                    "Corral could not apply {setting} to {app}: {error}",
                    &[("setting", &setting), ("app", app), ("error", &e)],
                ),
                failed: true,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Bytes;
    use crate::monitor::alerts::UnitLimits;

    const MIB: u64 = Bytes::MIB;
    const GIB: u64 = Bytes::GIB;

    #[test]
    fn memory_steps_are_a_quarter_more_in_round_sizes() {
        let step = |bytes: u64| next_memory_limit(Bytes(bytes)).0;
        assert_eq!(step(4 * GIB), 5 * GIB);
        assert_eq!(step(3 * GIB), 3 * GIB + 768 * MIB);
        assert_eq!(step(GIB + GIB / 2), 2 * GIB);
        assert_eq!(step(512 * MIB), 640 * MIB);
        assert_eq!(step(100 * MIB), 128 * MIB);
        assert_eq!(step(10 * GIB), 13 * GIB);
        assert_eq!(step(1), 64 * MIB);
        assert!(step(u64::MAX - 1) >= u64::MAX - GIB, "no overflow");
        assert_eq!(next_cpu_quota(300), 400);
        assert_eq!(next_cpu_quota(100), 150);
        assert_eq!(next_cpu_quota(50), 100);
        assert_eq!(next_cpu_quota(1), 50);
        assert_eq!(next_cpu_quota(CpuQuota::MAX_PERCENT), CpuQuota::MAX_PERCENT);
    }

    fn alert(detail: AlertDetail, cpu_quota: Option<CpuQuota>) -> Alert {
        Alert {
            unit: "app-corral-firefox-1a2b3c4d.service".to_owned(),
            app_name: "Firefox".to_owned(),
            app_id: Some("firefox".to_owned()),
            preset: Some("watched".to_owned()),
            limits: UnitLimits {
                memory_high: None,
                memory_max: Some(Bytes(512 * MIB)),
                cpu_quota,
            },
            detail,
        }
    }

    fn near_limit() -> Alert {
        alert(
            AlertDetail::MemoryNearLimit {
                used: Bytes(470 * MIB),
                limit: Bytes(512 * MIB),
                boundary: MemoryBoundary::Max,
                percent: 91.8,
            },
            None,
        )
    }

    fn cpu_throttled(quota: CpuQuota) -> Alert {
        alert(
            AlertDetail::CpuThrottled {
                throttled_percent: 50.0,
                quota,
                usage_percent: Some(200.0),
            },
            Some(quota),
        )
    }

    fn config(text: &str) -> Config {
        Config::parse(text, std::path::Path::new("config.toml")).unwrap()
    }

    #[test]
    fn the_policy_comes_from_the_preset_with_the_rule_on_top() {
        let config = config(
            r#"
[presets.watched]
memory-max = "512M"
on-memory-near-limit = "freeze"
on-cpu-throttled = "lower-cpu"

[apps.firefox]
on-cpu-throttled = "notify"
"#,
        );
        assert_eq!(resolve(&config, &near_limit()), PolicyAction::Freeze);
        assert_eq!(
            resolve(&config, &cpu_throttled(CpuQuota::Percent(200))),
            PolicyAction::Notify,
            "the app's rule overrides its preset"
        );
        let mut other = cpu_throttled(CpuQuota::Percent(200));
        other.app_id = Some("code".to_owned());
        assert_eq!(resolve(&config, &other), PolicyAction::LowerCpu);
    }

    #[test]
    fn no_policy_without_a_setting_or_a_preset() {
        let config = config("");
        assert_eq!(resolve(&config, &near_limit()), PolicyAction::Notify);
        let mut launched_elsewhere = near_limit();
        launched_elsewhere.preset = None;
        launched_elsewhere.app_id = None;
        assert_eq!(resolve(&config, &launched_elsewhere), PolicyAction::Notify);
    }

    #[test]
    fn an_app_started_elsewhere_gets_a_policy_only_from_a_rule_that_reaches_it() {
        let gnome = |app: &str| {
            let mut alert = near_limit();
            alert.unit = format!("app-gnome-{app}-4242.scope");
            alert.app_id = Some(app.to_owned());
            alert.preset = None;
            alert
        };
        // A policy on the default preset and on a named one: neither reaches an app that
        // Corral did not launch and no rule names.
        let config = config(
            r#"
[presets.relaxed]
on-memory-near-limit = "freeze"

[presets.watched]
on-memory-near-limit = "raise-limit"

[apps.firefox]
preset = "watched"

[apps.code]
memory-max = "2G"

[apps.gimp]
on-memory-near-limit = "freeze"
"#,
        );
        assert_eq!(
            resolve(&config, &gnome("thunderbird")),
            PolicyAction::Notify
        );
        // A rule that names the preset brings its policy; one that names none does not bring
        // the default preset's; a rule's own policy counts.
        assert_eq!(
            resolve(&config, &gnome("firefox")),
            PolicyAction::RaiseLimit
        );
        assert_eq!(resolve(&config, &gnome("code")), PolicyAction::Notify);
        assert_eq!(resolve(&config, &gnome("gimp")), PolicyAction::Freeze);
        // Launched by Corral with the default preset: its policy applies.
        let mut launched = near_limit();
        launched.preset = Some("relaxed".to_owned());
        launched.app_id = Some("thunderbird".to_owned());
        assert_eq!(resolve(&config, &launched), PolicyAction::Freeze);
    }

    #[test]
    fn each_alert_but_an_oom_kill_has_its_policy_setting() {
        assert_eq!(
            Condition::ALL.map(policy_key),
            [
                Some("on-memory-near-limit"),
                Some("on-memory-throttled"),
                Some("on-cpu-throttled"),
                Some("on-memory-pressure"),
                None
            ]
        );
        let mut settings = Settings::default();
        settings.set("on-cpu-throttled", "lower-cpu").unwrap();
        assert_eq!(
            policy_for(&settings, Condition::CpuThrottled),
            PolicyAction::LowerCpu
        );
        assert_eq!(
            policy_for(&settings, Condition::MemoryPressure),
            PolicyAction::Notify
        );
        assert_eq!(
            policy_for(&settings, Condition::OomKilled),
            PolicyAction::Notify
        );
    }

    #[test]
    fn a_bad_policy_word_is_reported_where_it_is() {
        let error = Config::parse(
            "[presets.x]\non-memory-pressure = \"explode\"\n",
            std::path::Path::new("config.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("config.toml:2:22:"), "{error}");
        assert!(
            error.contains("notify, freeze, raise-limit or lower-cpu"),
            "{error}"
        );
    }

    #[test]
    fn raising_follows_the_notification_button_and_stops_after_three_steps() {
        let step = plan(PolicyAction::RaiseLimit, &near_limit(), 0);
        let Some(PolicyStep::SetLimits(limits, what)) = step else {
            panic!("{step:?}");
        };
        assert_eq!(limits.memory_max, Some(Bytes(640 * MIB)));
        assert_eq!(what, "its memory limit to 640 MiB");
        assert_eq!(plan(PolicyAction::RaiseLimit, &near_limit(), 3), None);
        assert_eq!(
            plan(PolicyAction::Freeze, &near_limit(), 3),
            Some(PolicyStep::Freeze),
            "freezing changes no limit and has no budget"
        );
        assert_eq!(plan(PolicyAction::Notify, &near_limit(), 0), None);
    }

    #[test]
    fn lowering_halves_the_quota_down_to_a_floor() {
        let quota = |alert: &Alert, steps| match plan(PolicyAction::LowerCpu, alert, steps) {
            Some(PolicyStep::SetLimits(limits, _)) => limits.cpu_quota,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            quota(&cpu_throttled(CpuQuota::Percent(200)), 0),
            Some(CpuQuota::Percent(100))
        );
        assert_eq!(
            quota(&cpu_throttled(CpuQuota::Percent(15)), 0),
            Some(CpuQuota::Percent(10))
        );
        assert_eq!(
            plan(
                PolicyAction::LowerCpu,
                &cpu_throttled(CpuQuota::Percent(10)),
                0
            ),
            None
        );
        assert_eq!(quota(&near_limit(), 0), Some(CpuQuota::Percent(100)));
    }
}
