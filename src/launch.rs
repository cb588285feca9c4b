//! Launching a command or desktop app in a transient unit: as a service that systemd starts
//! itself, or as a scope around a child Corral forks, which keeps the caller's terminal.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use zbus::zvariant::{Fd, Value};

use crate::apps;
use crate::config::Settings;
use crate::i18n::{gettext, gettext_f};
use crate::systemd::names::{self, UnitKind};
use crate::systemd::properties::{ManagerKind, Property, TransientSpec};
use crate::systemd::{Systemd, SystemdError};

/// The search path of the system manager's services, and the only one a program to run as
/// root is looked up in: systemd's default PATH for the system manager (systemd.exec(5),
/// "Environment Variables in Spawned Processes"), as `systemd-run` resolves its commands.
pub const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Variables that describe Corral's own process rather than the person's session; a launched
/// app must not inherit them (systemd.exec(5), "Environment Variables in Spawned Processes").
const OWN_VARIABLES: [&str; 14] = [
    "INVOCATION_ID",
    "JOURNAL_STREAM",
    "SYSTEMD_EXEC_PID",
    "MANAGERPID",
    "NOTIFY_SOCKET",
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "WATCHDOG_PID",
    "WATCHDOG_USEC",
    "MEMORY_PRESSURE_WATCH",
    "MEMORY_PRESSURE_WRITE",
    // Startup notification tokens are single-use and were meant for Corral's own window.
    "DESKTOP_STARTUP_ID",
    "XDG_ACTIVATION_TOKEN",
];

/// Variables Corral set on its own process for itself (GDK_DEBUG=gl-disable, src/app.rs),
/// which the session did not set and its apps must not get.
static SET_FOR_ITSELF: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

/// Keeps the variable `name`, which Corral set on its own process, from the apps it launches.
pub fn keep_own_variable(name: &'static str) {
    if let Ok(mut names) = SET_FOR_ITSELF.lock() {
        names.push(name);
    }
}

/// The environment a launched app gets: the person's session environment, less the variables
/// that belong to Corral's own process (its own `CORRAL_*` settings included).
pub fn session_environment() -> Vec<(OsString, OsString)> {
    let set_for_itself = SET_FOR_ITSELF.lock().map(|names| names.clone());
    without_own_variables(
        std::env::vars_os(),
        set_for_itself.as_deref().unwrap_or_default(),
    )
}

/// The one variable of the caller a system service gets (`systemd-run` passes none, and adds
/// TERM for a terminal): the terminal's type, for a program run with `--wait` on the caller's
/// terminal. Anything else from the caller (LD_PRELOAD, LD_LIBRARY_PATH, PYTHONPATH, GIO and
/// GTK module paths, PATH) would run the caller's code as root.
const PASSED_TO_SYSTEM_SERVICES: [&str; 1] = ["TERM"];

/// The environment the program of a unit starts with, from the session's `session` and the
/// preset's `preset` variables; the preset's win over the session's of the same name, and
/// each name is there once (getenv(3) takes the first of two, systemd refuses both).
///
/// A service gets only what systemd accepts in `Environment=`: one name it refuses (bash's
/// exported functions, `BASH_FUNC_name%%`) would make it refuse the whole unit. A scope's
/// program is Corral's own child and gets the session as a shell's child would. A service of
/// the system manager runs as root: it gets none of the caller's variables but TERM, and the
/// preset's only when the config is root's own (Corral runs as root).
pub fn unit_environment(
    manager: ManagerKind,
    kind: UnitKind,
    session: Vec<(OsString, OsString)>,
    preset: &BTreeMap<String, String>,
    caller_is_root: bool,
) -> Vec<(OsString, OsString)> {
    let system_service = manager == ManagerKind::System && kind == UnitKind::Service;
    let mut env: Vec<(OsString, OsString)> = session
        .into_iter()
        .filter(|(name, value)| {
            if system_service {
                PASSED_TO_SYSTEM_SERVICES
                    .iter()
                    .any(|passed| name.as_bytes() == passed.as_bytes())
                    && is_terminal_type(value)
            } else {
                true
            }
        })
        .collect();
    if !system_service || caller_is_root {
        for (name, value) in preset {
            env.retain(|(existing, _)| existing.as_bytes() != name.as_bytes());
            env.push((name.into(), value.into()));
        }
    }
    if kind == UnitKind::Service {
        env.retain(|(name, value)| systemd_accepts(name, value));
    }
    env
}

/// A TERM value as terminfo names are: short, letters, digits and `.-+_` (no path).
fn is_terminal_type(value: &OsStr) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-+._".contains(b))
}

/// Whether systemd takes `name=value` in a unit's `Environment=`: its
/// `env_assignment_is_valid()` (src/basic/env-util.c): a name of ASCII letters, digits and
/// `_` not starting with a digit, a UTF-8 value (D-Bus strings must be UTF-8 too), and the
/// whole assignment shorter than ARG_MAX. (systemd before 248 also refused control characters
/// other than TAB in values; Corral needs 252.)
pub fn systemd_accepts(name: &OsStr, value: &OsStr) -> bool {
    let name = name.as_bytes();
    let name_ok = name.first().is_some_and(|first| !first.is_ascii_digit())
        && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_');
    // SAFETY: sysconf has no preconditions.
    let arg_max = usize::try_from(unsafe { libc::sysconf(libc::_SC_ARG_MAX) }).unwrap_or(4096);
    name_ok && value.to_str().is_some() && name.len() + 1 + value.len() < arg_max.max(4096)
}

fn without_own_variables(
    vars: impl Iterator<Item = (OsString, OsString)>,
    set_for_itself: &[&str],
) -> Vec<(OsString, OsString)> {
    vars.filter(|(key, _)| {
        let key = key.as_bytes();
        !key.starts_with(b"CORRAL_")
            && !OWN_VARIABLES
                .iter()
                .chain(set_for_itself)
                .any(|v| v.as_bytes() == key)
    })
    .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(
        "{}",
        gettext("no command given: put the command after `--`, e.g. `corral run -- firefox`")
    )]
    NoCommand,
    #[error("{}", gettext_f("command not found: “{program}” is not an executable file in PATH; check the spelling or give its full path", &[("program", .0)]))]
    NotFound(String),
    #[error("{}", gettext_f("“{path}” is not an executable file; check the path and its permissions", &[("path", &.0.display())]))]
    NotExecutable(PathBuf),
    #[error("{}", gettext_f("the working directory “{path}” does not exist", &[("path", &.0.display())]))]
    NoWorkingDirectory(PathBuf),
    #[error("{}", gettext_f("“{argument}” cannot be passed to systemd: it contains a NUL byte or is not UTF-8", &[("argument", .0)]))]
    BadArgument(String),
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    #[error("{}", gettext_f("could not start “{program}”: {error}", &[("program", &.program.display()), ("error", .source)]))]
    Exec {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", gettext_f("could not fork a child for the scope: {error}", &[("error", .0)]))]
    Fork(#[source] std::io::Error),
    #[error(
        "{}",
        gettext(
            "inside the Flatpak sandbox Corral cannot run a command in a scope: a scope adopts a process that Corral forks, and a process forked in the sandbox has an ID systemd does not know (the sandbox has its own PID namespace) and would stay confined by the sandbox. Run it as a service, which systemd starts outside the sandbox: add --service (with --wait to keep this terminal's input and output), or choose a preset whose mode is \"service\""
        )
    )]
    ScopeInFlatpak,
}

/// Whether Corral runs inside a Flatpak sandbox: Flatpak puts `/.flatpak-info` at the root of
/// every sandbox (flatpak-metadata(5)), and nothing else does.
pub fn in_flatpak() -> bool {
    Path::new("/.flatpak-info").exists()
}

/// Refuses a unit kind that cannot work from where Corral runs. Inside Flatpak only services
/// work: a scope would have to adopt a sandboxed PID, which systemd cannot see.
pub fn check_unit_kind(kind: UnitKind, in_flatpak: bool) -> Result<(), LaunchError> {
    match kind {
        UnitKind::Scope if in_flatpak => Err(LaunchError::ScopeInFlatpak),
        UnitKind::Scope | UnitKind::Service => Ok(()),
    }
}

/// What to launch and how; `settings` are already resolved from the preset and overrides.
#[derive(Debug, Clone)]
pub struct LaunchRequest {
    pub command: Vec<String>,
    pub app_id: String,
    pub app_name: String,
    pub preset: String,
    pub settings: Settings,
    pub kind: UnitKind,
    pub working_directory: Option<PathBuf>,
    /// Limits to set again as runtime changes as soon as the unit has started: the app's rule
    /// drop-ins apply over a new unit's own properties, and this launch was asked for other
    /// limits (see [`crate::rules::pinned_limits`]).
    pub runtime_limits: Option<Settings>,
}

impl LaunchRequest {
    /// The unit's specification; `program` is argv[0] resolved to an absolute path.
    fn spec(&self, systemd: &Systemd, program: &Path, pids: Vec<u32>) -> TransientSpec {
        let manager = systemd.kind();
        let mut command = self.command.clone();
        command[0] = program.to_string_lossy().into_owned();
        let environment = unit_environment(
            manager,
            self.kind,
            session_environment(),
            &self.settings.environment,
            caller_is_root(),
        )
        .into_iter()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, v.to_str()?)))
        .collect();
        let (name, working_directory) = match manager {
            ManagerKind::User => (self.app_id.clone(), self.working_directory.clone()),
            // polkit's prompt names the unit (systemd 256 and later): name it after what runs.
            // Like `systemd-run`, a system unit starts in / (the caller's folder could hand a
            // program run as root the caller's files, e.g. Python's modules).
            ManagerKind::System => (program_label(program), None),
        };
        TransientSpec {
            name: names::new_unit_name(&name, self.kind),
            kind: self.kind,
            description: names::description(&self.app_name, &self.preset),
            command,
            pids,
            settings: self.settings.clone(),
            environment,
            working_directory,
            manager,
            add_ref: true,
        }
    }
}

/// Whether Corral runs as root, and so reads root's own config (crate::paths).
fn caller_is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// How a unit of the system manager names its program: the file name for a program in the
/// system's search path, the whole path for any other.
pub fn program_label(program: &Path) -> String {
    let in_system_path = program
        .parent()
        .is_some_and(|dir| std::env::split_paths(SYSTEM_PATH).any(|system| system == dir));
    match program.file_name() {
        Some(name) if in_system_path => name.to_string_lossy().into_owned(),
        _ => program.to_string_lossy().into_owned(),
    }
}

/// Why a desktop app cannot be launched, found before systemd is asked.
#[derive(Debug, thiserror::Error)]
pub enum DesktopLaunchError {
    #[error(transparent)]
    Exec(#[from] apps::ExecError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{}", gettext_f("the preset “{preset}” runs apps in a scope, which is for terminal commands; choose another preset for {app}", &[("preset", .preset), ("app", .app)]))]
    ScopePreset { preset: String, app: String },
}

/// The request that launches an installed app: its Exec line with `targets` as argv, the
/// preset resolved with the app's rule and `overrides`, as a service (a desktop app needs no
/// terminal), in the app's Path= or the home folder. The CLI, the launcher and the tray share it.
///
/// Files and URLs to open are passed as GIO's launcher passes them: a file given relative to
/// Corral's folder as an absolute path (the app runs in its Path= or the home folder, where the
/// relative name would be another file, and `-name` would be an option), as a `file://` URI
/// to `%u`/`%U`; a URI as given (a `file://` one as its path to `%f`/`%F`).
pub fn desktop_app_request(
    app: &apps::DesktopEntry,
    config: &crate::config::Config,
    preset: Option<&str>,
    overrides: &Settings,
    targets: &[String],
) -> Result<LaunchRequest, DesktopLaunchError> {
    let targets = match (targets.is_empty(), app.target_code()) {
        (false, Some(code)) => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
            open_targets(targets, code, &cwd)
        }
        // No targets, or a line that takes none (command() says so).
        _ => targets.to_vec(),
    };
    let command = app.command(&targets)?;
    let executable = command[0].rsplit('/').next().unwrap_or(&command[0]);
    let resolved = config.resolve(&app.id, Some(executable), preset, overrides)?;
    if resolved.mode() == crate::config::Mode::Scope {
        return Err(DesktopLaunchError::ScopePreset {
            preset: resolved.preset,
            app: app.name.clone(),
        });
    }
    Ok(LaunchRequest {
        command,
        app_id: app.id.clone(),
        app_name: app.name.clone(),
        runtime_limits: crate::rules::pinned_limits(config, &app.id, &resolved.settings),
        preset: resolved.preset,
        settings: resolved.settings,
        kind: UnitKind::Service,
        working_directory: app
            .working_dir
            .clone()
            .or_else(|| std::env::var_os("HOME").map(PathBuf::from)),
    })
}

/// Files and URLs to open, as the Exec line's `code` takes them: see [`desktop_app_request`].
/// A target is a URI when it starts with a scheme (RFC 3986 §3.1, `scheme:`), as GIO's
/// `g_file_new_for_commandline_arg()` decides; otherwise a path, relative to `cwd`.
pub fn open_targets(targets: &[String], code: apps::FieldCode, cwd: &Path) -> Vec<String> {
    use apps::FieldCode;
    let wants_uris = matches!(code, FieldCode::Url | FieldCode::Urls);
    targets
        .iter()
        .map(|target| {
            if !target.starts_with('/')
                && let Some(scheme) = uri_scheme(target)
            {
                // A local file's URI, to an app that takes paths: its path.
                if !wants_uris
                    && scheme.eq_ignore_ascii_case("file")
                    && let Some(path) = file_uri_path(target)
                {
                    return path;
                }
                return target.clone();
            }
            let path = lexically_absolute(cwd, target);
            let path = path.to_string_lossy();
            if wants_uris {
                file_uri(&path)
            } else {
                path.into_owned()
            }
        })
        .collect()
}

/// `cwd/target` with `.` and `..` taken out by their names, as GLib's
/// `g_canonicalize_filename()` does (symlinks are not followed).
fn lexically_absolute(cwd: &Path, target: &str) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::from("/");
    for component in cwd.join(target).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The scheme of a URI-looking target: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"`.
fn uri_scheme(target: &str) -> Option<&str> {
    let (scheme, _) = target.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// `file:///a%20b` → `/a b`; `None` for a remote host or a malformed escape.
fn file_uri_path(uri: &str) -> Option<String> {
    let rest = &uri[uri.find(':')? + 1..];
    let path = match rest.strip_prefix("//") {
        Some(after) => {
            let slash = after.find('/')?;
            let host = &after[..slash];
            if !host.is_empty() && !host.eq_ignore_ascii_case("localhost") {
                return None;
            }
            &after[slash..]
        }
        None if rest.starts_with('/') => rest,
        None => return None,
    };
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = path.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The `file://` URI of an absolute path: every byte but RFC 3986's unreserved characters
/// and `/` percent-encoded.
fn file_uri(path: &str) -> String {
    let mut uri = String::from("file://");
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            uri.push(byte as char);
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

/// Finds the program to run: a path with a `/` as given, a bare name in `$PATH`.
pub fn resolve_program(argv0: &str) -> Result<PathBuf, LaunchError> {
    resolve_program_in(argv0, std::env::var_os("PATH").as_deref())
}

/// Finds the program a unit of `kind` runs on `manager`: a system service runs as root, so a
/// bare name is looked up in [`SYSTEM_PATH`] only, never in the caller's `$PATH` (where
/// `~/.local/bin` often comes first); anything else runs as the caller, with the caller's.
pub fn resolve_program_for(
    manager: ManagerKind,
    kind: UnitKind,
    argv0: &str,
) -> Result<PathBuf, LaunchError> {
    match (manager, kind) {
        (ManagerKind::System, UnitKind::Service) => {
            resolve_program_in(argv0, Some(OsStr::new(SYSTEM_PATH)))
        }
        _ => resolve_program(argv0),
    }
}

fn resolve_program_in(argv0: &str, search_path: Option<&OsStr>) -> Result<PathBuf, LaunchError> {
    if argv0.contains('/') {
        let path = std::path::absolute(argv0).map_err(|_| LaunchError::NotFound(argv0.into()))?;
        if !path.exists() {
            return Err(LaunchError::NotFound(argv0.into()));
        }
        if !apps::is_executable_file(&path) {
            return Err(LaunchError::NotExecutable(path));
        }
        return Ok(path);
    }
    apps::find_in_search_path(argv0, search_path).ok_or_else(|| LaunchError::NotFound(argv0.into()))
}

fn check_request(manager: ManagerKind, req: &LaunchRequest) -> Result<PathBuf, LaunchError> {
    let argv0 = req.command.first().ok_or(LaunchError::NoCommand)?;
    let program = resolve_program_for(manager, req.kind, argv0)?;
    if let Some(dir) = &req.working_directory
        && !dir.is_dir()
    {
        return Err(LaunchError::NoWorkingDirectory(dir.clone()));
    }
    Ok(program)
}

/// Standard input, output and error for a service, so its output reaches the terminal.
pub struct Stdio<'a> {
    pub input: BorrowedFd<'a>,
    pub output: BorrowedFd<'a>,
    pub error: BorrowedFd<'a>,
}

/// Starts `req` as a transient service and returns the unit name once systemd has executed the
/// program, which may have ended already. The unit stays referenced by this connection
/// (AddRef=) so its outcome can be read; call [`Systemd::unref`] when done. A failed start
/// leaves no unit behind.
pub async fn launch_service(
    systemd: &Systemd,
    req: &LaunchRequest,
    stdio: Option<Stdio<'_>>,
) -> Result<String, LaunchError> {
    let program = check_request(systemd.kind(), req)?;
    let spec = req.spec(systemd, &program, Vec::new());
    let mut extra: Vec<Property> = Vec::new();
    if let Some(stdio) = stdio {
        for (name, fd) in [
            ("StandardInputFileDescriptor", stdio.input),
            ("StandardOutputFileDescriptor", stdio.output),
            ("StandardErrorFileDescriptor", stdio.error),
        ] {
            let fd = fd
                .try_clone_to_owned()
                .map_err(|source| LaunchError::Exec {
                    program: program.clone(),
                    source,
                })?;
            extra.push((name, Value::Fd(Fd::from(fd))));
        }
    }
    match systemd.start_transient(&spec, extra).await {
        Ok(()) => {
            pin_limits(systemd, req, &spec.name).await;
            Ok(spec.name)
        }
        Err(SystemdError::JobFailed { .. }) => {
            // Type=exec: the job fails when the program could not be executed. Read why while
            // our reference keeps the failed unit, then let it be collected.
            let reason = match systemd.object_path(&spec.name).await {
                Ok(path) => systemd.outcome(&spec.name, &path).await.ok(),
                Err(_) => None,
            };
            if reason.as_ref().is_some_and(program_ran) {
                // It was executed, and ended before systemd saw the start through: launched,
                // and already over. The caller reads how it ended, as for any launch.
                return Ok(spec.name);
            }
            systemd.unref(&spec.name).await;
            let _ = systemd.manager().reset_failed_unit(&spec.name).await;
            Err(LaunchError::Exec {
                program,
                source: std::io::Error::other(match reason {
                    Some(outcome) => exec_failure_text(&outcome),
                    None => gettext("systemd could not start it"),
                }),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether a unit whose start job failed shows that its program was executed. A program that
/// fails at once (`sh -c 'exit 7'`) can end before systemd has seen its exec: systemd then
/// handles the main process's exit first, and fails the start job with the program's own
/// status. systemd's own failures to spawn it exit with its codes 200 to 243 (systemd.exec(5),
/// "Process Exit Codes"), and other results ("resources", "timeout", ...) are systemd's.
fn program_ran(outcome: &crate::systemd::UnitOutcome) -> bool {
    match outcome.result.as_str() {
        "signal" | "core-dump" => true,
        "exit-code" => outcome.status.is_some_and(|s| !(200..=243).contains(&s)),
        _ => false,
    }
}

/// systemd's exit statuses for a failed spawn (systemd.exec(5), "Process Exit Codes").
fn exec_failure_text(outcome: &crate::systemd::UnitOutcome) -> String {
    match outcome.status {
        Some(200) => gettext("the working directory could not be entered (CHDIR)"),
        Some(203) => gettext("the program could not be executed (EXEC)"),
        Some(217) => gettext("the user could not be set up (USER)"),
        Some(218) => gettext("the capabilities could not be set up (CAPABILITIES)"),
        Some(226) => gettext("the mount namespace could not be set up (NAMESPACE)"),
        Some(status) => gettext_f(
            "systemd's start failed with result {result} and status {status}",
            &[("result", &outcome.result), ("status", &status)],
        ),
        None => gettext_f(
            "systemd's start failed with result {result}",
            &[("result", &outcome.result)],
        ),
    }
}

/// Sets the launch's own limits again as runtime changes, which the app's rule drop-ins do not
/// override. A failure is left to the read-back of the limits that follows every launch, which
/// names a limit that did not take.
async fn pin_limits(systemd: &Systemd, req: &LaunchRequest, unit: &str) {
    if let Some(limits) = &req.runtime_limits {
        let _ = systemd
            .set_properties(unit, &crate::systemd::properties::limit_properties(limits))
            .await;
    }
}

/// Whether systemd refused a start only because it takes no OOMPolicy= for scopes (before
/// systemd 253: "Cannot set property OOMPolicy, or unknown property.").
pub(crate) fn refuses_oom_policy(error: &SystemdError) -> bool {
    matches!(error, SystemdError::Refused { message, .. } if message.contains("OOMPolicy"))
}

/// A child forked into a scope.
#[derive(Debug)]
pub struct ScopeChild {
    pub unit: String,
    pub pid: i32,
    /// systemd took no OOM policy for the scope (before systemd 253), so the preset's
    /// `oom-policy` does not hold for it: the whole scope stops when the kernel kills one of
    /// its processes for memory.
    pub oom_policy_refused: bool,
}

/// Forks a child, puts it in a new scope with `req`'s limits, and only then lets it execute
/// the program, so that no process of the app ever runs outside the scope. The child keeps
/// this process's terminal. The scope stays referenced (AddRef=) until [`Systemd::unref`].
pub async fn launch_scope(
    systemd: &Systemd,
    req: &LaunchRequest,
) -> Result<ScopeChild, LaunchError> {
    check_unit_kind(UnitKind::Scope, in_flatpak())?;
    let program = check_request(systemd.kind(), req)?;
    let prepared = PreparedExec::new(&program, systemd.kind(), req)?;
    let release = Pipe::new().map_err(LaunchError::Fork)?;
    let exec_error = Pipe::new().map_err(LaunchError::Fork)?;

    // SAFETY: the child only makes async-signal-safe calls on memory prepared before the fork
    // (see `child_after_fork`), as POSIX requires after fork() in a multi-threaded process.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(LaunchError::Fork(std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: in the child, see above.
        unsafe {
            child_after_fork(
                release.read.as_raw_fd(),
                release.write.as_raw_fd(),
                exec_error.write.as_raw_fd(),
                &prepared,
            )
        }
    }
    // Close the parent's copies of the child's ends now: the error pipe must reach EOF once
    // the child has exec'd, which it cannot while this process holds its write end.
    let Pipe {
        read: release_read,
        write: release_write,
    } = release;
    let Pipe {
        read: error_read,
        write: error_write,
    } = exec_error;
    drop(release_read);
    drop(error_write);

    let mut spec = req.spec(systemd, &program, vec![pid as u32]);
    let mut started = systemd.start_transient(&spec, Vec::new()).await;
    let oom_policy_refused = matches!(&started, Err(e) if refuses_oom_policy(e));
    if oom_policy_refused {
        // A refused start made no unit: the same start without the policy.
        spec.settings.oom_policy = None;
        started = systemd.start_transient(&spec, Vec::new()).await;
    }
    if let Err(e) = started {
        // Dropping the release pipe makes the child exit without running anything.
        drop(release_write);
        reap(pid).await;
        return Err(e.into());
    }
    pin_limits(systemd, req, &spec.name).await;
    // The scope exists and holds the child: let it go on to exec.
    let released = write_once(&release_write, &[1]);
    drop(release_write);
    if let Err(source) = released {
        reap(pid).await;
        return Err(LaunchError::Exec { program, source });
    }
    // The error pipe closes on a successful exec (O_CLOEXEC) or carries the child's errno.
    let errno = tokio::task::spawn_blocking(move || read_errno(&error_read))
        .await
        .unwrap_or(None);
    if let Some(errno) = errno {
        reap(pid).await;
        systemd.unref(&spec.name).await;
        return Err(LaunchError::Exec {
            program,
            source: std::io::Error::from_raw_os_error(errno),
        });
    }
    Ok(ScopeChild {
        unit: spec.name,
        pid,
        oom_policy_refused,
    })
}

/// Waits for a child and returns its exit status the way a shell reports it
/// (128 + signal number for a killed child).
pub async fn wait_child(pid: i32) -> (i32, Option<i32>) {
    use rustix::process::{Pid, WaitOptions, waitpid};
    tokio::task::spawn_blocking(move || {
        let Some(child) = Pid::from_raw(pid) else {
            return (127, None);
        };
        let status = loop {
            match waitpid(Some(child), WaitOptions::empty()) {
                Ok(Some((_, status))) => break status,
                Err(rustix::io::Errno::INTR) => continue,
                Ok(None) | Err(_) => return (127, None),
            }
        };
        match (status.terminating_signal(), status.exit_status()) {
            (Some(signal), _) => (128 + signal, Some(signal)),
            (None, Some(code)) => (code, None),
            (None, None) => (127, None),
        }
    })
    .await
    .unwrap_or((127, None))
}

async fn reap(pid: i32) {
    if let Some(child) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(child, rustix::process::Signal::KILL);
    }
    wait_child(pid).await;
}

/// argv, environment and working directory as C strings, built before the fork because the
/// child may not allocate.
struct PreparedExec {
    path: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _env: Vec<CString>,
    env_ptrs: Vec<*const libc::c_char>,
    cwd: Option<CString>,
    /// systemd cannot set NoNewPrivileges= on a scope, so the child sets it itself (prctl(2)).
    no_new_privileges: bool,
    /// The soft limit on open files to give back to the program (0: leave as is).
    fd_limit: libc::rlim_t,
}

impl PreparedExec {
    fn new(
        program: &Path,
        manager: ManagerKind,
        req: &LaunchRequest,
    ) -> Result<PreparedExec, LaunchError> {
        let c = |s: &OsStr| {
            CString::new(s.as_bytes())
                .map_err(|_| LaunchError::BadArgument(s.to_string_lossy().into_owned()))
        };
        let path = c(program.as_os_str())?;
        let argv: Vec<CString> = req
            .command
            .iter()
            .map(|a| c(OsStr::new(a)))
            .collect::<Result<_, _>>()?;
        let env: Vec<CString> = unit_environment(
            manager,
            UnitKind::Scope,
            session_environment(),
            &req.settings.environment,
            caller_is_root(),
        )
        .into_iter()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            c(&kv)
        })
        .collect::<Result<_, _>>()?;
        let cwd = req
            .working_directory
            .as_deref()
            .map(|d| c(d.as_os_str()))
            .transpose()?;
        let ptrs = |v: &[CString]| {
            v.iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect::<Vec<_>>()
        };
        Ok(PreparedExec {
            argv_ptrs: ptrs(&argv),
            env_ptrs: ptrs(&env),
            path,
            _argv: argv,
            _env: env,
            cwd,
            no_new_privileges: req.settings.no_new_privileges == Some(true),
            fd_limit: crate::ORIGINAL_FD_LIMIT.load(std::sync::atomic::Ordering::Relaxed),
        })
    }
}

/// The child's side: wait for the parent's go-ahead (the scope exists), then exec. Only
/// async-signal-safe calls (close, read, write, sigprocmask, sigaction, chdir, prctl,
/// rlimits, execve, _exit).
unsafe fn child_after_fork(
    release_read: RawFd,
    release_write: RawFd,
    error_write: RawFd,
    exec: &PreparedExec,
) -> ! {
    unsafe {
        libc::close(release_write);
        // The forking thread's signal mask survives exec; the program must start with none.
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        // An ignored signal stays ignored across exec (signal(7)), and the Rust runtime
        // ignores SIGPIPE in Corral: give it back its default, as std's Command does, or every
        // pipeline of the program (`yes | head -1`) ends with EPIPE errors instead of quietly.
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGPIPE, &default, std::ptr::null_mut());
        let mut byte = 0u8;
        loop {
            let n = libc::read(release_read, (&raw mut byte).cast(), 1);
            if n == 1 {
                break;
            }
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            // The parent gave up (no scope): run nothing.
            libc::_exit(125);
        }
        if let Some(cwd) = &exec.cwd
            && libc::chdir(cwd.as_ptr()) != 0
        {
            report_errno_and_exit(error_write);
        }
        if exec.no_new_privileges && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            report_errno_and_exit(error_write);
        }
        if exec.fd_limit > 0 {
            let mut limit: libc::rlimit = std::mem::zeroed();
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                limit.rlim_cur = exec.fd_limit;
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            }
        }
        libc::execve(
            exec.path.as_ptr(),
            exec.argv_ptrs.as_ptr(),
            exec.env_ptrs.as_ptr(),
        );
        report_errno_and_exit(error_write)
    }
}

unsafe fn report_errno_and_exit(error_write: RawFd) -> ! {
    unsafe {
        let errno: i32 = *libc::__errno_location();
        libc::write(error_write, (&raw const errno).cast(), 4);
        libc::_exit(127)
    }
}

struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    fn new() -> std::io::Result<Pipe> {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        Ok(Pipe { read, write })
    }
}

fn write_once(fd: &OwnedFd, bytes: &[u8]) -> std::io::Result<()> {
    match rustix::io::write(fd, bytes)? {
        n if n == bytes.len() => Ok(()),
        _ => Err(std::io::Error::from(std::io::ErrorKind::WriteZero)),
    }
}

/// The errno the child wrote before exiting, or `None` once the pipe closed on its exec.
fn read_errno(fd: &OwnedFd) -> Option<i32> {
    let mut buf = [0u8; 4];
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(4) => return Some(i32::from_ne_bytes(buf)),
            Err(rustix::io::Errno::INTR) => continue,
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn a_failed_start_job_with_the_programs_own_end_is_a_launch() {
        let outcome =
            |result: &str, status: Option<i32>, killed: bool| crate::systemd::UnitOutcome {
                result: result.to_owned(),
                status,
                killed,
            };
        // `sh -c 'exit 7'` ending before systemd saw its exec, or killed at once.
        assert!(program_ran(&outcome("exit-code", Some(7), false)));
        assert!(program_ran(&outcome("exit-code", Some(1), false)));
        assert!(program_ran(&outcome("signal", Some(9), true)));
        assert!(program_ran(&outcome("core-dump", Some(11), true)));
        // systemd's own failures to spawn it: EXEC, CHDIR, NAMESPACE, and the like.
        for status in [200, 203, 217, 226, 243] {
            assert!(
                !program_ran(&outcome("exit-code", Some(status), false)),
                "{status}"
            );
        }
        assert!(!program_ran(&outcome("resources", None, false)));
        assert!(!program_ran(&outcome("exit-code", None, false)));
    }

    #[test]
    fn a_start_refused_for_its_oom_policy_is_told_apart() {
        let refused = |message: &str| SystemdError::Refused {
            action: "start",
            unit: "app-corral-bash-00000000.scope".to_owned(),
            message: message.to_owned(),
        };
        // The words of systemd 252 and older for a property a scope does not take.
        assert!(refuses_oom_policy(&refused(
            "Cannot set property OOMPolicy, or unknown property."
        )));
        assert!(!refuses_oom_policy(&refused(
            "Cannot set property MemoryMax, or unknown property."
        )));
        assert!(!refuses_oom_policy(&SystemdError::NoSuchUnit("x".into())));
    }

    #[test]
    fn own_variables_are_not_passed_on() {
        let vars = [
            "CORRAL_CONFIG",
            "INVOCATION_ID",
            "PATH",
            "DISPLAY",
            "NOTIFY_SOCKET",
            "GDK_DEBUG",
        ]
        .map(|k| (OsString::from(k), OsString::from("x")));
        let kept = |set_for_itself: &[&str]| -> Vec<_> {
            without_own_variables(vars.clone().into_iter(), set_for_itself)
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert_eq!(kept(&[]), ["PATH", "DISPLAY", "GDK_DEBUG"]);
        // The tray's GDK_DEBUG=gl-disable is Corral's, not the session's.
        assert_eq!(kept(&["GDK_DEBUG"]), ["PATH", "DISPLAY"]);
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    fn preset(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn systemd_takes_names_of_letters_digits_and_underscores_and_utf8_values() {
        let ok = |name: &str, value: &str| systemd_accepts(OsStr::new(name), OsStr::new(value));
        assert!(ok("PATH", "/usr/bin"));
        assert!(ok("_x9", ""));
        assert!(
            ok("LESS_TERMCAP_mb", "\x1b[1;31m"),
            "control characters in values are fine"
        );
        assert!(ok("MULTI", "two\nlines"));
        for name in ["BASH_FUNC_which%%", "9LIVES", "", "A-B", "A.B", "A B", "É"] {
            assert!(!ok(name, "x"), "{name:?}");
        }
        let bytes = OsString::from_vec(b"caf\xe9".to_vec());
        assert!(!systemd_accepts(OsStr::new("LATIN1"), &bytes));
    }

    #[test]
    fn preset_variables_win_once_and_services_get_only_what_systemd_takes() {
        let session = vars(&[
            ("SHARED", "session"),
            ("BASH_FUNC_which%%", "() { :; }"),
            ("KEPT", "yes"),
        ]);
        let preset = preset(&[("SHARED", "preset"), ("PRESET_ONLY", "1")]);
        let service = unit_environment(
            ManagerKind::User,
            UnitKind::Service,
            session.clone(),
            &preset,
            false,
        );
        assert_eq!(
            service,
            vars(&[("KEPT", "yes"), ("PRESET_ONLY", "1"), ("SHARED", "preset")])
        );
        // A scope's program is a child like any other: the exported function stays.
        let scope = unit_environment(ManagerKind::User, UnitKind::Scope, session, &preset, false);
        assert_eq!(
            scope,
            vars(&[
                ("BASH_FUNC_which%%", "() { :; }"),
                ("KEPT", "yes"),
                ("PRESET_ONLY", "1"),
                ("SHARED", "preset")
            ])
        );
    }

    #[test]
    fn a_system_service_gets_only_the_terminal_type_of_the_callers_world() {
        let session = vars(&[
            ("LD_PRELOAD", "/home/u/evil.so"),
            ("LD_LIBRARY_PATH", "/home/u/lib"),
            ("PYTHONPATH", "/home/u/py"),
            ("GIO_MODULE_DIR", "/home/u/gio"),
            ("PATH", "/home/u/.local/bin:/usr/bin"),
            ("TERM", "xterm-256color"),
        ]);
        let config = preset(&[("INJECTED", "1")]);
        let env = |session: Vec<(OsString, OsString)>, root| {
            unit_environment(
                ManagerKind::System,
                UnitKind::Service,
                session,
                &config,
                root,
            )
        };
        assert_eq!(
            env(session.clone(), false),
            vars(&[("TERM", "xterm-256color")])
        );
        // Root's own config (Corral runs as root and reads root's files) applies.
        assert_eq!(
            env(session, true),
            vars(&[("TERM", "xterm-256color"), ("INJECTED", "1")])
        );
        // A TERM that is a path is no terminal type.
        assert!(env(vars(&[("TERM", "../../tmp/x")]), false).is_empty());
        // A scope of the system manager adopts the caller's own process: its environment.
        let scope = unit_environment(
            ManagerKind::System,
            UnitKind::Scope,
            vars(&[("PATH", "/home/u/bin")]),
            &config,
            false,
        );
        assert_eq!(scope, vars(&[("PATH", "/home/u/bin"), ("INJECTED", "1")]));
    }

    #[test]
    fn system_services_resolve_programs_in_the_system_path_only() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("id");
        std::fs::write(&fake, "#!/bin/sh\necho HIJACKED\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let user_path = std::env::join_paths([dir.path(), Path::new("/usr/bin")]).unwrap();
        assert_eq!(resolve_program_in("id", Some(&user_path)).unwrap(), fake);
        let system = resolve_program_in("id", Some(OsStr::new(SYSTEM_PATH))).unwrap();
        assert!(
            std::env::split_paths(SYSTEM_PATH).any(|d| Some(d.as_path()) == system.parent()),
            "{system:?}"
        );
        assert_eq!(program_label(&system), "id");
        assert_eq!(program_label(&fake), fake.to_string_lossy());
    }

    #[test]
    fn files_to_open_are_absolute_paths_or_uris_as_gio_passes_them() {
        use apps::FieldCode;
        let cwd = Path::new("/home/u/work");
        let targets: Vec<String> = [
            "notes.txt",
            "--foo",
            "./a/../b c.txt",
            "/etc/hosts",
            "https://example.org/x?y",
            "file:///tmp/a%20b",
            "file://localhost/tmp/c",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(
            open_targets(&targets, FieldCode::Files, cwd),
            [
                "/home/u/work/notes.txt",
                "/home/u/work/--foo",
                "/home/u/work/b c.txt",
                "/etc/hosts",
                "https://example.org/x?y",
                "/tmp/a b",
                "/tmp/c",
            ]
        );
        assert_eq!(
            open_targets(&targets, FieldCode::Urls, cwd),
            [
                "file:///home/u/work/notes.txt",
                "file:///home/u/work/--foo",
                "file:///home/u/work/b%20c.txt",
                "file:///etc/hosts",
                "https://example.org/x?y",
                "file:///tmp/a%20b",
                "file://localhost/tmp/c",
            ]
        );
        // A remote file URI stays a URI.
        assert_eq!(
            open_targets(&["file://server/x".into()], FieldCode::File, cwd),
            ["file://server/x"]
        );
    }

    #[test]
    fn scopes_are_refused_only_inside_flatpak() {
        assert!(check_unit_kind(UnitKind::Service, false).is_ok());
        assert!(check_unit_kind(UnitKind::Scope, false).is_ok());
        assert!(check_unit_kind(UnitKind::Service, true).is_ok());
        let err = check_unit_kind(UnitKind::Scope, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Flatpak sandbox"), "{err}");
        assert!(err.contains("--service"), "{err}");
    }

    #[test]
    fn programs_resolve_or_fail_clearly() {
        assert!(resolve_program("sh").unwrap().is_absolute());
        let err = resolve_program("no-such-program-corral").unwrap_err();
        assert!(
            err.to_string().contains("not an executable file in PATH"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::write(&data, "not a program").unwrap();
        let err = resolve_program(data.to_str().unwrap()).unwrap_err();
        assert!(matches!(err, LaunchError::NotExecutable(_)), "{err}");
    }
}
