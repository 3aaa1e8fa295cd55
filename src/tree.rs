//! A rendered work directory in memory, and writing it to disk atomically.
//!
//! A leaf: `render` produces a [`Tree`], `addons` installs from one and
//! `cluster` writes one, none of them through another.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The entries a render owns inside its output directory.
const RENDERED: &[&str] = &["terraform", "manifests"];

/// A fleet member's log, kept in its work directory run after run.
pub const LOG: &str = "terrace.log";

/// Terraform's dependency lock file, written by `terraform init` into the
/// rendered `terraform/` folder: carried over into every new render so the
/// provider of a live cluster only changes when someone removes it on
/// purpose (README: upgrading the provider).
pub const LOCK_FILE: &str = "terraform/.terraform.lock.hcl";

/// What else Terrace keeps in a cluster's work directory (the journal, the
/// local lock, Terraform's data directory, saved plan and captured output,
/// a fleet member's log):
/// a render leaves these alone, and refuses a directory holding anything else.
pub const WORK_DIR_ENTRIES: &[&str] = &[
    LOG,
    "journal.json",
    "journal.json.tmp",
    "lock",
    "tfdata",
    "tfoutput",
    "tfplan",
];

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    #[error(
        "--out {}: holds {entry:?}, which Terrace did not render; choose a new or empty directory",
        dir.display()
    )]
    Foreign { dir: PathBuf, entry: String },
}

/// Files by path relative to the output directory, `/`-separated.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tree {
    files: BTreeMap<String, Vec<u8>>,
}

impl Tree {
    pub fn insert(&mut self, path: String, contents: impl Into<Vec<u8>>) {
        self.files.insert(path, contents.into());
    }

    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|(p, c)| (p.as_str(), c.as_slice()))
    }

    /// Replaces the rendered folders of `dir` with this tree. The tree is
    /// built in a temporary directory beside `dir` and renamed into place, so
    /// a failure while building leaves the previous render untouched. A `dir`
    /// holding anything Terrace does not keep there is refused rather than
    /// overwritten; Terrace's own files (journal, lock) are kept.
    pub fn write_atomic(&self, dir: &Path) -> Result<(), WriteError> {
        fn io_err(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> WriteError {
            let path = path.to_path_buf();
            move |source| WriteError::Io {
                path,
                action,
                source,
            }
        }
        let exists = dir.try_exists().map_err(io_err(dir, "cannot inspect"))?;
        if exists {
            for entry in fs::read_dir(dir).map_err(io_err(dir, "cannot list"))? {
                let entry = entry.map_err(io_err(dir, "cannot list"))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !RENDERED.contains(&name.as_str()) && !WORK_DIR_ENTRIES.contains(&name.as_str())
                {
                    return Err(WriteError::Foreign {
                        dir: dir.to_path_buf(),
                        entry: name,
                    });
                }
            }
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(io_err(&parent, "cannot create"))?;
        let staging = tempfile::Builder::new()
            .prefix(".terrace-render-")
            .tempdir_in(&parent)
            .map_err(io_err(&parent, "cannot create a temporary directory in"))?;
        for (rel, contents) in &self.files {
            let path = staging.path().join(rel);
            if let Some(p) = path.parent() {
                fs::create_dir_all(p).map_err(io_err(p, "cannot create"))?;
            }
            fs::write(&path, contents).map_err(io_err(&path, "cannot write"))?;
        }
        let lock = dir.join(LOCK_FILE);
        if !self.files.contains_key(LOCK_FILE) && lock.is_file() {
            let kept = staging.path().join(LOCK_FILE);
            if let Some(p) = kept.parent() {
                fs::create_dir_all(p).map_err(io_err(p, "cannot create"))?;
            }
            fs::copy(&lock, &kept).map_err(io_err(&lock, "cannot keep"))?;
        }
        if !exists {
            fs::rename(staging.path(), dir).map_err(io_err(dir, "cannot create"))?;
            // The staging directory now is `dir`; keep it from being removed.
            let _ = staging.keep();
            return Ok(());
        }
        let retired = tempfile::Builder::new()
            .prefix(".terrace-previous-")
            .tempdir_in(&parent)
            .map_err(io_err(&parent, "cannot create a temporary directory in"))?;
        for folder in RENDERED {
            let (new, old, current) = (
                staging.path().join(folder),
                retired.path().join(folder),
                dir.join(folder),
            );
            if current.exists() {
                fs::rename(&current, &old).map_err(io_err(&current, "cannot move aside"))?;
            }
            if new.exists()
                && let Err(source) = fs::rename(&new, &current)
            {
                // Put the previous render back so the directory is never lost.
                let _ = fs::rename(&old, &current);
                return Err(WriteError::Io {
                    path: current,
                    action: "cannot replace",
                    source,
                });
            }
        }
        Ok(())
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> Tree {
        let mut t = Tree::default();
        for (p, c) in files {
            t.insert(p.to_string(), *c);
        }
        t
    }

    #[test]
    fn writes_and_replaces() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out/cluster");
        tree(&[("terraform/main.tf", "a"), ("manifests/x/app.yaml", "b")])
            .write_atomic(&dir)
            .unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("terraform/main.tf")).unwrap(),
            "a"
        );
        tree(&[("terraform/main.tf", "c")])
            .write_atomic(&dir)
            .unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("terraform/main.tf")).unwrap(),
            "c"
        );
        assert!(
            !dir.join("manifests").exists(),
            "a re-render drops files it no longer produces"
        );
        let leftovers: Vec<_> = fs::read_dir(dir.parent().unwrap()).unwrap().collect();
        assert_eq!(
            leftovers.len(),
            1,
            "no staging or retired directories remain"
        );
    }

    #[test]
    fn keeps_terraces_own_files() {
        let tmp = tempfile::tempdir().unwrap();
        tree(&[("terraform/main.tf", "a")])
            .write_atomic(tmp.path())
            .unwrap();
        fs::write(tmp.path().join("journal.json"), "{}").unwrap();
        tree(&[("terraform/main.tf", "b")])
            .write_atomic(tmp.path())
            .unwrap();
        assert_eq!(
            fs::read_to_string(tmp.path().join("journal.json")).unwrap(),
            "{}"
        );
        assert_eq!(
            fs::read_to_string(tmp.path().join("terraform/main.tf")).unwrap(),
            "b"
        );
    }

    #[test]
    fn keeps_terraforms_lock_file() {
        let tmp = tempfile::tempdir().unwrap();
        tree(&[("terraform/main.tf", "a")])
            .write_atomic(tmp.path())
            .unwrap();
        let lock = tmp.path().join(LOCK_FILE);
        fs::write(&lock, "provider \"registry.terraform.io/hashicorp/aws\" {}").unwrap();
        tree(&[("terraform/main.tf", "b")])
            .write_atomic(tmp.path())
            .unwrap();
        assert!(
            fs::read_to_string(&lock).unwrap().contains("hashicorp/aws"),
            "the lock file survives a re-render"
        );
        fs::remove_file(&lock).unwrap();
        tree(&[("terraform/main.tf", "c")])
            .write_atomic(tmp.path())
            .unwrap();
        assert!(!lock.exists(), "and is not invented when absent");
    }

    #[test]
    fn refuses_a_directory_it_did_not_render() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
        let err = tree(&[("terraform/main.tf", "a")])
            .write_atomic(tmp.path())
            .unwrap_err();
        assert!(err.to_string().contains("notes.txt"), "{err}");
        assert_eq!(
            fs::read_to_string(tmp.path().join("notes.txt")).unwrap(),
            "mine"
        );
        assert!(!tmp.path().join("terraform").exists());
    }
}
