//! The journal: what each phase of a cluster's `up` / `down` did, kept in
//! the work directory so an interrupted run resumes where it stopped.
//!
//! Each command has a section holding the records of one run: the run that
//! started it, and any later ones that resumed it. A run that does not
//! resume starts a fresh section, so records of an earlier, finished run
//! never decide what a later one does. Each phase records its status, a
//! hash of its inputs, and when it started and ended. The journal also
//! remembers the state lock Terraform took for this work directory, so a
//! run that finds it still held can say whose it is. The file is rewritten
//! atomically after every change, so a crash or a kill never leaves a
//! half-written journal.
//!
//! This module decides nothing: which phases a resumed run may skip is the
//! pipeline's business.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const FILE: &str = "journal.json";

/// The format written; version 1 (no runs, one flat map per command) is
/// still read.
pub const VERSION: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Done,
    Failed,
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub status: Status,
    /// Hash of everything the phase's result depends on.
    pub inputs: String,
    /// Unix milliseconds.
    pub started_ms: u64,
    pub finished_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The run that wrote this record.
    #[serde(default)]
    pub run: String,
}

/// One command's records, from the run that started them and the runs
/// that resumed it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runs {
    /// The run that started this section.
    #[serde(default)]
    pub run: String,
    /// Runs that resumed it, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed_by: Vec<String>,
    #[serde(default)]
    pub phases: BTreeMap<String, Record>,
    /// A run of this section ended successfully (also one told to stop
    /// early): the next run starts afresh.
    #[serde(default)]
    pub finished: bool,
}

/// The state lock Terraform took for this work directory, as found in the
/// state bucket while it ran, and who ran it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// Terraform's lock ID (what `force-unlock` takes).
    pub id: String,
    /// Terraform's `user@host`.
    pub who: String,
    pub created: String,
    pub operation: String,
    /// The terrace run, process and host that ran Terraform.
    pub run: String,
    pub pid: u32,
    pub host: String,
}

/// A `rebuild` in progress: its `down` half, then its `up` half, each
/// journaled in its own section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebuildRecord {
    /// The run that started the rebuild.
    pub run: String,
    /// Runs that resumed it, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed_by: Vec<String>,
    /// Unix milliseconds.
    pub started_ms: u64,
    /// The old cluster is gone (its `down` verified nothing is left).
    pub down_done: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    #[error("{}: not a Terrace journal ({reason}); move it aside, or run with --restart to start over", path.display())]
    Corrupt { path: PathBuf, reason: String },
}

/// Both commands' sections (`up` and `down` are kept apart, so a `down`
/// after an `up` does not mistake the build for the teardown).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    #[serde(default)]
    pub version: u32,
    #[serde(default)]
    pub up: Runs,
    #[serde(default)]
    pub down: Runs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockRecord>,
    /// A `rebuild` that has not finished: which of its halves are done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuild: Option<RebuildRecord>,
    #[serde(skip)]
    path: PathBuf,
    /// A dry run reads the journal but must not change it.
    #[serde(skip)]
    read_only: bool,
}

/// Version 1: one map of phase records per command.
#[derive(Deserialize)]
struct V1 {
    #[serde(default)]
    up: BTreeMap<String, Record>,
    #[serde(default)]
    down: BTreeMap<String, Record>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Up,
    Down,
}

/// A new run's id: when it started and which process ran it.
pub fn new_run_id() -> String {
    format!(
        "{}-{}",
        crate::progress::timestamp(now_ms()).replace([':', '-'], ""),
        std::process::id()
    )
}

impl Journal {
    /// Reads the journal in `dir`, or starts an empty one.
    pub fn load(dir: &Path) -> Result<Journal, JournalError> {
        let path = dir.join(FILE);
        let corrupt = |reason: String| JournalError::Corrupt {
            path: path.clone(),
            reason,
        };
        let mut journal = match fs::read(&path) {
            Ok(bytes) => {
                let value: serde_json::Value =
                    serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
                if value.get("version").is_some() {
                    serde_json::from_value::<Journal>(value).map_err(|e| corrupt(e.to_string()))?
                } else {
                    let v1: V1 =
                        serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
                    let section = |phases| Runs {
                        run: "v1".into(),
                        phases,
                        ..Runs::default()
                    };
                    Journal {
                        up: section(v1.up),
                        down: section(v1.down),
                        ..Journal::default()
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Journal::default(),
            Err(source) => {
                return Err(JournalError::Io {
                    path,
                    action: "cannot read",
                    source,
                });
            }
        };
        journal.version = VERSION;
        journal.path = path;
        Ok(journal)
    }

    /// An empty journal at `dir` that replaces whatever is there on the
    /// first write (`--restart`).
    pub fn fresh(dir: &Path) -> Journal {
        Journal {
            version: VERSION,
            path: dir.join(FILE),
            ..Journal::default()
        }
    }

    pub fn section(&self, section: Section) -> &Runs {
        match section {
            Section::Up => &self.up,
            Section::Down => &self.down,
        }
    }

    fn section_mut(&mut self, section: Section) -> &mut Runs {
        match section {
            Section::Up => &mut self.up,
            Section::Down => &mut self.down,
        }
    }

    pub fn get(&self, section: Section, phase: &str) -> Option<&Record> {
        self.section(section).phases.get(phase)
    }

    /// True when `phase` finished with exactly these inputs.
    pub fn is_done(&self, section: Section, phase: &str, inputs: &str) -> bool {
        self.get(section, phase)
            .is_some_and(|r| r.status == Status::Done && r.inputs == inputs)
    }

    /// Opens `section` for run `run`: resuming keeps its records, else the
    /// section starts afresh.
    pub fn begin(&mut self, section: Section, run: &str, resume: bool) -> Result<(), JournalError> {
        let runs = self.section_mut(section);
        if resume {
            runs.resumed_by.push(run.to_string());
        } else {
            *runs = Runs {
                run: run.to_string(),
                ..Runs::default()
            };
        }
        self.save()
    }

    /// Marks the section's latest run as having ended successfully.
    pub fn finished(&mut self, section: Section) -> Result<(), JournalError> {
        self.section_mut(section).finished = true;
        self.save()
    }

    /// The run writing records now.
    fn current_run(&self, section: Section) -> String {
        let runs = self.section(section);
        runs.resumed_by.last().unwrap_or(&runs.run).clone()
    }

    pub fn start(
        &mut self,
        section: Section,
        phase: &str,
        inputs: &str,
    ) -> Result<(), JournalError> {
        let record = Record {
            status: Status::Running,
            inputs: inputs.to_string(),
            started_ms: now_ms(),
            finished_ms: None,
            message: None,
            run: self.current_run(section),
        };
        self.section_mut(section)
            .phases
            .insert(phase.to_string(), record);
        self.save()
    }

    pub fn finish(
        &mut self,
        section: Section,
        phase: &str,
        status: Status,
        message: Option<String>,
    ) -> Result<(), JournalError> {
        if let Some(record) = self.section_mut(section).phases.get_mut(phase) {
            record.status = status;
            record.finished_ms = Some(now_ms());
            record.message = message;
        }
        self.save()
    }

    /// Forgets a section, so the next run of that command starts from the
    /// beginning (a finished `down` clears `up`, and the other way round).
    pub fn clear(&mut self, section: Section) -> Result<(), JournalError> {
        *self.section_mut(section) = Runs::default();
        self.save()
    }

    /// Remembers the state lock Terraform holds for this work directory.
    pub fn set_lock(&mut self, lock: Option<LockRecord>) -> Result<(), JournalError> {
        self.lock = lock;
        self.save()
    }

    /// Records (or, with `None`, ends) a rebuild in progress.
    pub fn set_rebuild(&mut self, rebuild: Option<RebuildRecord>) -> Result<(), JournalError> {
        self.rebuild = rebuild;
        self.save()
    }

    /// From now on, changes stay in memory.
    pub fn read_only(&mut self) {
        self.read_only = true;
    }

    fn save(&self) -> Result<(), JournalError> {
        if self.read_only {
            return Ok(());
        }
        let io_err = |action| {
            let path = self.path.clone();
            move |source| JournalError::Io {
                path,
                action,
                source,
            }
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(io_err("cannot create its directory"))?;
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        let tmp = self.path.with_extension("json.tmp");
        fs::write(&tmp, bytes).map_err(io_err("cannot write"))?;
        fs::rename(&tmp, &self.path).map_err(io_err("cannot replace"))
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A stable hash of a phase's inputs.
pub fn hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_reload() {
        let tmp = tempfile::tempdir().unwrap();
        let mut j = Journal::load(tmp.path()).unwrap();
        j.begin(Section::Up, "r1", false).unwrap();
        j.start(Section::Up, "render", "h1").unwrap();
        assert!(!j.is_done(Section::Up, "render", "h1"));
        j.finish(Section::Up, "render", Status::Done, None).unwrap();
        let j = Journal::load(tmp.path()).unwrap();
        assert!(j.is_done(Section::Up, "render", "h1"));
        assert!(
            !j.is_done(Section::Up, "render", "h2"),
            "changed inputs re-run"
        );
        assert!(
            !j.is_done(Section::Down, "render", "h1"),
            "sections are separate"
        );
        let record = j.get(Section::Up, "render").unwrap();
        assert!(record.finished_ms.is_some());
        assert_eq!(record.run, "r1");
        assert_eq!(j.version, VERSION);
    }

    #[test]
    fn a_run_that_does_not_resume_starts_a_fresh_section() {
        let tmp = tempfile::tempdir().unwrap();
        let mut j = Journal::load(tmp.path()).unwrap();
        j.begin(Section::Up, "r1", false).unwrap();
        j.start(Section::Up, "render", "h").unwrap();
        j.finish(Section::Up, "render", Status::Done, None).unwrap();
        j.start(Section::Up, "terraform", "h").unwrap();
        j.finish(Section::Up, "terraform", Status::Failed, None)
            .unwrap();

        j.begin(Section::Up, "r2", true).unwrap();
        assert!(
            j.is_done(Section::Up, "render", "h"),
            "resuming keeps records"
        );
        j.start(Section::Up, "terraform", "h").unwrap();
        assert_eq!(j.get(Section::Up, "terraform").unwrap().run, "r2");
        assert_eq!(j.up.run, "r1");
        assert_eq!(j.up.resumed_by, ["r2"]);

        j.begin(Section::Up, "r3", false).unwrap();
        let j = Journal::load(tmp.path()).unwrap();
        assert!(j.up.phases.is_empty());
        assert_eq!(j.up.run, "r3");
        assert!(j.up.resumed_by.is_empty());
    }

    #[test]
    fn a_version_1_journal_is_read() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(
            tmp.path().join(FILE),
            r#"{"up":{"render":{"status":"done","inputs":"h","started_ms":1,"finished_ms":2}},"down":{}}"#,
        )
        .unwrap();
        let j = Journal::load(tmp.path()).unwrap();
        assert!(j.is_done(Section::Up, "render", "h"));
        assert_eq!(j.up.run, "v1");
    }

    #[test]
    fn the_lock_record_is_kept_until_cleared() {
        let tmp = tempfile::tempdir().unwrap();
        let mut j = Journal::load(tmp.path()).unwrap();
        let lock = LockRecord {
            id: "abc".into(),
            who: "ci@runner".into(),
            created: "2026-12-03 07:00:00 +0000 UTC".into(),
            operation: "OperationTypeApply".into(),
            run: "r1".into(),
            pid: 42,
            host: "runner".into(),
        };
        j.set_lock(Some(lock.clone())).unwrap();
        assert_eq!(Journal::load(tmp.path()).unwrap().lock, Some(lock));
        j.set_lock(None).unwrap();
        assert_eq!(Journal::load(tmp.path()).unwrap().lock, None);
    }

    #[test]
    fn a_corrupt_journal_is_reported_not_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(FILE), "{not json").unwrap();
        let err = Journal::load(tmp.path()).unwrap_err();
        assert!(err.to_string().contains("not a Terrace journal"), "{err}");
        assert_eq!(
            fs::read_to_string(tmp.path().join(FILE)).unwrap(),
            "{not json"
        );
    }

    #[test]
    fn hashes_separate_their_parts() {
        assert_ne!(hash(&[b"ab", b"c"]), hash(&[b"a", b"bc"]));
        assert_eq!(hash(&[b"x"]), hash(&[b"x"]));
    }
}
