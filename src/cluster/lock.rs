//! The local lock: one `up` or `down` per cluster on this machine.
//!
//! An OS file lock (released by the kernel if the process dies, so it is
//! never stale) on `<work dir>/lock`, whose contents name the holder for
//! the error another run prints. Terraform's S3 lock covers other machines.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

pub const FILE: &str = "lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("cluster {cluster} is busy: {holder}; wait for it to finish (lock file {})", path.display())]
    Held {
        cluster: String,
        holder: String,
        path: PathBuf,
    },
}

/// Held until dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Takes the lock in `dir` for `command` (like "up"), or says who has it.
    pub fn acquire(dir: &Path, cluster: &str, command: &str) -> Result<Lock, LockError> {
        let path = dir.join(FILE);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io_err)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = if holder.trim().is_empty() {
                    "another terrace process".into()
                } else {
                    holder.trim().to_string()
                };
                return Err(LockError::Held {
                    cluster: cluster.to_string(),
                    holder,
                    path,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        let holder = format!(
            "`terrace cluster {command}` (pid {}, host {}) since {}",
            std::process::id(),
            host.trim(),
            crate::progress::timestamp(super::journal::now_ms())
        );
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(holder.as_bytes()))
            .map_err(io_err)?;
        Ok(Lock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_named() {
        let tmp = tempfile::tempdir().unwrap();
        let first = Lock::acquire(tmp.path(), "c1", "up").unwrap();
        let err = Lock::acquire(tmp.path(), "c1", "down").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("cluster c1 is busy"), "{text}");
        assert!(text.contains("terrace cluster up"), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(first);
        Lock::acquire(tmp.path(), "c1", "down").unwrap();
    }
}
