//! The services the window, the tray and `corral watch` share, below all three faces: one
//! systemd connection with its controller, monitor and notifications, and the config store.

pub mod config_store;
pub mod rules;

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

use crate::cgroup::CgroupFs;
use crate::controller::Controller;
use crate::monitor::service::Monitor;
use crate::notify::OpenRequest;
use crate::systemd::{ManagerKind, Systemd};

pub use config_store::{ConfigEdit, ConfigStore};

/// How often the monitor sweeps while no window shows its figures and nothing is going on
/// (see [`Monitor::sleep_when_unwatched`]).
pub const IDLE_INTERVAL: Duration = Duration::from_secs(5);

/// The controller every action goes through and the monitor every view renders.
#[derive(Clone)]
pub struct Services {
    pub controller: Arc<Controller>,
    pub monitor: Monitor,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Services")
    }
}

/// The services, or why systemd could not be reached.
pub type Connected = Result<Services, String>;

/// The process's one engine. It connects when first awaited; every later await gets the
/// same services. Runaway alerts become desktop notifications once per process; their
/// "Open Corral" presses go to `on_open`.
#[derive(Clone)]
pub struct Engine {
    connect: Shared<BoxFuture<'static, Connected>>,
    manager: ManagerKind,
}

impl Engine {
    /// Must be awaited on a tokio runtime (relm4's, or the CLI's).
    pub fn new(
        manager: ManagerKind,
        interval: Duration,
        on_open: impl Fn(OpenRequest) + Send + 'static,
    ) -> Engine {
        let connect = async move {
            let systemd = Systemd::connect(manager).await.map_err(|e| e.to_string())?;
            let monitor = Monitor::spawn(systemd.clone(), CgroupFs::system(), interval);
            // The window holds the monitor at its refresh interval while shown; a tray alone
            // needs far less while nothing is going on (and is woken by whatever is).
            monitor.sleep_when_unwatched(IDLE_INTERVAL);
            let notifier = Controller::new(systemd.clone(), CgroupFs::system());
            let mut open = crate::notify::spawn_notifications(&monitor, notifier);
            tokio::spawn(async move {
                while let Some(request) = open.recv().await {
                    on_open(request);
                }
            });
            Ok(Services {
                controller: Arc::new(Controller::new(systemd, CgroupFs::system())),
                monitor,
            })
        };
        Engine {
            connect: connect.boxed().shared(),
            manager,
        }
    }

    pub async fn get(&self) -> Connected {
        self.connect.clone().await
    }

    /// Which manager the engine talks to.
    pub fn manager(&self) -> ManagerKind {
        self.manager
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Engine")
    }
}
