//! How a fleet command looks: each member's events on its own live line
//! (or as plain lines prefixed with its name, or as JSON events carrying
//! its cluster and region), a line as each member finishes, then one table
//! for the fleet; in JSON mode each member's `summary` (and `error`), then
//! one `fleet` object that ends the stream.

use std::fs::File;
use std::time::Duration;

use serde_json::json;

use super::Printer;
use super::cluster::seconds;
use crate::cli::OutputFormat;
use crate::cluster::{
    ClusterError, DownSummary, DrillSummary, PhaseReport, RebuildSummary, UpSummary,
};
use crate::ops::drill::Kept;
use crate::ops::fleet::{Ending, FleetSummary, Job, Member, MemberStatus, ShowFleet};
use crate::progress::Reporter;
use crate::terraform::Changes;

impl ShowFleet for Printer {
    fn member(&self, cluster: &str, region: &str, log: Option<File>) -> Box<dyn Reporter + '_> {
        Box::new(self.member_progress(cluster, region, log))
    }

    fn member_up(&self, summary: &UpSummary, error: Option<&ClusterError>) {
        let verdict = match (error, summary.dry_run) {
            (None, true) => format!(
                "would add {}, change {}, destroy {}",
                summary.changes.add, summary.changes.change, summary.changes.destroy
            ),
            (None, false) if summary.no_changes => "up to date".to_string(),
            (None, false) => format!(
                "done: added {}, changed {}, destroyed {}",
                summary.changes.add, summary.changes.change, summary.changes.destroy
            ),
            (Some(_), _) => failed_in(&summary.phases),
        };
        self.member_end(
            "up",
            &summary.cluster,
            &summary.region,
            summary.seconds,
            &verdict,
            json!(summary),
            error.map(|e| format!("{e:#}")),
        );
    }

    fn member_down(&self, summary: &DownSummary, error: Option<&ClusterError>) {
        let verdict = match (error, &summary.destroyed) {
            (None, Some(d)) => format!("removed ({} destroyed)", d.destroy),
            (None, None) => "removed".to_string(),
            (Some(_), _) => failed_in(&summary.phases),
        };
        self.member_end(
            "down",
            &summary.cluster,
            &summary.region,
            summary.seconds,
            &verdict,
            json!(summary),
            error.map(|e| format!("{e:#}")),
        );
    }

    fn member_rebuild(&self, summary: &RebuildSummary, error: Option<&ClusterError>) {
        let verdict = match (error, &summary.up) {
            (None, _) if summary.kept() => "kept".to_string(),
            (None, Some(up)) => format!(
                "rebuilt: removed{}, added {}",
                summary
                    .down
                    .as_ref()
                    .and_then(|d| d.destroyed.as_ref())
                    .map_or(String::new(), |d| format!(" ({} destroyed)", d.destroy)),
                up.changes.add
            ),
            (None, None) => "rebuilt".to_string(),
            (Some(_), Some(up)) => format!("up half {}", failed_in(&up.phases)),
            (Some(_), None) => match &summary.down {
                Some(down) => format!("down half {}", failed_in(&down.phases)),
                None => "FAILED".to_string(),
            },
        };
        self.member_end(
            "rebuild",
            &summary.cluster,
            &summary.region,
            summary.seconds,
            &verdict,
            json!(summary),
            error.map(|e| format!("{e:#}")),
        );
    }

    fn member_drill(&self, summary: &DrillSummary, kept: &Kept, error: Option<&str>) {
        let r = &summary.report;
        // In JSON the warnings are in `kept`, inside the member's summary:
        // every fleet event must carry its cluster and region.
        if self.format == OutputFormat::Text {
            for warning in &kept.warnings {
                self.above(&format!("{} ({}): warning: {warning}", r.cluster, r.region));
            }
        }
        let verdict = match error {
            None => format!(
                "recovered: {} Application(s) back, RTO {}",
                r.baseline.len() - r.not_back.len(),
                seconds(r.rto.measured_seconds)
            ),
            Some(_) if !r.not_back.is_empty() => {
                format!("FAILED: {} Application(s) not back", r.not_back.len())
            }
            Some(_) => "FAILED".to_string(),
        };
        self.member_end(
            "drill",
            &r.cluster,
            &r.region,
            r.rto.measured_seconds,
            &verdict,
            json!({ "summary": summary, "kept": kept }),
            error.map(str::to_string),
        );
    }
}

fn failed_in(phases: &[PhaseReport]) -> String {
    use crate::cluster::Outcome;
    match phases
        .iter()
        .rev()
        .find(|p| matches!(p.outcome, Outcome::Failed | Outcome::Interrupted))
    {
        Some(p) if p.outcome == Outcome::Interrupted => format!("interrupted in {}", p.phase),
        Some(p) => format!("FAILED in {}", p.phase),
        None => "FAILED".to_string(),
    }
}

impl Printer {
    /// One member finished: a line above the live lines, or its summary
    /// (and its error) as JSON objects carrying its cluster and region.
    #[allow(clippy::too_many_arguments)]
    fn member_end(
        &self,
        command: &str,
        cluster: &str,
        region: &str,
        secs: f64,
        verdict: &str,
        summary: serde_json::Value,
        error: Option<String>,
    ) {
        match self.format {
            OutputFormat::Json => {
                self.json(json!({
                    "event": "summary", "command": command, "cluster": cluster,
                    "region": region, "ok": error.is_none(), "summary": summary,
                }));
                if let Some(e) = error {
                    self.json(json!({
                        "event": "error", "cluster": cluster, "region": region,
                        "problems": [e],
                    }));
                }
            }
            OutputFormat::Text if self.verbosity >= 0 => {
                self.above(&format!(
                    "{cluster} ({region}): {verdict} in {}",
                    seconds(secs)
                ));
            }
            OutputFormat::Text => {}
        }
    }

    /// The fleet's closing table (text) or its `fleet` object (JSON); a
    /// failed member's error follows the table, once, with what to do.
    pub fn fleet_summary(&self, s: &FleetSummary) {
        self.finish_progress();
        match self.format {
            OutputFormat::Json => self.json(json!({
                "event": "fleet", "command": s.command, "fleet": s.fleet, "ok": s.ok(),
                "parallel": s.parallel, "seconds": s.seconds, "clusters": s.clusters,
            })),
            OutputFormat::Text => {
                let rows: Vec<[String; 6]> = s.clusters.iter().map(row).collect();
                self.table(
                    &["CLUSTER", "REGION", "RESULT", "PHASE", "TIME", "CHANGES"],
                    &rows,
                );
                self.line(&format!(
                    "fleet {} of {}: {} cluster(s), {} at a time, in {}",
                    s.command,
                    s.fleet,
                    s.clusters.len(),
                    s.parallel,
                    seconds(s.seconds)
                ));
                let mut failed = s.clusters.iter().filter(|m| m.error.is_some()).peekable();
                if failed.peek().is_none() {
                    return;
                }
                let mut text = String::new();
                for m in failed {
                    text.push_str(&format!("{} ({}) {}:\n", m.cluster, m.region, ending(m)));
                    for line in m.error.as_deref().unwrap_or_default().lines() {
                        text.push_str(&format!("  {line}\n"));
                    }
                    text.push_str(&format!(
                        "  log: {}\n",
                        m.dir.join(crate::ops::fleet::LOG).display()
                    ));
                }
                let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), text.as_bytes());
                self.advise(Some(format!(
                    "run the same `terrace fleet {}` again: each cluster resumes where it stopped, and finished ones re-plan to no changes",
                    s.command
                )));
            }
        }
    }

    /// `fleet matrix`: `{"include":[…]}` for GitHub Actions' `fromJSON`,
    /// a `matrix` object in JSON mode, or a table.
    pub fn fleet_matrix(&self, fleet: &str, jobs: &[Job], github: bool) {
        if github {
            self.json(json!({ "include": jobs }));
            return;
        }
        match self.format {
            OutputFormat::Json => {
                self.json(json!({ "event": "matrix", "fleet": fleet, "include": jobs }))
            }
            OutputFormat::Text => {
                let rows: Vec<[String; 2]> = jobs
                    .iter()
                    .map(|j| [j.cluster.clone(), j.region.clone()])
                    .collect();
                self.table(&["CLUSTER", "REGION"], &rows);
            }
        }
    }

    /// `fleet status`: one row per member.
    pub fn fleet_status(&self, rows: &[MemberStatus]) {
        self.finish_progress();
        match self.format {
            OutputFormat::Json => self.json(json!({ "event": "fleet_status", "clusters": rows })),
            OutputFormat::Text => {
                let table: Vec<[String; 8]> = rows.iter().map(status_row).collect();
                self.table(&STATUS_HEADER, &table);
                for r in rows {
                    for p in &r.problems {
                        self.warning(&format!("{} ({}): {p}", r.cluster, r.region));
                    }
                }
            }
        }
    }
}

fn ending(m: &Member) -> String {
    match (m.result, m.phase.as_deref()) {
        (Ending::Interrupted, Some(p)) => format!("was interrupted in {p}"),
        (_, Some(p)) => format!("failed in {p}"),
        _ => "failed".to_string(),
    }
}

fn row(m: &Member) -> [String; 6] {
    let result = match m.result {
        Ending::Done => "done",
        Ending::Failed => "FAILED",
        Ending::Interrupted => "interrupted",
        Ending::NotStarted => "not started",
    };
    [
        m.cluster.clone(),
        m.region.clone(),
        result.to_string(),
        m.phase.as_deref().unwrap_or("-").to_string(),
        seconds(m.seconds),
        m.changes.as_ref().map_or("-".to_string(), changes),
    ]
}

fn changes(c: &Changes) -> String {
    format!("+{} ~{} -{}", c.add, c.change, c.destroy)
}

const STATUS_HEADER: [&str; 8] = [
    "CLUSTER", "REGION", "STATUS", "VERSION", "AGE", "TTL", "ADDONS", "DRIFT",
];

fn status_row(r: &MemberStatus) -> [String; 8] {
    let dash = || "-".to_string();
    [
        r.cluster.clone(),
        r.region.clone(),
        if r.exists {
            r.status.clone().unwrap_or_else(dash)
        } else {
            "absent".to_string()
        },
        r.version.clone().unwrap_or_else(dash),
        r.age_seconds.map_or_else(dash, super::aws::age),
        lifetime(r),
        r.addons
            .as_ref()
            .map_or_else(dash, |a| format!("{}/{}", a.healthy, a.total)),
        match r.drift {
            Some(true) => "changes".to_string(),
            Some(false) => "none".to_string(),
            None => dash(),
        },
    ]
}

/// What the janitor may do with a member: `keep`, the time left before
/// its expiry (or `expired`), else the configured TTL of one not built
/// with an expiry.
fn lifetime(r: &MemberStatus) -> String {
    match (r.keep, r.expires_in_seconds, &r.expires_at, r.ttl_seconds) {
        (true, ..) => "keep".to_string(),
        (false, Some(left), ..) if left > 0 => format!("{} left", super::aws::age(left as u64)),
        (false, Some(_), ..) => "expired".to_string(),
        (false, None, Some(at), _) => at.clone(),
        (false, None, None, Some(ttl)) => {
            format!("ttl {}", crate::duration::format(Duration::from_secs(ttl)))
        }
        (false, None, None, None) => "-".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::ops::fleet::AddonHealth;

    #[test]
    fn the_fleet_table_names_each_result_phase_and_change() {
        let m = |cluster: &str, result, phase: Option<&str>, changes| Member {
            cluster: cluster.into(),
            region: format!("{cluster}-region"),
            result,
            phase: phase.map(str::to_string),
            seconds: 75.0,
            changes,
            error: None,
            dir: PathBuf::new(),
        };
        let rows = [
            m(
                "a",
                Ending::Done,
                Some("outputs"),
                Some(Changes {
                    add: 61,
                    ..Changes::default()
                }),
            ),
            m("b", Ending::Failed, Some("terraform"), None),
            m("c", Ending::NotStarted, None, None),
        ]
        .map(|m| row(&m).join(" | "));
        insta::assert_snapshot!(rows.join("\n"));
    }

    #[test]
    fn the_status_table_says_what_the_janitor_may_do_with_each_cluster() {
        let r = |cluster: &str, exists: bool| MemberStatus {
            cluster: cluster.into(),
            region: "eu-west-1".into(),
            exists,
            status: exists.then(|| "ACTIVE".to_string()),
            version: exists.then(|| "1.34".to_string()),
            created_at: None,
            age_seconds: exists.then_some(7200),
            keep: false,
            ttl_seconds: None,
            expires_at: None,
            expires_in_seconds: None,
            addons: None,
            drift: exists.then_some(false),
            problems: Vec::new(),
        };
        let rows = [
            MemberStatus {
                keep: true,
                ..r("kept", true)
            },
            MemberStatus {
                ttl_seconds: Some(86_400),
                expires_at: Some("2026-12-04T09:00:00Z".into()),
                expires_in_seconds: Some(5 * 3600 + 120),
                addons: Some(AddonHealth {
                    healthy: 5,
                    total: 6,
                    unhealthy: vec!["karpenter".into()],
                }),
                ..r("expiring", true)
            },
            MemberStatus {
                expires_at: Some("2026-12-02T09:00:00Z".into()),
                expires_in_seconds: Some(-60),
                drift: Some(true),
                ..r("expired", true)
            },
            MemberStatus {
                ttl_seconds: Some(86_400),
                ..r("not-built", false)
            },
            r("forever", true),
        ];
        let table: Vec<String> = std::iter::once(STATUS_HEADER.join(" | "))
            .chain(rows.iter().map(|r| status_row(r).join(" | ")))
            .collect();
        insta::assert_snapshot!(table.join("\n"));
    }
}
