//! Terraform's machine-readable UI (`-json`): one JSON message per line.
//!
//! Each line becomes at most one [`Event`] for the reporter, and what the
//! caller needs afterwards (diagnostics, the change summary, the planned
//! changes) is kept in a [`Transcript`]. Unknown message types and fields are
//! ignored, as the UI's compatibility promise asks (minor versions add them).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::progress::{Event, Level};

pub(crate) const PHASE: &str = "terraform";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One of Terraform's diagnostics, with its text exactly as Terraform wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub summary: String,
    #[serde(default)]
    pub detail: String,
    /// The resource it concerns, when Terraform names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl std::fmt::Display for Diagnostic {
    /// The way Terraform prints it: `Error: summary`, then the detail.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let label = match self.severity {
            Severity::Error => "Error",
            Severity::Warning => "Warning",
        };
        write!(f, "{label}: {}", self.summary)?;
        if let Some(address) = &self.address {
            write!(f, "\n\n  with {address}")?;
        }
        if !self.detail.is_empty() {
            write!(f, "\n\n{}", self.detail)?;
        }
        Ok(())
    }
}

/// Counts from Terraform's `change_summary` message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    #[serde(default)]
    pub add: u64,
    #[serde(default)]
    pub change: u64,
    #[serde(default, rename = "remove")]
    pub destroy: u64,
    #[serde(default)]
    pub import: u64,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }
}

/// What a plan would do to one resource instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedChange {
    pub address: String,
    /// Terraform's action: `create`, `update`, `delete`, `replace`, `read`,
    /// `move`, `import`, `remove`, …
    pub action: String,
}

/// Everything of a run's output that outlives the progress events.
#[derive(Debug, Default)]
pub(crate) struct Transcript {
    pub diagnostics: Vec<Diagnostic>,
    pub changes: Option<Changes>,
    pub planned: Vec<PlannedChange>,
    /// Lines that were not JSON messages (old Terraform, a crash trace).
    pub other: Vec<String>,
}

impl Transcript {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    /// Reads one line of `-json` output, returning the event it reports.
    pub fn read_line(&mut self, command: &str, line: &str) -> Option<Event> {
        let line = line.trim_end();
        if line.is_empty() {
            return None;
        }
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            self.other.push(line.to_string());
            return None;
        };
        let kind = message["type"].as_str().unwrap_or_default();
        let text = message["@message"].as_str().unwrap_or_default();
        let event = |level: Level| Event::new(PHASE, level, text).with("command", command);
        match kind {
            "diagnostic" => {
                let diagnostic: Diagnostic =
                    serde_json::from_value(message["diagnostic"].clone()).ok()?;
                let reported = (diagnostic.severity == Severity::Warning)
                    .then(|| Event::warn(PHASE, diagnostic.to_string()).with("command", command));
                self.diagnostics.push(diagnostic);
                reported
            }
            "change_summary" => {
                self.changes = serde_json::from_value(message["changes"].clone()).ok();
                let changes = self.changes.unwrap_or_default();
                Some(event(Level::Info).with("changes", changes))
            }
            "planned_change" => {
                let change = &message["change"];
                let planned = PlannedChange {
                    address: change["resource"]["addr"].as_str()?.to_string(),
                    action: change["action"].as_str()?.to_string(),
                };
                let reported = event(Level::Debug)
                    .with("address", &planned.address)
                    .with("action", &planned.action);
                self.planned.push(planned);
                Some(reported)
            }
            "apply_start" | "apply_progress" | "apply_complete" | "apply_errored" => {
                let hook = &message["hook"];
                let action = hook["action"].as_str().unwrap_or_default();
                // Reading data sources during plan is routine and quick.
                let level = match (kind, action) {
                    (_, "read") => Level::Debug,
                    ("apply_errored", _) => Level::Warn,
                    _ => Level::Info,
                };
                let mut reported = event(level)
                    .with(
                        "address",
                        hook["resource"]["addr"].as_str().unwrap_or_default(),
                    )
                    .with("action", action)
                    .with("status", kind.trim_start_matches("apply_"));
                if let Some(elapsed) = hook["elapsed_seconds"].as_u64() {
                    reported = reported.with("elapsed_seconds", elapsed);
                }
                if let Some(id) = hook["id_value"].as_str() {
                    reported = reported.with("id", id);
                }
                // "Still creating... [10s elapsed]" only moves the clock.
                if kind == "apply_progress" {
                    reported = reported.passing();
                }
                Some(reported)
            }
            "version"
            | "log"
            | "init_output"
            | "resource_drift"
            | "outputs"
            | "refresh_start"
            | "refresh_complete"
            | "provision_start"
            | "provision_progress"
            | "provision_complete"
            | "provision_errored"
            | "ephemeral_op_start"
            | "ephemeral_op_progress"
            | "ephemeral_op_complete"
            | "ephemeral_op_errored" => Some(event(Level::Debug).with("type", kind)),
            _ => None,
        }
    }
}

/// Who holds a Terraform state lock: the `Lock Info:` block of the
/// "Error acquiring the state lock" diagnostic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LockInfo {
    pub id: String,
    pub path: String,
    pub operation: String,
    pub who: String,
    pub version: String,
    pub created: String,
}

pub(crate) const LOCK_SUMMARY: &str = "Error acquiring the state lock";

impl LockInfo {
    /// The lock holder named in `diagnostic`, if it is a lock conflict.
    pub(crate) fn from_diagnostic(diagnostic: &Diagnostic) -> Option<LockInfo> {
        if !diagnostic.summary.contains(LOCK_SUMMARY) {
            return None;
        }
        let mut info = LockInfo::default();
        let block = diagnostic.detail.split("Lock Info:").nth(1)?;
        for line in block.lines() {
            let Some((key, value)) = line.trim().split_once(':') else {
                if line.trim().is_empty() && !info.id.is_empty() {
                    break;
                }
                continue;
            };
            let value = value.trim().to_string();
            match key.trim() {
                "ID" => info.id = value,
                "Path" => info.path = value,
                "Operation" => info.operation = value,
                "Who" => info.who = value,
                "Version" => info.version = value,
                "Created" => info.created = value,
                _ => {}
            }
        }
        Some(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(transcript: &mut Transcript, json: Value) -> Option<Event> {
        transcript.read_line("apply", &json.to_string())
    }

    #[test]
    fn hooks_become_progress_with_address_and_elapsed_time() {
        let mut t = Transcript::default();
        let event = read(
            &mut t,
            serde_json::json!({
                "@level": "info",
                "@message": "module.network.aws_vpc.this: Still creating... [10s elapsed]",
                "type": "apply_progress",
                "hook": {
                    "resource": { "addr": "module.network.aws_vpc.this" },
                    "action": "create",
                    "elapsed_seconds": 10
                }
            }),
        )
        .unwrap();
        assert_eq!(event.level, Level::Info);
        assert_eq!(event.fields["address"], "module.network.aws_vpc.this");
        assert_eq!(event.fields["action"], "create");
        assert_eq!(event.fields["status"], "progress");
        assert_eq!(event.fields["elapsed_seconds"], 10);
        assert!(event.message.contains("Still creating"));
        assert!(event.passing, "a tick replaces the live line");

        let read_data = read(
            &mut t,
            serde_json::json!({
                "type": "apply_start", "@message": "data.x: Refreshing...",
                "hook": { "resource": { "addr": "data.x" }, "action": "read" }
            }),
        )
        .unwrap();
        assert_eq!(read_data.level, Level::Debug);
    }

    #[test]
    fn keeps_summary_planned_changes_and_diagnostics() {
        let mut t = Transcript::default();
        read(
            &mut t,
            serde_json::json!({
                "type": "planned_change", "@message": "aws_vpc.this: Plan to create",
                "change": { "resource": { "addr": "aws_vpc.this" }, "action": "create" }
            }),
        );
        read(
            &mut t,
            serde_json::json!({
                "type": "change_summary", "@message": "Plan: 1 to add, 0 to change, 2 to destroy.",
                "changes": { "add": 1, "change": 0, "import": 0, "remove": 2, "operation": "plan" }
            }),
        );
        let warning = read(
            &mut t,
            serde_json::json!({
                "type": "diagnostic", "@message": "Warning: deprecated",
                "diagnostic": { "severity": "warning", "summary": "deprecated", "detail": "use y" }
            }),
        )
        .unwrap();
        assert_eq!(warning.level, Level::Warn);
        assert!(
            read(
                &mut t,
                serde_json::json!({
                    "type": "diagnostic",
                    "diagnostic": { "severity": "error", "summary": "boom", "detail": "line 1\n  line 2", "address": "aws_vpc.this" }
                }),
            )
            .is_none(),
            "errors surface through the returned error, not as events"
        );
        assert!(read(&mut t, serde_json::json!({ "type": "something_new" })).is_none());
        t.read_line("plan", "panic: not json");

        assert_eq!(
            t.changes,
            Some(Changes {
                add: 1,
                change: 0,
                destroy: 2,
                import: 0
            })
        );
        assert_eq!(
            t.planned,
            vec![PlannedChange {
                address: "aws_vpc.this".into(),
                action: "create".into()
            }]
        );
        let errors: Vec<String> = t.errors().map(|d| d.to_string()).collect();
        assert_eq!(
            errors,
            vec!["Error: boom\n\n  with aws_vpc.this\n\nline 1\n  line 2"]
        );
        assert_eq!(t.other, vec!["panic: not json"]);
    }

    #[test]
    fn parses_the_lock_holder() {
        let diagnostic = Diagnostic {
            severity: Severity::Error,
            summary: "Error acquiring the state lock".into(),
            detail: "Error message: operation error S3: PutObject, https response error StatusCode: 412, api error PreconditionFailed\nLock Info:\n  ID:        3f5e1c2a-0d4b-4c1e-9a7e-2b1d5c6e7f80\n  Path:      terrace-state/clusters/c/terraform.tfstate\n  Operation: OperationTypeApply\n  Who:       ci@runner-7\n  Version:   1.11.4\n  Created:   2026-11-26 16:00:00.123456 +0000 UTC\n  Info:      \n\n\nTerraform acquires a state lock to protect the state from being written\nby multiple users at the same time.".into(),
            address: None,
        };
        let lock = LockInfo::from_diagnostic(&diagnostic).unwrap();
        assert_eq!(lock.id, "3f5e1c2a-0d4b-4c1e-9a7e-2b1d5c6e7f80");
        assert_eq!(lock.who, "ci@runner-7");
        assert_eq!(lock.operation, "OperationTypeApply");
        assert_eq!(lock.created, "2026-11-26 16:00:00.123456 +0000 UTC");
        assert_eq!(lock.path, "terrace-state/clusters/c/terraform.tfstate");
        let other = Diagnostic {
            summary: "Invalid provider".into(),
            ..diagnostic
        };
        assert_eq!(LockInfo::from_diagnostic(&other), None);
    }
}
