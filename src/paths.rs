//! Where Corral keeps its files (the XDG folders, read in one place) and how it opens them
//! so that Corral running as root never writes through another user's links; see ARCHITECTURE.md.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The XDG variables and HOME, as the process environment gives them.
#[derive(Debug, Clone, Default)]
pub struct XdgEnv {
    pub home: Option<OsString>,
    pub config_home: Option<OsString>,
    pub state_home: Option<OsString>,
    pub runtime_dir: Option<OsString>,
}

impl XdgEnv {
    pub fn from_process() -> XdgEnv {
        XdgEnv {
            home: std::env::var_os("HOME"),
            config_home: std::env::var_os("XDG_CONFIG_HOME"),
            state_home: std::env::var_os("XDG_STATE_HOME"),
            runtime_dir: std::env::var_os("XDG_RUNTIME_DIR"),
        }
    }
}

/// The folders of one user, resolved from [`XdgEnv`] for that user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseDirs {
    /// `$XDG_CONFIG_HOME`, default `~/.config`.
    pub config_home: Option<PathBuf>,
    /// `$XDG_STATE_HOME`, default `~/.local/state`.
    pub state_home: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR`; it has no default in the spec.
    pub runtime_dir: Option<PathBuf>,
}

/// Who Corral runs as, and how to ask the system about users and files.
pub struct Identity<'a> {
    pub euid: u32,
    /// The home folder of a uid in the password database.
    pub passwd_home: &'a dyn Fn(u32) -> Option<PathBuf>,
    /// The owner of an existing path (after symlinks), `None` if it does not exist.
    pub owner: &'a dyn Fn(&Path) -> Option<u32>,
}

impl Identity<'_> {
    /// The process's own identity.
    pub fn process() -> Identity<'static> {
        Identity {
            euid: effective_uid(),
            passwd_home: &passwd_home,
            owner: &|path: &Path| std::fs::metadata(path).ok().map(|m| m.uid()),
        }
    }
}

/// The effective uid: whose files Corral may write.
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The folders for this process: [`BaseDirs::resolve`] with its environment and identity.
pub fn base_dirs() -> BaseDirs {
    BaseDirs::resolve(&XdgEnv::from_process(), &Identity::process())
}

/// [`BaseDirs::resolve`] from given values for a user other than root: the rule every
/// non-root Corral follows, for callers that test it without the process environment.
/// `home_fallback` stands in for the password database when `env` has no home.
pub fn user_dirs(env: &XdgEnv, home_fallback: Option<PathBuf>) -> BaseDirs {
    /// Any uid but root's; only the runtime folder's owner is compared with it.
    const SOME_USER: u32 = 65534;
    BaseDirs::resolve(
        env,
        &Identity {
            euid: SOME_USER,
            passwd_home: &|_| home_fallback.clone(),
            owner: &|_| None,
        },
    )
}

impl BaseDirs {
    /// `corral/config.toml` in the config folder; relative (in the current folder) only when
    /// no home is known at all.
    pub fn config_file(&self) -> PathBuf {
        self.config_home
            .clone()
            .unwrap_or_else(|| PathBuf::from(".config"))
            .join("corral")
            .join("config.toml")
    }

    /// `corral/events.jsonl` in the state folder, if there is one.
    pub fn event_log_file(&self) -> Option<PathBuf> {
        Some(
            self.state_home
                .as_ref()?
                .join("corral")
                .join("events.jsonl"),
        )
    }
}

impl BaseDirs {
    /// The spec's rules: a variable that is unset, empty or relative is ignored and the default
    /// under the home folder applies. As root, the home is root's own from the password
    /// database (HOME may be the invoking user's), and a variable counts only when it names a
    /// folder root owns.
    pub fn resolve(env: &XdgEnv, who: &Identity<'_>) -> BaseDirs {
        let absolute = |value: &Option<OsString>| {
            value
                .as_deref()
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        let root = who.euid == 0;
        let trusted = |value: &Option<OsString>| {
            absolute(value).filter(|dir| !root || (who.owner)(dir) == Some(0))
        };
        let home = if root {
            (who.passwd_home)(0).or_else(|| Some(PathBuf::from("/root")))
        } else {
            absolute(&env.home).or_else(|| (who.passwd_home)(who.euid))
        };
        BaseDirs {
            config_home: trusted(&env.config_home)
                .or_else(|| home.as_ref().map(|h| h.join(".config"))),
            state_home: trusted(&env.state_home)
                .or_else(|| home.as_ref().map(|h| h.join(".local/state"))),
            // The spec: owned by the user, with access for the user alone.
            runtime_dir: absolute(&env.runtime_dir)
                .filter(|dir| (who.owner)(dir) == Some(who.euid)),
        }
    }
}

/// The home folder of `uid` in the password database (getpwuid_r(3)).
pub fn passwd_home(uid: u32) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut buffer = vec![0u8; 4096];
    loop {
        // SAFETY: an all-zero passwd is a valid value for getpwuid_r to fill.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: the buffer and both out-pointers are valid for the call.
        let status = unsafe {
            libc::getpwuid_r(
                uid,
                &mut entry,
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                &mut found,
            )
        };
        if status == libc::ERANGE && buffer.len() < 1 << 20 {
            buffer.resize(buffer.len() * 4, 0);
            continue;
        }
        if status != 0 || found.is_null() || entry.pw_dir.is_null() {
            return None;
        }
        // SAFETY: pw_dir points into `buffer`, NUL-terminated, while `buffer` lives.
        let dir = unsafe { std::ffi::CStr::from_ptr(entry.pw_dir) };
        let dir = PathBuf::from(OsStr::from_bytes(dir.to_bytes()));
        return dir.is_absolute().then_some(dir);
    }
}

/// Opens `path` to append to it, creating it (0600) if missing, never through a symlink
/// (O_NOFOLLOW: ELOOP), and only if it belongs to the effective user: a file of someone else
/// in one's folder was put there by them.
pub fn open_own_for_append(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .read(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| not_followed(path, e))?;
    let owner = file.metadata()?.uid();
    if owner != effective_uid() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            crate::i18n::gettext_f(
                "{path} belongs to another user (uid {owner}); Corral writes only its own files",
                &[("path", &path.display()), ("owner", &owner)],
            ),
        ));
    }
    Ok(file)
}

/// The most Corral reads of a desktop entry: real ones are a few KiB, the largest (dozens of
/// translations) some 100 KiB.
pub const DESKTOP_ENTRY_MAX_BYTES: u64 = 1 << 20;
/// The most Corral reads of its config: far beyond any hand-written file (10 MB of rules
/// still load, tests/hostile_input.rs).
pub const CONFIG_MAX_BYTES: u64 = 16 << 20;
/// The most Corral reads of its event log, which it keeps under 1 MiB itself.
pub const EVENT_LOG_MAX_BYTES: u64 = 16 << 20;

/// Reads a whole file of at most `max` bytes. Not a regular file (a FIFO would block for
/// ever, /dev/zero never end) or larger than `max` is an error that says so, read no further.
/// With `follow_links` false, a symlink is refused ([`open_no_follow`]).
pub fn read_capped(path: &Path, max: u64, follow_links: bool) -> io::Result<Vec<u8>> {
    use std::io::Read;
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; it changes
    // nothing for a regular file.
    let mut flags = libc::O_NONBLOCK;
    if !follow_links {
        flags |= libc::O_NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| not_followed(path, e))?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            crate::i18n::gettext_f(
                "{path} is not a regular file; Corral reads only regular files there",
                &[("path", &path.display())],
            ),
        ));
    }
    let too_large = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            crate::i18n::gettext_f(
                "{path} is larger than {limit}, the most Corral reads of such a file; check that it is the right file",
                &[
                    ("path", &path.display()),
                    ("limit", &crate::limits::Bytes(max)),
                ],
            ),
        )
    };
    if meta.len() > max {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One byte more than allowed tells a file that grew meanwhile.
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large());
    }
    Ok(bytes)
}

/// ELOOP from O_NOFOLLOW, said plainly.
fn not_followed(path: &Path, error: io::Error) -> io::Error {
    if error.raw_os_error() == Some(libc::ELOOP) {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            crate::i18n::gettext_f(
                "{path} is a symbolic link, which Corral does not follow for this file; remove the link",
                &[("path", &path.display())],
            ),
        )
    } else {
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn whole_files_are_read_up_to_a_cap_and_only_regular_ones() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, vec![b'x'; 4096]).unwrap();
        assert_eq!(read_capped(&file, 4096, true).unwrap().len(), 4096);
        let error = read_capped(&file, 4095, true).unwrap_err();
        assert!(error.to_string().contains("is larger than"), "{error}");
        // A FIFO is refused at once rather than waited on for ever.
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let error = read_capped(&fifo, 4096, true).unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
        assert!(read_capped(Path::new("/dev/zero"), 4096, true).is_err());
        // Links are followed only when asked to.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(read_capped(&link, 4096, true).is_ok());
        assert!(read_capped(&link, 4096, false).is_err());
    }

    fn env(pairs: &[(&str, &str)]) -> XdgEnv {
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| OsString::from(v))
        };
        XdgEnv {
            home: get("HOME"),
            config_home: get("XDG_CONFIG_HOME"),
            state_home: get("XDG_STATE_HOME"),
            runtime_dir: get("XDG_RUNTIME_DIR"),
        }
    }

    fn resolve(env: &XdgEnv, euid: u32, owners: &[(&str, u32)]) -> BaseDirs {
        let owners: HashMap<PathBuf, u32> = owners
            .iter()
            .map(|(p, uid)| (PathBuf::from(p), *uid))
            .collect();
        let passwd = |uid: u32| match uid {
            0 => Some(PathBuf::from("/root")),
            1000 => Some(PathBuf::from("/home/ann")),
            _ => None,
        };
        let owner = |path: &Path| owners.get(path).copied();
        BaseDirs::resolve(
            env,
            &Identity {
                euid,
                passwd_home: &passwd,
                owner: &owner,
            },
        )
    }

    #[test]
    fn a_user_gets_the_environments_folders_or_the_defaults() {
        let user = env(&[
            ("HOME", "/home/ann"),
            ("XDG_CONFIG_HOME", "/home/ann/cfg"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
        ]);
        let dirs = resolve(&user, 1000, &[("/run/user/1000", 1000)]);
        assert_eq!(dirs.config_home, Some("/home/ann/cfg".into()));
        assert_eq!(dirs.state_home, Some("/home/ann/.local/state".into()));
        assert_eq!(dirs.runtime_dir, Some("/run/user/1000".into()));
        // Relative values are invalid (the spec) and ignored; no HOME: the password database.
        let relative = env(&[("XDG_CONFIG_HOME", "cfg"), ("XDG_STATE_HOME", "")]);
        let dirs = resolve(&relative, 1000, &[]);
        assert_eq!(dirs.config_home, Some("/home/ann/.config".into()));
        assert_eq!(dirs.state_home, Some("/home/ann/.local/state".into()));
        assert_eq!(dirs.runtime_dir, None);
    }

    #[test]
    fn root_keeps_to_its_own_folders_whatever_sudo_kept() {
        // sudo -E: the invoking user's HOME and XDG variables, their folders theirs.
        let kept = env(&[
            ("HOME", "/home/ann"),
            ("XDG_CONFIG_HOME", "/home/ann/.config"),
            ("XDG_STATE_HOME", "/home/ann/.local/state"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
        ]);
        let owners = [
            ("/home/ann/.config", 1000),
            ("/home/ann/.local/state", 1000),
            ("/run/user/1000", 1000),
        ];
        let dirs = resolve(&kept, 0, &owners);
        assert_eq!(dirs.config_home, Some("/root/.config".into()));
        assert_eq!(dirs.state_home, Some("/root/.local/state".into()));
        assert_eq!(dirs.runtime_dir, None);
        // Root's own XDG folders are root's choice.
        let own = env(&[
            ("XDG_CONFIG_HOME", "/etc/rootcfg"),
            ("XDG_RUNTIME_DIR", "/run"),
        ]);
        let dirs = resolve(&own, 0, &[("/etc/rootcfg", 0), ("/run", 0)]);
        assert_eq!(dirs.config_home, Some("/etc/rootcfg".into()));
        assert_eq!(dirs.runtime_dir, Some("/run".into()));
        // A folder that does not exist could be created by anyone in its parent: not trusted.
        let missing = env(&[("XDG_STATE_HOME", "/tmp/state")]);
        assert_eq!(
            resolve(&missing, 0, &[]).state_home,
            Some("/root/.local/state".into())
        );
    }

    #[test]
    fn appending_never_follows_a_link_and_needs_ones_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "keep\n").unwrap();
        let link = dir.path().join("events.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let error = open_own_for_append(&link).unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
        // A regular file of one's own is fine, and is created 0600 when missing.
        let own = dir.path().join("own.jsonl");
        open_own_for_append(&own).unwrap();
        assert_eq!(std::fs::metadata(&own).unwrap().mode() & 0o077, 0);
        // Someone else's file: only root can make one here.
        if effective_uid() == 0 {
            let theirs = dir.path().join("theirs.jsonl");
            std::fs::write(&theirs, "").unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
            let error = open_own_for_append(&theirs).unwrap_err();
            assert!(error.to_string().contains("another user"), "{error}");
        }
    }
}
