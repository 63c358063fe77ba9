//! debconf's programs that maintainer scripts and Dockerfiles run, which are Perl scripts
//! in the image: `debconf-frontend` (what `/usr/share/debconf/frontend` resolves to, see
//! `crate::debconf`), `debconf-escape` (the confmodule's helper for escaped answers) and
//! `debconf-set-selections` (preseeding).

use std::io::{Read as _, Write as _};
use std::path::PathBuf;

use crate::debconf::Error;
use crate::debconf::frontend::Frontend;
use crate::debconf::model::Db;
use crate::debconf::server;
use crate::util;

/// Preseed input is read whole; real preseed files are a few KiB, and 16 MiB bounds
/// what a hostile file can make the tool hold.
const MAX_SELECTIONS_BYTES: u64 = 16 << 20;

/// `frontend [--] <confmodule> [args...]`.
pub(crate) fn frontend(_name: &str, mut args: Vec<String>) -> i32 {
    if args.first().map(String::as_str) == Some("--") {
        args.remove(0);
    }
    let Some(script) = args.first() else {
        util::warn("debconf", "usage: frontend <confmodule> [args...]");
        return 1;
    };
    let root = dpkg_root();
    let run = Frontend::new(&root, script, args.get(1).map(String::as_str))
        .and_then(|mut f| f.run(&args));
    run.unwrap_or_else(|e| {
        util::warn("debconf", e);
        1
    })
}

/// The root debconf's files are under: `$DPKG_ROOT`, as debconf prefixes every path of
/// its configuration with it.
fn dpkg_root() -> PathBuf {
    PathBuf::from(format!(
        "{}/",
        std::env::var("DPKG_ROOT").unwrap_or_default()
    ))
}

/// `debconf-escape -e|-u`: escapes or unescapes standard input.
pub(crate) fn escape(_name: &str, args: Vec<String>) -> i32 {
    let escape = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["-e" | "--escape"] => true,
        ["-u" | "--unescape"] => false,
        _ => {
            let _ = write!(
                std::io::stderr(),
                "Usage: debconf-unescape -e|-u < input-text\n  -e, --escape      escape text\n  \
                 -u, --unescape    unescape text\n\nExactly one of -e or -u must be used.\n"
            );
            return 1;
        }
    };
    let mut input = String::new();
    let limited = std::io::stdin()
        .take(MAX_SELECTIONS_BYTES)
        .read_to_string(&mut input);
    if let Err(e) = limited {
        util::warn("debconf-escape", util::describe(&e));
        return 1;
    }
    let out = if escape {
        server::escape(&input)
    } else {
        server::unescape(&input)
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    0
}

/// debconf-set-selections' options.
#[derive(Default)]
struct Preseed {
    verbose: bool,
    check_only: bool,
    unseen: bool,
    errors: usize,
}

const SELECTIONS_USAGE: &str = "Usage: debconf-set-selections [-vcu] [file]
  -v, --verbose     verbose output
  -c, --checkonly   only check the input file format
  -u, --unseen      do not set the 'seen' flag when preseeding values
";

/// The value types and flags a selection line may set.
const KNOWN_TYPES: &[&str] = &[
    "select",
    "boolean",
    "string",
    "multiselect",
    "note",
    "password",
    "text",
    "title",
];
const KNOWN_FLAGS: &[&str] = &["seen"];

/// `debconf-set-selections [-vcu] [file...]`: preseeds answers into the database.
pub(crate) fn set_selections(_name: &str, args: Vec<String>) -> i32 {
    let mut opts = Preseed::default();
    let mut files = Vec::new();
    for arg in args {
        match arg.as_str() {
            "-v" | "--verbose" => opts.verbose = true,
            "-c" | "--checkonly" => opts.check_only = true,
            "-u" | "--unseen" => opts.unseen = true,
            a if a.starts_with('-') && a.len() > 1 => {
                let _ = write!(std::io::stderr(), "{SELECTIONS_USAGE}");
                return 1;
            }
            _ => files.push(arg),
        }
    }
    match preseed(&mut opts, &files) {
        Ok(()) if opts.errors > 0 => 1,
        Ok(()) => 0,
        Err(e) => {
            util::warn("debconf-set-selections", e);
            1
        }
    }
}

fn preseed(opts: &mut Preseed, files: &[String]) -> Result<(), Error> {
    let mut db = Db::load(&dpkg_root())?;
    let text = read_selections(files)?;
    for (number, line) in logical_lines(&text) {
        selection(&mut db, opts, number, &line);
    }
    if !opts.check_only {
        db.save()?;
    }
    Ok(())
}

/// The named files one after the other (standard input when none), bounded in total.
fn read_selections(files: &[String]) -> Result<String, Error> {
    let mut text = String::new();
    let stdin = ["-".to_owned()];
    let names = if files.is_empty() { &stdin[..] } else { files };
    for name in names {
        let io = |source| Error::Io {
            path: name.into(),
            source,
        };
        let input = util::open_input(name).map_err(io)?;
        let left = MAX_SELECTIONS_BYTES.saturating_sub(text.len() as u64);
        let mut bytes = Vec::new();
        input.take(left + 1).read_to_end(&mut bytes).map_err(io)?;
        text.push_str(&String::from_utf8_lossy(&bytes));
        if text.len() as u64 > MAX_SELECTIONS_BYTES {
            return Err(Error::TooLarge {
                path: name.into(),
                limit: MAX_SELECTIONS_BYTES,
            });
        }
    }
    Ok(text)
}

/// Lines with `\`-continuations joined, `\r` dropped, with the number of their last line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        pending.push_str(line.strip_suffix('\r').unwrap_or(line));
        if pending.ends_with('\\') && lines.peek().is_some() {
            pending.pop();
            continue;
        }
        out.push((i + 1, std::mem::take(&mut pending)));
    }
    out
}

/// `^\s*(\S+)\s+(\S+)\s+(\S+)(?:\s(.*))?`: owner, question, type and the value after
/// the one blank that follows the type (empty when there is none).
fn split_selection(line: &str) -> Option<[&str; 4]> {
    let word = |text: &str| -> Option<(usize, usize)> {
        let start = text.find(|c: char| !c.is_ascii_whitespace())?;
        let len = text[start..]
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(text.len() - start);
        Some((start, start + len))
    };
    let mut rest = line;
    let mut out = [""; 4];
    for (i, slot) in out.iter_mut().take(3).enumerate() {
        let (start, end) = word(rest)?;
        // Words after the first must be separated by a blank.
        if i > 0 && start == 0 {
            return None;
        }
        *slot = &rest[start..end];
        rest = &rest[end..];
    }
    let mut chars = rest.chars();
    if chars.next().is_some_and(|c| c.is_ascii_whitespace()) {
        out[3] = chars.as_str();
    }
    Some(out)
}

/// One selection line: `owner question type value` or `owner question flag value`.
fn selection(db: &mut Db, opts: &mut Preseed, number: usize, line: &str) {
    let trimmed = line.trim_start_matches(|c: char| c.is_ascii_whitespace());
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return;
    }
    let Some([owner, question, kind, content]) = split_selection(line) else {
        opts.errors += 1;
        eprintln!("error: parse error on line {number}: '{line}'");
        return;
    };
    if KNOWN_FLAGS.contains(&kind) {
        info(opts, &format!("Trying to set '{kind}' flag to '{content}'"));
        set_flag(db, opts, question, kind, content);
    } else if KNOWN_TYPES.contains(&kind) {
        info(
            opts,
            &format!("Trying to set '{question}' [{kind}] to '{content}'"),
        );
        load_answer(db, opts, [owner, question, kind], content);
    } else {
        eprintln!("warning: Unknown type {kind}, skipping line {number}");
    }
}

fn info(opts: &Preseed, msg: &str) {
    if opts.verbose {
        eprintln!("info: {msg}");
    }
}

/// Makes a dummy template when the question's package has not been installed yet, then
/// sets the value (and `seen`, unless `-u`).
fn load_answer(db: &mut Db, opts: &mut Preseed, [owner, question, kind]: [&str; 3], value: &str) {
    info(opts, &format!("Loading answer for '{question}'"));
    if !db.template_exists(question) {
        db.new_template(question, owner, kind);
        db.set_template_field(question, "description", "Dummy template");
        db.set_template_field(
            question,
            "extended_description",
            "This is a fake template used to pre-seed the debconf database. If you are \
             seeing this, something is probably wrong.",
        );
    }
    db.set_template_field(question, "type", kind);
    if !db.question_exists(question) {
        opts.errors += 1;
        eprintln!("error: Cannot find a question for {question}");
        return;
    }
    db.add_question_owner(question, owner, kind);
    db.set_field(question, "value", value);
    if !opts.unseen {
        db.set_flag(question, "seen", "true");
    }
}

fn set_flag(db: &mut Db, opts: &mut Preseed, question: &str, flag: &str, value: &str) {
    info(opts, &format!("Setting {flag} flag"));
    if db.set_flag(question, flag, value).is_none() {
        opts.errors += 1;
        eprintln!("error: Cannot find a question for {question}");
    }
}

/// Applies selection lines to `db` without reading or saving files (tests).
#[cfg(test)]
fn parse_for_test(text: &str, db: &mut Db) -> Preseed {
    let mut opts = Preseed::default();
    for (number, line) in logical_lines(text) {
        selection(db, &mut opts, number, &line);
    }
    opts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_preseed_values_and_flags() {
        let mut db = Db::in_memory();
        let text = "# comment\n\ntzdata tzdata/Areas select Europe\n\
                    p p/q string a \\\nlong value\np p/q seen false\nbad\nx y zzz v\n";
        let opts = parse_for_test(text, &mut db);
        assert_eq!(opts.errors, 1, "the line without type");
        assert_eq!(db.value("tzdata/Areas").as_deref(), Some("Europe"));
        assert_eq!(db.flag("tzdata/Areas", "seen").as_deref(), Some("true"));
        assert_eq!(db.value("p/q").as_deref(), Some("a long value"));
        assert_eq!(db.flag("p/q", "seen").as_deref(), Some("false"));
        assert_eq!(db.owners("p/q").as_deref(), Some("p"));
        let t = db.templates_file().get("p/q").unwrap();
        assert_eq!(t.fields["description"], "Dummy template");
        assert_eq!(t.fields["type"], "string");
    }
}
