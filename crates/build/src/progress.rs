//! Progress events: what the engine reports while it builds.
//!
//! Every text in an event has been through secret redaction: the engine redacts step
//! output as it streams (a value split across writes), and hands every event to the
//! renderers through [`Redacting`], which masks every text field once more, so a path or
//! message from anywhere in the engine cannot carry a value to the tty, plain or JSON
//! (`--progress=rawjson`) views.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::redact::SecretPatterns;

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

impl Event {
    /// The event with every text field (stage names included) redacted.
    pub fn redacted(self, p: &SecretPatterns) -> Event {
        let step_of = |s: StepId| StepId {
            stage: p.redact_str(&s.stage),
            ..s
        };
        match self {
            Event::StepStarted { step, name, at_us } => Event::StepStarted {
                step: step_of(step),
                name: p.redact_str(&name),
                at_us,
            },
            Event::StepCached { step, at_us } => Event::StepCached {
                step: step_of(step),
                at_us,
            },
            Event::StepOutput { step, stream, text } => Event::StepOutput {
                step: step_of(step),
                stream,
                text: p.redact_str(&text),
            },
            Event::StepDone {
                step,
                at_us,
                duration_ms,
            } => Event::StepDone {
                step: step_of(step),
                at_us,
                duration_ms,
            },
            Event::StepFailed { step, at_us, error } => Event::StepFailed {
                step: step_of(step),
                at_us,
                error: p.redact_str(&error),
            },
            Event::Warning { message } => Event::Warning {
                message: p.redact_str(&message),
            },
            Event::Exporting { what, at_us } => Event::Exporting {
                what: p.redact_str(&what),
                at_us,
            },
        }
    }
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

/// Redacts every event before passing it on: the one door between the engine and any
/// view.
pub struct Redacting {
    inner: Arc<dyn EventSink>,
    patterns: SecretPatterns,
}

impl Redacting {
    pub fn new(inner: Arc<dyn EventSink>, patterns: SecretPatterns) -> Self {
        Self { inner, patterns }
    }
}

impl EventSink for Redacting {
    fn emit(&self, event: Event) {
        let event = if self.patterns.is_empty() {
            event
        } else {
            event.redacted(&self.patterns)
        };
        self.inner.emit(event);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{SecretName, SecretValue, Secrets};

    #[test]
    fn every_text_field_is_redacted() {
        let mut s = Secrets::default();
        s.insert(
            SecretName::new("s").unwrap(),
            SecretValue::new(b"hunter2hunter2".to_vec()),
        );
        let p = SecretPatterns::for_redaction(&s).unwrap();
        let rec = Arc::new(Recorder::default());
        let sink = Redacting::new(rec.clone(), p);
        let step = StepId {
            stage: "hunter2hunter2".into(),
            index: 1,
            total: 1,
        };
        sink.emit(Event::StepFailed {
            step,
            at_us: 0,
            error: "cannot open /hunter2hunter2/x".into(),
        });
        sink.emit(Event::Warning {
            message: "secret leak in /hunter2hunter2".into(),
        });
        let json = serde_json::to_string(&rec.events()).unwrap();
        assert!(!json.contains("hunter2"), "{json}");
        assert_eq!(json.matches("****").count(), 3, "{json}");
    }
}
