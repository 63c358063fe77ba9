//! The frontend's side of the debconf protocol (debconf's `ConfModule.pm`) as the
//! noninteractive frontend answers it: a confmodule writes one command per line, the
//! frontend answers each with one line, `<code> <text>`. No question is ever shown (a
//! build has no one to ask): INPUT answers `30 question skipped`, and GO gives each
//! pending question its current value (its default when it has none), as
//! `DEBIAN_FRONTEND=noninteractive` does.

use std::io::Write as _;

use super::Error;
use super::model::Db;

/// debconf's return codes.
const SUCCESS: u8 = 0;
const ESCAPED_DATA: u8 = 1;
const BADPARAMS: u8 = 10;
const SYNTAXERROR: u8 = 20;
const INPUT_INVISIBLE: u8 = 30;
const VERSION_BAD: u8 = 30;
const INTERNALERROR: u8 = 100;

/// The protocol version this frontend speaks.
const VERSION: &str = "2.0";

/// Question types the noninteractive frontend has an element for; INPUT of any other
/// type (debconf's `title`) queues nothing.
const ELEMENT_TYPES: &[&str] = &[
    "boolean",
    "error",
    "multiselect",
    "note",
    "password",
    "select",
    "string",
    "text",
];

const PRIORITIES: &[&str] = &["low", "medium", "high", "critical"];

/// What the environment and database decide about showing questions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The lowest priority that would be shown (`DEBIAN_PRIORITY`, else the
    /// `debconf/priority` question, else `high`).
    pub priority: String,
    /// `DEBCONF_NONINTERACTIVE_SEEN=true`: questions passed over count as seen.
    pub noninteractive_seen: bool,
    /// Questions already seen would be shown again (dpkg-reconfigure without `-u`).
    pub reshow: bool,
}

impl Settings {
    /// The settings for `db` under `env` (a lookup of environment variables).
    pub fn new(db: &Db, env: impl Fn(&str) -> Option<String>) -> Self {
        let priority = env("DEBIAN_PRIORITY")
            .or_else(|| db.value("debconf/priority").filter(|v| !v.is_empty()))
            .unwrap_or_else(|| "high".to_owned());
        Settings {
            priority,
            noninteractive_seen: env("DEBCONF_NONINTERACTIVE_SEEN").as_deref() == Some("true"),
            reshow: false,
        }
    }

    /// debconf's `high_enough`: an unknown priority always is.
    fn high_enough(&self, priority: &str) -> bool {
        let rank = |p: &str| PRIORITIES.iter().position(|x| *x == p);
        match (rank(priority), rank(&self.priority)) {
            (Some(asked), Some(min)) => asked >= min,
            _ => true,
        }
    }
}

/// A question queued by INPUT for the next GO.
#[derive(Debug)]
struct Element {
    question: String,
    kind: String,
    markseen: bool,
}

/// The answer to one command line.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Send this line back.
    Line(String),
    /// STOP: stop reading (debconf sends its empty answer only once the script ended).
    Stop,
}

/// One confmodule's conversation with the frontend.
pub struct Session<'a> {
    db: &'a mut Db,
    settings: Settings,
    /// The package the confmodule belongs to (owner of what it registers).
    owner: String,
    /// The client asked for `escape` in CAPB.
    escape: bool,
    elements: Vec<Element>,
    busy: Vec<String>,
    /// Questions to flag as seen when the confmodule ends.
    seen: Vec<String>,
    title: String,
    /// Where error notes are shown (the frontend's standard output).
    display: Box<dyn std::io::Write + 'a>,
}

/// A return code and its text.
type Answer = (u8, String);

/// What a command answers: `Err` for the failures, so `?` can end a command early.
type Outcome = Result<Answer, Answer>;

fn ok(text: impl Into<String>) -> Outcome {
    Ok((SUCCESS, text.into()))
}

fn fail(code: u8, text: impl Into<String>) -> Outcome {
    Err((code, text.into()))
}

fn syntax(text: &str) -> Outcome {
    fail(SYNTAXERROR, text)
}

/// Exactly `N` arguments, else debconf's syntax error.
fn args<const N: usize>(p: &[String]) -> Result<&[String; N], Answer> {
    p.try_into().map_err(|_| (SYNTAXERROR, ARGS.to_owned()))
}

const ARGS: &str = "Incorrect number of arguments";

impl<'a> Session<'a> {
    pub fn new(
        db: &'a mut Db,
        settings: Settings,
        owner: &str,
        display: Box<dyn std::io::Write + 'a>,
    ) -> Self {
        Session {
            db,
            settings,
            owner: owner.to_owned(),
            escape: false,
            elements: Vec::new(),
            busy: Vec::new(),
            seen: Vec::new(),
            title: String::new(),
            display,
        }
    }

    /// Sets the title notes are shown under (`Configuring <package>`).
    pub fn set_title(&mut self, title: &str) {
        self.title = title.to_owned();
    }

    /// Answers one line the confmodule wrote (without its newline).
    pub fn handle(&mut self, line: &str) -> Reply {
        let words = if self.escape {
            unescape_split(line)
        } else {
            line.split(super::is_space)
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let Some((command, params)) = words.split_first() else {
            return Reply::Line(format!(
                "{SYNTAXERROR} Bad line \"{line}\" received from confmodule."
            ));
        };
        let command = command.to_lowercase();
        if command == "stop" {
            return Reply::Stop;
        }
        let Some((code, text)) = self.dispatch(&command, params) else {
            return Reply::Line(format!(
                "{SYNTAXERROR} Unsupported command \"{command}\" (full line was \"{line}\") \
                 received from confmodule."
            ));
        };
        let mut reply = if text.is_empty() && !keeps_blank(&command) {
            code.to_string()
        } else {
            format!("{code} {text}")
        };
        // A multi-line answer would break the protocol: debconf sends its first line.
        if let Some(i) = reply.find('\n') {
            reply.truncate(i);
        }
        Reply::Line(reply)
    }

    fn dispatch(&mut self, command: &str, p: &[String]) -> Option<Answer> {
        let outcome = match command {
            "version" => version(p),
            "capb" => self.capb(p),
            "title" => {
                self.title = p.join(" ");
                ok("")
            }
            "settitle" => self.settitle(p),
            "beginblock" | "endblock" => ok(""),
            "input" => self.input(p),
            "clear" => self.clear(p),
            "go" => self.go(p),
            "get" => self.get(p),
            "set" => self.set(p),
            "reset" => self.reset(p),
            "subst" => self.subst(p),
            "register" => self.register(p),
            "unregister" => self.unregister(p),
            "purge" => self.purge(p),
            "metaget" => self.metaget(p),
            "fget" => self.fget(p),
            "fset" => self.fset(p),
            "info" => self.info(p),
            "progress" => self.progress(p),
            "data" => self.data(p),
            "visible" => self.visible(p),
            "exist" => self.exist(p),
            "x_loadtemplatefile" => self.load_template_file(p),
            _ => return None,
        };
        Some(outcome.unwrap_or_else(|failed| failed))
    }

    /// `<name> doesn't exist` unless the question does (`quoted` as INPUT words it).
    fn need(&self, question: &str, quoted: bool) -> Result<(), Answer> {
        if self.db.question_exists(question) {
            Ok(())
        } else if quoted {
            Err((BADPARAMS, format!("\"{question}\" doesn't exist")))
        } else {
            Err((BADPARAMS, format!("{question} doesn't exist")))
        }
    }

    fn capb(&mut self, p: &[String]) -> Outcome {
        self.escape = p.iter().any(|c| c == "escape");
        // The noninteractive frontend adds no capability of its own: debconf joins an
        // empty one, hence the trailing blank.
        ok("multiselect escape ")
    }

    fn settitle(&mut self, p: &[String]) -> Outcome {
        let [question] = args(p)?;
        self.need(question, true)?;
        self.title = self.description(question);
        ok("")
    }

    fn description(&self, question: &str) -> String {
        let text = self
            .db
            .template_of(question)
            .map(|t| self.db.template_field(t, "description"))
            .unwrap_or_default();
        self.db.expand(question, &text)
    }

    fn input(&mut self, p: &[String]) -> Outcome {
        let [priority, question] = args(p)?;
        self.need(question, true)?;
        if !PRIORITIES.contains(&priority.as_str()) {
            return syntax(&format!("\"{priority}\" is not a valid priority"));
        }
        let kind = self.db.question_field(question, "type").unwrap_or_default();
        let mut visible = true;
        if kind != "error" {
            let seen = self.db.flag(question, "seen").as_deref() == Some("true");
            visible = self.settings.high_enough(priority) && (self.settings.reshow || !seen);
        }
        // A noninteractive frontend shows nothing; it marks what it would have shown as
        // seen only when told to.
        let markseen = visible && self.settings.noninteractive_seen;
        if ELEMENT_TYPES.contains(&kind.as_str()) {
            self.busy.push(question.clone());
            if !self.elements.iter().any(|e| e.question == *question) {
                self.elements.push(Element {
                    question: question.clone(),
                    kind,
                    markseen,
                });
            }
        }
        Ok((INPUT_INVISIBLE, "question skipped".to_owned()))
    }

    fn clear(&mut self, p: &[String]) -> Outcome {
        if !p.is_empty() {
            return syntax(ARGS);
        }
        self.elements.clear();
        self.busy.clear();
        ok("")
    }

    fn go(&mut self, p: &[String]) -> Outcome {
        if !p.is_empty() {
            return syntax(ARGS);
        }
        for element in std::mem::take(&mut self.elements) {
            let value = self.shown_value(&element);
            self.db.set_field(&element.question, "value", &value);
            if element.markseen {
                self.seen.push(element.question);
            }
        }
        self.busy.clear();
        ok("ok")
    }

    /// The value a noninteractive element leaves: the question's own (or default); a
    /// select's first choice when that is not one of its choices; nothing for text and
    /// error notes (an unseen error is printed, as debconf does).
    fn shown_value(&mut self, element: &Element) -> String {
        let q = &element.question;
        let value = self.db.value(q).unwrap_or_default();
        match element.kind.as_str() {
            "text" => String::new(),
            "error" => {
                if self.db.flag(q, "seen").as_deref() != Some("true") {
                    self.show_error(q);
                }
                String::new()
            }
            "select" => {
                let raw = self
                    .db
                    .template_of(q)
                    .map(|t| self.db.template_field_c(t, "choices"))
                    .unwrap_or_default();
                let choices = split_choices(&self.db.expand(q, &raw));
                if choices.contains(&value) {
                    value
                } else {
                    choices.into_iter().next().unwrap_or_default()
                }
            }
            _ => value,
        }
    }

    /// Prints an error question under the title, as the noninteractive frontend does.
    fn show_error(&mut self, question: &str) {
        let extended = self
            .db
            .template_of(question)
            .map(|t| self.db.template_field(t, "extended_description"))
            .unwrap_or_default();
        let text = format!(
            "{}\n\n{}\n",
            self.description(question),
            self.db.expand(question, &extended)
        );
        let mut lines = Vec::new();
        if !self.title.is_empty() {
            lines.push(std::mem::take(&mut self.title));
            lines.push("-".repeat(lines[0].chars().count()));
            lines.push(String::new());
        }
        lines.extend(wrap(&text, NOTE_COLUMNS));
        for line in lines {
            let _ = writeln!(self.display, "{line}");
        }
    }

    fn get(&mut self, p: &[String]) -> Outcome {
        let [question] = args(p)?;
        self.need(question, false)?;
        let value = self.db.value(question).unwrap_or_default();
        self.data_answer(value)
    }

    /// A value as the client can read it: escaped (code 1) when it asked for `escape`.
    fn data_answer(&self, value: String) -> Outcome {
        if self.escape {
            Ok((ESCAPED_DATA, escape(&value)))
        } else {
            ok(value)
        }
    }

    fn set(&mut self, p: &[String]) -> Outcome {
        let Some((question, words)) = p.split_first() else {
            return syntax(ARGS);
        };
        self.need(question, false)?;
        self.db.set_field(question, "value", &words.join(" "));
        ok("value set")
    }

    fn reset(&mut self, p: &[String]) -> Outcome {
        let [question] = args(p)?;
        self.need(question, false)?;
        let default = self
            .db
            .template_of(question)
            .map(|t| self.db.template_field(t, "default"))
            .unwrap_or_default();
        self.db.set_field(question, "value", &default);
        self.db.set_flag(question, "seen", "false");
        ok("")
    }

    fn subst(&mut self, p: &[String]) -> Outcome {
        let [question, variable, words @ ..] = p else {
            return syntax(ARGS);
        };
        self.need(question, false)?;
        if !self.db.set_variable(question, variable, &words.join(" ")) {
            return fail(INTERNALERROR, "Substitution failed".to_owned());
        }
        ok("")
    }

    fn register(&mut self, p: &[String]) -> Outcome {
        let [template, question] = args(p)?;
        // debconf looks the template up as a question of that name.
        if !self.db.question_exists(template) {
            return fail(BADPARAMS, format!("No such template, \"{template}\""));
        }
        let kind = self.db.question_field(template, "type").unwrap_or_default();
        let made = if self.db.question_exists(question) {
            true
        } else {
            self.db.new_question(question, &self.owner, &kind)
        };
        if !made || !self.db.add_question_owner(question, &self.owner, &kind) {
            return fail(INTERNALERROR, "Internal error making question".to_owned());
        }
        self.db.set_template(question, template);
        ok("")
    }

    fn unregister(&mut self, p: &[String]) -> Outcome {
        let [question] = args(p)?;
        self.need(question, false)?;
        if self.busy.contains(question) {
            return fail(
                BADPARAMS,
                format!("{question} is busy, cannot unregister right now"),
            );
        }
        self.db.remove_question_owner(question, &self.owner);
        ok("")
    }

    fn purge(&mut self, p: &[String]) -> Outcome {
        if !p.is_empty() {
            return syntax(ARGS);
        }
        for question in self.db.questions() {
            self.db.remove_question_owner(&question, &self.owner);
        }
        ok("")
    }

    fn metaget(&mut self, p: &[String]) -> Outcome {
        let [question, field] = args(p)?;
        self.need(question, false)?;
        match self.meta_field(question, &field.to_lowercase()) {
            Some(value) => self.data_answer(value),
            None => fail(BADPARAMS, format!("{field} does not exist")),
        }
    }

    /// A question's field as debconf's `Question` methods give it.
    fn meta_field(&self, question: &str, field: &str) -> Option<String> {
        let expanded = |f: &str| {
            let t = self.db.template_of(question)?;
            Some(self.db.expand(question, &self.db.template_field(t, f)))
        };
        match field {
            "description" | "extended_description" | "choices" => expanded(field),
            "value" => self.db.value(question),
            "owners" => self.db.owners(question),
            "name" => Some(question.to_owned()),
            "template" => self.db.template_of(question).map(str::to_owned),
            _ => {
                let value = self.db.question_field(question, field)?;
                let localised = ["description-", "extended_description-", "choices-"]
                    .iter()
                    .any(|p| field.starts_with(p));
                Some(if localised {
                    self.db.expand(question, &value)
                } else {
                    value
                })
            }
        }
    }

    fn fget(&mut self, p: &[String]) -> Outcome {
        let [question, flag] = args(p)?;
        self.need(question, false)?;
        ok(self.db.flag(question, flag).unwrap_or_default())
    }

    fn fset(&mut self, p: &[String]) -> Outcome {
        let [question, flag, words @ ..] = p else {
            return syntax(ARGS);
        };
        if words.is_empty() {
            return syntax(ARGS);
        }
        self.need(question, false)?;
        if flag == "seen" {
            self.seen.retain(|q| q != question);
        }
        ok(self
            .db
            .set_flag(question, flag, &words.join(" "))
            .unwrap_or_default())
    }

    fn info(&mut self, p: &[String]) -> Outcome {
        match p {
            [] => ok(""),
            [question] => {
                self.need(question, true)?;
                ok("")
            }
            _ => syntax(ARGS),
        }
    }

    /// PROGRESS: there is no bar to draw, but the arguments are checked as debconf does.
    fn progress(&mut self, p: &[String]) -> Outcome {
        let Some((sub, rest)) = p.split_first() else {
            return syntax(ARGS);
        };
        let question_arg = match (sub.to_lowercase().as_str(), rest) {
            ("start", [min, max, question]) => {
                if perl_number(min) > perl_number(max) {
                    return syntax(&format!("min ({min}) > max ({max})"));
                }
                Some(question)
            }
            ("info", [question]) => Some(question),
            ("set" | "step", [_]) | ("stop", []) => None,
            ("start" | "info" | "set" | "step" | "stop", _) => return syntax(ARGS),
            _ => return syntax("Unknown subcommand"),
        };
        if let Some(question) = question_arg {
            self.need(question, false)?;
        }
        ok("OK")
    }

    fn data(&mut self, p: &[String]) -> Outcome {
        let [template, item, words @ ..] = p else {
            return syntax(ARGS);
        };
        if words.is_empty() {
            return syntax(ARGS);
        }
        let value = unescape_data(&words.join(" "));
        if !self.db.template_exists(template) {
            if item != "type" {
                return fail(
                    BADPARAMS,
                    format!("Template data field '{item}' received before type field"),
                );
            }
            self.db.new_template(template, &self.owner, &value);
        } else if item == "type" {
            return fail(BADPARAMS, "Template type already set".to_owned());
        } else {
            self.db.set_template_field(template, item, &value);
        }
        ok("")
    }

    fn visible(&mut self, p: &[String]) -> Outcome {
        let [_, question] = args(p)?;
        self.need(question, false)?;
        // debconf's frontends have no `visible` method: the call lands in its generic
        // accessor, which returns the question, so debconf always answers true.
        ok("true")
    }

    fn exist(&mut self, p: &[String]) -> Outcome {
        let [question] = args(p)?;
        ok(if self.db.question_exists(question) {
            "true"
        } else {
            "false"
        })
    }

    fn load_template_file(&mut self, p: &[String]) -> Outcome {
        let (file, owner) = match p {
            [file] => (file, self.owner.clone()),
            [file, owner] => (file, owner.clone()),
            _ => return syntax(ARGS),
        };
        match self
            .db
            .load_templates_file(std::path::Path::new(file), &owner)
        {
            Ok(()) => ok(""),
            Err(Error::Io { source, .. }) => fail(
                BADPARAMS,
                format!("failed to open {file}: {}", crate::util::describe(&source)),
            ),
            Err(e) => fail(INTERNALERROR, e.to_string().replace('\n', "\\n")),
        }
    }

    /// The confmodule ended: what it saw is flagged as seen.
    pub fn finish(&mut self) {
        for question in std::mem::take(&mut self.seen) {
            self.db.set_flag(&question, "seen", "true");
        }
    }
}

/// Commands whose empty text is still sent after a blank (`0 ` for an empty value).
fn keeps_blank(command: &str) -> bool {
    matches!(command, "get" | "metaget" | "fget" | "fset")
}

fn version(p: &[String]) -> Outcome {
    match p {
        [] => ok(VERSION),
        [asked] => {
            let major = |v: &str| perl_number(v).trunc();
            if major(asked) < major(VERSION) {
                fail(VERSION_BAD, format!("Version too low ({asked})"))
            } else if major(asked) > major(VERSION) {
                fail(VERSION_BAD, format!("Version too high ({asked})"))
            } else {
                ok(VERSION)
            }
        }
        _ => syntax(ARGS),
    }
}

/// Perl's numeric reading of a string: its leading number, else 0.
fn perl_number(s: &str) -> f64 {
    let s = s.trim_start_matches(super::is_space);
    let end = s
        .char_indices()
        .take_while(|(i, c)| c.is_ascii_digit() || *c == '.' || (*i == 0 && "+-".contains(*c)))
        .count();
    (1..=end)
        .rev()
        .find_map(|n| s[..n].parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// Width of error notes (debconf wraps them at 76 columns).
const NOTE_COLUMNS: usize = 75;

/// Greedy word wrap of each line of `text` to `width` columns.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        for word in para.split(' ').filter(|w| !w.is_empty()) {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                out.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        out.push(line);
    }
    out
}

/// A choices or multiselect list split as debconf does (`, ` separates; `\,` and `\ `
/// are literal).
pub fn split_choices(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut item = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('\\', Some(next @ (',' | ' '))) => {
                chars.next();
                item.push(next);
            }
            (',', Some(next)) if super::is_space(next) => {
                while chars.peek().is_some_and(|c| super::is_space(*c)) {
                    chars.next();
                }
                items.push(std::mem::take(&mut item));
            }
            _ => item.push(c),
        }
    }
    if !item.is_empty() {
        items.push(item);
    }
    items
}

/// debconf's escaping for `escape` clients: `\` doubled, newlines as `\n`.
pub fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// The inverse of [`escape`] (`debconf-escape -u`): `\n` is a newline, `\x` is `x`.
pub fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            // `.` of debconf's pattern does not match a newline: `\` before one stays.
            Some('\n') => out.push_str("\\\n"),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A command line of an `escape` client split into words (`unescape_split`).
fn unescape_split(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => word.push('\n'),
                Some(other) => word.push(other),
                None => word.push('\\'),
            }
        } else if super::is_space(c) {
            while chars.peek().is_some_and(|c| super::is_space(*c)) {
                chars.next();
            }
            words.push(std::mem::take(&mut word));
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// DATA's value: `\n`, `\"` and `\\` unescaped.
fn unescape_data(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('\\', Some('n')) => {
                chars.next();
                out.push('\n');
            }
            ('\\', Some(next @ ('"' | '\\'))) => {
                chars.next();
                out.push(next);
            }
            _ => out.push(c),
        }
    }
    out
}
