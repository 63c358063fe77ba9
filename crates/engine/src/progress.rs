//! Progress events: what the engine reports while it builds.
//!
//! Every text in an event has been through secret redaction: the engine redacts step
//! output as it streams (a value split across writes), and hands every event to the
//! renderers through [`Redacting`], which masks every text field once more, so a path or
//! message from anywhere in the engine cannot carry a value to the tty, plain or JSON
//! (`--progress=rawjson`) views.

use std::collections::VecDeque;
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

/// Longest part of one output line an error's "last output" keeps: the tail is for a
/// person reading an error, and a step printing one 100 MB line must not make kiln hold
/// it (the whole stream still goes to the progress view).
pub const MAX_TAIL_LINE_BYTES: usize = 4096;

/// The last lines of a step's (already redacted) output, for its error message. Each
/// byte is looked at once, and memory is bounded by `max_lines` ×
/// [`MAX_TAIL_LINE_BYTES`], whatever the step prints.
pub struct OutputTail {
    lines: VecDeque<String>,
    max_lines: usize,
    current: Vec<u8>,
    truncated: bool,
}

impl OutputTail {
    pub fn new(max_lines: usize) -> Self {
        Self {
            lines: VecDeque::new(),
            max_lines,
            current: Vec::new(),
            truncated: false,
        }
    }

    /// Adds output bytes; only the new bytes are scanned for line ends.
    pub fn push(&mut self, mut bytes: &[u8]) {
        while let Some(i) = bytes.iter().position(|&b| b == b'\n') {
            self.extend(&bytes[..i]);
            self.end_line();
            bytes = &bytes[i + 1..];
        }
        self.extend(bytes);
    }

    fn extend(&mut self, part: &[u8]) {
        let room = MAX_TAIL_LINE_BYTES - self.current.len();
        self.current
            .extend_from_slice(&part[..part.len().min(room)]);
        self.truncated |= part.len() > room;
    }

    fn end_line(&mut self) {
        let mut line = String::from_utf8_lossy(&self.current).into_owned();
        if self.truncated {
            line.push_str(" [line cut]");
        }
        self.current.clear();
        self.truncated = false;
        if self.max_lines == 0 {
            return;
        }
        if self.lines.len() == self.max_lines {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// The stream ended: an unterminated last line counts too.
    pub fn finish(&mut self) {
        if !self.current.is_empty() || self.truncated {
            self.end_line();
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }
}

/// Longest partial line a step's output stream holds back waiting for its newline.
/// BuildKit's progress shows whole lines, so a message written in pieces (`rm`, `: `,
/// `cannot remove …`) must reach the view as one line; but a step printing without
/// newlines (a progress bar, binary data) must neither grow kiln's memory nor go unseen,
/// so a part this long is shown as it is.
pub const MAX_PENDING_LINE_BYTES: usize = 64 * 1024;

/// Turns one output stream's writes into whole lines for the progress view: what ends
/// in a newline passes at once, the rest waits for its newline, for
/// [`MAX_PENDING_LINE_BYTES`], or for the step's end ([`LineBuffer::finish`]).
#[derive(Debug, Default)]
pub struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    /// Adds `bytes`; returns what is ready to show (empty when nothing is): the held
    /// part and every line `bytes` completes, and the unfinished line too once it
    /// reaches the bound.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let (whole, rest) = match bytes.iter().rposition(|&b| b == b'\n') {
            Some(i) => bytes.split_at(i + 1),
            None => (&[][..], bytes),
        };
        let mut ready = Vec::new();
        if !whole.is_empty() {
            ready = std::mem::take(&mut self.pending);
            ready.extend_from_slice(whole);
        }
        self.pending.extend_from_slice(rest);
        if self.pending.len() >= MAX_PENDING_LINE_BYTES {
            ready.append(&mut self.pending);
        }
        ready
    }

    /// The stream ended: what is still held, to be shown as a last line.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }
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
    use crate::secrets::{SecretId, SecretValue, Secrets};

    #[test]
    fn output_tail_keeps_the_last_lines_bounded() {
        let mut t = OutputTail::new(2);
        t.push(b"one\ntw");
        t.push(b"o\nthree\nfo");
        t.finish();
        assert_eq!(t.lines(), ["three", "fo"]);
        let mut t = OutputTail::new(3);
        let long = vec![b'x'; 3 * MAX_TAIL_LINE_BYTES];
        for chunk in long.chunks(1000) {
            t.push(chunk);
        }
        t.push(b"\nend\n");
        let lines = t.lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_TAIL_LINE_BYTES + " [line cut]".len());
        assert_eq!(lines[1], "end");
    }

    #[test]
    fn output_written_in_pieces_is_shown_in_whole_lines() {
        let mut b = LineBuffer::default();
        assert!(b.push(b"rm").is_empty());
        assert!(b.push(b": ").is_empty());
        assert_eq!(
            b.push(b"cannot remove 'x'\nnext"),
            b"rm: cannot remove 'x'\n"
        );
        assert_eq!(b.push(b" line\nthird\n"), b"next line\nthird\n");
        assert!(b.push(b"no newline").is_empty());
        assert_eq!(b.finish(), b"no newline");
        assert!(b.finish().is_empty());
        // A line that never ends is shown once it reaches the bound, and not held again.
        let chunk = vec![b'x'; MAX_PENDING_LINE_BYTES / 2];
        assert!(b.push(&chunk).is_empty());
        assert_eq!(b.push(&chunk).len(), MAX_PENDING_LINE_BYTES);
        assert!(b.finish().is_empty());
    }

    #[test]
    fn every_text_field_is_redacted() {
        let mut s = Secrets::default();
        s.insert(
            SecretId::new("s").unwrap(),
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
