//! Stale state locks: who holds a cluster's Terraform state lock, whether
//! that holder is provably dead, and remembering the lock a run's own
//! Terraform takes so a later run can tell.
//!
//! A holder is provably dead only when it ran on this host, Terrace's own
//! local lock for the cluster is free (the caller holds it), and no
//! process on this host works in a Terraform directory of the cluster.
//! Anything else — another host, a live process — is not ours to judge:
//! the recovery command is printed, never run on a guess.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::journal::LockRecord;
use super::pipeline::SharedJournal;
use crate::aws::{Aws, state};
use crate::terraform::Backend;

/// Who holds a lock, as far as this host can tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "holder", rename_all = "snake_case")]
pub enum Holder {
    /// A run on this host that is gone: nothing can release the lock but
    /// `terrace cluster unlock`.
    Dead,
    /// A Terraform process on this host still works on the cluster.
    Alive { pids: Vec<u32> },
    /// Another host (or this one, when processes cannot be listed): it may
    /// be running.
    Unknown { host: String },
}

/// A held state lock and what is known of its holder.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    pub lock: state::StateLock,
    pub holder: Holder,
    /// The terrace run that took it, when this work directory's journal
    /// recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<LockRecord>,
}

impl Diagnosis {
    /// One paragraph: whose lock, since when, and whether it is stale.
    pub fn describe(&self) -> String {
        let l = &self.lock;
        let mut text = format!(
            "held by {} since {} ({}, lock ID {})",
            l.who, l.created, l.operation, l.id
        );
        if let Some(run) = &self.run {
            text.push_str(&format!(
                ", taken by terrace run {} (pid {} on {})",
                run.run, run.pid, run.host
            ));
        }
        text.push_str(&match &self.holder {
            Holder::Dead => {
                "; its holder is no longer running on this host (no terrace run holds the cluster's local lock and no Terraform process works on it)".to_string()
            }
            Holder::Alive { pids } => format!(
                "; Terraform still runs on this host (pid {}): it releases the lock when it stops",
                join(pids)
            ),
            Holder::Unknown { host } => {
                format!("; it was taken on {host}, which this machine cannot check")
            }
        });
        text
    }
}

fn join(pids: &[u32]) -> String {
    pids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// This host's name as Terraform writes it into `Who` (`user@host`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Judges `lock` for `cluster`; the caller holds the cluster's local lock.
pub fn diagnose(lock: state::StateLock, cluster: &str, run: Option<LockRecord>) -> Diagnosis {
    let host = lock
        .who
        .rsplit_once('@')
        .map(|(_, host)| host.to_string())
        .unwrap_or_default();
    let here = hostname();
    let holder = match terraform_processes(cluster) {
        Some(pids) if !host.is_empty() && host == here => {
            if pids.is_empty() {
                Holder::Dead
            } else {
                Holder::Alive { pids }
            }
        }
        _ => Holder::Unknown { host },
    };
    let run = run.filter(|r| r.id == lock.id);
    Diagnosis { lock, holder, run }
}

/// Processes on this host whose working directory is a Terraform
/// directory of `cluster` (`…/<cluster>/terraform`, any checkout); `None`
/// where processes cannot be listed.
fn terraform_processes(cluster: &str) -> Option<Vec<u32>> {
    let me = std::process::id();
    let entries = std::fs::read_dir("/proc").ok()?;
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| works_on(&cwd, cluster))
        })
        .collect();
    pids.sort_unstable();
    Some(pids)
}

fn works_on(cwd: &Path, cluster: &str) -> bool {
    cwd.file_name().is_some_and(|n| n == "terraform")
        && cwd
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == cluster)
}

/// Watches the state bucket while `work` runs Terraform, and records in
/// the journal the lock this host's Terraform takes, so that should this
/// run be killed, the next one can name it. The record is dropped once
/// `work` ends: Terraform released the lock (or the lock diagnosis of a
/// conflict takes over).
pub async fn recording<T>(
    aws: &Aws,
    account: &str,
    backend: &Backend,
    journal: SharedJournal,
    work: impl Future<Output = T>,
) -> T {
    let watch = tokio::spawn(watch(
        aws.clone(),
        account.to_string(),
        backend.clone(),
        journal.clone(),
    ));
    let result = work.await;
    watch.abort();
    let _ = watch.await;
    let _ = journal.lock().set_lock(None);
    result
}

async fn watch(aws: Aws, account: String, backend: Backend, journal: SharedJournal) {
    let host = hostname();
    loop {
        if let Ok(Some(lock)) =
            state::state_lock(&aws, &account, &backend.region, &backend.key).await
            && lock.who.ends_with(&format!("@{host}"))
        {
            let mut journal = journal.lock();
            let run = journal
                .up
                .resumed_by
                .last()
                .unwrap_or(&journal.up.run)
                .clone();
            let record = LockRecord {
                id: lock.id,
                who: lock.who,
                created: lock.created,
                operation: lock.operation,
                run,
                pid: std::process::id(),
                host: host.clone(),
            };
            if journal.lock.as_ref() != Some(&record) {
                let _ = journal.set_lock(Some(record));
            }
        }
        tokio::time::sleep(LOCK_POLL).await;
    }
}

/// How often the state bucket is asked for the lock while Terraform runs.
const LOCK_POLL: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(who: &str) -> state::StateLock {
        state::StateLock {
            id: "abc".into(),
            operation: "OperationTypeApply".into(),
            who: who.into(),
            created: "2026-12-03 07:00:00 +0000 UTC".into(),
        }
    }

    #[test]
    fn a_lock_from_another_host_is_never_judged_dead() {
        let d = diagnose(lock("ci@elsewhere.invalid"), "c1", None);
        assert_eq!(
            d.holder,
            Holder::Unknown {
                host: "elsewhere.invalid".into()
            }
        );
        assert!(d.describe().contains("taken on elsewhere.invalid"));
    }

    #[test]
    fn a_lock_from_this_host_with_no_terraform_running_is_dead() {
        let d = diagnose(
            lock(&format!("me@{}", hostname())),
            "no-such-cluster-x1",
            None,
        );
        assert_eq!(d.holder, Holder::Dead);
        assert!(
            d.describe().contains("no longer running"),
            "{}",
            d.describe()
        );
    }

    #[test]
    fn a_process_working_on_the_cluster_keeps_it_alive() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("alive-cluster-x2").join("terraform");
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .current_dir(&dir)
            .spawn()
            .unwrap();
        let d = diagnose(
            lock(&format!("me@{}", hostname())),
            "alive-cluster-x2",
            None,
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            d.holder,
            Holder::Alive {
                pids: vec![child.id()]
            }
        );
    }

    #[test]
    fn the_journal_record_names_the_run_only_for_the_same_lock() {
        let record = LockRecord {
            id: "abc".into(),
            who: "me@here".into(),
            created: String::new(),
            operation: String::new(),
            run: "r1".into(),
            pid: 7,
            host: "here".into(),
        };
        let d = diagnose(lock("me@here"), "c1", Some(record.clone()));
        assert!(d.describe().contains("terrace run r1 (pid 7 on here)"));
        let other = LockRecord {
            id: "other".into(),
            ..record
        };
        assert!(diagnose(lock("me@here"), "c1", Some(other)).run.is_none());
    }
}
