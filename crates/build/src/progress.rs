//! Progress events: what the engine reports while it builds.
//!
//! Every text in an event has already been through secret redaction; renderers (the
//! CLI's tty, plain and JSON views) can print them as they are.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Identifies a step in a build: `[stage i/n] INSTRUCTION`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepId {
    /// Stage name (or its index as text when unnamed).
    pub stage: String,
    /// 1-based position of the step in its stage.
    pub index: usize,
    /// Number of steps in the stage.
    pub total: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    StepStarted {
        step: StepId,
        /// The instruction as written (secret values never appear in Dockerfiles' mount
        /// options, only ids).
        name: String,
        /// Unix time in microseconds, for ordering and concurrency analysis.
        at_us: u128,
    },
    StepCached {
        step: StepId,
        at_us: u128,
    },
    StepOutput {
        step: StepId,
        stream: Stream,
        text: String,
    },
    StepDone {
        step: StepId,
        at_us: u128,
        duration_ms: f64,
    },
    StepFailed {
        step: StepId,
        at_us: u128,
        error: String,
    },
    Warning {
        message: String,
    },
    Exporting {
        what: String,
        at_us: u128,
    },
}

/// Where events go. Implementations must be cheap; the engine calls them inline.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// Collects events in memory (tests, and `--progress=rawjson` post-processing).
#[derive(Default)]
pub struct Recorder(Mutex<Vec<Event>>);

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl EventSink for Recorder {
    fn emit(&self, event: Event) {
        if let Ok(mut events) = self.0.lock() {
            events.push(event);
        }
    }
}

/// Discards events (`-q`).
pub struct Quiet;

impl EventSink for Quiet {
    fn emit(&self, _event: Event) {}
}

pub fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_micros()
}
