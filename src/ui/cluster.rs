//! Printing what `up` and `down` did, and asking for approval.

use std::io::{BufRead, Write};

use serde_json::json;

use super::Printer;
use crate::cli::OutputFormat;
use crate::cluster::{
    DownSummary, Outcome, PhaseReport, Prompt, RebuildSummary, UnlockSummary, UpSummary,
};
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
                if self.verbosity >= 0 {
                    print!("{}", up_text(s, ok));
                }
                if !ok {
                    self.advise(up_advice(s));
                }
            }
        }
    }

    /// Both halves' summaries, then the rebuild's verdict; one JSON object
    /// holding both with `--output json`.
    pub fn rebuild_summary(&self, s: &RebuildSummary, ok: bool) {
        self.finish_progress();
        if self.format == OutputFormat::Json {
            self.json(json!({ "event": "summary", "command": "rebuild", "ok": ok, "summary": s }));
            return;
        }
        if let Some(decision) = &s.decision {
            self.line(&decision.reason);
        }
        if let Some(down) = &s.down {
            self.down_summary(down, ok || s.up.is_some());
        }
        if let Some(up) = &s.up {
            self.up_summary(up, ok);
        }
        let verdict = match (ok, s.kept()) {
            (true, true) => "kept",
            (true, false) => "rebuilt",
            (false, _) => "rebuild stopped; run it again to resume",
        };
        let halves = [
            ("down", s.down.as_ref().map(|d| d.seconds)),
            ("up", s.up.as_ref().map(|u| u.seconds)),
        ]
        .iter()
        .filter_map(|(half, secs)| secs.map(|t| format!("{half} {}", seconds(t))))
        .collect::<Vec<_>>();
        let halves = if halves.is_empty() {
            String::new()
        } else {
            format!(" ({})", halves.join(", "))
        };
        self.line(&format!(
            "{} ({}): {verdict} in {}{halves}",
            s.cluster,
            s.region,
            seconds(s.seconds)
        ));
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
        for line in phase_table(&s.phases) {
            self.line(&line);
        }
        if !ok {
            self.advise(down_advice(s));
        }
    }

    /// Keeps `advice` for the error that follows.
    pub(super) fn advise(&self, advice: Option<String>) {
        if let Ok(mut slot) = self.advice.lock() {
            *slot = advice;
        }
    }
}

/// `up`'s closing text: the verdict, the phase table and, after a success,
/// the next command worth running.
fn up_text(s: &UpSummary, ok: bool) -> String {
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
    let mut lines = Vec::new();
    if s.dry_run {
        lines.extend(s.planned.iter().map(|planned| format!("  {planned}")));
        lines.push("A real run would:".to_string());
        lines.extend(
            s.would
                .iter()
                .map(|(phase, action)| format!("  {phase:<10} {action}")),
        );
    }
    lines.push(format!(
        "{} ({}): {verdict} in {}",
        s.cluster,
        s.region,
        seconds(s.seconds)
    ));
    lines.extend(phase_table(&s.phases));
    if ok && let Some(next) = next_command(s) {
        lines.push(next);
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// What to run after a successful `up`: why, then the command.
fn next_command(s: &UpSummary) -> Option<String> {
    let up = format!(
        "terrace cluster up --region {} --name {}",
        s.region, s.cluster
    );
    let (why, command) = match (&s.kubeconfig, s.stopped_after) {
        _ if s.dry_run => ("to build it", up),
        (_, Some(_)) => ("to finish the remaining phases", up),
        (Some(k), None) => (
            "to use it",
            format!(
                "kubectl --kubeconfig {} --context {} get nodes",
                k.path.display(),
                k.context
            ),
        ),
        (None, None) => return None,
    };
    Some(format!("next, {why}:\n  {command}"))
}

/// What to do after `up` failed, said once after the error (one hint a line).
fn up_advice(s: &UpSummary) -> Option<String> {
    let failed = s
        .phases
        .iter()
        .rev()
        .find(|p| matches!(p.outcome, Outcome::Failed | Outcome::Interrupted))?
        .phase;
    // Before the state phase nothing exists yet: the error says it all.
    if matches!(failed, "resolve" | "preflight") {
        return None;
    }
    Some(format!(
        "run the same command again to resume at {failed} ({} keeps what finished)\nor remove what was created: terrace cluster down --region {} --name {}",
        s.dir.join("journal.json").display(),
        s.region,
        s.cluster
    ))
}

/// What to do after `down` failed.
fn down_advice(s: &DownSummary) -> Option<String> {
    (!s.cluster.is_empty()).then(|| {
        format!(
            "run the same command again: `down` resumes and removes what is left (`terrace cluster down --region {} --name {} --plan` shows it)",
            s.region, s.cluster
        )
    })
}

/// One line per phase; a failure's reason is left to the error printed
/// after the table, so it appears once.
fn phase_table(phases: &[PhaseReport]) -> Vec<String> {
    phases
        .iter()
        .map(|p| {
            let outcome = match p.outcome {
                Outcome::Ran => "done",
                Outcome::Skipped => "skipped",
                Outcome::Failed => "FAILED",
                Outcome::Interrupted => "interrupted",
            };
            let note = match (p.outcome, p.note.as_deref()) {
                (Outcome::Ran | Outcome::Skipped, Some(note)) => format!("  {note}"),
                _ => String::new(),
            };
            format!(
                "  {:<10} {:<12} {:>7}{note}",
                p.phase,
                outcome,
                seconds(p.seconds)
            )
        })
        .collect()
}

pub(super) fn seconds(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.1}s")
    } else {
        duration::format(std::time::Duration::from_secs_f64(s))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::aws::kubeconfig::Written;
    use crate::terraform::Changes;

    fn phase(
        phase: &'static str,
        outcome: Outcome,
        seconds: f64,
        note: Option<&str>,
    ) -> PhaseReport {
        PhaseReport {
            phase,
            outcome,
            seconds,
            note: note.map(str::to_string),
        }
    }

    fn summary() -> UpSummary {
        UpSummary {
            cluster: "terrace-us-east-1".into(),
            region: "us-east-1".into(),
            dir: PathBuf::from("/home/me/.terrace/terrace-us-east-1"),
            changes: Changes {
                add: 61,
                ..Changes::default()
            },
            phases: vec![
                phase("resolve", Outcome::Ran, 0.01, None),
                phase("preflight", Outcome::Ran, 1.2, None),
                phase("state", Outcome::Ran, 0.4, None),
                phase("render", Outcome::Ran, 0.05, None),
                phase("terraform", Outcome::Ran, 754.0, None),
                phase("outputs", Outcome::Ran, 3.1, None),
                phase("connect", Outcome::Ran, 0.9, None),
                phase("addons", Outcome::Ran, 212.0, None),
                phase("verify", Outcome::Ran, 1.4, None),
            ],
            seconds: 973.5,
            kubeconfig: Some(Written {
                path: PathBuf::from("/home/me/.kube/config"),
                context: "terrace-us-east-1".into(),
                changed: true,
            }),
            ..UpSummary::default()
        }
    }

    #[test]
    fn success_ends_with_the_next_command() {
        insta::assert_snapshot!(up_text(&summary(), true));
    }

    #[test]
    fn failure_names_the_failed_phase_once_and_advises_once() {
        let mut s = summary();
        s.phases.truncate(4);
        s.phases.push(phase(
            "terraform",
            Outcome::Failed,
            42.0,
            Some("terraform apply failed: Error: creating EKS Cluster"),
        ));
        s.kubeconfig = None;
        s.changes = Changes::default();
        s.seconds = 44.0;
        let error = "terraform apply failed: Error: creating EKS Cluster (terrace-us-east-1): operation error EKS: CreateCluster\n\n  with module.cluster.aws_eks_cluster.this";
        let text = format!(
            "{}{}",
            up_text(&s, false),
            super::super::error_text(&[error.to_string()], up_advice(&s).as_deref())
        );
        assert_eq!(text.matches("creating EKS Cluster").count(), 1, "{text}");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn stopping_early_or_a_dry_run_points_at_the_real_run() {
        let mut s = summary();
        s.stopped_after = Some("outputs");
        assert_eq!(
            next_command(&s).unwrap(),
            "next, to finish the remaining phases:\n  terrace cluster up --region us-east-1 --name terrace-us-east-1"
        );
        let dry = UpSummary {
            dry_run: true,
            ..summary()
        };
        assert!(
            next_command(&dry)
                .unwrap()
                .starts_with("next, to build it:")
        );
    }
}
