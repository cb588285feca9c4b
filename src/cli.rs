//! The `corral` command line: the same engine as the window, for terminals and scripts.

use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::apps::AppCatalog;
use crate::cgroup::{CgroupFs, CgroupSample, Limit};
use crate::config::{Config, Mode, Settings};
use crate::controller::{Controller, LimitCheck};
use crate::i18n::{gettext, gettext_f, gettext_noop, ngettext_f, pgettext};
use crate::launch::{self, LaunchRequest, Stdio};
use crate::limits::{Bytes, CpuQuota, CpuWeight, MemoryLimit, SwapLimit, TasksLimit};
use crate::monitor::postmortem::{EventLog, LocalTime};
use crate::monitor::{self, Sampler, UnitSnapshot, doctor};
use crate::systemd::{ManagerKind, Systemd, UnitKind};

mod processes;
mod rules;

#[derive(Parser, Debug)]
#[command(
    name = "corral",
    version,
    about = gettext("Keep desktop apps from eating the machine"),
    long_about = gettext("Corral runs apps in systemd transient units with memory, CPU and task limits, shows what each one uses, and freezes, stops or re-limits them on demand. Everything goes through your own systemd user manager: no root needed. Start with `corral doctor`, which checks that this machine can contain apps."),
    after_help = gettext("Examples:\n  corral run -p shell -- bash -i\n  corral run --memory-max 2G -- firefox\n  corral launch org.mozilla.firefox -p browser\n  corral ps --all\n  corral limit firefox --memory-max 4G\n  corral freeze firefox\n\n`corral COMMAND --help` explains each command; `man corral` has it all.")
)]
pub struct Cli {
    #[arg(help = gettext("Use the system manager instead of your user manager (asks polkit for permission)"))]
    #[arg(long, global = true)]
    pub system: bool,

    #[arg(help = gettext("Start with the tray icon only; the window opens from its menu (for the session autostart)"))]
    #[arg(long)]
    pub tray: bool,

    /// Without a command, Corral opens its window.
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// Parses the command line like `Cli::parse`, with the words clap adds itself (the help
    /// and version flags, "Usage:" and the section headings) in the person's language too.
    ///
    /// A command line that parses needs none of those words, nor the JSON field docs of
    /// `--help`: it is parsed with the plain command, a fifth of the work (and a command's
    /// start-up is most of what it costs). Help and errors are shown by parsing again with
    /// [`help_command`], which gives the same outcome in full.
    pub fn parse_localized() -> Cli {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        let matches = match Cli::command().try_get_matches_from(&args) {
            Ok(matches) => matches,
            // Not translated, and the same either way.
            Err(e) if e.kind() == clap::error::ErrorKind::DisplayVersion => e.exit(),
            Err(_) => help_command().get_matches_from(&args),
        };
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    pub fn manager(&self) -> ManagerKind {
        if self.system {
            ManagerKind::System
        } else {
            ManagerKind::User
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    #[command(about = gettext("Run a command in a new contained unit"))]
    #[command(
        long_about = gettext("Run a command in a new contained unit, with the limits of a preset and any given here.\n\nBy default the unit is a service: systemd starts the command itself, it can be sandboxed (--isolation strict), and it keeps running when this terminal closes; Corral returns once it runs, unless --wait. With --scope (and the shell preset) Corral forks the command itself into a scope: it keeps this terminal, and Corral waits and exits with its status. Inside a Flatpak sandbox only services are possible.\n\nAfter the start, Corral reads every limit back from the unit's cgroup and says plainly when one did not apply, and why."),
        after_long_help = gettext("Examples:\n  corral run -- firefox\n  corral run -p browser --memory-max 6G -- firefox\n  corral run -p shell -- bash -i\n  corral run --cpu-quota 200% --wait -- make -j8")
    )]
    Run(RunArgs),
    #[command(about = gettext("Launch an installed desktop app by its id (see `corral apps`)"))]
    #[command(
        long_about = gettext("Launch an installed desktop app by its desktop file id, as a service with the limits of its rule, the preset given, or \"relaxed\". The app's Exec line is run as its desktop entry says, with FILES as its file or URL arguments; Corral returns once it runs.")
    )]
    Launch(LaunchArgs),
    // `--help` ends with the JSON fields (help_command).
    #[command(about = gettext("List installed desktop apps"))]
    Apps {
        #[arg(help = gettext("Show only apps whose name, id or keywords contain this"))]
        search: Option<String>,
        #[arg(help = gettext("Print every field of each app's desktop entry as JSON instead of a table"))]
        #[arg(long)]
        json: bool,
    },
    // `--help` ends with the JSON fields (help_command).
    #[command(about = gettext("List contained apps with their memory, CPU, tasks and pressure"))]
    #[command(
        long_about = gettext("List contained apps with their memory, CPU, tasks and pressure.\n\nMEMORY is the memory in use against the hard limit (or the soft one if only that is set); CPU is the use over a quarter of a second in percent of one CPU; TASKS counts processes and threads; MEM PRESSURE is the share of the last 10 s in which some of the app's tasks waited for memory."),
    )]
    Ps {
        #[arg(help = gettext("Only this app: a unit name, app id or app name (it may be launched elsewhere)"))]
        target: Option<String>,
        #[arg(help = gettext("Include apps launched elsewhere (GNOME, KDE, Flatpak, systemd-run)"))]
        #[arg(short, long)]
        all: bool,
        #[arg(help = gettext("Also list each app's processes: PID, memory, CPU and command, heaviest first"))]
        #[arg(short, long)]
        processes: bool,
        #[arg(help = gettext("Print everything read about each unit as JSON instead of a table (fields below)"))]
        #[arg(long)]
        json: bool,
    },
    #[command(about = gettext("Move a running process and its children into a new contained unit with limits"))]
    #[command(
        long_about = gettext("Move a running process and everything it started into a new scope with the limits of a preset and any given here: for an app that escaped, such as a browser started from a terminal. The app is named after the process's executable (its desktop entry, when one runs it). Only your own processes can be moved; a process that cannot is refused and nothing is left behind."),
        after_long_help = gettext("Examples:\n  corral adopt 4242\n  corral adopt $(pgrep -o firefox) -p browser\n  corral adopt 4242 --memory-max 2G")
    )]
    Adopt(AdoptArgs),
    #[command(about = gettext("Freeze every process of an app: it keeps its memory but gets no CPU until thawed"))]
    Freeze(Target),
    #[command(about = gettext("Let a frozen app run again"))]
    Thaw(Target),
    #[command(about = gettext("Stop an app gracefully (SIGTERM, then SIGKILL after systemd's timeout)"))]
    Stop(Target),
    #[command(about = gettext("Send a signal to every process of an app (SIGKILL unless --signal says otherwise)"))]
    Kill {
        #[command(flatten)]
        target: Target,
        #[arg(help = gettext("Signal name or number, e.g. TERM, INT, HUP, 9"))]
        #[arg(short, long, default_value = "KILL")]
        signal: String,
    },
    #[command(about = gettext("Change the limits of a running app; they hold until it ends"))]
    #[command(
        long_about = gettext("Change the limits of a running app; they hold until it ends. Corral reads each limit back from the kernel and says when one did not apply, and why; the exit status is then 2.")
    )]
    Limit {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        limits: LimitArgs,
    },
    #[command(about = gettext("List app rules: limits that hold however an app is started; or set, remove, apply them"))]
    #[command(
        long_about = gettext("List app rules: limits that hold however an app is started.\n\nA rule (an [apps.ID] table of the config file, with a preset and/or limits) is written as systemd drop-ins for every unit name the app can run under: started by GNOME, KDE, Flatpak, Corral, or a launcher that names none. systemd applies them whoever starts the app, whether Corral runs or not, and to the app's running instances at once. A limit changed while an app runs (`corral limit`, the window, the tray) is kept until it ends."),
        after_long_help = gettext("Examples:\n  corral rules\n  corral rules set org.mozilla.firefox -p browser --memory-max 4G\n  corral rules set org.gnome.Builder --cpu-quota 200%\n  corral rules remove org.mozilla.firefox")
    )]
    Rules {
        #[command(subcommand)]
        action: Option<RulesAction>,
        #[arg(help = gettext("Print the rules as JSON: each with its settings, the unit names it covers, its drop-ins and running instances"))]
        #[arg(long)]
        json: bool,
    },
    #[command(about = gettext("Show or set the memory budget of all apps together (app.slice)"))]
    #[command(
        long_about = gettext("Show or set the memory budget of all apps together: the limits of app.slice, the slice every desktop app runs in, so that one runaway app is slowed (and at the hard limit killed) before the shell and the session's own services starve. It is kept in [general] of the config file, written as a drop-in, and applied at once; `max` removes a limit."),
        after_long_help = gettext("Examples:\n  corral budget\n  corral budget --memory-high 80%\n  corral budget --memory-high 80% --memory-max 90%\n  corral budget --memory-high max --memory-max max")
    )]
    Budget(BudgetArgs),
    #[command(about = gettext("List presets, or show one in full"))]
    Presets {
        #[command(subcommand)]
        action: Option<PresetsAction>,
    },
    #[command(about = gettext("Check that this machine can contain apps, and say how to fix what is missing"))]
    #[command(
        long_about = gettext("Check that this machine can contain apps, and say how to fix what is missing: the config file, the systemd manager, cgroup v2, and the controllers (memory, cpu, pids) delegated to the manager. The exit status is 1 when a check failed.")
    )]
    Doctor,
    #[command(about = gettext("List post-mortems of contained apps that were OOM-killed or failed, newest last"))]
    Events {
        #[arg(help = gettext("Print JSON (an array of post-mortems) instead of one line each"))]
        #[arg(long)]
        json: bool,
        #[arg(help = gettext("Show only the newest N"))]
        #[arg(short = 'n', long, value_name = "N")]
        limit: Option<usize>,
    },
    #[command(about = gettext("Watch contained apps and warn with desktop notifications before one runs out of memory"))]
    #[command(
        long_about = gettext("Watch contained apps without the window: the same monitor and runaway alerts as the window and tray (near the memory limit, throttled at the soft limit, held at the CPU quota, stalling for memory, OOM-killed), as desktop notifications with Freeze, Raise limit, Kill and Open Corral buttons, and post-mortems of apps that were OOM-killed or failed in `corral events`. Each alert change is also printed on stdout. Runs until interrupted; without a notification server it only prints."),
        after_long_help = gettext("Examples:\n  corral watch\n  corral watch --json | jq .")
    )]
    Watch {
        #[arg(help = gettext("Print each alert change as a JSON line (at_ms, change, unit, app, condition)"))]
        #[arg(long)]
        json: bool,
    },
    #[command(about = gettext("Print a completion script for a shell, generated from this command line"))]
    #[command(hide = true)]
    Completions {
        #[arg(help = gettext("The shell: bash, zsh, fish, elvish or powershell"))]
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    #[command(about = gettext("Print the corral(1) man page (roff), generated from this command line"))]
    #[command(hide = true)]
    Man,
}

#[derive(Subcommand, Debug)]
pub enum RulesAction {
    #[command(about = gettext("Create or change the rule for an app"))]
    #[command(
        long_about = gettext("Create or change the rule for an app: the settings given here are set, the others stay as they were. The app is named by its desktop app id (see `corral apps`) or an executable's name; one that is not installed is allowed. The rule's drop-ins are written and its running instances get it at once; Corral says, per instance, what took.")
    )]
    Set(RuleSetArgs),
    #[command(about = gettext("Remove the rule for an app, and the drop-ins Corral wrote for it"))]
    Remove {
        #[arg(help = gettext("The rule's app id or executable name, as `corral rules` lists it"))]
        app_id: String,
    },
    #[command(about = gettext("Write the drop-ins again from the config file (after editing it by hand while Corral did not run)"))]
    Apply,
}

#[derive(Args, Debug)]
pub struct RuleSetArgs {
    #[arg(help = gettext("Desktop app id (e.g. org.mozilla.firefox) or executable name"))]
    pub app_id: String,
    #[arg(help = gettext("Preset the rule starts from (see `corral presets`)"))]
    #[arg(short, long)]
    pub preset: Option<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[arg(help = gettext("What systemd does with the rest of the app when the kernel kills one of its processes for memory: stop, continue or kill"))]
    #[arg(long, value_name = "POLICY")]
    pub oom_policy: Option<crate::config::OomPolicy>,
    #[arg(help = gettext("Remove one setting from the rule, so the preset's value applies (e.g. memory-max); repeatable"))]
    #[arg(long, value_name = "SETTING")]
    pub unset: Vec<String>,
}

#[derive(Args, Debug)]
pub struct BudgetArgs {
    #[arg(help = gettext("Soft limit of all apps together: above it they are slowed and their memory reclaimed (e.g. 80%, 12G, max)"))]
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_high: Option<MemoryLimit>,
    #[arg(help = gettext("Hard limit of all apps together: above it the kernel kills the app that uses the most (e.g. 90%, 14G, max)"))]
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_max: Option<MemoryLimit>,
    #[arg(help = gettext("Print the budget, the apps' use and the read-back as JSON"))]
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum PresetsAction {
    #[command(about = gettext("Show every setting of one preset"))]
    Show {
        #[arg(help = gettext("The preset's name, e.g. browser"))]
        name: String,
    },
}

#[derive(Args, Debug)]
pub struct Target {
    #[arg(help = gettext("A unit name, app id or app name, as `corral ps --all` shows them"))]
    pub target: String,
}

/// Limits that override the preset's.
#[derive(Args, Debug, Default, Clone)]
pub struct LimitArgs {
    #[arg(help = gettext("Soft memory limit: above it the app is slowed and its memory reclaimed (e.g. 3G, 50% of RAM, max)"))]
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_high: Option<MemoryLimit>,
    #[arg(help = gettext("Hard memory limit: above it the kernel kills the app (e.g. 4G, 70% of RAM, max)"))]
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_max: Option<MemoryLimit>,
    #[arg(help = gettext("Most swap the app may use (e.g. 0, 1G, max)"))]
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap_max: Option<SwapLimit>,
    #[arg(help = gettext("CPU time in percent of one CPU (e.g. 50%, 250%, max)"))]
    #[arg(long, value_name = "PERCENT", allow_hyphen_values = true)]
    pub cpu_quota: Option<CpuQuota>,
    #[arg(help = gettext("CPU share against other apps, 1 to 10000 (default 100)"))]
    #[arg(long, value_name = "WEIGHT", allow_hyphen_values = true)]
    pub cpu_weight: Option<CpuWeight>,
    #[arg(help = gettext("Most processes and threads the app may have at once (e.g. 512, max)"))]
    #[arg(long, value_name = "COUNT", allow_hyphen_values = true)]
    pub tasks_max: Option<TasksLimit>,
}

impl LimitArgs {
    fn settings(&self) -> Settings {
        Settings {
            memory_high: self.memory_high,
            memory_max: self.memory_max,
            memory_swap_max: self.memory_swap_max,
            cpu_quota: self.cpu_quota,
            cpu_weight: self.cpu_weight,
            tasks_max: self.tasks_max,
            ..Settings::default()
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    #[value(help = gettext("NoNewPrivileges and a private /tmp on top of the limits"))]
    Strict,
    #[value(help = gettext("Limits only: turns the preset's sandboxing off"))]
    Relaxed,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[arg(help = gettext("Preset to start from (see `corral presets`); default: the app's rule, else \"relaxed\""))]
    #[arg(short, long)]
    pub preset: Option<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[arg(help = gettext("What systemd does with the rest of the app when the kernel kills one of its processes for memory: stop, continue or kill"))]
    #[arg(long, value_name = "POLICY")]
    pub oom_policy: Option<crate::config::OomPolicy>,
    #[arg(help = gettext("Override the preset's sandboxing (services only)"))]
    #[arg(long, value_enum)]
    pub isolation: Option<Isolation>,
    #[arg(help = gettext("Run in a scope: the command keeps this terminal and Corral waits for it"))]
    #[arg(long, conflicts_with = "service")]
    pub scope: bool,
    #[arg(help = gettext("Run as a service started by systemd (the default, except for scope presets such as shell)"))]
    #[arg(long)]
    pub service: bool,
    #[arg(help = gettext("Wait for the command to end, with this terminal as its input and output, and exit with its status (a scope always waits)"))]
    #[arg(short, long)]
    pub wait: bool,
    #[arg(help = gettext("Name shown for the app (default: the command's name)"))]
    #[arg(long)]
    pub name: Option<String>,
    #[arg(help = gettext("App id used in the unit name and for per-app rules (default: the command's name)"))]
    #[arg(long)]
    pub app_id: Option<String>,
    #[arg(help = gettext("Say nothing but errors and limits that did not apply"))]
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(help = gettext("The command and its arguments"))]
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AdoptArgs {
    #[arg(help = gettext("The process to move, with its children"))]
    pub pid: u32,
    #[arg(help = gettext("Preset to start from (see `corral presets`); default: the app's rule, else \"relaxed\""))]
    #[arg(short, long)]
    pub preset: Option<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[arg(help = gettext("What systemd does with the rest of the app when the kernel kills one of its processes for memory: stop, continue or kill"))]
    #[arg(long, value_name = "POLICY")]
    pub oom_policy: Option<crate::config::OomPolicy>,
}

#[derive(Args, Debug)]
pub struct LaunchArgs {
    #[arg(help = gettext("Desktop app id, e.g. org.mozilla.firefox or firefox"))]
    pub app_id: String,
    #[arg(help = gettext("Preset to start from (see `corral presets`); default: the app's rule, else \"relaxed\""))]
    #[arg(short, long)]
    pub preset: Option<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[arg(help = gettext("Files or URLs to open with the app"))]
    pub files: Vec<String>,
}

/// `cmd` and its subcommands with clap's own words translated: its built-in help and version
/// flags are replaced by equal ones with translated help, and a help template writes the
/// translated headings (clap's default template, section by section). Clap's error messages
/// and its `help` subcommand stay in English: clap has no hook for them.
/// The command line as help and errors show it: `ps --help` and `apps --help` end with their
/// JSON fields, and the words clap adds are in the person's language too. The man page has the
/// JSON fields in a section of their own.
fn help_command() -> clap::Command {
    use crate::cli_docs::{
        APPS_JSON_FIELDS, APPS_JSON_INTRO, PS_JSON_FIELDS, PS_JSON_INTRO, json_help,
    };
    let cmd = Cli::command()
        .mut_subcommand("ps", |ps| {
            ps.after_long_help(json_help(PS_JSON_INTRO, PS_JSON_FIELDS))
        })
        .mut_subcommand("apps", |apps| {
            apps.after_long_help(json_help(APPS_JSON_INTRO, APPS_JSON_FIELDS))
        });
    localized(cmd)
}

fn localized(cmd: clap::Command) -> clap::Command {
    use clap::{Arg, ArgAction};
    let mut cmd = cmd.disable_help_flag(true);
    // As clap words the flag it builds (Command::_check_help_and_version).
    let has_long_help = cmd.get_long_about().is_some()
        || cmd.get_after_long_help().is_some()
        || cmd.get_arguments().any(|a| {
            !a.is_hide_set()
                && (a.get_long_help().is_some()
                    || a.get_possible_values()
                        .iter()
                        .any(|v| v.get_help().is_some()))
        });
    // Display order 999: after every other option, as clap places its own.
    let help = Arg::new("help")
        .short('h')
        .long("help")
        .action(ArgAction::Help)
        .display_order(999);
    cmd = cmd.arg(if has_long_help {
        help.help(gettext("Print help (see more with '--help')"))
            .long_help(gettext("Print help (see a summary with '-h')"))
    } else {
        help.help(gettext("Print help"))
    });
    if cmd.get_version().is_some() {
        cmd = cmd.disable_version_flag(true).arg(
            Arg::new("version")
                .short('V')
                .long("version")
                .action(ArgAction::Version)
                .display_order(999)
                .help(gettext("Print version")),
        );
    }
    let header = |text: String| {
        let style = cmd.get_styles().get_header();
        format!("{}{text}{}", style.render(), style.render_reset())
    };
    let usage = cmd.get_styles().get_usage();
    let mut template = format!(
        "{{before-help}}{{about-with-newline}}\n{}{}{} {{usage}}",
        usage.render(),
        gettext("Usage:"),
        usage.render_reset()
    );
    let mut sections = Vec::new();
    if cmd.has_subcommands() {
        sections.push(format!("{}\n{{subcommands}}", header(gettext("Commands:"))));
    }
    if cmd.get_positionals().any(|a| !a.is_hide_set()) {
        sections.push(format!(
            "{}\n{{positionals}}",
            header(gettext("Arguments:"))
        ));
    }
    sections.push(format!("{}\n{{options}}", header(gettext("Options:"))));
    template.push_str("\n\n");
    template.push_str(&sections.join("\n\n"));
    template.push_str("{after-help}");
    cmd.help_template(template).mut_subcommands(localized)
}

/// Runs one command on a runtime of its own, printing its error; returns the exit code.
pub fn run_to_exit_code(manager: ManagerKind, command: Command) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!(
                "corral: {}",
                gettext_f(
                    "error: cannot start the async runtime: {error}",
                    &[("error", &e)]
                )
            );
            return 1;
        }
    };
    let code = match runtime.block_on(run(manager, command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "corral: {}",
                terminal_text(&gettext_f("error: {error}", &[("error", &e)]))
            );
            1
        }
    };
    // The process ends next: dropping the runtime would first wait for every blocking task
    // (a thread still reading, say) for nothing.
    runtime.shutdown_background();
    code
}

/// Runs one command; returns the process exit code.
pub async fn run(manager: ManagerKind, command: Command) -> Result<i32> {
    match command {
        Command::Run(args) => run_command(manager, args).await,
        Command::Launch(args) => launch_app(manager, args).await,
        Command::Apps { search, json } => list_apps(manager, search.as_deref(), json),
        Command::Ps {
            target,
            all,
            processes,
            json,
        } => ps(manager, target.as_deref(), all, processes, json).await,
        Command::Adopt(args) => processes::adopt(manager, args).await,
        Command::Freeze(t) => act(manager, &t.target, Action::Freeze).await,
        Command::Thaw(t) => act(manager, &t.target, Action::Thaw).await,
        Command::Stop(t) => act(manager, &t.target, Action::Stop).await,
        Command::Kill { target, signal } => {
            act(
                manager,
                &target.target,
                Action::Kill(parse_signal(&signal)?),
            )
            .await
        }
        Command::Limit { target, limits } => limit(manager, &target.target, &limits).await,
        Command::Rules { action, json } => rules::run(manager, action, json).await,
        Command::Budget(args) => rules::budget(manager, args).await,
        Command::Presets { action } => presets(action),
        Command::Doctor => doctor(manager).await,
        Command::Events { json, limit } => events(json, limit),
        Command::Watch { json } => watch(manager, json).await,
        // Generated files are installed where English belongs (man1/, the shells' folders).
        Command::Completions { shell } => {
            crate::i18n::disable();
            let mut out = std::io::stdout().lock();
            crate::cli_docs::write_completions(Cli::command(), shell, &mut out);
            Ok(0)
        }
        Command::Man => {
            crate::i18n::disable();
            crate::cli_docs::write_man_page(Cli::command(), &mut std::io::stdout().lock())?;
            Ok(0)
        }
    }
}

pub(crate) async fn connect(manager: ManagerKind) -> Result<Controller> {
    let systemd = Systemd::connect(manager).await?;
    Ok(Controller::new(systemd, CgroupFs::system()))
}

/// [`connect`] for a command that launches a unit and follows only that one.
async fn connect_for_launch(manager: ManagerKind) -> Result<Controller> {
    let systemd = Systemd::connect_for_launch(manager).await?;
    Ok(Controller::new(systemd, CgroupFs::system()))
}

fn program_name(argv0: &str) -> String {
    argv0.rsplit('/').next().unwrap_or(argv0).to_owned()
}

async fn run_command(manager: ManagerKind, args: RunArgs) -> Result<i32> {
    // A missing program is the likeliest mistake: say so before anything else is touched.
    // (A system service's program is looked up again below, in the system's PATH alone.)
    if manager == ManagerKind::User {
        launch::resolve_program(&args.command[0])?;
    }
    let config = Config::load()?;
    let executable = program_name(&args.command[0]);
    let app_id = args.app_id.clone().unwrap_or_else(|| executable.clone());
    let mut overrides = args.limits.settings();
    overrides.oom_policy = args.oom_policy;
    match args.isolation {
        Some(Isolation::Strict) => {
            overrides.no_new_privileges = Some(true);
            overrides.private_tmp = Some(true);
        }
        Some(Isolation::Relaxed) => {
            overrides.no_new_privileges = Some(false);
            overrides.private_tmp = Some(false);
            overrides.protect_system = Some(crate::config::ProtectSystem::No);
        }
        None => {}
    }
    if args.scope {
        overrides.mode = Some(Mode::Scope);
    } else if args.service {
        overrides.mode = Some(Mode::Service);
    }
    let resolved = config.resolve(
        &app_id,
        Some(&executable),
        args.preset.as_deref(),
        &overrides,
    )?;
    let kind = match resolved.mode() {
        Mode::Scope => UnitKind::Scope,
        Mode::Service => UnitKind::Service,
    };
    launch::check_unit_kind(kind, launch::in_flatpak())?;
    launch::resolve_program_for(manager, kind, &args.command[0])?;
    let request = LaunchRequest {
        command: args.command.clone(),
        app_name: args.name.clone().unwrap_or(executable),
        runtime_limits: crate::rules::pinned_limits(&config, &app_id, &resolved.settings),
        app_id,
        preset: resolved.preset.clone(),
        settings: resolved.settings.clone(),
        kind,
        working_directory: std::env::current_dir().ok(),
    };
    let ctl = connect_for_launch(manager).await?;
    match kind {
        UnitKind::Scope => run_in_scope(&ctl, &request, args.quiet).await,
        UnitKind::Service => run_as_service(&ctl, &request, args.wait, args.quiet).await,
    }
}

async fn run_in_scope(ctl: &Controller, request: &LaunchRequest, quiet: bool) -> Result<i32> {
    warn_service_only(request);
    // Watched from before the start, so that the scope's end is seen when systemd announces
    // it, however soon the command exits.
    let ends = ctl.systemd.watch_ends(&request.app_name).await;
    let child = launch::launch_scope(&ctl.systemd, request).await?;
    if child.oom_policy_refused {
        eprintln!(
            "corral: {}",
            gettext_f(
                "note: this systemd takes no OOM policy for scopes (systemd 253 does), so oom-policy = \"{policy}\" does not hold for {app}: the whole scope stops if the kernel kills one of its processes for memory",
                &[
                    (
                        "policy",
                        &request.settings.oom_policy.map_or("", |p| p.as_str())
                    ),
                    ("app", &request.app_name),
                ],
            )
        );
    }
    // Like a shell running a foreground job: ^C and ^\ are for the command, not for us.
    // SAFETY: setting signal dispositions of this process.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
    let started_at = std::time::SystemTime::now();
    let end = ends.map(|ends| ends.of(&child.unit));
    let control_group = control_group_of(ctl, &child.unit).await;
    let watch = UsageWatch::start(ctl, &child.unit, control_group.as_deref());
    report_launch(ctl, request, &child.unit, control_group.as_deref(), quiet);
    let (code, signal) = launch::wait_child(child.pid).await;
    let usage = watch.finish().await;
    // A command that exited by itself, in a scope whose memory.events counts no OOM kill now,
    // ended as systemd will record it (org.freedesktop.systemd1(5), Scope "Result"): a scope
    // stopped or ended is "success" unless the kernel OOM-killed something in it (counted in
    // memory.events), its stop timed out (then SIGKILL ends the command: a signal), or a
    // RuntimeMaxSec= ran out, which Corral never sets. Nothing is left to wait for: systemd's
    // announcement of the scope's end (or, with processes left in the scope, a second spent
    // waiting for one that does not come) would only tell what is known already.
    let clean_exit = signal.is_none()
        && usage.oom_kills == 0
        && control_group.as_deref().is_some_and(|cg| {
            ctl.cgroups
                .unit(cg)
                .memory_events()
                .is_ok_and(|events| events.is_some_and(|e| e.oom_kill == Some(0)))
        });
    let result = if clean_exit {
        Some("success".to_owned())
    } else {
        // The scope ends when its last process does; give systemd a moment to record why.
        let announced = match end {
            Ok(mut end) => end.ended(Some(Duration::from_secs(1))).await,
            Err(_) => false,
        };
        let ended = announced
            || matches!(
                ctl.systemd.active_state(&child.unit).await.as_deref(),
                Some("inactive" | "failed") | None
            );
        if ended {
            ctl.systemd.result_of_held(&child.unit).await
        } else {
            None
        }
    };
    ctl.systemd.unref(&child.unit).await;
    report_end(request, result.as_deref(), signal, &usage);
    // A scope that was collected before its Result could be read counts as a success: then only
    // its OOM kills, which the usage watch counted, make a post-mortem.
    let outcome = crate::systemd::UnitOutcome {
        result: result.unwrap_or_else(|| "success".to_owned()),
        status: signal.or(Some(code)),
        killed: signal.is_some(),
    };
    record_end(request, &child.unit, &outcome, &usage, started_at);
    Ok(code)
}

async fn run_as_service(
    ctl: &Controller,
    request: &LaunchRequest,
    wait: bool,
    quiet: bool,
) -> Result<i32> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let stdio = wait.then(|| Stdio {
        input: stdin.as_fd(),
        output: stdout.as_fd(),
        error: stderr.as_fd(),
    });
    let unit = launch::launch_service(&ctl.systemd, request, stdio).await?;
    let control_group = control_group_of(ctl, &unit).await;
    if !wait {
        report_launch(ctl, request, &unit, control_group.as_deref(), quiet);
        ctl.systemd.unref(&unit).await;
        return Ok(0);
    }
    let started_at = std::time::SystemTime::now();
    let watch = UsageWatch::start(ctl, &unit, control_group.as_deref());
    report_launch(ctl, request, &unit, control_group.as_deref(), quiet);
    let outcome = ctl.systemd.wait_for_end(&unit).await;
    let usage = watch.finish().await;
    ctl.systemd.unref(&unit).await;
    let outcome = outcome?;
    let signal = outcome.killed.then_some(outcome.status).flatten();
    report_end(request, Some(&outcome.result), signal, &usage);
    record_end(request, &unit, &outcome, &usage, started_at);
    Ok(match (outcome.killed, outcome.status) {
        (true, Some(sig)) => 128 + sig,
        (false, Some(code)) => code,
        _ => 1,
    })
}

fn warn_service_only(request: &LaunchRequest) {
    let s = &request.settings;
    let mut ignored = Vec::new();
    if s.private_tmp == Some(true) {
        ignored.push(gettext("private /tmp"));
    }
    if s.protect_system
        .is_some_and(|p| p != crate::config::ProtectSystem::No)
    {
        ignored.push("protect-system".to_owned());
    }
    if s.protect_home
        .is_some_and(|p| p != crate::config::ProtectHome::No)
    {
        ignored.push("protect-home".to_owned());
    }
    if !ignored.is_empty() {
        eprintln!(
            "corral: {}",
            gettext_f(
                "note: a scope cannot have {settings} (it needs a service); use --service for those",
                &[("settings", &ignored.join(", "))],
            )
        );
    }
}

/// The cgroup of a unit Corral just started, asked once and shared by the usage watch and the
/// limit check; `None` when the unit has none (it already ended) or is gone. The unit is held
/// (AddRef=) until `unref`, so it is loaded and its object path is its escaped name: no
/// GetUnit round trip to look it up.
pub(crate) async fn control_group_of(ctl: &Controller, unit: &str) -> Option<String> {
    let path = crate::systemd::client::held_unit_path(unit).ok()?;
    let cg = ctl.systemd.control_group(unit, &path).await.ok()?;
    (!cg.is_empty()).then_some(cg)
}

/// Prints where the app runs and, plainly, every limit the kernel did not take.
fn report_launch(
    ctl: &Controller,
    request: &LaunchRequest,
    unit: &str,
    control_group: Option<&str>,
    quiet: bool,
) {
    let checks = control_group
        .map(|cg| ctl.verify_limits(cg, &request.settings))
        .unwrap_or_default();
    // A command that ends at once (`corral run -- true`) can take its cgroup with it before
    // its limits are read back: they were not refused, they ended with it.
    let ended = control_group.is_some_and(|cg| !ctl.cgroups.path_of(cg).exists());
    if !quiet {
        eprintln!(
            "corral: {}",
            gettext_f(
                "{app} runs in {unit} (preset {preset})",
                &[
                    ("app", &terminal_text(&request.app_name)),
                    ("unit", &unit),
                    ("preset", &request.preset),
                ],
            )
        );
        if ended {
            eprintln!(
                "  {}",
                gettext("it ended before its limits could be read back")
            );
        }
    }
    if !ended {
        print_checks(&checks, quiet);
    }
}

pub(crate) fn print_checks(checks: &[LimitCheck], only_problems: bool) {
    for check in checks {
        match &check.problem {
            None if !only_problems => eprintln!(
                "  {}",
                gettext_f(
                    "✓ {setting} {value}: applied",
                    &[
                        ("setting", &check.setting_label()),
                        ("value", &check.wanted)
                    ],
                )
            ),
            None => {}
            Some(problem) => eprintln!(
                "  {}",
                gettext_f(
                    "✗ {setting} {value}: NOT applied: {problem}",
                    &[
                        ("setting", &check.setting_label()),
                        ("value", &check.wanted),
                        ("problem", problem),
                    ],
                )
            ),
        }
    }
}

/// Follows a unit's memory while Corral waits for it, so that the peak and OOM kills can be
/// reported after the cgroup is gone.
struct UsageWatch {
    task: tokio::task::JoinHandle<Usage>,
    stop: tokio::sync::watch::Sender<bool>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    peak: Option<u64>,
    memory_high: Option<Limit>,
    memory_max: Option<Limit>,
    oom_kills: u64,
}

impl UsageWatch {
    fn start(ctl: &Controller, unit: &str, control_group: Option<&str>) -> UsageWatch {
        // Woken by the kernel too (memory.events changes as the app hits its limit, just
        // before an OOM kill), so the peak is read at the limit, not up to 200 ms before it.
        let (wake_tx, mut woken) = tokio::sync::mpsc::channel(8);
        let hub = crate::monitor::wakeup::WakeupHub::new(wake_tx);
        let wakeup = control_group.map(|cg| (hub.watch(unit, &ctl.cgroups.path_of(cg)), hub));
        let mut cgroup = control_group.map(|cg| ctl.cgroups.unit(cg));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let _wakeup = wakeup;
            let mut usage = Usage::default();
            let Some(cgroup) = cgroup.as_mut() else {
                return usage;
            };
            loop {
                match cgroup.sample() {
                    Ok(s) => usage.record(&s),
                    Err(_) => return usage,
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    Some(_) = woken.recv() => {}
                    _ = stopped.changed() => return usage,
                }
            }
        });
        UsageWatch { task, stop }
    }

    async fn finish(self) -> Usage {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

impl Usage {
    fn record(&mut self, s: &CgroupSample) {
        let seen = s.memory_peak.or(s.memory_current);
        self.peak = self.peak.max(seen);
        if s.memory_max.is_some() {
            self.memory_max = s.memory_max;
        }
        if s.memory_high.is_some() {
            self.memory_high = s.memory_high;
        }
        if let Some(kills) = s.memory_events.as_ref().and_then(|e| e.oom_kill) {
            self.oom_kills = self.oom_kills.max(kills);
        }
        // memory.events "max" counts the times usage reached memory.max (cgroup-v2.rst): then
        // the peak was the limit, even if the app died before a sample could see it there.
        if let (Some(events), Some(Limit::Value(max))) = (s.memory_events, s.memory_max)
            && (events.max.unwrap_or(0) > 0 || events.oom.unwrap_or(0) > 0)
        {
            self.peak = self.peak.max(Some(max));
        }
    }
}

/// Appends the post-mortem of a unit `corral run` waited for, when it was OOM-killed or
/// failed, to the journal `corral events` reads (unless a watching Corral already did).
fn record_end(
    request: &LaunchRequest,
    unit: &str,
    outcome: &crate::systemd::UnitOutcome,
    usage: &Usage,
    started_at: std::time::SystemTime,
) {
    use crate::monitor::postmortem::{EndCause, PostMortem, RecordedLimits};
    let Some(cause) = EndCause::of(outcome, usage.oom_kills) else {
        return;
    };
    let epoch = |at: std::time::SystemTime| {
        at.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    let record = PostMortem {
        app_name: request.app_name.clone(),
        app_id: Some(request.app_id.clone()).filter(|id| !id.is_empty()),
        unit: unit.to_owned(),
        preset: Some(request.preset.clone()),
        limits: RecordedLimits {
            memory_high_bytes: usage.memory_high.and_then(Limit::value),
            memory_max_bytes: usage.memory_max.and_then(Limit::value),
            cpu_quota_percent: None,
        },
        peak_memory_bytes: usage.peak,
        started_at: Some(epoch(started_at)),
        ended_at: epoch(std::time::SystemTime::now()),
        cause,
        result: outcome.result.clone(),
        oom_kills: usage.oom_kills,
        killed_process: None,
    };
    let appended = EventLog::open_default()
        .map_err(anyhow::Error::from)
        .and_then(|log| Ok(log.append_unless_recorded(&record)?));
    if let Err(e) = appended {
        eprintln!(
            "corral: {}",
            gettext_f(
                "warning: the post-mortem of {app} was not kept: {error}",
                &[("app", &terminal_text(&request.app_name)), ("error", &e)],
            )
        );
    }
}

fn report_end(request: &LaunchRequest, result: Option<&str>, signal: Option<i32>, usage: &Usage) {
    let oom = result == Some("oom-kill") || usage.oom_kills > 0;
    if oom {
        let limit = match usage.memory_max {
            Some(Limit::Value(v)) => gettext_f(" of {size}", &[("size", &Bytes(v))]),
            _ => String::new(),
        };
        let peak = usage
            .peak
            .map(|p| gettext_f("; peak use {size}", &[("size", &Bytes(p))]))
            .unwrap_or_default();
        eprintln!(
            "corral: {}",
            gettext_f(
                "{app} was killed by the kernel's OOM killer: it ran out of its memory limit{limit}{peak}. Raise the limit (--memory-max) or choose a larger preset.",
                &[
                    ("app", &terminal_text(&request.app_name)),
                    ("limit", &limit),
                    ("peak", &peak)
                ],
            )
        );
    } else if let Some(signal) = signal {
        eprintln!(
            "corral: {}",
            gettext_f(
                "{app} was ended by signal {signal}",
                &[
                    ("app", &terminal_text(&request.app_name)),
                    ("signal", &signal)
                ],
            )
        );
    }
}

async fn launch_app(manager: ManagerKind, args: LaunchArgs) -> Result<i32> {
    let config = Config::load()?;
    let catalog = AppCatalog::load_for(manager);
    let app = catalog.get(&args.app_id).ok_or_else(|| {
        anyhow::anyhow!(gettext_f(
            "no installed app has the id “{id}”; `corral apps` lists the installed ones",
            &[("id", &args.app_id)],
        ))
    })?;
    let request = launch::desktop_app_request(
        app,
        &config,
        args.preset.as_deref(),
        &args.limits.settings(),
        &args.files,
    )?;
    let ctl = connect_for_launch(manager).await?;
    let unit = launch::launch_service(&ctl.systemd, &request, None).await?;
    let control_group = control_group_of(&ctl, &unit).await;
    report_launch(&ctl, &request, &unit, control_group.as_deref(), false);
    ctl.systemd.unref(&unit).await;
    Ok(0)
}

fn list_apps(manager: ManagerKind, search: Option<&str>, json: bool) -> Result<i32> {
    let catalog = AppCatalog::load_for(manager);
    let apps = match search {
        Some(q) => catalog.search(q),
        None => catalog.apps(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&apps)?);
        return Ok(0);
    }
    if apps.is_empty() {
        eprintln!(
            "{}",
            gettext("No installed apps found in the XDG data folders.")
        );
        return Ok(0);
    }
    // TRANSLATORS: table headers of `corral apps`; capitals, like the ones of `corral ps`.
    let (id, name) = (gettext("ID"), gettext("NAME"));
    let width = apps
        .iter()
        .map(|a| terminal_cell(&a.id).chars().count())
        .chain([id.chars().count()])
        .max()
        .unwrap_or(2);
    println!("{}", pad_cells(&[&id, &name], &[width]));
    for app in apps {
        println!(
            "{}",
            pad_cells(
                &[&terminal_cell(&app.id), &terminal_cell(&app.name)],
                &[width]
            )
        );
    }
    Ok(0)
}

async fn ps(
    manager: ManagerKind,
    target: Option<&str>,
    all: bool,
    with_processes: bool,
    json: bool,
) -> Result<i32> {
    let ctl = connect(manager).await?;
    let units = match target {
        // One app, whoever launched it.
        Some(target) => vec![ctl.find(target).await?],
        None => monitor::list_units(&ctl.systemd, all).await?,
    };
    let mut sampler = Sampler::new(ctl.cgroups.clone());
    let mut tables = processes::Tables::new(&ctl, with_processes);
    // CPU % needs two readings; a short pause gives a fair figure without making `ps` slow.
    sampler.sample(&units);
    tables.read(&units);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let snapshots = sampler.sample(&units);
    let rows = tables.read(&units);
    if json {
        processes::print_json(&snapshots, rows.as_deref())?;
        return Ok(0);
    }
    if snapshots.is_empty() {
        if all {
            println!("{}", gettext("No contained apps are running."));
        } else {
            println!(
                "{}",
                gettext(
                    "Corral runs no apps right now. Start one with `corral run -- COMMAND`, or see all contained apps with `corral ps --all`."
                )
            );
        }
        return Ok(0);
    }
    print_table(&snapshots, all || target.is_some());
    if let Some(rows) = &rows {
        processes::print_tables(&snapshots, rows);
    }
    Ok(0)
}

fn print_table(snapshots: &[UnitSnapshot], all: bool) {
    let rows: Vec<[String; 8]> = snapshots
        .iter()
        .map(|s| row_cells(s, all).map(|cell| terminal_cell(&cell).into_owned()))
        .collect();
    print_rows(rows, all);
}

/// One `corral ps` row, as read (not yet made safe for a terminal).
fn row_cells(s: &UnitSnapshot, all: bool) -> [String; 8] {
    let c = s.cgroup.as_ref();
    let frozen = c.and_then(|c| c.events.as_ref()).and_then(|e| e.frozen) == Some(true);
    [
        s.info.name.clone(),
        if all {
            s.info.launcher.to_string()
        } else {
            s.info.preset.clone().unwrap_or_else(|| "-".into())
        },
        if frozen {
            pgettext("app state", "frozen")
        } else {
            s.info.sub_state.clone()
        },
        c.map(memory_cell).unwrap_or_else(|| "-".into()),
        s.cpu_percent
            .map(|p| format!("{p:.0}%"))
            .unwrap_or_else(|| "-".into()),
        c.and_then(|c| c.pids_current)
            .map(|n| n.to_string())
            .unwrap_or_else(|| "-".into()),
        c.and_then(|c| c.memory_pressure.as_ref())
            .map(|p| format!("{:.1}%", p.some.avg10))
            .unwrap_or_else(|| "-".into()),
        s.info.unit.clone(),
    ]
}

fn print_rows(rows: Vec<[String; 8]>, all: bool) {
    // TRANSLATORS: the table headers of `corral ps`, in capitals; MEM PRESSURE is memory
    // pressure, BY who launched the app.
    let header = [
        gettext("APP"),
        if all {
            gettext("BY")
        } else {
            gettext("PRESET")
        },
        gettext("STATE"),
        gettext("MEMORY"),
        gettext("CPU"),
        gettext("TASKS"),
        gettext("MEM PRESSURE"),
        gettext("UNIT"),
    ];
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut stdout = std::io::stdout().lock();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let _ = writeln!(stdout, "{}", pad_cells(&header, &widths));
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        let _ = writeln!(stdout, "{}", pad_cells(&cells, &widths));
    }
}

/// `text` made safe to print on a terminal: control characters (C0 but newline and tab, DEL,
/// C1) are shown escaped (`\x1b`), so that a name from a desktop entry, the config or a unit's
/// description cannot move the cursor, retitle the window or clear the screen (ECMA-48).
pub fn terminal_text(text: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(text, |c| c == '\n' || c == '\t')
}

/// [`terminal_text`] for a table cell, where a newline or tab would break the table too.
pub fn terminal_cell(text: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(text, |_| false)
}

fn escape_controls(text: &str, keep: impl Fn(char) -> bool) -> std::borrow::Cow<'_, str> {
    let escaped = |c: char| c.is_control() && !keep(c);
    if !text.chars().any(escaped) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escaped(c) {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A table line: every cell but the last padded to its column's width (in characters, so
/// that translated headers with umlauts line up) and two spaces.
fn pad_cells(cells: &[&str], widths: &[usize]) -> String {
    let mut out = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i + 1 == cells.len() {
            out.push_str(cell);
        } else {
            let width = widths.get(i).copied().unwrap_or(0);
            out.push_str(cell);
            out.extend(std::iter::repeat_n(
                ' ',
                width.saturating_sub(cell.chars().count()) + 2,
            ));
        }
    }
    out
}

/// "1.2 GiB / 4.0 GiB": current use against the hard limit, or the soft one if only that is set.
fn memory_cell(c: &CgroupSample) -> String {
    let Some(current) = c.memory_current else {
        return "-".into();
    };
    let limit = [c.memory_max, c.memory_high]
        .into_iter()
        .flatten()
        .find_map(|l| match l {
            Limit::Value(v) => Some(v),
            Limit::Max => None,
        });
    match limit {
        Some(l) => format!("{} / {}", Bytes(current), Bytes(l)),
        None => Bytes(current).to_string(),
    }
}

enum Action {
    Freeze,
    Thaw,
    Stop,
    Kill(i32),
}

async fn act(manager: ManagerKind, target: &str, action: Action) -> Result<i32> {
    let ctl = connect(manager).await?;
    let unit = ctl.find(target).await?;
    let who = format!("{} ({})", terminal_text(&unit.name), unit.unit);
    let said = |message: &str| gettext_f(message, &[("app", &who)]);
    match action {
        Action::Freeze => {
            ctl.freeze(&unit).await?;
            println!("{}", said(gettext_noop("Froze {app}")));
        }
        Action::Thaw => {
            ctl.thaw(&unit).await?;
            println!("{}", said(gettext_noop("Thawed {app}")));
        }
        Action::Stop => {
            ctl.stop(&unit).await?;
            println!("{}", said(gettext_noop("Stopped {app}")));
        }
        Action::Kill(signal) => {
            if signal == libc::SIGKILL {
                // Report the end only once systemd has seen it.
                if ctl
                    .kill_and_wait(&unit, signal, Duration::from_secs(2))
                    .await?
                {
                    println!("{}", said(gettext_noop("Killed {app}")));
                    return Ok(0);
                }
                bail!(said(gettext_noop(
                    "sent SIGKILL to {app}, but the unit is still active after 2 s"
                )));
            }
            ctl.kill(&unit, signal).await?;
            println!(
                "{}",
                gettext_f(
                    "Sent signal {signal} to {app}",
                    &[("signal", &signal), ("app", &who)],
                )
            );
        }
    }
    Ok(0)
}

fn parse_signal(text: &str) -> Result<i32> {
    if let Ok(n) = text.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        bail!(gettext_f(
            "signal {n} does not exist; use a number from 1 to 64 or a name such as TERM",
            &[("n", &n)],
        ));
    }
    let name = text.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    Ok(match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        _ => bail!(gettext_f(
            "unknown signal “{signal}”; use one of HUP, INT, QUIT, KILL, USR1, USR2, TERM, CONT, STOP or a number",
            &[("signal", &text)],
        )),
    })
}

async fn limit(manager: ManagerKind, target: &str, limits: &LimitArgs) -> Result<i32> {
    let settings = limits.settings();
    if settings.is_empty() {
        bail!(gettext_f(
            "say which limit to change, e.g. `corral limit {target} --memory-max 4G` (see `corral limit --help`)",
            &[("target", &target)],
        ));
    }
    let ctl = connect(manager).await?;
    let unit = ctl.find(target).await?;
    let checks = ctl.set_limits(&unit, &settings).await?;
    println!(
        "{}",
        gettext_f(
            "Changed the limits of {app} ({unit}):",
            &[("app", &terminal_text(&unit.name)), ("unit", &unit.unit)],
        )
    );
    print_checks(&checks, false);
    Ok(if checks.iter().all(LimitCheck::applied) {
        0
    } else {
        2
    })
}

fn presets(action: Option<PresetsAction>) -> Result<i32> {
    let config = Config::load()?;
    match action {
        None => {
            let presets = config.presets();
            let width = presets.iter().map(|p| p.name.len()).max().unwrap_or(4);
            for p in presets {
                let origin = match (p.builtin, p.in_file) {
                    (true, true) => gettext(" (changed in config)"),
                    (false, _) => gettext(" (from config)"),
                    _ => String::new(),
                };
                println!(
                    "{:width$}  {}{origin}",
                    p.name,
                    terminal_text(&p.description)
                );
                println!("{:width$}  {}", "", p.settings.summary());
            }
            println!(
                "\n{}",
                gettext_f(
                    "Config file: {path}",
                    &[("path", &Config::path().display())],
                )
            );
        }
        Some(PresetsAction::Show { name }) => {
            let preset = config.preset(&name)?;
            println!("{}: {}", preset.name, terminal_text(&preset.description));
            for (key, value) in preset.settings.entries() {
                println!("  {key} = {value}");
            }
        }
    }
    Ok(0)
}

/// `corral watch`: the monitor and its notifications, without GTK, until SIGINT or SIGTERM.
async fn watch(manager: ManagerKind, json: bool) -> Result<i32> {
    use crate::monitor::alerts::AlertChange;
    use crate::monitor::service::Monitor;
    use crate::notify::spawn_notifications;
    use tokio::signal::unix::{SignalKind, signal};
    use tokio::sync::broadcast::error::RecvError;

    let config = Config::load()?;
    let ctl = connect(manager).await?;
    let monitor = Monitor::spawn(
        ctl.systemd.clone(),
        ctl.cgroups.clone(),
        config.general.refresh_period(),
    );
    // Subscribed before anything awaits, so that no early alert is missed.
    let mut changes = monitor.alert_changes();
    let mut open_rx = spawn_notifications(&monitor, ctl);
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    eprintln!(
        "corral: {}",
        gettext("watching contained apps; press Ctrl+C to stop")
    );
    loop {
        tokio::select! {
            _ = terminate.recv() => return Ok(0),
            _ = interrupt.recv() => return Ok(0),
            change = changes.recv() => {
                let change = match change {
                    Ok(change) => change,
                    Err(RecvError::Lagged(n)) => {
                        eprintln!(
                            "corral: {}",
                            ngettext_f(
                                "{n} alert change came too fast to print",
                                "{n} alert changes came too fast to print",
                                n,
                                &[("n", &n)],
                            )
                        );
                        continue;
                    }
                    Err(RecvError::Closed) => bail!(gettext("the monitor stopped")),
                };
                let (verb, alert) = match &change {
                    AlertChange::Raised(a) => ("raised", a),
                    AlertChange::Updated(a) => ("updated", a),
                    AlertChange::Cleared(a) => ("cleared", a),
                };
                let line = if json {
                    let at_ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis());
                    serde_json::json!({
                        "at_ms": at_ms,
                        "change": verb,
                        "unit": alert.unit,
                        "app": alert.app_name,
                        "condition": alert.condition().as_str(),
                    })
                    .to_string()
                } else {
                    let summary = crate::notify::Notification::for_alert(alert).summary;
                    let verb = match &change {
                        AlertChange::Raised(_) => pgettext("alert change", "raised"),
                        AlertChange::Updated(_) => pgettext("alert change", "updated"),
                        AlertChange::Cleared(_) => pgettext("alert change", "cleared"),
                    };
                    format!("{verb}: {} ({})", terminal_text(&summary), alert.unit)
                };
                let mut out = std::io::stdout().lock();
                // A closed stdout (the reader went away) is no reason to stop watching.
                let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            }
            Some(request) = open_rx.recv() => {
                // Corral's window is a unique GApplication: starting it presents a running one.
                match crate::desktop::executable() {
                    Ok(exe) => {
                        // The window of the manager watched (each has its own, see ui).
                        let mut command = std::process::Command::new(exe);
                        command.arg0("corral");
                        if manager == ManagerKind::System {
                            command.arg("--system");
                        }
                        match command.spawn() {
                            // Reaped on a thread so that it never lingers as a zombie.
                            Ok(mut child) => drop(std::thread::spawn(move || child.wait())),
                            Err(e) => eprintln!("corral: {}", cannot_open(&request.unit, &e)),
                        }
                    }
                    Err(e) => eprintln!("corral: {}", cannot_open(&request.unit, &e)),
                }
            }
        }
    }
}

fn cannot_open(unit: &str, error: &dyn std::fmt::Display) -> String {
    gettext_f(
        "cannot open the window for {unit}: {error}",
        &[("unit", &unit), ("error", error)],
    )
}

fn events(json: bool, limit: Option<usize>) -> Result<i32> {
    let log = EventLog::open_default()?;
    let contents = log.read()?;
    if contents.skipped_lines > 0 {
        eprintln!(
            "corral: {}",
            ngettext_f(
                "note: skipped {n} unreadable line in {path} (a record cut short by a crash, or written by a newer Corral)",
                "note: skipped {n} unreadable lines in {path} (a record cut short by a crash, or written by a newer Corral)",
                contents.skipped_lines as u64,
                &[
                    ("n", &contents.skipped_lines),
                    ("path", &log.path().display())
                ],
            )
        );
    }
    let records = &contents.records;
    let newest = &records[records.len().saturating_sub(limit.unwrap_or(usize::MAX))..];
    if json {
        println!("{}", serde_json::to_string_pretty(newest)?);
        return Ok(0);
    }
    if newest.is_empty() {
        println!(
            "{}",
            gettext_f(
                "No events yet. Corral records a post-mortem here when an app it watches is killed by the OOM killer or fails ({path}).",
                &[("path", &log.path().display())],
            )
        );
        return Ok(0);
    }
    let today = LocalTime::of(std::time::SystemTime::now());
    for record in newest {
        let when = LocalTime::of(record.ended_at())
            .map_or_else(|| record.ended_at.to_string(), |at| at.label(today));
        println!("{when} {}", terminal_text(&record.describe()));
    }
    Ok(0)
}

async fn doctor(manager: ManagerKind) -> Result<i32> {
    let mut checks = Vec::new();
    match Config::load() {
        Ok(_) => checks.push((
            gettext("config"),
            doctor::Status::Ok,
            gettext_f(
                "{path} is valid (or absent)",
                &[("path", &Config::path().display())],
            ),
            None,
        )),
        Err(e) => checks.push((
            gettext("config"),
            doctor::Status::Failed,
            e.to_string(),
            Some(gettext(
                "fix the file at the line and column shown; Corral never overwrites it",
            )),
        )),
    }
    // The command line works without it; the window and the tray do not.
    checks.push(match crate::desktop::executable() {
        Ok(path) => (
            gettext("window and tray"),
            doctor::Status::Ok,
            path.display().to_string(),
            None,
        ),
        Err(message) => (
            gettext("window and tray"),
            doctor::Status::Warning,
            message,
            None,
        ),
    });
    let fs = CgroupFs::system();
    let manager_cgroup = match Systemd::connect(manager).await {
        Ok(systemd) => {
            let version = systemd.manager().version().await.unwrap_or_default();
            let cgroup = systemd.manager().control_group().await.ok();
            let answers = match manager {
                ManagerKind::User => gettext_noop("the user's manager answers (systemd {version})"),
                ManagerKind::System => {
                    gettext_noop("the system manager answers (systemd {version})")
                }
            };
            checks.push((
                gettext("systemd manager"),
                doctor::Status::Ok,
                gettext_f(answers, &[("version", &version)]),
                None,
            ));
            cgroup.or_else(|| Some(String::new()))
        }
        Err(e) => {
            checks.push((
                gettext("systemd manager"),
                doctor::Status::Failed,
                e.to_string(),
                Some(gettext("log in to a systemd session (loginctl), or install dbus-user-session so the user manager has a session bus")),
            ));
            None
        }
    };
    for c in doctor::cgroup_checks(&fs, manager_cgroup.as_deref()) {
        checks.push((c.label(), c.status, c.detail, c.fix));
    }
    let color = std::io::stdout().is_terminal();
    let mut failed = false;
    for (name, status, detail, fix) in &checks {
        let mark = match status {
            doctor::Status::Ok => {
                if color {
                    "\x1b[32m✓\x1b[0m"
                } else {
                    "✓"
                }
            }
            doctor::Status::Warning => {
                if color {
                    "\x1b[33m!\x1b[0m"
                } else {
                    "!"
                }
            }
            doctor::Status::Failed => {
                failed = true;
                if color { "\x1b[31m✗\x1b[0m" } else { "✗" }
            }
        };
        println!("{mark} {name}: {detail}");
        if let Some(fix) = fix {
            println!("    {}", gettext_f("fix: {fix}", &[("fix", fix)]));
        }
    }
    Ok(if failed { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_takes_limits_and_the_command() {
        let cli = Cli::try_parse_from([
            "corral",
            "run",
            "-p",
            "shell",
            "--memory-max",
            "2G",
            "--cpu-quota",
            "50%",
            "--",
            "bash",
            "-i",
        ])
        .unwrap();
        let Some(Command::Run(args)) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.command, ["bash", "-i"]);
        assert_eq!(args.preset.as_deref(), Some("shell"));
        assert_eq!(args.limits.cpu_quota, Some(CpuQuota::Percent(50)));
    }

    #[test]
    fn bad_limits_are_refused_with_the_reason() {
        let err = Cli::try_parse_from(["corral", "run", "--memory-max", "4X", "--", "true"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("4X") && err.contains("512M or 4G"), "{err}");
        let err = Cli::try_parse_from(["corral", "limit", "x", "--cpu-quota", "1e9%"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("percentage of one CPU"), "{err}");
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("sigkill").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("0").is_err());
        assert!(
            parse_signal("BOGUS")
                .unwrap_err()
                .to_string()
                .contains("unknown signal")
        );
    }
}
