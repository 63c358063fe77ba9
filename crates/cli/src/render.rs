//! Progress views: a live tty view, a plain log for CI, and JSON lines for machines.
//! Events arrive already redacted by the engine.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use kiln_engine::progress::{Event, EventSink, StepId};

use crate::args::Progress;

pub(crate) fn sink(mode: Progress, quiet: bool) -> Box<dyn EventSink> {
    if quiet {
        return Box::new(kiln_engine::progress::Quiet);
    }
    match mode {
        Progress::Rawjson => Box::new(Json),
        Progress::Plain => Box::new(Plain::new()),
        Progress::Tty => Box::new(Tty::new()),
        Progress::Auto if std::io::stderr().is_terminal() => Box::new(Tty::new()),
        Progress::Auto => Box::new(Plain::new()),
    }
}

/// `[stage i/n]`, `i` padded to the width of `n` as BuildKit pads it (`[stage  1/12]`).
fn label(step: &StepId) -> String {
    let width = step.total.to_string().len();
    format!("[{} {:>width$}/{}]", step.stage, step.index, step.total)
}

/// One JSON object per line on stderr.
struct Json;

impl EventSink for Json {
    fn emit(&self, event: Event) {
        if let Ok(line) = serde_json::to_string(&event) {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{line}");
        }
    }
}

/// BuildKit's plain format: `#N [stage i/n] INSTRUCTION`, output lines, `#N DONE 0.1s`.
struct Plain {
    numbers: Mutex<HashMap<String, usize>>,
    started: Instant,
}

impl Plain {
    fn new() -> Self {
        Self {
            numbers: Mutex::new(HashMap::new()),
            started: Instant::now(),
        }
    }

    fn number(&self, step: &StepId) -> usize {
        let mut map = match self.numbers.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let next = map.len() + 1;
        *map.entry(label(step)).or_insert(next)
    }
}

impl EventSink for Plain {
    fn emit(&self, event: Event) {
        let mut err = std::io::stderr().lock();
        let t = self.started.elapsed().as_secs_f64();
        let _ = match event {
            Event::StepStarted { step, name, .. } => {
                let (name, _) = kiln_dockerfile::clip_line(&name, 1);
                writeln!(err, "#{} {} {}", self.number(&step), label(&step), name)
            }
            Event::StepCached { step, .. } => writeln!(err, "#{} CACHED", self.number(&step)),
            Event::StepOutput { step, text, .. } => {
                let n = self.number(&step);
                text.lines()
                    .try_for_each(|line| writeln!(err, "#{n} {t:.3} {line}"))
            }
            Event::StepDone {
                step, duration_ms, ..
            } => writeln!(
                err,
                "#{} DONE {:.1}s",
                self.number(&step),
                duration_ms / 1000.0
            ),
            Event::StepFailed { step, error, .. } => {
                writeln!(err, "#{} ERROR: {}", self.number(&step), error)
            }
            Event::Warning { message } => writeln!(err, "WARNING: {message}"),
            Event::Exporting { what, .. } => writeln!(err, "#- exporting {what}"),
        };
    }
}

/// A live view: one line per step with a spinner, timing and CACHED marks; the last
/// lines of a step's output show under it while it runs.
struct Tty {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Tty {
    fn new() -> Self {
        Self {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, step: &StepId, name: Option<&str>) -> ProgressBar {
        let mut bars = match self.bars.lock() {
            Ok(b) => b,
            Err(p) => p.into_inner(),
        };
        bars.entry(label(step))
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new_spinner());
                let style = ProgressStyle::with_template("{spinner} {prefix} {msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
                bar.set_style(style);
                let (name, _) = kiln_dockerfile::clip_line(name.unwrap_or(""), 1);
                bar.set_prefix(format!("{} {name}", label(step)));
                bar.enable_steady_tick(std::time::Duration::from_millis(100));
                bar
            })
            .clone()
    }
}

impl EventSink for Tty {
    fn emit(&self, event: Event) {
        match event {
            Event::StepStarted { step, name, .. } => {
                self.bar(&step, Some(&name));
            }
            Event::StepCached { step, .. } => self.bar(&step, None).finish_with_message("CACHED"),
            Event::StepOutput { step, text, .. } => {
                if let Some(last) = text.lines().last() {
                    self.bar(&step, None).set_message(last.to_owned());
                }
            }
            Event::StepDone {
                step, duration_ms, ..
            } => self
                .bar(&step, None)
                .finish_with_message(format!("done {:.1}s", duration_ms / 1000.0)),
            Event::StepFailed { step, error, .. } => self
                .bar(&step, None)
                .abandon_with_message(format!("ERROR: {error}")),
            Event::Warning { message } => {
                let _ = self.multi.println(format!("WARNING: {message}"));
            }
            Event::Exporting { what, .. } => {
                let _ = self.multi.println(format!("exporting {what}"));
            }
        }
    }
}
