//! Printing a drill (its phases, milestones, RTO verdict and what did not
//! come back) and the history of past drills.

use serde_json::json;

use super::Printer;
use crate::cli::OutputFormat;
use crate::cluster::DrillSummary;
use crate::drill::{History, Trend, human};
use crate::ops::drill::Kept;

impl Printer {
    /// The drill's report as tables, or one JSON summary object holding
    /// the report, both halves' summaries and where the report went.
    pub fn drill_summary(&self, s: &DrillSummary, kept: &Kept, ok: bool) {
        self.finish_progress();
        let r = &s.report;
        if self.format == OutputFormat::Json {
            self.json(json!({
                "event": "summary", "command": "drill",
                "ok": ok && r.passed, "summary": s, "kept": kept,
            }));
            return;
        }
        for warning in &kept.warnings {
            self.warning(warning);
        }
        self.line(&format!(
            "Drill of {} ({}) recovered as {} in {}",
            r.cluster, r.region, r.recovered_cluster, r.recovered_region
        ));
        let rows: Vec<[String; 6]> = r
            .phases
            .iter()
            .map(|p| {
                [
                    p.name.clone(),
                    format!("+{}", human(p.start)),
                    format!("+{}", human(p.end)),
                    human(p.seconds()),
                    format!("{:?}", p.outcome).to_lowercase(),
                    p.note.clone().unwrap_or_default(),
                ]
            })
            .collect();
        self.table(&["PHASE", "START", "END", "TOOK", "RESULT", "NOTE"], &rows);
        let m = &r.milestones;
        let at = |t: Option<f64>| t.map(human).unwrap_or_else(|| "-".into());
        self.line(&format!(
            "Since the recovery began: control plane {}, nodes {}, addons {}, last application {}",
            at(m.control_plane),
            at(m.nodes),
            at(m.addons),
            at(m.last_application)
        ));
        for missing in &r.not_back {
            self.line(&format!(
                "NOT BACK {}: {}",
                missing.application, missing.reason
            ));
        }
        for file in &kept.files {
            self.line(&format!("Report: {}", file.display()));
        }
        if let Some(stored) = &kept.stored {
            self.line(&format!("Stored: {stored}.{{md,svg,json}}"));
        }
        let verdict = if r.passed { "PASSED" } else { "FAILED" };
        self.line(&format!("{verdict}: {}", r.rto.verdict()));
    }

    /// Past drills, oldest first, with each RTO's change and the trend.
    pub fn drill_history(&self, h: &History) {
        if self.format == OutputFormat::Json {
            self.json(
                json!({ "event": "summary", "command": "drill history", "ok": true, "summary": h }),
            );
            return;
        }
        if h.rows.is_empty() {
            self.line("No drills recorded yet.");
            return;
        }
        let rows: Vec<[String; 6]> = h
            .rows
            .iter()
            .map(|row| {
                [
                    row.started.clone(),
                    row.recovered_region.clone(),
                    if row.recovered {
                        human(row.rto_seconds)
                    } else {
                        format!("not recovered ({})", human(row.rto_seconds))
                    },
                    human(row.target_seconds),
                    if row.passed { "passed" } else { "failed" }.to_string(),
                    row.change_seconds
                        .map(|c| {
                            let sign = if c < 0.0 { "-" } else { "+" };
                            format!("{sign}{}", human(c.abs()))
                        })
                        .unwrap_or_default(),
                ]
            })
            .collect();
        self.table(
            &[
                "STARTED",
                "RECOVERED IN",
                "RTO",
                "TARGET",
                "RESULT",
                "CHANGE",
            ],
            &rows,
        );
        let trend = match h.trend {
            Trend::Unknown => "not enough recovered drills to tell",
            Trend::Faster => "faster than the drills before",
            Trend::Slower => "slower than the drills before",
            Trend::Steady => "steady",
        };
        self.line(&format!("Trend: {trend}"));
    }
}
