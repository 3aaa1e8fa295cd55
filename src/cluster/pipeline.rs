//! Running phases in order: journaling, skipping on resume, timing, and
//! stopping when asked to. Shared by `up` and `down`; the phases themselves
//! and their order live in `up.rs` and `down.rs`.
//!
//! A run resumes when the previous run of the same command did not finish
//! (and `--restart` was not given); otherwise it starts a fresh journal
//! section. Only phases a command marks skippable are ever skipped, and
//! only when resuming, done, and with unchanged inputs.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;

use super::journal::{Journal, JournalError, Section, Status};
use super::lock::Lock;
use super::{ClusterError, work_dir};
use crate::config::{ClusterSpec, Request};
use crate::progress::{Event, Reporter};
use crate::terraform::Interrupt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ran,
    /// Finished in an earlier run with the same inputs.
    Skipped,
    Failed,
    Interrupted,
}

/// One phase in a run's summary.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub phase: &'static str,
    pub outcome: Outcome,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// How a phase reacts to Ctrl-C.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInterrupt {
    /// Drop the phase's work at once (it holds nothing that needs cleanup).
    Stop,
    /// The phase handles the interrupt itself (Terraform must release its
    /// lock, so the runner passes SIGINT on and waits).
    Delegate,
}

/// What the `resolve` phase both commands begin with gives the rest.
pub struct Started<'a> {
    pub spec: ClusterSpec,
    /// Absolute: Terraform runs in `dir/terraform` and must find its data
    /// directory and plan file whatever the current directory is.
    pub dir: PathBuf,
    /// Held for the whole run.
    pub lock: Lock,
    pub pipeline: Pipeline<'a>,
}

/// How a run treats the journal it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalMode {
    /// Resume an unfinished previous run, else start a fresh section.
    Resume,
    /// Start a fresh section whatever the journal says (`--restart`); a
    /// journal that cannot be read is replaced.
    Restart,
    /// Read it, never write it (a dry run).
    ReadOnly,
}

/// Resolves the spec, takes the local lock for `command` and opens the
/// journal; `last` is the phase that ends a finished run.
pub fn start<'a>(
    request: &Request,
    section: Section,
    command: &str,
    last: &str,
    mode: JournalMode,
    reporter: &'a dyn Reporter,
    interrupt: Interrupt,
) -> Result<Started<'a>, ClusterError> {
    let started = Instant::now();
    let spec = super::spec(request)?;
    let dir = std::path::absolute(work_dir(&spec.name))
        .map_err(|e| ClusterError::Io("the work directory", e))?;
    let lock = Lock::acquire(&dir, &spec.name, command)?;
    let mut journal = match (Journal::load(&dir), mode) {
        (Ok(journal), _) => journal,
        (Err(JournalError::Corrupt { .. }), JournalMode::Restart) => Journal::fresh(&dir),
        (Err(e), _) => return Err(e.into()),
    };
    if mode == JournalMode::ReadOnly {
        journal.read_only();
    }
    let mut pipeline = Pipeline::new(
        journal,
        section,
        last,
        mode == JournalMode::Restart,
        reporter,
        interrupt,
    )?;
    if pipeline.resuming() {
        reporter.report(Event::info(
            "resolve",
            "resuming the unfinished previous run (--restart starts over)",
        ));
    }
    pipeline.record("resolve", started)?;
    Ok(Started {
        spec,
        dir,
        lock,
        pipeline,
    })
}

/// The journal, shared with a phase that records something while it runs
/// (the state lock Terraform took).
#[derive(Debug, Clone)]
pub struct SharedJournal(Arc<Mutex<Journal>>);

impl SharedJournal {
    pub fn lock(&self) -> MutexGuard<'_, Journal> {
        // A panic while holding it cannot leave a half-written file (writes
        // are atomic renames), so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Pipeline<'a> {
    section: Section,
    journal: SharedJournal,
    /// The previous run of this command did not finish: finished phases
    /// with unchanged inputs are skipped.
    resume: bool,
    reporter: &'a dyn Reporter,
    interrupt: Interrupt,
    pub phases: Vec<PhaseReport>,
}

impl<'a> Pipeline<'a> {
    /// `last` is the final phase of the command: the previous run finished
    /// when the journal has it done. `restart` never resumes.
    pub fn new(
        mut journal: Journal,
        section: Section,
        last: &str,
        restart: bool,
        reporter: &'a dyn Reporter,
        interrupt: Interrupt,
    ) -> Result<Pipeline<'a>, ClusterError> {
        let started = journal.get(section, "resolve").is_some();
        let finished = journal.section(section).finished
            || journal
                .get(section, last)
                .is_some_and(|r| r.status == Status::Done);
        let resume = started && !finished && !restart;
        journal.begin(section, &super::journal::new_run_id(), resume)?;
        Ok(Pipeline {
            section,
            journal: SharedJournal(Arc::new(Mutex::new(journal))),
            resume,
            reporter,
            interrupt,
            phases: Vec::new(),
        })
    }

    /// Records that this run ended successfully, so the next one does not
    /// resume it.
    pub fn complete(&mut self) -> Result<(), ClusterError> {
        Ok(self.journal.lock().finished(self.section)?)
    }

    /// The journal, for a phase that writes to it while it runs.
    pub fn journal(&self) -> SharedJournal {
        self.journal.clone()
    }

    pub fn resuming(&self) -> bool {
        self.resume
    }

    /// Whether the journal has `phase` done, whatever its inputs.
    pub fn finished(&self, phase: &str) -> bool {
        self.status(phase) == Some(Status::Done)
    }

    /// What the journal says of `phase`: in this run if it ran already,
    /// else in the run being resumed.
    pub fn status(&self, phase: &str) -> Option<Status> {
        self.journal
            .lock()
            .get(self.section, phase)
            .map(|r| r.status)
    }

    /// Forgets another command's section (a finished `down` clears `up`).
    pub fn forget(&mut self, section: Section) -> Result<(), ClusterError> {
        Ok(self.journal.lock().clear(section)?)
    }

    /// Records a phase that ran before the journal could be opened.
    pub fn record(&mut self, phase: &'static str, started: Instant) -> Result<(), ClusterError> {
        {
            let mut journal = self.journal.lock();
            journal.start(self.section, phase, "")?;
            journal.finish(self.section, phase, Status::Done, None)?;
        }
        self.phases.push(PhaseReport {
            phase,
            outcome: Outcome::Ran,
            seconds: started.elapsed().as_secs_f64(),
            note: None,
        });
        Ok(())
    }

    /// Would `phase` with these inputs be skipped?
    pub fn would_skip(&self, phase: &str, inputs: &str) -> bool {
        self.resume && self.journal.lock().is_done(self.section, phase, inputs)
    }

    /// Runs `work` as `phase`, unless `skippable` (with its input hash) and
    /// already done in the run being resumed: then `Ok(None)`.
    pub async fn run<T, F>(
        &mut self,
        phase: &'static str,
        skippable: Option<&str>,
        on_interrupt: OnInterrupt,
        work: F,
    ) -> Result<Option<T>, ClusterError>
    where
        F: Future<Output = Result<T, ClusterError>>,
    {
        let inputs = skippable.unwrap_or("");
        if skippable.is_some() && self.would_skip(phase, inputs) {
            self.reporter.report(Event::info(
                phase,
                "skipped: finished in the run being resumed, inputs unchanged",
            ));
            self.phases.push(PhaseReport {
                phase,
                outcome: Outcome::Skipped,
                seconds: 0.0,
                note: None,
            });
            return Ok(None);
        }
        self.journal.lock().start(self.section, phase, inputs)?;
        self.reporter.report(
            Event::info(phase, "started")
                .with("state", "started")
                .passing(),
        );
        let started = Instant::now();
        let mut interrupt = self.interrupt.clone();
        let seen = interrupt.count();
        let result = match on_interrupt {
            OnInterrupt::Delegate => work.await,
            OnInterrupt::Stop => tokio::select! {
                result = work => result,
                _ = interrupt.exceeds(seen) => Err(ClusterError::Interrupted { phase }),
            },
        };
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(value) => {
                self.journal
                    .lock()
                    .finish(self.section, phase, Status::Done, None)?;
                self.reporter.report(
                    Event::info(
                        phase,
                        format!("done in {}", crate::duration::format(started.elapsed())),
                    )
                    .with("state", "done")
                    .with("seconds", seconds),
                );
                self.phases.push(PhaseReport {
                    phase,
                    outcome: Outcome::Ran,
                    seconds,
                    note: None,
                });
                Ok(Some(value))
            }
            Err(err) => {
                let (status, outcome, message) = if err.is_interrupt() {
                    let by = match self.interrupt.first_signal() {
                        Some(signal) => format!(" (stopped by {})", signal.name()),
                        None => String::new(),
                    };
                    (
                        Status::Interrupted,
                        Outcome::Interrupted,
                        format!("{err}{by}"),
                    )
                } else {
                    (Status::Failed, Outcome::Failed, err.to_string())
                };
                // The journal must say where the run stopped even if this
                // write fails; the phase's own error matters more.
                let _ = self
                    .journal
                    .lock()
                    .finish(self.section, phase, status, Some(message));
                self.phases.push(PhaseReport {
                    phase,
                    outcome,
                    seconds,
                    note: Some(first_line(&err.to_string())),
                });
                Err(err)
            }
        }
    }

    /// Marks a phase's result with a note for the summary (e.g. "no changes").
    pub fn note(&mut self, phase: &str, note: impl Into<String>) {
        if let Some(report) = self.phases.iter_mut().rev().find(|p| p.phase == phase) {
            report.note = Some(note.into());
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}
