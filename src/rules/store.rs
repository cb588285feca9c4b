//! Corral's drop-in files below `$XDG_CONFIG_HOME/systemd/user/`, made to match the config;
//! Corral owns only the files it wrote and the folders it created for them.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::unit_file::MARKER;
use super::{DROPIN_NAME, DropIn};
use crate::i18n::{gettext, gettext_f};

/// A drop-in of Corral's is a few hundred bytes; anything much larger under its name is not one.
const MAX_DROPIN_SIZE: u64 = 64 * 1024;

/// What a sync changed on disk, folder by folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Folders whose file was written or rewritten.
    pub written: Vec<String>,
    /// Folders whose file was removed (and the folder too, when Corral had created it and it
    /// is empty now).
    pub removed: Vec<String>,
    /// Folders holding a file under Corral's name that Corral did not write: left alone, so
    /// the rule does not reach the units of that folder through Corral's file.
    pub foreign: Vec<String>,
}

impl SyncReport {
    /// Whether systemd must reload to see the change.
    pub fn changed(&self) -> bool {
        !self.written.is_empty() || !self.removed.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{}",
        gettext(
            "cannot find where systemd reads your units from: neither XDG_CONFIG_HOME nor HOME is set; set one of them"
        )
    )]
    NoConfigDir,
    #[error(
        "{}",
        gettext(
            "cannot find where to keep Corral's list of the folders it created: neither XDG_STATE_HOME nor HOME is set; set one of them"
        )
    )]
    NoStateDir,
    #[error("{}", gettext_f("cannot write the drop-in {path}: {error}; check the folder's permissions (nothing else was changed)", &[("path", &.path.display()), ("error", .source)]))]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}", gettext_f("cannot read {path}: {error}", &[("path", &.path.display()), ("error", .source)]))]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The folder of unit drop-ins and Corral's own record of what it created there.
#[derive(Debug, Clone)]
pub struct DropInStore {
    root: PathBuf,
    state_dir: PathBuf,
}

impl DropInStore {
    /// `root` is the unit search path written to; `state_dir` keeps the list of folders Corral
    /// created there, and the lock that orders two Corral processes syncing at once.
    pub fn new(root: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> DropInStore {
        DropInStore {
            root: root.into(),
            state_dir: state_dir.into(),
        }
    }

    /// The person's user manager: `$XDG_CONFIG_HOME/systemd/user`, state in
    /// `$XDG_STATE_HOME/corral`.
    pub fn for_user() -> Result<DropInStore, StoreError> {
        let dirs = crate::paths::base_dirs();
        let config_home = dirs.config_home.ok_or(StoreError::NoConfigDir)?;
        let state_home = dirs.state_home.ok_or(StoreError::NoStateDir)?;
        Ok(DropInStore::new(
            config_home.join("systemd/user"),
            state_home.join("corral"),
        ))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the file for `folder` is.
    pub fn path_of(&self, folder: &str) -> PathBuf {
        self.root.join(folder).join(DROPIN_NAME)
    }

    /// Corral's files on disk now, by folder name.
    pub fn owned(&self) -> Result<Vec<DropIn>, StoreError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StoreError::Read {
                    path: self.root.clone(),
                    source,
                });
            }
        };
        let mut owned = Vec::new();
        for entry in entries.flatten() {
            let Some(folder) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !folder.ends_with(".d") {
                continue;
            }
            if let FileState::Ours(text) = self.file_state(&folder) {
                owned.push(DropIn { folder, text });
            }
        }
        owned.sort_by(|a, b| a.folder.cmp(&b.folder));
        Ok(owned)
    }

    /// Writes, rewrites and removes Corral's files so that exactly `desired` is on disk, and
    /// removes the folders Corral created that are left empty. Idempotent: a second call with
    /// the same `desired` changes nothing. Never touches a file it did not write.
    pub fn sync(&self, desired: &[DropIn]) -> Result<SyncReport, StoreError> {
        let _lock = self.lock()?;
        let mut created = self.created_folders();
        let created_before = created.clone();
        let mut report = SyncReport::default();
        for dropin in desired {
            match self.file_state(&dropin.folder) {
                FileState::Ours(text) if text == dropin.text => continue,
                FileState::Foreign => {
                    report.foreign.push(dropin.folder.clone());
                    continue;
                }
                FileState::Ours(_) | FileState::Missing => {}
            }
            if self.write(&dropin.folder, &dropin.text)? {
                created.insert(dropin.folder.clone());
            }
            report.written.push(dropin.folder.clone());
        }
        for stale in self.owned()? {
            if desired.iter().any(|d| d.folder == stale.folder) {
                continue;
            }
            let path = self.path_of(&stale.folder);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(StoreError::Write { path, source }),
            }
            // Only a folder Corral made, and only once nothing else is in it (rmdir refuses).
            if created.contains(&stale.folder)
                && fs::remove_dir(self.root.join(&stale.folder)).is_ok()
            {
                created.remove(&stale.folder);
            }
            report.removed.push(stale.folder);
        }
        // A folder Corral made that someone removed since is no longer Corral's to track.
        created.retain(|folder| self.root.join(folder).is_dir());
        if created != created_before {
            self.save_created_folders(&created)?;
        }
        Ok(report)
    }

    fn file_state(&self, folder: &str) -> FileState {
        let path = self.path_of(folder);
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return FileState::Missing,
            Err(_) => return FileState::Foreign,
        };
        // A link or anything but a small regular file under Corral's name is someone else's.
        if !meta.file_type().is_file() || meta.len() > MAX_DROPIN_SIZE {
            return FileState::Foreign;
        }
        match fs::read_to_string(&path) {
            Ok(text) if text.starts_with(MARKER) => FileState::Ours(text),
            _ => FileState::Foreign,
        }
    }

    /// Writes one file atomically (a new file, then a rename over the old one); returns
    /// whether the folder had to be created.
    fn write(&self, folder: &str, text: &str) -> Result<bool, StoreError> {
        let dir = self.root.join(folder);
        let error = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Write { path, source }
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(error(&self.root))?;
        let created = match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => false,
            Err(source) => return Err(StoreError::Write { path: dir, source }),
        };
        let target = dir.join(DROPIN_NAME);
        replace_file(&target, text).map_err(|source| StoreError::Write {
            path: target.clone(),
            source,
        })?;
        Ok(created)
    }

    fn created_list(&self) -> PathBuf {
        self.state_dir.join("drop-in-folders")
    }

    /// The folders Corral created, one name per line; an unreadable list is an empty one
    /// (Corral then leaves those folders in place, which is harmless).
    fn created_folders(&self) -> BTreeSet<String> {
        let mut text = String::new();
        let read = fs::File::open(self.created_list())
            .and_then(|f| f.take(MAX_DROPIN_SIZE * 16).read_to_string(&mut text));
        if read.is_err() {
            return BTreeSet::new();
        }
        text.lines()
            .filter(|l| l.ends_with(".d") && !l.contains('/'))
            .map(str::to_owned)
            .collect()
    }

    fn save_created_folders(&self, folders: &BTreeSet<String>) -> Result<(), StoreError> {
        let path = self.created_list();
        let mut text = String::new();
        for folder in folders {
            text.push_str(folder);
            text.push('\n');
        }
        replace_file(&path, &text).map_err(|source| StoreError::Write { path, source })
    }

    /// An exclusive lock on the state folder's lock file, held while syncing: two Corral
    /// processes (a window and `corral rules set`) then never interleave their writes.
    fn lock(&self) -> Result<fs::File, StoreError> {
        let path = self.state_dir.join("drop-ins.lock");
        let error = |source| StoreError::Write {
            path: path.clone(),
            source,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.state_dir)
            .map_err(error)?;
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(error)?;
        file.lock().map_err(error)?;
        Ok(file)
    }
}

/// Replaces `path` with a file holding `text`, atomically: a new file beside it (never reused:
/// a leftover, or a link planted there, is removed, and create_new does not follow a link that
/// appears meanwhile), written and synced, then renamed over the old one.
fn replace_file(path: &Path, text: &str) -> io::Result<()> {
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let write = || -> io::Result<()> {
        let _ = fs::remove_file(&tmp);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

enum FileState {
    Missing,
    /// Corral's file, with its text.
    Ours(String),
    /// A file under Corral's name that Corral did not write.
    Foreign,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, DropInStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = DropInStore::new(dir.path().join("systemd/user"), dir.path().join("state"));
        (dir, store)
    }

    fn dropin(folder: &str, limit: &str) -> DropIn {
        DropIn {
            folder: folder.to_owned(),
            text: format!("{MARKER} from a test.\n[Scope]\nMemoryMax={limit}\n"),
        }
    }

    #[test]
    fn sync_writes_what_is_wanted_and_nothing_twice() {
        let (_dir, store) = store();
        let wanted = [
            dropin("app-gnome-x-.scope.d", "1G"),
            dropin("app-x@.service.d", "1G"),
        ];
        let report = store.sync(&wanted).unwrap();
        assert_eq!(report.written.len(), 2);
        assert!(report.changed());
        let text = fs::read_to_string(store.path_of("app-gnome-x-.scope.d")).unwrap();
        assert_eq!(text, wanted[0].text);
        assert_eq!(store.owned().unwrap(), {
            let mut w = wanted.to_vec();
            w.sort_by(|a, b| a.folder.cmp(&b.folder));
            w
        });
        // Idempotent.
        assert_eq!(store.sync(&wanted).unwrap(), SyncReport::default());
        // A change rewrites only what changed.
        let changed = [
            dropin("app-gnome-x-.scope.d", "2G"),
            dropin("app-x@.service.d", "1G"),
        ];
        let report = store.sync(&changed).unwrap();
        assert_eq!(report.written, ["app-gnome-x-.scope.d"]);
        assert!(report.removed.is_empty());
    }

    #[test]
    fn a_persons_files_stay_byte_for_byte_and_their_folders_stay() {
        let (_dir, store) = store();
        // The person's own drop-in beside Corral's, in a folder they made.
        let theirs = store.root().join("app-gnome-x-.scope.d");
        fs::create_dir_all(&theirs).unwrap();
        fs::write(theirs.join("override.conf"), "[Scope]\nCPUWeight=5\n").unwrap();
        // A file under Corral's name that they wrote.
        let foreign = store.root().join("app-y@.service.d");
        fs::create_dir_all(&foreign).unwrap();
        fs::write(foreign.join(DROPIN_NAME), "[Service]\nMemoryMax=1\n").unwrap();

        let wanted = [
            dropin("app-gnome-x-.scope.d", "1G"),
            dropin("app-y@.service.d", "1G"),
            dropin("app-corral-x-.scope.d", "1G"),
        ];
        let report = store.sync(&wanted).unwrap();
        assert_eq!(report.foreign, ["app-y@.service.d"]);
        assert_eq!(
            fs::read_to_string(foreign.join(DROPIN_NAME)).unwrap(),
            "[Service]\nMemoryMax=1\n"
        );
        // The rule goes: Corral's files go, with the folder it made; the person's stay.
        let report = store.sync(&[]).unwrap();
        assert_eq!(
            report.removed,
            ["app-corral-x-.scope.d", "app-gnome-x-.scope.d"]
        );
        assert!(!store.root().join("app-corral-x-.scope.d").exists());
        assert_eq!(
            fs::read_to_string(theirs.join("override.conf")).unwrap(),
            "[Scope]\nCPUWeight=5\n"
        );
        assert!(!theirs.join(DROPIN_NAME).exists());
        assert_eq!(
            fs::read_to_string(foreign.join(DROPIN_NAME)).unwrap(),
            "[Service]\nMemoryMax=1\n"
        );
    }

    #[test]
    fn a_folder_corral_made_stays_while_someone_else_put_a_file_in_it() {
        let (_dir, store) = store();
        store.sync(&[dropin("app-z-.scope.d", "1G")]).unwrap();
        let folder = store.root().join("app-z-.scope.d");
        fs::write(folder.join("mine.conf"), "[Scope]\n").unwrap();
        store.sync(&[]).unwrap();
        assert!(folder.join("mine.conf").exists());
        assert!(!folder.join(DROPIN_NAME).exists());
        // Once it is empty, a later sync that writes and removes again takes it away.
        fs::remove_file(folder.join("mine.conf")).unwrap();
        store.sync(&[dropin("app-z-.scope.d", "1G")]).unwrap();
        store.sync(&[]).unwrap();
        assert!(!folder.exists());
    }

    #[test]
    fn a_link_under_corrals_name_is_not_followed() {
        let (dir, store) = store();
        let target = dir.path().join("elsewhere");
        fs::write(&target, format!("{MARKER} planted\n")).unwrap();
        let folder = store.root().join("app-l-.scope.d");
        fs::create_dir_all(&folder).unwrap();
        std::os::unix::fs::symlink(&target, folder.join(DROPIN_NAME)).unwrap();
        let report = store.sync(&[dropin("app-l-.scope.d", "1G")]).unwrap();
        assert_eq!(report.foreign, ["app-l-.scope.d"]);
        assert!(store.owned().unwrap().is_empty());
        assert_eq!(
            fs::read_to_string(&target).unwrap(),
            format!("{MARKER} planted\n")
        );
    }
}
