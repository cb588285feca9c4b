//! The few calls of systemd's D-Bus API that Corral uses, as zbus proxies.
//! Interface reference: org.freedesktop.systemd1(5),
//! https://www.freedesktop.org/software/systemd/man/latest/org.freedesktop.systemd1.html

use zbus::proxy;
use zbus::zvariant::{OwnedObjectPath, Value};

/// One row of ListUnits*: name, description, load, active and sub state, followed unit,
/// object path, job id, job type, job path.
pub type UnitRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

/// Methods that change the system may ask polkit for interactive authorisation when they go to
/// the system manager; the user manager ignores the flag.
#[proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub trait Manager {
    #[zbus(allow_interactive_auth)]
    fn start_transient_unit(
        &self,
        name: &str,
        mode: &str,
        properties: &[(&str, Value<'_>)],
        aux: &[(&str, &[(&str, Value<'_>)])],
    ) -> zbus::Result<OwnedObjectPath>;

    #[zbus(allow_interactive_auth)]
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;

    #[zbus(allow_interactive_auth)]
    fn kill_unit(&self, name: &str, whom: &str, signal: i32) -> zbus::Result<()>;

    #[zbus(allow_interactive_auth)]
    fn freeze_unit(&self, name: &str) -> zbus::Result<()>;

    #[zbus(allow_interactive_auth)]
    fn thaw_unit(&self, name: &str) -> zbus::Result<()>;

    #[zbus(allow_interactive_auth)]
    fn set_unit_properties(
        &self,
        name: &str,
        runtime: bool,
        properties: &[(&str, Value<'_>)],
    ) -> zbus::Result<()>;

    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;

    /// daemon-reload: reads every unit file and drop-in again, and applies changed resource
    /// settings to running units. Replies once the reload is done.
    #[zbus(allow_interactive_auth)]
    fn reload(&self) -> zbus::Result<()>;

    fn ref_unit(&self, name: &str) -> zbus::Result<()>;

    fn unref_unit(&self, name: &str) -> zbus::Result<()>;

    fn get_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    fn list_units_by_patterns(
        &self,
        states: &[&str],
        patterns: &[&str],
    ) -> zbus::Result<Vec<UnitRow>>;

    /// Without a subscriber, systemd sends no job or unit signals at all.
    fn subscribe(&self) -> zbus::Result<()>;

    #[zbus(signal)]
    fn job_removed(&self, id: u32, job: OwnedObjectPath, unit: String, result: String);

    #[zbus(signal)]
    fn unit_new(&self, id: String, unit: OwnedObjectPath);

    #[zbus(signal)]
    fn unit_removed(&self, id: String, unit: OwnedObjectPath);

    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;

    /// The manager's own cgroup: for a user manager, /user.slice/user-UID.slice/user@UID.service.
    #[zbus(property)]
    fn control_group(&self) -> zbus::Result<String>;
}

#[proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1"
)]
pub trait Unit {
    #[zbus(property)]
    fn id(&self) -> zbus::Result<String>;

    #[zbus(property)]
    fn description(&self) -> zbus::Result<String>;

    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;

    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;

    #[zbus(property)]
    fn freezer_state(&self) -> zbus::Result<String>;
}

/// Properties shared by services and scopes (both are cgroup-carrying units); the interface
/// name differs, so [`ServiceProxy`] and [`ScopeProxy`] are built from one declaration each.
#[proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1"
)]
pub trait Service {
    #[zbus(property)]
    fn control_group(&self) -> zbus::Result<String>;

    /// "success", "exit-code", "signal", "oom-kill", ...
    #[zbus(property)]
    fn result(&self) -> zbus::Result<String>;

    /// How the main process ended: CLD_EXITED (1), CLD_KILLED (2), CLD_DUMPED (3).
    #[zbus(property)]
    fn exec_main_code(&self) -> zbus::Result<i32>;

    #[zbus(property)]
    fn exec_main_status(&self) -> zbus::Result<i32>;
}

#[proxy(
    interface = "org.freedesktop.systemd1.Scope",
    default_service = "org.freedesktop.systemd1"
)]
pub trait Scope {
    #[zbus(property)]
    fn control_group(&self) -> zbus::Result<String>;

    #[zbus(property)]
    fn result(&self) -> zbus::Result<String>;
}
