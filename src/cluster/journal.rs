//! The journal: what each phase of a cluster's `up` / `down` did, kept in
//! the work directory so an interrupted run resumes where it stopped.
//!
//! Each phase records its status, a hash of its inputs, and when it started
//! and ended. A finished phase whose inputs are unchanged is skipped on the
//! next run. The file is rewritten atomically after every change, so a
//! crash or Ctrl-C never leaves a half-written journal.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const FILE: &str = "journal.json";

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
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    #[error("{}: not a Terrace journal ({reason}); move it aside to start over", path.display())]
    Corrupt { path: PathBuf, reason: String },
}

/// One command's journal (`up` and `down` keep separate sections, so a
/// `down` after an `up` does not mistake the build for the teardown).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    #[serde(default)]
    pub up: BTreeMap<String, Record>,
    #[serde(default)]
    pub down: BTreeMap<String, Record>,
    #[serde(skip)]
    path: PathBuf,
    /// A dry run reads the journal but must not change it.
    #[serde(skip)]
    read_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Up,
    Down,
}

impl Journal {
    /// Reads the journal in `dir`, or starts an empty one.
    pub fn load(dir: &Path) -> Result<Journal, JournalError> {
        let path = dir.join(FILE);
        let mut journal = match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice::<Journal>(&bytes).map_err(|e| JournalError::Corrupt {
                    path: path.clone(),
                    reason: e.to_string(),
                })?
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
        journal.path = path;
        Ok(journal)
    }

    fn section(&self, section: Section) -> &BTreeMap<String, Record> {
        match section {
            Section::Up => &self.up,
            Section::Down => &self.down,
        }
    }

    fn section_mut(&mut self, section: Section) -> &mut BTreeMap<String, Record> {
        match section {
            Section::Up => &mut self.up,
            Section::Down => &mut self.down,
        }
    }

    pub fn get(&self, section: Section, phase: &str) -> Option<&Record> {
        self.section(section).get(phase)
    }

    /// True when `phase` finished with exactly these inputs.
    pub fn is_done(&self, section: Section, phase: &str, inputs: &str) -> bool {
        self.get(section, phase)
            .is_some_and(|r| r.status == Status::Done && r.inputs == inputs)
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
        };
        self.section_mut(section).insert(phase.to_string(), record);
        self.save()
    }

    pub fn finish(
        &mut self,
        section: Section,
        phase: &str,
        status: Status,
        message: Option<String>,
    ) -> Result<(), JournalError> {
        if let Some(record) = self.section_mut(section).get_mut(phase) {
            record.status = status;
            record.finished_ms = Some(now_ms());
            record.message = message;
        }
        self.save()
    }

    /// Forgets a section, so the next run of that command starts from the
    /// beginning (a finished `down` clears `up`, and the other way round).
    pub fn clear(&mut self, section: Section) -> Result<(), JournalError> {
        self.section_mut(section).clear();
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
        assert!(j.get(Section::Up, "render").unwrap().finished_ms.is_some());
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
