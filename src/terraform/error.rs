//! Why a Terraform command did not succeed, with Terraform's own words.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::stream::{Diagnostic, LockInfo};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot run {}: {source}", path.display())]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the Terraform plugin cache {}: {source}", path.display())]
    PluginCache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the files Terraform's output goes to in {}: {source}", path.display())]
    Capture {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Terraform failed; `diagnostics` are its errors, verbatim, and `stderr`
    /// what it wrote there (all there is when it failed before `-json` began).
    #[error("{}", failure_text(command, *code, diagnostics, stderr))]
    Failed {
        command: &'static str,
        code: Option<i32>,
        diagnostics: Vec<Diagnostic>,
        stderr: String,
    },
    /// Another run holds the state lock.
    #[error(
        "terraform {command}: the state is locked by {} since {} ({}, lock ID {}); \
         if that run is gone for good, release it with `terraform force-unlock {}`",
        lock.who, lock.created, lock.operation, lock.id, lock.id
    )]
    Locked {
        command: &'static str,
        lock: Box<LockInfo>,
        /// Terraform's full diagnostic, for `-v` and JSON output.
        diagnostic: Box<Diagnostic>,
    },
    /// Stopped on request; Terraform was given the chance to release its lock.
    #[error("terraform {command} was interrupted")]
    Interrupted { command: &'static str },
    #[error("terraform output -json printed something that is not its JSON: {reason}")]
    Output { reason: String },
}

fn failure_text(
    command: &str,
    code: Option<i32>,
    diagnostics: &[Diagnostic],
    stderr: &str,
) -> String {
    let mut text = match code {
        Some(code) => format!("terraform {command} failed (exit status {code})"),
        None => format!("terraform {command} was killed by a signal"),
    };
    if diagnostics.is_empty() {
        if !stderr.trim().is_empty() {
            let _ = write!(text, ":\n{}", stderr.trim_end());
        }
    } else {
        text.push(':');
        for diagnostic in diagnostics {
            let _ = write!(text, "\n\n{diagnostic}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terraform::Severity;

    #[test]
    fn failures_show_terraform_text_verbatim() {
        let failed = RunError::Failed {
            command: "apply",
            code: Some(1),
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                summary: "creating EKS Cluster (c): AccessDenied".into(),
                detail: "  indented\ndetail".into(),
                address: None,
            }],
            stderr: "ignored when diagnostics exist".into(),
        };
        assert_eq!(
            failed.to_string(),
            "terraform apply failed (exit status 1):\n\nError: creating EKS Cluster (c): AccessDenied\n\n  indented\ndetail"
        );
        let raw = RunError::Failed {
            command: "init",
            code: Some(1),
            diagnostics: vec![],
            stderr: "flag provided but not defined: -json\n".into(),
        };
        assert_eq!(
            raw.to_string(),
            "terraform init failed (exit status 1):\nflag provided but not defined: -json"
        );
    }

    #[test]
    fn a_lock_conflict_names_its_holder() {
        let locked = RunError::Locked {
            command: "plan",
            lock: Box::new(LockInfo {
                id: "abc".into(),
                who: "ci@runner".into(),
                created: "2026-11-26 16:00:00 +0000 UTC".into(),
                operation: "OperationTypeApply".into(),
                ..LockInfo::default()
            }),
            diagnostic: Box::new(Diagnostic {
                severity: Severity::Error,
                summary: "Error acquiring the state lock".into(),
                detail: String::new(),
                address: None,
            }),
        };
        let text = locked.to_string();
        assert!(text.contains("locked by ci@runner since 2026-11-26 16:00:00 +0000 UTC"));
        assert!(text.contains("terraform force-unlock abc"));
    }
}
