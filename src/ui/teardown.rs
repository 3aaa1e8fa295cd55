//! How teardown's reports look: the drain, the sweep inventory (`down
//! --plan`), the sweep, the leak report and the janitor's findings. JSON
//! mode prints each report as one object, named by its `event`.

use serde_json::json;

use super::Printer;
use super::aws::age;
use crate::cli::OutputFormat;
use crate::teardown::drain::DrainReport;
use crate::teardown::janitor::{JanitorReport, Reason, Stale, StaleKind};
use crate::teardown::{Inventory, Item, LeakReport, SweepReport};

fn item_line(item: &Item) -> String {
    match &item.name {
        Some(name) => format!("  {:<18} {}  ({name})", item.kind.as_str(), item.id),
        None => format!("  {:<18} {}", item.kind.as_str(), item.id),
    }
}

impl Printer {
    pub fn drain_report(&self, report: &DrainReport) {
        match self.format {
            OutputFormat::Json => self.json(json!({ "event": "drain", "report": report })),
            OutputFormat::Text => {
                self.line(&format!(
                    "Drain: paused {} Argo CD Application(s), deleted {} object(s)",
                    report.paused.len(),
                    report.deleted.len()
                ));
                if self.verbosity > 0 {
                    for object in &report.deleted {
                        let ns = object
                            .namespace
                            .as_deref()
                            .map(|n| format!("{n}/"))
                            .unwrap_or_default();
                        self.line(&format!("  deleted {} {ns}{}", object.kind, object.name));
                    }
                }
                for wait in &report.waits {
                    let state = if wait.completed { "gone" } else { "TIMED OUT" };
                    self.line(&format!(
                        "  {:<24} {state} after {:.1} s",
                        wait.what,
                        wait.elapsed_ms as f64 / 1000.0
                    ));
                }
                for warning in &report.warnings {
                    self.warning(warning);
                }
            }
        }
    }

    /// What a sweep would delete (`down --plan`); `who` names which one.
    pub fn inventory(&self, who: &str, inventory: &Inventory) {
        match self.format {
            OutputFormat::Json => {
                self.json(json!({ "event": "inventory", "inventory": inventory }))
            }
            OutputFormat::Text => {
                if inventory.is_empty() {
                    self.line(&format!(
                        "{who} would delete nothing of {} in {}.",
                        inventory.cluster, inventory.region
                    ));
                } else {
                    self.line(&format!(
                        "{who} would delete {} resource(s) of {} in {}:",
                        inventory.items.len(),
                        inventory.cluster,
                        inventory.region
                    ));
                    for item in &inventory.items {
                        self.line(&item_line(item));
                    }
                }
                for r in &inventory.references {
                    self.line(&format!(
                        "  and revoke the rule of {} that refers to {}",
                        r.group_id, r.referenced_group_id
                    ));
                }
                for item in &inventory.kept {
                    self.line(&format!("  kept {}", item_line(item).trim_start()));
                }
                for warning in &inventory.warnings {
                    self.warning(warning);
                }
            }
        }
    }

    pub fn sweep_report(&self, report: &SweepReport) {
        match self.format {
            OutputFormat::Json => self.json(json!({ "event": "sweep", "report": report })),
            OutputFormat::Text => {
                self.line(&format!(
                    "Sweep of {} in {}: deleted {}, kept {}, failed {} ({} AWS calls, {:.1} s)",
                    report.cluster,
                    report.region,
                    report.deleted.len(),
                    report.kept.len(),
                    report.failed.len(),
                    report.total_calls,
                    report.elapsed_ms as f64 / 1000.0
                ));
                if self.verbosity > 0 {
                    for item in &report.deleted {
                        self.line(&item_line(item));
                    }
                }
                for failure in &report.failed {
                    self.line(&format!("{}: {}", item_line(&failure.item), failure.error));
                }
                for warning in &report.warnings {
                    self.warning(warning);
                }
            }
        }
    }

    pub fn leak_report(&self, report: &LeakReport) {
        match self.format {
            OutputFormat::Json => self.json(json!({
                "event": "leaks",
                "clean": report.is_clean(),
                "report": report,
            })),
            OutputFormat::Text => {
                if report.is_clean() {
                    self.line(&format!(
                        "Verified: nothing of {} is left in {}.",
                        report.cluster, report.region
                    ));
                } else {
                    self.line(&format!(
                        "{} resource(s) of {} are still in {}:",
                        report.leaks.len(),
                        report.cluster,
                        report.region
                    ));
                    for leak in &report.leaks {
                        self.line(&format!("  {:<18} {}", leak.kind, leak.id));
                    }
                }
                for item in &report.kept {
                    self.line(&format!("  kept {}", item_line(item).trim_start()));
                }
                for warning in &report.warnings {
                    self.warning(warning);
                }
            }
        }
    }

    pub fn janitor(&self, report: &JanitorReport) {
        for failure in &report.failures {
            self.warning(&format!("{}: {}", failure.region, failure.message));
        }
        match self.format {
            OutputFormat::Json => self.json(json!({ "event": "janitor", "report": report })),
            OutputFormat::Text => {
                let limit = age(report.older_than_seconds);
                if report.stale.is_empty() {
                    self.line(&format!(
                        "Nothing expired or older than {limit} in {} region(s).",
                        report.regions.len()
                    ));
                } else {
                    let header = ["KIND", "CLUSTER", "REGION", "AGE", "WHY", "RESOURCES"];
                    let rows: Vec<[String; 6]> = report.stale.iter().map(row).collect();
                    self.table(&header, &rows);
                }
                for kept in &report.kept {
                    self.line(&format!(
                        "kept: {} in {} (tagged terrace.dev/keep=true; never removed)",
                        kept.cluster, kept.region
                    ));
                }
                if !report.undated.is_empty() {
                    self.line(&format!(
                        "{} orphan group(s) with no creation time to judge (not reported as stale):",
                        report.undated.len()
                    ));
                    for stale in &report.undated {
                        self.line(&format!(
                            "  {} in {}: {} resource(s)",
                            stale.cluster,
                            stale.region,
                            stale.resources.len()
                        ));
                    }
                }
            }
        }
    }
}

fn row(stale: &Stale) -> [String; 6] {
    [
        match stale.kind {
            StaleKind::Cluster => "cluster".into(),
            StaleKind::Orphan => "orphan".into(),
        },
        stale.cluster.clone(),
        stale.region.clone(),
        stale.age_seconds.map(age).unwrap_or_else(|| "-".into()),
        match (stale.reason, &stale.expires_at) {
            (Reason::Expired, Some(at)) => format!("expired {at}"),
            (Reason::Expired, None) => "expired".into(),
            (Reason::Older, _) => "older than the limit".into(),
            (Reason::Kept, _) => "kept".into(),
        },
        if stale.kind == StaleKind::Cluster {
            "-".into()
        } else {
            stale.resources.len().to_string()
        },
    ]
}
