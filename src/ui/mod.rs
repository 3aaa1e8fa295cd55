//! The one place that prints. Commands hand results here; text goes to a
//! person, `--output json` gives one JSON object per line for CI. Errors go
//! to stderr as text, to stdout as a JSON object in JSON mode.
//!
//! Progress goes to stderr: on a terminal that can move its cursor, as the
//! live view of `live.rs`; with `NO_COLOR`, `TERM=dumb` or no terminal, as
//! plain timestamped lines; in JSON mode, as one object per event on stdout.

mod live;
mod progress;

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use serde_json::json;

use crate::addons::health::AddonStatus;
use crate::addons::{Catalog, Kind};
use crate::cli::OutputFormat;
use crate::cluster::{ClusterError, RenderSummary};
use crate::config::ConfigError;
use crate::ops::fleet::FleetFailed;

pub use progress::ClusterProgress;

mod aws;
mod cluster;
mod drill;
mod fleet;
mod teardown;

pub struct Printer {
    format: OutputFormat,
    verbosity: i8,
    /// The live view, when text goes to a terminal that can show it.
    live: Option<live::Board>,
    /// The last passing state printed per cluster and phase, so plain
    /// lines repeat none.
    passing: Mutex<std::collections::BTreeMap<(String, String), String>>,
    /// What to do about the error that follows a failed run's summary.
    advice: Mutex<Option<String>>,
}

/// Whether stderr gets the live view: a terminal that can move its cursor
/// (`TERM` set and not `dumb`), and no `NO_COLOR` asking for plain output.
fn live_view(terminal: bool, term: Option<&str>, no_color: Option<&str>) -> bool {
    terminal
        && term.is_some_and(|t| !t.is_empty() && t != "dumb")
        && no_color.is_none_or(str::is_empty)
}

impl Printer {
    pub fn new(format: OutputFormat, verbosity: i8) -> Printer {
        let live = format == OutputFormat::Text
            && verbosity >= 0
            && live_view(
                std::io::stderr().is_terminal(),
                std::env::var("TERM").ok().as_deref(),
                std::env::var("NO_COLOR").ok().as_deref(),
            );
        Printer {
            format,
            verbosity,
            live: live.then(live::Board::stderr),
            passing: Mutex::default(),
            advice: Mutex::default(),
        }
    }

    /// Ends live progress before a final summary or error is printed.
    pub fn finish_progress(&self) {
        if let Some(live) = &self.live {
            live.finish();
        }
    }

    /// Clears the live lines for a question; they come back with the next event.
    fn finish_progress_line(&self) {
        if let Some(live) = &self.live {
            live.pause();
        }
    }

    /// Text for stderr while progress may be live: above the live lines.
    fn above(&self, text: &str) {
        match &self.live {
            Some(live) => live.print(text),
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
        }
    }

    fn json(&self, value: serde_json::Value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{value}");
    }

    fn line(&self, text: &str) {
        if self.verbosity >= 0 {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
        }
    }

    pub fn rendered(&self, s: &RenderSummary) {
        match self.format {
            OutputFormat::Json => self.json(json!({ "event": "rendered", "summary": s })),
            OutputFormat::Text => {
                self.line(&format!(
                    "Rendered {} ({}) into {}",
                    s.cluster,
                    s.region,
                    s.dir.display()
                ));
                self.line(&format!("  terraform/  {} files", s.terraform_files));
                self.line(&format!("  manifests/  {} files", s.manifests.len()));
                if self.verbosity > 0 {
                    for m in &s.manifests {
                        self.line(&format!("    {m}"));
                    }
                }
            }
        }
    }

    pub fn addons(&self, catalog: &Catalog) {
        match self.format {
            OutputFormat::Json => {
                let addons: Vec<_> = catalog
                    .iter()
                    .map(|a| {
                        json!({
                            "name": a.name,
                            "description": a.description,
                            "kind": a.kind,
                            "version": a.version(),
                            "chart": a.chart,
                            "manifest": a.manifest,
                            "namespace": a.namespace,
                            "depends_on": a.depends_on,
                            "after": a.after,
                            "wave": a.wave,
                            "identity": a.has_identity(),
                            "settings": a.settings.iter().map(|(k, d)| (k.clone(), json!({
                                "allowed": d.allowed(), "default": d.default, "help": d.help,
                            }))).collect::<serde_json::Map<_, _>>(),
                        })
                    })
                    .collect();
                self.json(json!({ "addons": addons }));
            }
            OutputFormat::Text => {
                let rows: Vec<[String; 5]> = catalog
                    .iter()
                    .map(|a| {
                        let source = match (a.kind, &a.chart, &a.manifest) {
                            (Kind::Helm, Some(c), _) if c.oci => {
                                format!("oci://{}/{}", c.repo, c.name)
                            }
                            (Kind::Helm, Some(c), _) => format!("{} {}", c.repo, c.name),
                            (_, _, Some(m)) => m.url.clone(),
                            _ => String::new(),
                        };
                        [
                            a.name.clone(),
                            a.version().to_string(),
                            a.namespace.clone(),
                            if a.depends_on.is_empty() {
                                "-".into()
                            } else {
                                a.depends_on.join(",")
                            },
                            source,
                        ]
                    })
                    .collect();
                self.table(&["NAME", "VERSION", "NAMESPACE", "NEEDS", "SOURCE"], &rows);
            }
        }
    }

    /// `addons status`: one row per addon.
    pub fn addons_status(&self, rows: &[AddonStatus]) {
        match self.format {
            OutputFormat::Json => self.json(json!({
                "addons": rows,
                "healthy": rows.iter().all(|r| r.healthy),
            })),
            OutputFormat::Text => {
                let rows: Vec<[String; 5]> = rows
                    .iter()
                    .map(|r| {
                        [
                            r.name.clone(),
                            r.version.clone(),
                            r.sync.clone(),
                            r.health.clone(),
                            r.message.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                self.table(&["NAME", "VERSION", "SYNC", "HEALTH", "MESSAGE"], &rows);
            }
        }
    }

    /// Left-aligned columns, each as wide as its widest cell.
    /// Left-aligned columns, two spaces apart.
    fn table<const N: usize>(&self, header: &[&str; N], rows: &[[String; N]]) {
        let header = header.map(String::from);
        let widths: Vec<usize> = (0..N)
            .map(|i| {
                rows.iter()
                    .chain([&header])
                    .map(|r| r[i].len())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in [&header].into_iter().chain(rows.iter()) {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            self.line(cells.join("  ").trim_end());
        }
    }

    /// Prints an error, once: configuration errors one line per problem,
    /// then the advice a failed run's summary left for it.
    pub fn error(&self, err: &anyhow::Error) {
        self.finish_progress();
        let problems: Vec<String> = match config_error(err) {
            Some(config) => config.problems(),
            None => vec![format!("{err:#}")],
        };
        let advice = self.advice.lock().ok().and_then(|mut a| a.take());
        match self.format {
            // The `fleet` object already names each member that failed, and
            // ends the stream; its members' errors came before it.
            OutputFormat::Json if err.is::<FleetFailed>() => {}
            OutputFormat::Json => self.json(json!({ "event": "error", "problems": problems })),
            OutputFormat::Text => {
                let _ = write!(
                    std::io::stderr().lock(),
                    "{}",
                    error_text(&problems, advice.as_deref())
                );
            }
        }
    }
}

/// `error: …` per problem, then the advice.
fn error_text(problems: &[String], advice: Option<&str>) -> String {
    let mut text = String::new();
    for p in problems {
        text.push_str(&format!("error: {p}\n"));
    }
    for hint in advice.iter().flat_map(|a| a.lines()) {
        text.push_str(&format!("hint: {hint}\n"));
    }
    text
}

fn config_error(err: &anyhow::Error) -> Option<&ConfigError> {
    err.downcast_ref::<ConfigError>()
        .or(match err.downcast_ref::<ClusterError>() {
            Some(ClusterError::Config(c)) => Some(c),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_without_a_capable_terminal_or_with_no_color() {
        assert!(live_view(true, Some("xterm-256color"), None));
        assert!(
            live_view(true, Some("screen"), Some("")),
            "an empty NO_COLOR is unset"
        );
        assert!(!live_view(false, Some("xterm"), None), "not a terminal");
        assert!(!live_view(true, Some("dumb"), None));
        assert!(!live_view(true, None, None));
        assert!(!live_view(true, Some("xterm"), Some("1")));
    }
}
