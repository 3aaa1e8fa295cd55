//! Printing what `up` and `down` did, and asking for approval.

use std::io::{BufRead, Write};

use serde_json::json;

use super::Printer;
use crate::cli::OutputFormat;
use crate::cluster::{DownSummary, Outcome, PhaseReport, Prompt, UnlockSummary, UpSummary};
use crate::duration;
use crate::ops::Show;

/// What operations show while they run, besides progress.
impl Show for Printer {
    fn down_summary(&self, summary: &DownSummary, ok: bool) {
        Printer::down_summary(self, summary, ok);
    }

    fn warning(&self, message: &str) {
        Printer::warning(self, message);
    }
}

impl Prompt for Printer {
    fn ask(&self, question: &str) -> tokio::sync::oneshot::Receiver<bool> {
        self.finish_progress_line();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{question} [y/N] ");
        let _ = err.flush();
        let (answer_tx, answer_rx) = tokio::sync::oneshot::channel();
        // Detached: a run stopped at the prompt exits with this thread
        // still blocked in read(2), which the exit ends.
        std::thread::spawn(move || {
            let mut answer = String::new();
            let yes = std::io::stdin().lock().read_line(&mut answer).is_ok()
                && matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes");
            let _ = answer_tx.send(yes);
        });
        answer_rx
    }
}

impl Printer {
    pub fn up_summary(&self, s: &UpSummary, ok: bool) {
        self.finish_progress();
        match self.format {
            OutputFormat::Json => {
                self.json(json!({ "event": "summary", "command": "up", "ok": ok, "summary": s }))
            }
            OutputFormat::Text => {
                let verdict = match (ok, s.dry_run, s.no_changes) {
                    (true, true, true) => "dry run: no changes".to_string(),
                    (true, true, false) => format!(
                        "dry run: terraform would add {}, change {}, destroy {}",
                        s.changes.add, s.changes.change, s.changes.destroy
                    ),
                    (true, false, true) => "up to date: no changes".to_string(),
                    (true, false, false) => format!(
                        "done: terraform added {}, changed {}, destroyed {}",
                        s.changes.add, s.changes.change, s.changes.destroy
                    ),
                    (false, ..) => "stopped".to_string(),
                };
                let verdict = match s.stopped_after {
                    Some(phase) if ok => format!("stopped after {phase}, as asked; {verdict}"),
                    _ => verdict,
                };
                if s.dry_run && self.verbosity >= 0 {
                    for planned in &s.planned {
                        self.line(&format!("  {planned}"));
                    }
                    self.line("A real run would:");
                    for (phase, action) in &s.would {
                        self.line(&format!("  {phase:<10} {action}"));
                    }
                }
                self.line(&format!(
                    "{} ({}): {verdict} in {}",
                    s.cluster,
                    s.region,
                    seconds(s.seconds)
                ));
                self.phase_table(&s.phases);
            }
        }
    }

    pub fn unlocked(&self, s: &UnlockSummary) {
        self.finish_progress();
        if self.format == OutputFormat::Json {
            self.json(json!({ "event": "summary", "command": "unlock", "ok": true, "summary": s }));
            return;
        }
        match &s.lock {
            None => self.line(&format!(
                "The Terraform state of {} in {} is not locked: nothing to release",
                s.cluster, s.region
            )),
            Some(lock) => self.line(&format!(
                "Released the Terraform state lock {} of {} in {} ({})",
                lock.lock.id,
                s.cluster,
                s.region,
                lock.describe()
            )),
        }
    }

    pub fn down_summary(&self, s: &DownSummary, ok: bool) {
        self.finish_progress();
        if self.format == OutputFormat::Json {
            self.json(json!({ "event": "summary", "command": "down", "ok": ok, "summary": s }));
            return;
        }
        if let Some(gate) = &s.gate {
            let verdict = if gate.proceed { "Terrace's" } else { "REFUSED" };
            self.line(&format!("Ownership: {verdict}: {}", gate.reason));
        }
        if let Some(plan) = &s.plan {
            if plan.terraform.is_empty() {
                self.line("terraform destroy would remove nothing (no state, or an empty one).");
            } else {
                self.line(&format!(
                    "terraform destroy would remove {} resource(s):",
                    plan.terraform.len()
                ));
                for address in &plan.terraform {
                    self.line(&format!("  {address}"));
                }
            }
            self.inventory(
                "If the drain does not complete, the pre-sweep before terraform destroy",
                &plan.pre_sweep,
            );
            self.inventory("After terraform destroy, the sweep", &plan.sweep);
            return;
        }
        if let Some(drain) = &s.drain {
            self.drain_report(drain);
        }
        for pre_sweep in &s.pre_sweeps {
            self.sweep_report(pre_sweep);
        }
        if let Some(destroyed) = &s.destroyed {
            self.line(&format!(
                "terraform destroy removed {} resource(s)",
                destroyed.destroy
            ));
        }
        if let Some(sweep) = &s.sweep {
            self.sweep_report(sweep);
        }
        if let Some(leaks) = &s.leaks {
            self.leak_report(leaks);
        }
        let verdict = if ok { "removed" } else { "stopped" };
        self.line(&format!(
            "{} ({}): {verdict} in {}",
            s.cluster,
            s.region,
            seconds(s.seconds)
        ));
        self.phase_table(&s.phases);
    }

    fn phase_table(&self, phases: &[PhaseReport]) {
        for p in phases {
            let outcome = match p.outcome {
                Outcome::Ran => "done",
                Outcome::Skipped => "skipped",
                Outcome::Failed => "FAILED",
                Outcome::Interrupted => "interrupted",
            };
            let note = p
                .note
                .as_deref()
                .map(|n| format!("  {n}"))
                .unwrap_or_default();
            self.line(&format!(
                "  {:<10} {:<12} {:>7}{note}",
                p.phase,
                outcome,
                seconds(p.seconds)
            ));
        }
    }
}

fn seconds(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.1}s")
    } else {
        duration::format(std::time::Duration::from_secs_f64(s))
    }
}
