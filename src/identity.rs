//! The app's identity in one place: id, version, and the GResource base path.

pub const APP_ID: &str = "io.github.corral.Corral";
pub const APP_NAME: &str = "Corral";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Where build.rs's GResource bundle is registered.
pub const RESOURCE_BASE: &str = "/io/github/corral/Corral";
