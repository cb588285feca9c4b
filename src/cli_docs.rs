//! Documentation generated from the one clap definition of the command line: the corral(1) man
//! page (roff, via clap_mangen and the roff crate), shell completions (clap_complete), and the
//! description of the `--json` output that `--help`, the man page and the README share.

use std::io::Write;

use clap::{Arg, Command};
use clap_complete::Shell;
use roff::{Roff, bold, italic, roman};

use crate::i18n::{gettext, gettext_noop};

/// One key of a JSON object and what it holds; `name` may list several keys that share a
/// meaning ("a, b").
pub struct JsonField {
    pub name: &'static str,
    pub meaning: &'static str,
    /// The keys of the object this field holds, if they are worth listing one by one.
    pub fields: &'static [JsonField],
}

const fn field(name: &'static str, meaning: &'static str) -> JsonField {
    JsonField {
        name,
        meaning,
        fields: &[],
    }
}

/// What `corral ps --json` prints (see [`crate::monitor::UnitSnapshot`]).
pub const PS_JSON_INTRO: &str = gettext_noop(
    "An array with one object per unit, sorted by app name. Sizes are in bytes and times in microseconds (µs). A limit is either \"max\" (no limit) or {\"value\": N}. A field is null when systemd or the kernel does not provide it: a controller that is not enabled, an older kernel, a unit without processes.",
);

pub const PS_JSON_FIELDS: &[JsonField] = &[
    field(
        "unit",
        gettext_noop("the unit's name, e.g. app-corral-firefox-1a2b3c4d.service"),
    ),
    field("kind", gettext_noop("\"service\" or \"scope\"")),
    field(
        "launcher",
        gettext_noop("who started it: \"corral\", \"gnome\", \"kde\", \"flatpak\" or \"other\""),
    ),
    field("name", gettext_noop("the app's name")),
    field(
        "app_id",
        gettext_noop("the app id taken from the unit name"),
    ),
    field(
        "preset",
        gettext_noop("the preset Corral launched it with; null for other launchers"),
    ),
    field(
        "active_state, sub_state",
        gettext_noop("systemd's states, e.g. \"active\" and \"running\""),
    ),
    field(
        "control_group",
        gettext_noop("the unit's cgroup, a path below /sys/fs/cgroup"),
    ),
    field(
        "cpu_percent",
        gettext_noop(
            "CPU use between two readings 0.25 s apart, in percent of one CPU (200 = two CPUs busy)",
        ),
    ),
    field(
        "processes",
        gettext_noop(
            "with --processes only: the unit's processes, heaviest first, each with pid, ppid, name (the kernel's short name), command, memory_bytes (resident), cpu_percent (percent of one CPU over the same 0.25 s), oom_score (the kernel's badness, 0 to 2000) and oom_score_adj",
        ),
    ),
    JsonField {
        name: "cgroup",
        meaning: gettext_noop("what the unit's cgroup files say (cgroup v2), or null:"),
        fields: &[
            field(
                "memory_current, memory_peak",
                gettext_noop("memory in use now, and the most used so far (bytes)"),
            ),
            field(
                "memory_high, memory_max",
                gettext_noop(
                    "the soft limit (above it the app is slowed) and the hard limit (above it the kernel kills it), in bytes",
                ),
            ),
            field(
                "memory_low",
                gettext_noop("memory protected from reclaim (bytes, or \"max\")"),
            ),
            field(
                "memory_swap_current, memory_swap_max",
                gettext_noop("swap in use and its limit (bytes)"),
            ),
            field(
                "memory_events",
                gettext_noop(
                    "how often each memory boundary was hit since the unit started (counts): low, high, max, oom, oom_kill, oom_group_kill",
                ),
            ),
            field(
                "cpu_stat",
                gettext_noop(
                    "CPU time used: usage_usec, user_usec, system_usec (µs); with a quota also nr_periods and nr_throttled (counts) and throttled_usec (µs)",
                ),
            ),
            field(
                "cpu_max",
                gettext_noop(
                    "the CPU quota: quota (\"max\" or {\"value\": µs}) in each period_usec (µs)",
                ),
            ),
            field(
                "cpu_weight",
                gettext_noop("CPU share against other units, 1 to 10000 (100 is the default)"),
            ),
            field(
                "pids_current, pids_max",
                gettext_noop("processes and threads now (count), and their limit"),
            ),
            field(
                "memory_pressure, cpu_pressure, io_pressure",
                gettext_noop(
                    "pressure stall information: \"some\" (at least one task waited for the resource) and \"full\" (all tasks waited, null where the kernel has no such line), each with avg10, avg60, avg300 (percent of the last 10, 60 and 300 s) and total_usec (µs)",
                ),
            ),
            field(
                "events",
                gettext_noop(
                    "from cgroup.events: populated (it has processes) and frozen (booleans)",
                ),
            ),
            field(
                "freeze",
                gettext_noop(
                    "from cgroup.freeze: whether a freeze is asked for (true while frozen)",
                ),
            ),
        ],
    },
];

/// What `corral apps --json` prints (see [`crate::apps::DesktopEntry`]).
pub const APPS_JSON_INTRO: &str = gettext_noop(
    "An array with one object per installed app, from its desktop entry (Desktop Entry Specification). Missing keys are null; lists are empty.",
);

pub const APPS_JSON_FIELDS: &[JsonField] = &[
    field(
        "id",
        gettext_noop(
            "the desktop file id without \".desktop\", e.g. org.mozilla.firefox; give it to `corral launch`",
        ),
    ),
    field("path", gettext_noop("the desktop file that was read")),
    field(
        "name, generic_name, comment",
        gettext_noop("Name, GenericName and Comment, in your language where the file has it"),
    ),
    field(
        "icon",
        gettext_noop("Icon: a theme icon name or an absolute path"),
    ),
    field(
        "exec",
        gettext_noop("Exec as written, with its quoting and %-field codes"),
    ),
    field(
        "try_exec",
        gettext_noop("TryExec: the program whose presence shows the app is installed"),
    ),
    field(
        "working_dir",
        gettext_noop("Path: the folder the app runs in"),
    ),
    field(
        "terminal, no_display",
        gettext_noop("Terminal and NoDisplay (booleans)"),
    ),
    field(
        "categories, keywords, mime_types",
        gettext_noop("Categories, Keywords and MimeType (lists)"),
    ),
    field(
        "only_show_in, not_show_in",
        gettext_noop("OnlyShowIn and NotShowIn: desktops (lists)"),
    ),
    field("startup_wm_class", gettext_noop("StartupWMClass")),
    field(
        "actions",
        gettext_noop("the ids of the app's desktop actions (list)"),
    ),
];

const HELP_WIDTH: usize = 100;

/// The JSON description as plain text for `--help`: the intro, then one aligned, wrapped
/// entry per field.
pub fn json_help(intro: &str, fields: &[JsonField]) -> String {
    let mut out = json_heading();
    out.push('\n');
    wrap_into(&mut out, &gettext(intro), "  ", "  ");
    out.push('\n');
    let width = fields
        .iter()
        .flat_map(|f| std::iter::once(f).chain(f.fields))
        .map(|f| f.name.len())
        .filter(|&n| n <= 24)
        .max()
        .unwrap_or(0);
    fn entries(out: &mut String, fields: &[JsonField], indent: &str, width: usize) {
        for f in fields {
            let hanging = format!("{indent}{:width$}  ", "");
            if f.name.len() <= width {
                let first = format!("{indent}{:width$}  ", f.name);
                wrap_into(out, &gettext(f.meaning), &first, &hanging);
            } else {
                out.push_str(&format!("{indent}{}\n", f.name));
                wrap_into(out, &gettext(f.meaning), &hanging, &hanging);
            }
            entries(
                out,
                f.fields,
                &format!("{indent}  "),
                width.saturating_sub(2),
            );
        }
    }
    entries(&mut out, fields, "  ", width);
    out.pop();
    out
}

/// The line that starts the JSON description in `--help` (the man page has its own section).
fn json_heading() -> String {
    gettext("JSON output (--json):")
}

/// Appends `text` word-wrapped to [`HELP_WIDTH`], the first line after `first`, the others
/// after `hanging`.
fn wrap_into(out: &mut String, text: &str, first: &str, hanging: &str) {
    let mut line = first.to_owned();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > HELP_WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = hanging.to_owned();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(&line);
    out.push('\n');
}

/// Writes the completion script for `shell`, generated from `cmd`.
pub fn write_completions(mut cmd: Command, shell: Shell, out: &mut dyn Write) {
    let name = cmd.get_name().to_owned();
    clap_complete::generate(shell, &mut cmd, name, out);
}

/// Renders the corral(1) man page: clap_mangen's name, synopsis, description and global
/// options, then every command with its own synopsis and options, the JSON output, files,
/// environment and exit status.
pub fn write_man_page(cmd: Command, out: &mut dyn Write) -> std::io::Result<()> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone()).manual("User Commands");
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;

    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        command_section(&mut roff, sub);
        for nested in sub.get_subcommands().filter(|s| !s.is_hide_set()) {
            command_section(&mut roff, nested);
        }
    }

    roff.control("SH", ["JSON OUTPUT"]);
    roff.text([bold("corral ps --json"), roman(": "), roman(PS_JSON_INTRO)]);
    json_fields_roff(&mut roff, PS_JSON_FIELDS);
    roff.control("PP", []);
    roff.text([
        bold("corral apps --json"),
        roman(": "),
        roman(APPS_JSON_INTRO),
    ]);
    json_fields_roff(&mut roff, APPS_JSON_FIELDS);

    roff.control("SH", ["FILES"]);
    roff.control("TP", []);
    roff.text([italic("$XDG_CONFIG_HOME/corral/config.toml")]);
    roff.text([roman(
        "Presets and per-app rules (usually ~/.config/corral/config.toml). \
         `corral presets` lists the presets and shows this path; a mistake in the file is \
         reported with its line and column, and Corral never overwrites it.",
    )]);
    roff.control("SH", ["ENVIRONMENT"]);
    roff.control("TP", []);
    roff.text([bold("XDG_CONFIG_HOME")]);
    roff.text([roman(
        "Where the config file is looked for (default ~/.config).",
    )]);
    roff.control("TP", []);
    roff.text([bold("XDG_DATA_HOME"), roman(", "), bold("XDG_DATA_DIRS")]);
    roff.text([roman(
        "Where installed apps' desktop entries are looked for, in their applications folders.",
    )]);
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in [
        ("0", "Success."),
        (
            "1",
            "An error, explained on standard error; `corral doctor` found a problem.",
        ),
        (
            "2",
            "The command line was wrong, or `corral limit` changed a limit that the kernel \
             did not apply.",
        ),
        (
            "N",
            "`corral run --wait` and `corral run --scope`: the command's own exit status, or \
             128 + the signal number when a signal ended it.",
        ),
    ] {
        roff.control("TP", []);
        roff.text([bold(code)]);
        roff.text([roman(meaning)]);
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(
        "systemd-run(1), systemd.resource-control(5), systemctl(1); the README at \
         https://github.com/corral-app/corral",
    )]);
    roff.to_writer(out)?;
    man.render_version_section(out)
}

/// One `.SS` subsection per command: its usage, its long description and its own arguments
/// (the global ones are in OPTIONS already).
fn command_section(roff: &mut Roff, cmd: &Command) {
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage).trim();
    roff.control("SS", [usage]);
    if let Some(about) = cmd.get_long_about().or_else(|| cmd.get_about()) {
        paragraphs(roff, &about.to_string());
    }
    for arg in cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_global_set() && a.get_id() != "help")
    {
        roff.control("TP", []);
        roff.text(arg_label(arg));
        if let Some(help) = arg.get_long_help().or_else(|| arg.get_help()) {
            roff.text([roman(help.to_string())]);
        }
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| match v.get_help() {
                Some(help) => format!("{}: {help}", v.get_name()),
                None => v.get_name().to_owned(),
            })
            .collect();
        if !values.is_empty() {
            roff.control("br", []);
            roff.text([roman(format!("Values: {}.", values.join("; ")))]);
        }
        // Flags have a default too ("false"), which says nothing.
        let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
        let defaults: Vec<_> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy())
            .collect();
        if takes_value && !defaults.is_empty() {
            roff.control("br", []);
            roff.text([roman(format!("Default: {}.", defaults.join(", ")))]);
        }
    }
    if let Some(after) = cmd.get_after_long_help() {
        let after = after.to_string();
        if !after.trim().is_empty() {
            roff.control("PP", []);
            paragraphs(roff, &after);
        }
    }
}

/// Text with blank lines between paragraphs; lines inside one paragraph that start with two
/// spaces (examples) are kept as they are.
fn paragraphs(roff: &mut Roff, text: &str) {
    for (i, paragraph) in text.split("\n\n").enumerate() {
        if paragraph.trim().is_empty() {
            continue;
        }
        if i > 0 {
            roff.control("PP", []);
        }
        for line in paragraph.lines() {
            if let Some(example) = line.strip_prefix("  ") {
                roff.control("br", []);
                roff.text([roman(format!("\u{a0}\u{a0}{example}"))]);
            } else {
                roff.text([roman(line)]);
            }
        }
    }
}

fn arg_label(arg: &Arg) -> Vec<roff::Inline> {
    let mut label = Vec::new();
    if let Some(short) = arg.get_short() {
        label.push(bold(format!("-{short}")));
    }
    if let Some(long) = arg.get_long() {
        if !label.is_empty() {
            label.push(roman(", "));
        }
        label.push(bold(format!("--{long}")));
    }
    let names = arg.get_value_names().unwrap_or_default();
    let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
    if arg.is_positional() {
        let name = names
            .first()
            .map(|n| n.to_string())
            .unwrap_or_else(|| arg.get_id().to_string().to_uppercase());
        let repeated = arg.get_num_args().is_some_and(|n| n.max_values() > 1);
        label.push(italic(format!(
            "{name}{}",
            if repeated { "..." } else { "" }
        )));
    } else if takes_value {
        let name = names
            .first()
            .map(|n| n.to_string())
            .unwrap_or_else(|| arg.get_id().to_string().to_uppercase());
        label.push(roman(" "));
        label.push(italic(name));
    }
    label
}

fn json_fields_roff(roff: &mut Roff, fields: &[JsonField]) {
    for f in fields {
        roff.control("TP", []);
        roff.text([bold(f.name)]);
        roff.text([roman(f.meaning)]);
        if !f.fields.is_empty() {
            roff.control("RS", []);
            json_fields_roff(roff, f.fields);
            roff.control("RE", []);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::{
        CgroupEvents, CgroupSample, CpuMax, CpuStat, Limit, MemoryEvents, Pressure,
    };
    use crate::cli::Cli;
    use crate::monitor::{UnitInfo, UnitSnapshot};
    use clap::CommandFactory;

    /// Every key at any depth of a JSON value.
    fn keys(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    out.push(k.clone());
                    keys(v, out);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
            _ => {}
        }
    }

    fn has_word(text: &str, word: &str) -> bool {
        text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|w| w == word)
    }

    /// A snapshot with every optional part present, so that every key is serialized; new
    /// fields appear here (as null) without changes to this test.
    fn full_snapshot() -> UnitSnapshot {
        let pressure = Pressure {
            full: Some(Default::default()),
            ..Default::default()
        };
        UnitSnapshot {
            info: UnitInfo::new(
                "app-corral-firefox-1a2b3c4d.service".into(),
                "Firefox [browser]",
                "active".into(),
                "running".into(),
                Some("/user.slice/app.slice/app-corral-firefox-1a2b3c4d.service".into()),
            )
            .into(),
            cgroup: Some(CgroupSample {
                memory_events: Some(MemoryEvents::default()),
                cpu_stat: Some(CpuStat::default()),
                cpu_max: Some(CpuMax {
                    quota: Limit::Value(100_000),
                    period_usec: 100_000,
                }),
                memory_pressure: Some(pressure),
                cpu_pressure: Some(pressure),
                io_pressure: Some(pressure),
                events: Some(CgroupEvents::default()),
                memory_max: Some(Limit::Value(1 << 30)),
                ..Default::default()
            }),
            cpu_percent: Some(12.5),
        }
    }

    #[test]
    fn every_ps_json_key_is_documented_in_help_and_readme() {
        let json = serde_json::to_value([full_snapshot()]).unwrap();
        let mut found = Vec::new();
        keys(&json, &mut found);
        let help = json_help(PS_JSON_INTRO, PS_JSON_FIELDS);
        let readme = include_str!("../README.md");
        for key in found {
            assert!(
                has_word(&help, &key),
                "`ps --json` key {key} is not documented"
            );
            assert!(
                has_word(readme, &key),
                "README does not document `ps --json` key {key}"
            );
        }
    }

    #[test]
    fn every_apps_json_key_is_documented_in_help_and_readme() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("org.example.Editor.desktop");
        std::fs::write(
            &path,
            "[Desktop Entry]\nType=Application\nName=Editor\nExec=editor %F\n",
        )
        .unwrap();
        let catalog =
            crate::apps::AppCatalog::load_from_with_locale(&[dir.path().to_owned()], None);
        let apps = catalog.apps();
        assert_eq!(apps.len(), 1);
        let json = serde_json::to_value(&apps).unwrap();
        let mut found = Vec::new();
        keys(&json, &mut found);
        assert!(found.len() > 10, "{found:?}");
        let help = json_help(APPS_JSON_INTRO, APPS_JSON_FIELDS);
        let readme = include_str!("../README.md");
        for key in found {
            assert!(
                has_word(&help, &key),
                "`apps --json` key {key} is not documented"
            );
            assert!(
                has_word(readme, &key),
                "README does not document `apps --json` key {key}"
            );
        }
    }

    #[test]
    fn json_help_is_wrapped_and_aligned() {
        let help = json_help(PS_JSON_INTRO, PS_JSON_FIELDS);
        for line in help.lines() {
            assert!(line.chars().count() <= HELP_WIDTH, "too long: {line}");
        }
        assert!(help.contains("\n  unit "), "{help}");
        assert!(help.contains("\n    memory_current, memory_peak"), "{help}");
    }

    #[test]
    fn man_page_has_every_command_and_the_json_fields() {
        let mut page = Vec::new();
        write_man_page(Cli::command(), &mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.starts_with(".ie"), "{}", &page[..80]);
        assert!(page.contains(".TH corral 1"), "no title");
        for section in ["NAME", "SYNOPSIS", "COMMANDS", "JSON OUTPUT", "EXIT STATUS"] {
            assert!(
                page.contains(&format!(".SH {section}"))
                    || page.contains(&format!(".SH \"{section}\"")),
                "no {section}"
            );
        }
        for command in Cli::command()
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
        {
            let name = command.get_name();
            assert!(
                page.contains(&format!(".SS \"corral {name}")) || name == "help",
                "no section for {name}"
            );
        }
        assert!(
            !page.contains(".SS \"corral completions"),
            "hidden commands stay hidden"
        );
        assert!(page.contains("\\-\\-memory\\-max"), "options of commands");
        assert!(page.contains("oom_kill"), "JSON fields");
    }

    #[test]
    fn completions_are_generated_for_each_shell() {
        for (shell, marker) in [
            (Shell::Bash, "complete -F"),
            (Shell::Zsh, "#compdef corral"),
            (Shell::Fish, "complete -c corral"),
        ] {
            let mut script = Vec::new();
            write_completions(Cli::command(), shell, &mut script);
            let script = String::from_utf8(script).unwrap();
            assert!(script.contains(marker), "{shell}: {script}");
            assert!(
                script.contains("memory-max"),
                "{shell}: options are completed"
            );
        }
    }
}
