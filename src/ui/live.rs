//! Progress for people and for CI.
//!
//! A TTY gets a live status line on stderr (phase, latest step, elapsed
//! time, redrawn every second) with finished steps scrolling above it; no
//! TTY gets plain timestamped lines; `--output json` gets one JSON object
//! per event on stdout.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Printer;
use crate::cli::OutputFormat;
use crate::progress::{Event, Level, Reporter, timestamp};

const SPINNER: &[char] = &['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

#[derive(Default)]
struct Status {
    phase: String,
    message: String,
    phase_started: Option<Instant>,
    tick: usize,
    done: bool,
}

/// The status line of a TTY, redrawn by a ticker thread.
pub(super) struct Live {
    status: Arc<Mutex<Status>>,
    stop: Arc<AtomicBool>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

impl Live {
    pub(super) fn new() -> Live {
        Live {
            status: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
            ticker: Mutex::new(None),
        }
    }

    fn ensure_ticker(&self) {
        let Ok(mut ticker) = self.ticker.lock() else {
            return;
        };
        if ticker.is_some() {
            return;
        }
        let (status, stop) = (self.status.clone(), self.stop.clone());
        *ticker = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(mut s) = status.lock() {
                    s.tick += 1;
                    draw(&s);
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }));
    }

    /// Prints a finished line above the status line, then updates it. A
    /// progress tick ("Still creating...") only updates the status line.
    fn event(&self, line: &str, event: &Event) {
        self.ensure_ticker();
        let Ok(mut s) = self.status.lock() else {
            return;
        };
        let tick = event.fields.get("status").and_then(|v| v.as_str()) == Some("progress");
        if !tick {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K{line}\n");
        }
        if s.phase != event.phase {
            s.phase = event.phase.clone();
            s.phase_started = Some(Instant::now());
        }
        s.message = event.message.clone();
        s.done = false;
        draw(&s);
    }

    /// Removes the status line until the next event.
    pub(super) fn pause(&self) {
        if let Ok(mut s) = self.status.lock() {
            if !s.done && s.phase_started.is_some() {
                let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            }
            s.done = true;
        }
    }

    /// Removes the status line for good (before a final summary or error).
    pub(super) fn finish(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(mut ticker) = self.ticker.lock()
            && let Some(handle) = ticker.take()
        {
            let _ = handle.join();
        }
        if let Ok(mut s) = self.status.lock() {
            if !s.done && s.phase_started.is_some() {
                let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            }
            s.done = true;
        }
    }
}

fn draw(s: &Status) {
    if s.done || s.phase_started.is_none() {
        return;
    }
    let elapsed = s.phase_started.map(|t| t.elapsed()).unwrap_or_default();
    let spinner = SPINNER[s.tick % SPINNER.len()];
    let mut message = s.message.clone();
    if message.chars().count() > 90 {
        message = message.chars().take(89).collect::<String>() + "…";
    }
    let _ = write!(
        std::io::stderr().lock(),
        "\r\x1b[2K{spinner} {} · {message} · {}",
        s.phase,
        crate::duration::format(elapsed)
    );
    let _ = std::io::stderr().flush();
}

impl Reporter for Printer {
    fn report(&self, event: Event) {
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
                    for (k, v) in &event.fields {
                        map.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                // JSON consumers filter for themselves: every event goes out.
                self.json(value);
            }
            OutputFormat::Text if !shown => {}
            OutputFormat::Text => {
                let marker = match event.level {
                    Level::Warn => "warning: ",
                    _ => "",
                };
                match &self.live {
                    Some(live) => live.event(
                        &format!("  {:<10} {marker}{}", event.phase, event.message),
                        &event,
                    ),
                    None => {
                        let ts = timestamp(crate::cluster::journal::now_ms());
                        let _ = writeln!(
                            std::io::stderr().lock(),
                            "{ts} {:<10} {marker}{}",
                            event.phase,
                            event.message
                        );
                    }
                }
            }
        }
    }
}
