//! Where awk's records come from: the main input (the operands in order, `var=value`
//! operands applied when reached, stdin when no file is named), read by the rule loop and
//! by a plain `getline` alike, and the streams `getline < file` and `cmd | getline` open,
//! each kept open until `close` (POSIX: "cmd | getline" reads the same stream each time).

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader};

use super::parse::{Expr, Source};
use super::{Awk, R, Value, is_assignment, unescape};
use crate::sys;
use crate::util::{self, describe, warn};

type Reader = Box<dyn BufRead>;

/// Bytes buffered per input stream.
const BUFFER_BYTES: usize = 64 * 1024;

/// The main input: see the module docs.
pub(super) struct MainInput {
    operands: Vec<String>,
    next: usize,
    current: Option<Reader>,
}

impl MainInput {
    pub(super) fn new(operands: &[String]) -> MainInput {
        let mut operands = operands.to_vec();
        if operands.iter().all(|op| is_assignment(op).is_some()) {
            operands.push("-".into());
        }
        MainInput {
            operands,
            next: 0,
            current: None,
        }
    }
}

/// The streams `getline` opened, by the name they were opened with.
#[derive(Default)]
pub(super) struct Streams {
    files: HashMap<String, Reader>,
    commands: HashMap<String, (Reader, sys::Piped)>,
}

impl Streams {
    /// Closes the stream named `name`: `Some` of its status (a command's exit status)
    /// if one was open.
    pub(super) fn close(&mut self, name: &str) -> Option<i32> {
        if self.files.remove(name).is_some() {
            return Some(0);
        }
        let (reader, piped) = self.commands.remove(name)?;
        drop(reader);
        Some(piped.wait().unwrap_or(-1))
    }

    /// Waits for every command still open (awk's exit closes them).
    pub(super) fn close_all(&mut self) {
        let names: Vec<String> = self.commands.keys().cloned().collect();
        for name in names {
            self.close(&name);
        }
    }
}

/// Reads one record ending in `sep` (which is removed); `None` at the end.
fn read_record(r: &mut dyn BufRead, sep: u8) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    if r.read_until(sep, &mut buf)? == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&sep) {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

impl Awk {
    fn separator(&self) -> u8 {
        self.var("RS").bytes().next().unwrap_or(b'\n')
    }

    fn bump(&mut self, name: &str) {
        let n = self.vars.get(name).map_or(0.0, Value::num) + 1.0;
        self.vars.insert(name.into(), Value::Num(n));
    }

    /// The next record of the main input, counting it in NR and FNR; `None` once every
    /// operand is read. A file that cannot be opened is reported and skipped (exit 2).
    pub(super) fn next_main_record(&mut self) -> R<Option<String>> {
        loop {
            let sep = self.separator();
            if let Some(reader) = self.main.current.as_mut() {
                if let Some(record) = read_record(reader, sep).map_err(|e| describe(&e))? {
                    self.bump("NR");
                    self.bump("FNR");
                    return Ok(Some(record));
                }
                self.main.current = None;
            }
            let Some(operand) = self.main.operands.get(self.main.next).cloned() else {
                return Ok(None);
            };
            self.main.next += 1;
            self.open_operand(&operand);
        }
    }

    /// Applies a `var=value` operand, or makes `operand` the current input file.
    fn open_operand(&mut self, operand: &str) {
        if let Some((k, v)) = is_assignment(operand) {
            self.vars.insert(k.to_owned(), Value::StrNum(unescape(v)));
            return;
        }
        match util::open_input(operand) {
            Ok(r) => {
                self.main.current = Some(Box::new(BufReader::with_capacity(BUFFER_BYTES, r)));
                let name = if operand == "-" { "" } else { operand };
                self.vars
                    .insert("FILENAME".into(), Value::Str(name.to_owned()));
                self.vars.insert("FNR".into(), Value::Num(0.0));
            }
            Err(e) => {
                warn(
                    "awk",
                    format!("cannot open \"{operand}\" ({})", describe(&e)),
                );
                self.exit_code = 2;
            }
        }
    }

    /// `getline`: 1 when a record was read (into `target`, else `$0`), 0 at the end of
    /// the input, -1 when the file or command cannot be opened or read.
    pub(super) fn getline(&mut self, target: Option<&Expr>, source: &Source) -> R<Value> {
        let record = match source {
            Source::Main => self.next_main_record()?,
            Source::File(file) => {
                let name = self.eval(file)?.string(&self.convfmt());
                match self.read_file_stream(&name) {
                    Ok(r) => r,
                    Err(_) => return Ok(Value::Num(-1.0)),
                }
            }
            Source::Command(cmd) => {
                let name = self.eval(cmd)?.string(&self.convfmt());
                match self.read_command_stream(&name) {
                    Ok(r) => r.inspect(|_| self.bump("NR")),
                    Err(_) => return Ok(Value::Num(-1.0)),
                }
            }
        };
        let Some(record) = record else {
            return Ok(Value::Num(0.0));
        };
        match target {
            Some(t) => {
                self.assign(t, Value::StrNum(record))?;
            }
            None => self.set_record(record),
        }
        Ok(Value::Num(1.0))
    }

    fn read_file_stream(&mut self, name: &str) -> io::Result<Option<String>> {
        let sep = self.separator();
        if !self.streams.files.contains_key(name) {
            let r = util::open_input(name)?;
            let reader = Box::new(BufReader::with_capacity(BUFFER_BYTES, r));
            self.streams.files.insert(name.to_owned(), reader);
        }
        match self.streams.files.get_mut(name) {
            Some(r) => read_record(r, sep),
            None => Ok(None),
        }
    }

    fn read_command_stream(&mut self, cmd: &str) -> io::Result<Option<String>> {
        let sep = self.separator();
        if !self.streams.commands.contains_key(cmd) {
            // What the command prints must follow what awk printed before it.
            self.flush_all();
            let argv = vec!["sh".into(), "-c".into(), cmd.to_owned()];
            let mut piped = sys::spawn_piped(&sys::Command::new(argv))?;
            let stdout = std::mem::replace(&mut piped.stdout, Box::new(io::empty()));
            let reader: Reader = Box::new(BufReader::with_capacity(BUFFER_BYTES, stdout));
            self.streams
                .commands
                .insert(cmd.to_owned(), (reader, piped));
        }
        match self.streams.commands.get_mut(cmd) {
            Some((r, _)) => read_record(r, sep),
            None => Ok(None),
        }
    }
}
