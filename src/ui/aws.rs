//! How the AWS commands' results look: preflight checks, the state bucket,
//! kubeconfig entries, cluster lists and status. The ExecCredential of
//! `terrace token` is a protocol answer for kubectl, printed as JSON
//! whatever `--output` says.

use std::io::Write;

use serde_json::json;

use super::Printer;
use crate::aws::discovery::{ClusterStatus, Listing};
use crate::aws::kubeconfig::Written;
use crate::aws::preflight::PreflightReport;
use crate::aws::state::StateBucket;
use crate::aws::token::ExecCredential;
use crate::cli::OutputFormat;

impl Printer {
    /// A warning: stderr as text, a JSON event in JSON mode.
    pub fn warning(&self, message: &str) {
        match self.format {
            OutputFormat::Json => self.json(json!({ "event": "warning", "message": message })),
            OutputFormat::Text => self.above(&format!("warning: {message}")),
        }
    }

    pub fn preflight(&self, report: &PreflightReport) {
        match self.format {
            OutputFormat::Json => self.json(json!({ "event": "preflight", "report": report })),
            OutputFormat::Text => {
                self.line(&format!(
                    "Preflight for {} in {}:",
                    report.cluster, report.region
                ));
                let width = report
                    .checks
                    .iter()
                    .map(|c| c.name.len())
                    .max()
                    .unwrap_or(0);
                for check in &report.checks {
                    let mark = if check.passed { "ok  " } else { "FAIL" };
                    let mut line = format!("  {mark} {:<width$}  {}", check.name, check.detail);
                    if let Some(remedy) = &check.remedy {
                        line.push_str(&format!(" — {remedy}"));
                    }
                    self.line(&line);
                }
                if report.passed {
                    self.line("All checks passed.");
                }
            }
        }
    }

    pub fn state_bucket(&self, bucket: &StateBucket) {
        match self.format {
            OutputFormat::Json => self.json(json!({
                "event": "state-bucket",
                "bucket": bucket,
                "changed": bucket.changed(),
            })),
            OutputFormat::Text => {
                let what = if bucket.created {
                    "created".to_string()
                } else if bucket.fixed.is_empty() {
                    "no change".to_string()
                } else {
                    format!(
                        "fixed {}",
                        bucket
                            .fixed
                            .iter()
                            .map(|s| s.describe())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                self.line(&format!(
                    "State bucket {} ({}): {what}",
                    bucket.name, bucket.region
                ));
                if self.verbosity > 0 {
                    self.line(&format!(
                        "  versioning on, encryption {}, public access blocked, TLS only, noncurrent versions expire after {} days",
                        bucket.encryption,
                        crate::aws::state::NONCURRENT_DAYS
                    ));
                }
            }
        }
    }

    /// The exec-plugin answer kubectl reads from stdout.
    pub fn exec_credential(&self, credential: &ExecCredential) {
        if let Ok(text) = serde_json::to_string(credential) {
            let _ = writeln!(std::io::stdout().lock(), "{text}");
        }
    }

    pub fn kubeconfig_written(&self, written: &Written) {
        match self.format {
            OutputFormat::Json => self.json(json!({ "event": "kubeconfig", "result": written })),
            OutputFormat::Text => self.line(&if written.changed {
                format!(
                    "Wrote context {} to {} (now the current context)",
                    written.context,
                    written.path.display()
                )
            } else {
                format!(
                    "Context {} in {} is up to date",
                    written.context,
                    written.path.display()
                )
            }),
        }
    }

    pub fn cluster_list(&self, listing: &Listing) {
        for failure in &listing.failures {
            self.warning(&format!("{}: {}", failure.region, failure.message));
        }
        match self.format {
            OutputFormat::Json => self.json(json!({
                "event": "clusters",
                "regions": listing.regions,
                "clusters": listing.clusters,
                "failures": listing.failures,
            })),
            OutputFormat::Text => {
                if listing.clusters.is_empty() {
                    self.line(&format!(
                        "No Terrace clusters in {} region(s).",
                        listing.regions.len()
                    ));
                    return;
                }
                let header = ["NAME", "REGION", "VERSION", "STATUS", "AGE"];
                let rows: Vec<[String; 5]> = listing
                    .clusters
                    .iter()
                    .map(|c| {
                        [
                            c.name.clone(),
                            c.region.clone(),
                            c.version.clone().unwrap_or_else(|| "-".into()),
                            c.status.clone(),
                            c.age_seconds.map(age).unwrap_or_else(|| "-".into()),
                        ]
                    })
                    .collect();
                self.table(&header, &rows);
            }
        }
    }

    pub fn cluster_status(&self, status: &ClusterStatus) {
        match self.format {
            OutputFormat::Json => self.json(json!({ "event": "status", "cluster": status })),
            OutputFormat::Text => {
                let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                self.line(&format!("{} ({})", status.name, status.region));
                self.line(&format!("  status     {}", status.status));
                self.line(&format!(
                    "  version    {} ({})",
                    dash(&status.version),
                    dash(&status.platform_version)
                ));
                self.line(&format!("  endpoint   {}", dash(&status.endpoint)));
                self.line(&format!("  created    {}", dash(&status.created_at)));
                if !status.managed_by_terrace {
                    self.line("  owner      not managed by Terrace (no terrace.dev tags)");
                }
                if status.keep {
                    self.line("  janitor    keep (never removed)");
                } else if let Some(at) = &status.expires_at {
                    self.line(&format!("  expires    {at}"));
                }
                if status.node_groups.is_empty() {
                    self.line("  node groups: none");
                }
                for ng in &status.node_groups {
                    let size = match (ng.min, ng.desired, ng.max) {
                        (Some(min), Some(desired), Some(max)) => {
                            format!("{desired} nodes ({min}..{max})")
                        }
                        _ => "size unknown".into(),
                    };
                    let health = if ng.healthy { "healthy" } else { "unhealthy" };
                    self.line(&format!(
                        "  node group {}: {} {health}, {size}, {}",
                        ng.name,
                        ng.status,
                        ng.instance_types.join(",")
                    ));
                    for issue in &ng.issues {
                        self.line(&format!("    {issue}"));
                    }
                }
            }
        }
    }
}

/// `45s`, `12m`, `5h`, `3d4h`.
pub(super) fn age(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::age;

    #[test]
    fn ages() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(600), "10m");
        assert_eq!(age(7200), "2h");
        assert_eq!(age(3 * 86_400 + 4 * 3600 + 59), "3d4h");
    }
}
