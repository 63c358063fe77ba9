//! Compares what BuildKit and kiln made of one Dockerfile and renders the differences
//! as readable lines: `<where>: buildkit <value> | kiln <value>`.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::image::{Entry, Image, Kind, Tree};

/// The config fields a Dockerfile decides (timestamps, ids and the builder's own
/// bookkeeping are left out: they differ between any two builds).
const CONFIG_FIELDS: [&str; 7] = [
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Labels",
];

/// All differences between the two images, configs first.
pub(crate) fn differences(buildkit: &Image, kiln: &Image) -> Vec<String> {
    let mut out = config_differences(&buildkit.config, &kiln.config);
    out.extend(history_differences(&buildkit.config, &kiln.config));
    out.extend(tree_differences(
        ("buildkit", &buildkit.tree),
        ("kiln", &kiln.tree),
    ));
    out
}

fn config_differences(buildkit: &Value, kiln: &Value) -> Vec<String> {
    CONFIG_FIELDS
        .iter()
        .filter_map(|field| {
            let (b, k) = (
                normal(&buildkit["config"][field]),
                normal(&kiln["config"][field]),
            );
            (b != k).then(|| format!("config.{field}: buildkit {b} | kiln {k}"))
        })
        .collect()
}

/// Absent, null, empty string, empty list and empty map all mean "not set": docker's
/// config writer spells that one way and kiln's another.
fn normal(v: &Value) -> Value {
    let empty = match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if empty { Value::Null } else { v.clone() }
}

/// One line per history entry: `created_by` and whether it made no layer.
fn history(config: &Value) -> Vec<String> {
    config["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|e| {
                    let empty = if e["empty_layer"].as_bool() == Some(true) {
                        " (empty_layer)"
                    } else {
                        ""
                    };
                    format!("{}{empty}", e["created_by"].as_str().unwrap_or(""))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn history_differences(buildkit: &Value, kiln: &Value) -> Vec<String> {
    let (b, k) = (history(buildkit), history(kiln));
    let none = String::from("(none)");
    (0..b.len().max(k.len()))
        .filter_map(|i| {
            let (bi, ki) = (b.get(i).unwrap_or(&none), k.get(i).unwrap_or(&none));
            (bi != ki && !old_buildkit_wording(bi, ki))
                .then(|| format!("history[{i}]: buildkit {bi:?} | kiln {ki:?}"))
        })
        .collect()
}

/// Whether two history lines differ only where the reference BuildKit (docker.io 20.10's
/// built-in frontend, BuildKit v0.8) words them as current BuildKit no longer does, which
/// kiln follows: EXPOSE as a Go map (`EXPOSE map[80/tcp:{}]`, now `EXPOSE [80/tcp]`), and
/// COPY/ADD without their `--chown`/`--chmod` flags (now written).
fn old_buildkit_wording(buildkit: &str, kiln: &str) -> bool {
    if let (Some(b), Some(k)) = (
        buildkit.strip_prefix("EXPOSE map["),
        kiln.strip_prefix("EXPOSE ["),
    ) {
        return b.replace(":{}", "") == k;
    }
    let without_flags: Vec<&str> = kiln
        .split(' ')
        .filter(|w| !w.starts_with("--chown=") && !w.starts_with("--chmod="))
        .collect();
    (kiln.starts_with("COPY ") || kiln.starts_with("ADD ")) && without_flags.join(" ") == buildkit
}

/// Entry-by-entry differences between two trees, each named by who made it.
pub(crate) fn tree_differences((an, a): (&str, &Tree), (bn, b): (&str, &Tree)) -> Vec<String> {
    let paths: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    paths
        .into_iter()
        .filter_map(|p| match (a.get(p), b.get(p)) {
            (Some(x), None) => Some(format!("{p}: only in {an} ({})", describe(x))),
            (None, Some(y)) => Some(format!("{p}: only in {bn} ({})", describe(y))),
            (Some(x), Some(y)) if x != y => {
                Some(format!("{p}: {}", entry_difference((an, x), (bn, y))))
            }
            _ => None,
        })
        .collect()
}

fn entry_difference((an, a): (&str, &Entry), (bn, b): (&str, &Entry)) -> String {
    let mut parts = Vec::new();
    if a.mode != b.mode {
        parts.push(format!("mode {an} {:04o} | {bn} {:04o}", a.mode, b.mode));
    }
    if (a.uid, a.gid) != (b.uid, b.gid) {
        parts.push(format!(
            "owner {an} {}:{} | {bn} {}:{}",
            a.uid, a.gid, b.uid, b.gid
        ));
    }
    if a.kind != b.kind {
        parts.push(format!(
            "{an} {} | {bn} {}",
            kind_text(&a.kind),
            kind_text(&b.kind)
        ));
    }
    parts.join("; ") + &text_difference(&a.kind, &b.kind)
}

/// For two short text files: the lines only the first has (`-`) and only the second (`+`),
/// each in the order of its file, one per indented line.
fn text_difference(b: &Kind, k: &Kind) -> String {
    let (Kind::File { text: Some(b), .. }, Kind::File { text: Some(k), .. }) = (b, k) else {
        return String::new();
    };
    let only = |from: &str, other: &str, sign: char| -> Vec<String> {
        let theirs: BTreeSet<&str> = other.lines().collect();
        from.lines()
            .filter(|l| !theirs.contains(l))
            .map(|l| format!("\n        {sign} {l}"))
            .collect()
    };
    let mut lines = only(b, k, '-');
    lines.extend(only(k, b, '+'));
    if lines.is_empty() && b != k {
        // Same lines in another order or with other line ends: say so, not nothing.
        lines.push("\n        (same lines, another order or other line ends)".into());
    }
    lines.concat()
}

fn describe(e: &Entry) -> String {
    format!("{} {:04o} {}:{}", kind_text(&e.kind), e.mode, e.uid, e.gid)
}

fn kind_text(kind: &Kind) -> String {
    match kind {
        Kind::Dir => "dir".into(),
        Kind::File { size, sha256, .. } => {
            format!("file {size} bytes {}", sha256.get(..12).unwrap_or(sha256))
        }
        Kind::Symlink(to) => format!("symlink -> {to}"),
        Kind::Other(c) => format!("special '{c}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(mode: u32, uid: u64, body: &str) -> Entry {
        Entry {
            kind: Kind::File {
                size: body.len() as u64,
                sha256: body.repeat(64),
                text: Some(format!("{body}\ncommon\n")),
            },
            mode,
            uid,
            gid: 0,
        }
    }

    #[test]
    fn every_kind_of_difference_gets_its_own_readable_line() {
        let config = |env: Value, wd: &str, hist: Value| serde_json::json!({"config": {"Env": env, "WorkingDir": wd}, "history": hist});
        let buildkit = Image {
            tree: Tree::from([
                ("/tmp".into(), file(0o1777, 0, "a")),
                ("/etc/shadow-".into(), file(0o600, 0, "s")),
                ("/same".into(), file(0o644, 0, "x")),
            ]),
            config: config(
                serde_json::json!(["PATH=/bin"]),
                "/",
                serde_json::json!([
                    {"created_by": "RUN x", "empty_layer": true},
                    {"created_by": "EXPOSE map[80/tcp:{} 53/udp:{}]", "empty_layer": true},
                    {"created_by": "COPY a /b # buildkit"},
                    {"created_by": "COPY a /c # buildkit"},
                ]),
            ),
        };
        let kiln = Image {
            tree: Tree::from([
                ("/tmp".into(), file(0o777, 1, "b")),
                ("/same".into(), file(0o644, 0, "x")),
            ]),
            config: config(
                serde_json::json!([]),
                "",
                serde_json::json!([
                    {"created_by": "RUN x"},
                    {"created_by": "EXPOSE [80/tcp 53/udp]", "empty_layer": true},
                    {"created_by": "COPY --chown=1:2 --chmod=600 a /b # buildkit"},
                    {"created_by": "COPY --from=x a /c # buildkit"},
                ]),
            ),
        };
        let lines = differences(&buildkit, &kiln);
        assert_eq!(
            lines,
            [
                r#"config.Env: buildkit ["PATH=/bin"] | kiln null"#,
                r#"config.WorkingDir: buildkit "/" | kiln null"#,
                r#"history[0]: buildkit "RUN x (empty_layer)" | kiln "RUN x""#,
                r#"history[3]: buildkit "COPY a /c # buildkit" | kiln "COPY --from=x a /c # buildkit""#,
                "/etc/shadow-: only in buildkit (file 1 bytes ssssssssssss 0600 0:0)",
                "/tmp: mode buildkit 1777 | kiln 0777; owner buildkit 0:0 | kiln 1:0; \
                 buildkit file 1 bytes aaaaaaaaaaaa | kiln file 1 bytes bbbbbbbbbbbb\n        \
                 - a\n        + b",
            ]
        );
        assert!(differences(&kiln, &kiln).is_empty());
    }
}
