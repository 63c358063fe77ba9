//! The markdown report: machine, reproduction command, one table per scenario.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::measure::Samples;
use crate::scenarios::Outcome;

pub(crate) const BEGIN: &str = "<!-- kiln-bench results: begin -->";
pub(crate) const END: &str = "<!-- kiln-bench results: end -->";

pub(crate) fn dur(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

fn mb(kib: Option<u64>) -> String {
    kib.map_or("–".into(), |k| {
        format!("{:.0} MB", k as f64 * 1024.0 / 1e6)
    })
}

fn opt(d: Option<Duration>) -> String {
    d.map_or("–".into(), dur)
}

fn ratio(b: Option<Duration>, k: Option<Duration>) -> String {
    match (b, k) {
        (Some(b), Some(k)) if !k.is_zero() => format!("{:.1}×", b.as_secs_f64() / k.as_secs_f64()),
        _ => "–".into(),
    }
}

pub(crate) struct Machine {
    pub lines: Vec<String>,
}

impl Machine {
    pub(crate) fn describe(
        kiln_version: &str,
        buildkit_version: Option<&str>,
        buildah_version: Option<&str>,
        reps: &str,
    ) -> Machine {
        let mut lines = vec![format!("- Date: {}", utc_now())];
        if let Some(cpu) = cpu_model() {
            lines.push(format!("- CPU: {cpu}"));
        }
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        lines.push(format!(
            "- nproc: {n} (shared with other jobs while measuring: figures are noisy, read the minimums)"
        ));
        if let Some(m) = mem_total() {
            lines.push(format!("- Memory: {m}"));
        }
        if let Some(k) = kernel() {
            lines.push(format!("- Kernel: {k}"));
        }
        lines.push(format!("- kiln: {kiln_version}"));
        lines.push(format!(
            "- BuildKit: {}",
            buildkit_version.map_or("not available".to_owned(), |v| {
                format!("{v} (Debian's docker.io, embedded BuildKit, private daemon, vfs)")
            })
        ));
        lines.push(format!(
            "- buildah: {}",
            buildah_version.unwrap_or("not installed")
        ));
        lines.push(format!(
            "- Repetitions: {reps} (after one untimed warm-up round)"
        ));
        Machine { lines }
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn cpu_model() -> Option<String> {
    let info = read("/proc/cpuinfo")?;
    let line = info.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

fn mem_total() -> Option<String> {
    let info = read("/proc/meminfo")?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0))
}

fn kernel() -> Option<String> {
    let r = read("/proc/sys/kernel/osrelease")?;
    Some(format!("Linux {}", r.trim()))
}

/// `YYYY-MM-DD HH:MM UTC` from the system clock (days-to-civil conversion, proleptic
/// Gregorian), to avoid a date crate for one line.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02} UTC")
}

pub(crate) fn render(machine: &Machine, command: &str, outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{BEGIN}");
    let _ = writeln!(s, "## Machine\n");
    for l in &machine.lines {
        let _ = writeln!(s, "{l}");
    }
    let _ = writeln!(s, "\nReproduce:\n\n```sh\n{command}\n```\n");
    let _ = writeln!(
        s,
        "## Targets\n\n| scenario | target | result |\n|---|---|---|"
    );
    for o in outcomes {
        for t in &o.targets {
            let verdict = if t.met { "met" } else { "**missed**" };
            let _ = writeln!(s, "| {} | {} | {verdict} |", o.title, t.text);
        }
    }
    for o in outcomes {
        let _ = writeln!(s);
        render_outcome(&mut s, o);
    }
    let _ = writeln!(s, "{END}");
    s
}

fn render_outcome(s: &mut String, o: &Outcome) {
    let _ = writeln!(s, "### {}\n", o.title);
    for l in &o.setup {
        let _ = writeln!(s, "- {l}");
    }
    if !o.kiln.runs.is_empty() {
        let _ = writeln!(s, "\n| | runs | min | median | peak RSS (worst run) |");
        let _ = writeln!(s, "|---|---|---|---|---|");
        row(s, "kiln", &o.kiln);
        let measured = || {
            o.peers
                .iter()
                .filter_map(|p| Some((p.name, p.samples.as_ref()?)))
        };
        for (name, b) in measured() {
            row(s, name, b);
        }
        for (name, b) in measured() {
            let _ = writeln!(
                s,
                "| **{name} / kiln** | | **{}** | **{}** | |",
                ratio(b.min(), o.kiln.min()),
                ratio(b.median(), o.kiln.median())
            );
        }
        if let Some((n, unit)) = o.per_unit {
            per_unit_row(s, "kiln", &o.kiln, n, unit);
            for (name, b) in measured() {
                per_unit_row(s, name, b, n, unit);
            }
        }
    }
    for p in &o.peers {
        if let Some(note) = &p.note {
            let _ = writeln!(s, "\nNo {} figures: {note}.", p.name);
        }
    }
    if !o.lines.is_empty() {
        let _ = writeln!(s);
        for l in &o.lines {
            let _ = writeln!(s, "{l}");
        }
    }
}

fn row(s: &mut String, tool: &str, x: &Samples) {
    let _ = writeln!(
        s,
        "| {tool} | {} | {} | {} | {} |",
        x.runs.len(),
        opt(x.min()),
        opt(x.median()),
        mb(x.max_rss_kib())
    );
}

fn per_unit_row(s: &mut String, tool: &str, x: &Samples, n: u32, unit: &str) {
    let _ = writeln!(
        s,
        "| {tool} per {unit} | | {} | {} | |",
        opt(x.min().map(|d| d / n)),
        opt(x.median().map(|d| d / n))
    );
}

/// Put `results` into `path` between the BEGIN/END markers, keeping the hand-written
/// text around them; a file without markers gets the results appended.
pub(crate) fn write_into(path: &Path, results: &str) -> Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => {
            let after = &old[e + END.len()..];
            format!("{}{}{}", &old[..b], results.trim_end(), after)
        }
        _ if old.is_empty() => format!("# kiln benchmarks\n\n{results}"),
        _ => format!("{}\n{results}", old.trim_end()),
    };
    std::fs::write(path, new).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(dur(Duration::from_micros(12_345)), "12.3 ms");
        assert_eq!(dur(Duration::from_millis(2_500)), "2.50 s");
        assert_eq!(
            ratio(Some(Duration::from_secs(10)), Some(Duration::from_secs(2))),
            "5.0×"
        );
        assert_eq!(ratio(None, Some(Duration::from_secs(2))), "–");
        assert!(utc_now().ends_with(" UTC"));
    }

    #[test]
    fn replaces_between_markers_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("B.md");
        std::fs::write(&f, format!("intro\n{BEGIN}\nold\n{END}\nnotes\n")).unwrap();
        write_into(&f, &format!("{BEGIN}\nnew\n{END}\n")).unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        assert_eq!(text, format!("intro\n{BEGIN}\nnew\n{END}\nnotes\n"));
    }
}
