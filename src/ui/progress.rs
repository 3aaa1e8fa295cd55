//! Progress events, as a person or CI sees them. Every event is keyed by
//! the cluster it comes from: [`Printer`] itself reports for the one
//! cluster of a command (key `""`, and JSON events without a cluster, as
//! they always were), [`ClusterProgress`] for one member of a fleet: its
//! own live line, its name before its plain lines, its cluster and region
//! in its JSON events, and every event in its log file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::Printer;
use crate::cli::OutputFormat;
use crate::cluster::Prompt;
use crate::progress::{Event, Level, Reporter, timestamp};

/// The reporter of one cluster among several: its events drive that
/// cluster's live line, and its lines and JSON events carry its name.
pub struct ClusterProgress<'a> {
    printer: &'a Printer,
    cluster: String,
    region: String,
    log: Option<Mutex<Log>>,
}

/// A member's log: every event as a timestamped line, a passing state only
/// when it changed.
struct Log {
    file: File,
    passing: BTreeMap<String, String>,
}

impl Printer {
    /// A reporter for `cluster` in `region`, one of several running in this
    /// process, which also writes its events to `log`.
    pub fn member_progress(
        &self,
        cluster: &str,
        region: &str,
        log: Option<File>,
    ) -> ClusterProgress<'_> {
        ClusterProgress {
            printer: self,
            cluster: cluster.to_string(),
            region: region.to_string(),
            log: log.map(|file| {
                Mutex::new(Log {
                    file,
                    passing: BTreeMap::new(),
                })
            }),
        }
    }

    fn progress(&self, cluster: &str, region: &str, event: Event) {
        let shown = match event.level {
            Level::Debug => self.verbosity > 0,
            Level::Info => self.verbosity >= 0,
            Level::Warn => true,
        };
        match self.format {
            OutputFormat::Json => {
                let mut value = json!({
                    "ts": timestamp(crate::cluster::journal::now_ms()),
                    "event": "progress",
                    "phase": event.phase,
                    "level": event.level,
                    "message": event.message,
                });
                if let Value::Object(map) = &mut value {
                    if !cluster.is_empty() {
                        map.insert("cluster".into(), cluster.into());
                        map.insert("region".into(), region.into());
                    }
                    for (k, v) in &event.fields {
                        map.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                // JSON consumers filter for themselves: every event goes out.
                self.json(value);
            }
            OutputFormat::Text if !shown => {}
            OutputFormat::Text => match &self.live {
                Some(live) => {
                    if !event.passing {
                        live.print(&step(cluster, &event));
                    }
                    live.show(cluster, &event.phase, &event.message);
                }
                None => {
                    if event.passing && !self.changed(cluster, &event) {
                        return;
                    }
                    let ts = timestamp(crate::cluster::journal::now_ms());
                    let _ = writeln!(std::io::stderr().lock(), "{ts} {}", step(cluster, &event));
                }
            },
        }
    }

    /// Whether a passing state differs from the last one printed for its
    /// cluster and phase (a wait polled again prints nothing new).
    fn changed(&self, cluster: &str, event: &Event) -> bool {
        let Ok(mut last) = self.passing.lock() else {
            return true;
        };
        let key = (cluster.to_string(), event.phase.clone());
        if last.get(&key) == Some(&event.message) {
            return false;
        }
        last.insert(key, event.message.clone());
        true
    }
}

/// One event as a line (`  terraform  aws_vpc.this: Creation complete`);
/// the further lines of a multi-line message are indented under its first.
fn step(cluster: &str, event: &Event) -> String {
    let marker = match event.level {
        Level::Warn if !event.message.starts_with("Warning:") => "warning: ",
        _ => "",
    };
    let head = if cluster.is_empty() {
        format!("  {:<10} ", event.phase)
    } else {
        format!("  {cluster} {:<10} ", event.phase)
    };
    let indent = " ".repeat(head.chars().count());
    let mut text = String::new();
    for (i, line) in event.message.trim_end().lines().enumerate() {
        match (i, line.trim_end()) {
            (0, line) => text.push_str(&format!("{head}{marker}{line}")),
            (_, "") => text.push('\n'),
            (_, line) => text.push_str(&format!("\n{indent}{line}")),
        }
    }
    if text.is_empty() {
        text = head.trim_end().to_string();
    }
    text
}

impl Reporter for Printer {
    fn report(&self, event: Event) {
        self.progress("", "", event);
    }
}

impl Reporter for ClusterProgress<'_> {
    fn report(&self, event: Event) {
        if let Some(Ok(mut log)) = self.log.as_ref().map(Mutex::lock) {
            log.write(&event);
        }
        self.printer.progress(&self.cluster, &self.region, event);
    }
}

impl Log {
    fn write(&mut self, event: &Event) {
        if event.passing {
            if self.passing.get(&event.phase) == Some(&event.message) {
                return;
            }
            self.passing
                .insert(event.phase.clone(), event.message.clone());
        }
        let ts = timestamp(crate::cluster::journal::now_ms());
        let _ = writeln!(self.file, "{ts} {}", step("", event));
    }
}

impl Prompt for ClusterProgress<'_> {
    fn ask(&self, question: &str) -> tokio::sync::oneshot::Receiver<bool> {
        self.printer.ask(&format!("{}: {question}", self.cluster))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_line_warning_is_indented_under_its_first_line() {
        let event = Event::warn(
            "terraform",
            "Warning: Incomplete lock file information for providers\n\nDue to your customized provider installation methods,\nTerraform was forced to calculate lock file checksums\n",
        );
        assert_eq!(
            step("", &event),
            "  terraform  Warning: Incomplete lock file information for providers\n\n             Due to your customized provider installation methods,\n             Terraform was forced to calculate lock file checksums"
        );
        let other = Event::warn("drain", "1 Service left");
        assert_eq!(
            step("eu", &other),
            "  eu drain      warning: 1 Service left"
        );
    }
}
