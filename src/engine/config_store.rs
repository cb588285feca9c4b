//! config.toml read and written on a thread of its own, never on a main loop: edits are
//! queued, and written together once no new one came for a moment (one write per burst).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::config::{Config, ConfigEditor, RulePreset, Settings};
use crate::i18n::gettext_f;

/// How long after the last edit of a burst the file is written.
pub const DEBOUNCE: Duration = Duration::from_millis(400);

/// One change to the file, kept in the person's formatting by [`ConfigEditor`].
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigEdit {
    /// A number in `[general]`, e.g. `refresh-interval`.
    General {
        key: &'static str,
        value: f64,
    },
    /// A preset's whole settings.
    Preset {
        name: String,
        settings: Settings,
    },
    RemovePreset {
        name: String,
    },
    /// An app's rule, as [`ConfigEditor::set_rule`] changes it: its preset, and the settings
    /// of `keys` set or (when `settings` lacks them) removed.
    Rule {
        app_id: String,
        preset: RulePreset,
        keys: Vec<&'static str>,
        settings: Settings,
    },
    RemoveRule {
        app_id: String,
    },
    /// Texts of `[general]` changed together, e.g. `apps-memory-high` = "80%" and
    /// `apps-memory-max` = "90%"; `None` removes the key.
    GeneralTexts(Vec<(&'static str, Option<String>)>),
    /// The preset an app was last launched with.
    LastPreset {
        app_id: String,
        preset: String,
    },
}

impl ConfigEdit {
    fn apply(&self, editor: &mut ConfigEditor) -> Result<(), crate::config::ConfigError> {
        match self {
            ConfigEdit::General { key, value } => editor.set_general(key, *value),
            ConfigEdit::Preset { name, settings } => editor.set_preset(name, settings),
            ConfigEdit::RemovePreset { name } => editor.remove_preset(name).map(drop),
            ConfigEdit::Rule {
                app_id,
                preset,
                keys,
                settings,
            } => editor.set_rule(app_id, preset, keys, settings),
            ConfigEdit::RemoveRule { app_id } => editor.remove_rule(app_id).map(drop),
            ConfigEdit::GeneralTexts(values) => {
                let values: Vec<(&str, Option<&str>)> =
                    values.iter().map(|(k, v)| (*k, v.as_deref())).collect();
                editor.set_general_texts(&values)
            }
            ConfigEdit::LastPreset { app_id, preset } => editor.set_last_preset(app_id, preset),
        }
    }
}

/// Whether an edit was written, or why not, in words for a person.
pub type Saved = Result<(), String>;

enum Job {
    Edit(ConfigEdit, Option<oneshot::Sender<Saved>>),
    Load(oneshot::Sender<Result<Config, String>>),
}

/// A handle on the store's thread; clones share it. The thread ends with the last handle,
/// writing what is still queued.
#[derive(Clone)]
pub struct ConfigStore {
    path: Arc<PathBuf>,
    jobs: mpsc::Sender<Job>,
    writes: Arc<AtomicUsize>,
}

impl std::fmt::Debug for ConfigStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfigStore")
    }
}

impl ConfigStore {
    /// The store of the user's config file.
    pub fn user() -> ConfigStore {
        ConfigStore::spawn(Config::path(), DEBOUNCE)
    }

    pub fn spawn(path: PathBuf, debounce: Duration) -> ConfigStore {
        let (jobs, queue) = mpsc::channel();
        let writes = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&writes);
        let shared = Arc::new(path.clone());
        std::thread::Builder::new()
            .name("corral-config".into())
            .spawn(move || serve(&path, debounce, &queue, &counter))
            .expect("a thread for the config store");
        ConfigStore {
            path: shared,
            jobs,
            writes,
        }
    }

    /// The file this store reads and writes.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Queues an edit; it is written with the rest of its burst.
    pub fn submit(&self, edit: ConfigEdit) {
        let _ = self.jobs.send(Job::Edit(edit, None));
    }

    /// Queues an edit and waits until it is written (or failed).
    pub async fn save(&self, edit: ConfigEdit) -> Saved {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Job::Edit(edit, Some(tx))).is_err() {
            return Err("the config store stopped".into());
        }
        rx.await
            .unwrap_or_else(|_| Err("the config store stopped".into()))
    }

    /// The file as it is once every queued edit is written.
    pub async fn load(&self) -> Result<Config, String> {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Job::Load(tx)).is_err() {
            return Err("the config store stopped".into());
        }
        rx.await
            .unwrap_or_else(|_| Err("the config store stopped".into()))
    }

    /// How many times the file was written.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::Relaxed)
    }
}

fn serve(path: &PathBuf, debounce: Duration, queue: &mpsc::Receiver<Job>, writes: &AtomicUsize) {
    let mut pending: Vec<(ConfigEdit, Option<oneshot::Sender<Saved>>)> = Vec::new();
    let mut due = Instant::now();
    loop {
        let job = if pending.is_empty() {
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        } else {
            match queue.recv_timeout(due.saturating_duration_since(Instant::now())) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    write(path, &mut pending, writes);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    write(path, &mut pending, writes);
                    return;
                }
            }
        };
        match job {
            Job::Edit(edit, reply) => {
                pending.push((edit, reply));
                due = Instant::now() + debounce;
            }
            Job::Load(reply) => {
                write(path, &mut pending, writes);
                let _ = reply.send(Config::load_from(path).map_err(|e| e.to_string()));
            }
        }
    }
}

/// Writes the queued edits in one save; each waiting edit learns how it went.
fn write(
    path: &PathBuf,
    pending: &mut Vec<(ConfigEdit, Option<oneshot::Sender<Saved>>)>,
    writes: &AtomicUsize,
) {
    if pending.is_empty() {
        return;
    }
    let fail = |e: &dyn std::fmt::Display| gettext_f("Not saved: {error}", &[("error", e)]);
    let mut editor = match ConfigEditor::open(path) {
        Ok(editor) => editor,
        Err(e) => {
            // A malformed file is never overwritten: every edit of the burst is refused.
            let message = fail(&e);
            for (_, reply) in pending.drain(..) {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(message.clone()));
                }
            }
            return;
        }
    };
    let mut applied = Vec::new();
    for (edit, reply) in pending.drain(..) {
        match edit.apply(&mut editor) {
            Ok(()) => applied.push(reply),
            Err(e) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(fail(&e)));
                }
            }
        }
    }
    let saved = editor.save().map_err(|e| fail(&e));
    writes.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = &saved {
        eprintln!("corral: {e}");
    }
    for reply in applied.into_iter().flatten() {
        let _ = reply.send(saved.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_edits_is_one_write_of_the_last_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "# mine\n[general]\nmemory-warning = 80\n").unwrap();
        let store = ConfigStore::spawn(path.clone(), Duration::from_millis(100));
        // A held "+": a new value every 20 ms, faster than the debounce.
        for step in 0..30 {
            store.submit(ConfigEdit::General {
                key: "memory-warning",
                value: 60.0 + f64::from(step),
            });
            std::thread::sleep(Duration::from_millis(20));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let config = rt.block_on(store.load()).unwrap();
        assert_eq!(config.general.memory_warning, 89.0);
        assert_eq!(store.writes(), 1, "one write for the whole burst");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# mine\n"),
            "the person's comment stays: {text}"
        );
    }

    #[test]
    fn a_malformed_file_is_not_overwritten_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[general\n").unwrap();
        let store = ConfigStore::spawn(path.clone(), Duration::from_millis(10));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let saved = rt.block_on(store.save(ConfigEdit::General {
            key: "memory-warning",
            value: 70.0,
        }));
        assert!(saved.unwrap_err().starts_with("Not saved:"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[general\n");
    }
}
