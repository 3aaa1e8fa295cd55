//! Progress events: what long-running phases report while they work.
//!
//! Library code reports structured [`Event`]s to a [`Reporter`] and never
//! prints; `ui` turns them into live progress, timestamped lines or JSON.
//! An event is either a step worth keeping ("aws_vpc.this: Creation
//! complete") or a passing state ([`Event::passing`]: a tick, a poll, a
//! count), which a live view shows in place and forgets.

use std::sync::Mutex;

use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Detail shown with `-v`.
    Debug,
    Info,
    Warn,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// The phase reporting (`terraform`, `addons`, `sweep`, …).
    pub phase: String,
    pub level: Level,
    pub message: String,
    /// Machine-readable detail for `--output json` (resource address, …).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
    /// A passing state: it replaces the live line instead of adding one.
    #[serde(skip)]
    pub passing: bool,
}

impl Event {
    pub fn new(phase: &str, level: Level, message: impl Into<String>) -> Event {
        Event {
            phase: phase.to_string(),
            level,
            message: message.into(),
            fields: Map::new(),
            passing: false,
        }
    }

    /// A wait in progress: what it waits for (a plural noun, "load
    /// balancers") and how many of them are still there.
    pub fn waiting(phase: &str, what: &str, remaining: usize) -> Event {
        Event::info(phase, format!("waiting for {what}: {remaining} left"))
            .with("waiting", what)
            .with("remaining", remaining)
            .passing()
    }

    /// How far a phase is through a known number of steps; `message` says
    /// what it is still waiting for.
    pub fn count(phase: &str, done: usize, total: usize, message: impl Into<String>) -> Event {
        Event::info(phase, message)
            .with("done", done)
            .with("total", total)
            .passing()
    }

    /// Marks the event as a passing state (see the module comment).
    pub fn passing(mut self) -> Event {
        self.passing = true;
        self
    }

    pub fn info(phase: &str, message: impl Into<String>) -> Event {
        Event::new(phase, Level::Info, message)
    }

    pub fn warn(phase: &str, message: impl Into<String>) -> Event {
        Event::new(phase, Level::Warn, message)
    }

    pub fn debug(phase: &str, message: impl Into<String>) -> Event {
        Event::new(phase, Level::Debug, message)
    }

    pub fn with(mut self, key: &str, value: impl Serialize) -> Event {
        self.fields.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }
}

/// RFC 3339 UTC, second precision, for unix milliseconds.
pub fn timestamp(ms: u64) -> String {
    use aws_smithy_types::date_time::{DateTime, Format};
    DateTime::from_secs((ms / 1000) as i64)
        .fmt(Format::DateTime)
        .unwrap_or_default()
}

pub trait Reporter: Send + Sync {
    fn report(&self, event: Event);
}

/// Drops every event.
pub struct Discard;

impl Reporter for Discard {
    fn report(&self, _event: Event) {}
}

/// Keeps every event, for tests.
#[derive(Default)]
pub struct Collect(Mutex<Vec<Event>>);

impl Collect {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Reporter for Collect {
    fn report(&self, event: Event) {
        if let Ok(mut events) = self.0.lock() {
            events.push(event);
        }
    }
}
