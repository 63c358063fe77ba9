//! deb822 paragraphs: DEBIAN/control, /var/lib/dpkg/status, Packages indexes, .sources.
//!
//! A value is kept as written (first line without its leading blanks, continuation lines
//! verbatim with their leading blank, joined by `\n`), so a paragraph written back with
//! [`Paragraph`]'s `Display` is byte-identical to what dpkg wrote. Field names compare
//! case-insensitively and keep their spelling and order.

use std::fmt;

use crate::{Error, Result};

/// Bound on the fields of one paragraph: lookups are linear, so a hostile paragraph with
/// millions of fields would make every lookup slow. Real ones have under 40.
pub const MAX_FIELDS: usize = 1024;

/// One `Name: value` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// First line (without leading blanks) then each continuation line as written,
    /// joined by `\n`; an empty first line (dpkg's `Conffiles:`) makes it start with `\n`.
    pub value: String,
}

/// An ordered set of fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph {
    fields: Vec<Field>,
}

/// Whether `#` lines are comments (deb822 allows them in .sources and source control
/// files, not in dpkg's status or a binary package's control file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comments {
    Forbidden,
    Allowed,
}

impl Paragraph {
    pub fn new() -> Paragraph {
        Paragraph::default()
    }

    /// The value of field `name` (any case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name).map(|i| self.fields[i].value.as_str())
    }

    /// Sets field `name`: in place if present (keeping its position), else appended.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.position(name) {
            Some(i) => self.fields[i].value = value,
            None => self.fields.push(Field {
                name: name.to_string(),
                value,
            }),
        }
    }

    /// Removes field `name` and returns its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.position(name).map(|i| self.fields.remove(i).value)
    }

    /// The fields in order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| f.name.eq_ignore_ascii_case(name))
    }
}

impl Field {
    /// The value's lines with the leading blank of continuation lines removed (the
    /// first line of dpkg's `Conffiles:` is empty and skipped).
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        value_lines(&self.value)
    }
}

/// The lines of a multi-line value (see [`Field::lines`]).
pub fn value_lines(value: &str) -> impl Iterator<Item = &str> {
    let mut lines = value.split('\n');
    let first = lines.next().filter(|l| !l.is_empty());
    first
        .into_iter()
        .chain(lines.map(|l| l.strip_prefix([' ', '\t']).unwrap_or(l)))
}

impl fmt::Display for Paragraph {
    /// The paragraph as dpkg writes it: `Name: value` lines, no trailing blank line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for field in &self.fields {
            if field.value.starts_with('\n') || field.value.is_empty() {
                writeln!(f, "{}:{}", field.name, field.value)?;
            } else {
                writeln!(f, "{}: {}", field.name, field.value)?;
            }
        }
        Ok(())
    }
}

/// Parses deb822 text into paragraphs; `what` names the input in errors.
pub fn parse_paragraphs(text: &str, what: &str) -> Result<Vec<Paragraph>> {
    parse_paragraphs_with(text, what, Comments::Forbidden)
}

/// [`parse_paragraphs`] with a choice on `#` comment lines.
pub fn parse_paragraphs_with(text: &str, what: &str, comments: Comments) -> Result<Vec<Paragraph>> {
    let mut parser = Parser {
        what,
        paragraphs: Vec::new(),
        current: Paragraph::new(),
    };
    for (i, line) in text.lines().enumerate() {
        parser.line(line, i + 1, comments)?;
    }
    parser.finish();
    Ok(parser.paragraphs)
}

/// Parses text that must hold exactly one paragraph (a package's control file).
pub fn parse_paragraph(text: &str, what: &str) -> Result<Paragraph> {
    let mut all = parse_paragraphs(text, what)?;
    match all.len() {
        1 => Ok(all.remove(0)),
        n => Err(Error::Syntax {
            what: what.to_string(),
            line: 1,
            message: format!("expected one paragraph, found {n}"),
        }),
    }
}

struct Parser<'a> {
    what: &'a str,
    paragraphs: Vec<Paragraph>,
    current: Paragraph,
}

impl Parser<'_> {
    fn line(&mut self, line: &str, number: usize, comments: Comments) -> Result<()> {
        if line.trim().is_empty() {
            self.finish();
            return Ok(());
        }
        if comments == Comments::Allowed && line.starts_with('#') {
            return Ok(());
        }
        if line.starts_with([' ', '\t']) {
            return self.continuation(line, number);
        }
        self.field(line, number)
    }

    fn continuation(&mut self, line: &str, number: usize) -> Result<()> {
        let Some(last) = self.current.fields.last_mut() else {
            return Err(self.error(number, "continuation line outside a field"));
        };
        last.value.push('\n');
        last.value.push_str(line);
        Ok(())
    }

    fn field(&mut self, line: &str, number: usize) -> Result<()> {
        let Some((name, value)) = line.split_once(':') else {
            return Err(self.error(number, "field name not followed by a colon"));
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(self.error(number, "invalid field name"));
        }
        if self.current.get(name).is_some() {
            return Err(self.error(number, &format!("duplicate value for '{name}' field")));
        }
        self.close_field();
        if self.current.fields.len() >= MAX_FIELDS {
            return Err(self.error(number, "too many fields in one paragraph"));
        }
        self.current.fields.push(Field {
            name: name.to_string(),
            value: value.trim_start().to_string(),
        });
        Ok(())
    }

    /// Trims the end of the last field's whole value, as dpkg does (blanks at the end of
    /// an inner line stay: dpkg keeps them).
    fn close_field(&mut self) {
        if let Some(last) = self.current.fields.last_mut() {
            last.value.truncate(last.value.trim_end().len());
        }
    }

    fn finish(&mut self) {
        self.close_field();
        if !self.current.is_empty() {
            self.paragraphs.push(std::mem::take(&mut self.current));
        }
    }

    fn error(&self, line: usize, message: &str) -> Error {
        Error::Syntax {
            what: self.what.to_string(),
            line,
            message: message.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: base-files\nEssential: yes\nStatus: install ok installed\nConffiles:\n /etc/debian_version 9f3d0c1e\n /etc/issue 2f1a obsolete\nDescription: Debian base system miscellaneous files\n This package contains the basic filesystem hierarchy.\n .\n It also contains /etc/issue.\n\nPackage: dash\nVersion: 0.5.12-2\n";

    #[test]
    fn round_trips_dpkg_status_bytes() {
        let paragraphs = parse_paragraphs(STATUS, "status").unwrap();
        assert_eq!(paragraphs.len(), 2);
        let written: Vec<String> = paragraphs.iter().map(|p| p.to_string()).collect();
        assert_eq!(written.join("\n"), STATUS);
    }

    #[test]
    fn values_lines_and_case_insensitive_names() {
        let p = &parse_paragraphs(STATUS, "status").unwrap()[0];
        assert_eq!(p.get("package"), Some("base-files"));
        assert_eq!(p.get("ESSENTIAL"), Some("yes"));
        let conffiles = &p.fields()[3];
        let lines: Vec<_> = conffiles.lines().collect();
        assert_eq!(
            lines,
            ["/etc/debian_version 9f3d0c1e", "/etc/issue 2f1a obsolete"]
        );
        let description: Vec<_> = value_lines(p.get("Description").unwrap()).collect();
        assert_eq!(description[0], "Debian base system miscellaneous files");
        assert_eq!(description[2], ".");
    }

    #[test]
    fn set_keeps_position_and_spelling() {
        let mut p = parse_paragraph("Package: a\nStatus: x\nVersion: 1\n", "control").unwrap();
        p.set("status", "install ok unpacked");
        p.set("Architecture", "all");
        assert_eq!(
            p.to_string(),
            "Package: a\nStatus: install ok unpacked\nVersion: 1\nArchitecture: all\n"
        );
        assert_eq!(p.remove("VERSION").as_deref(), Some("1"));
        assert_eq!(p.get("Version"), None);
    }

    #[test]
    fn separators_blanks_and_comments() {
        let text = "\n\n# a comment\nTypes: deb\nURIs: http://x/\n  \t\n\n# two\nTypes: deb-src\n";
        let p = parse_paragraphs_with(text, "x.sources", Comments::Allowed).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].get("types"), Some("deb-src"));
        let err = parse_paragraphs(text, "status").unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn malformed_input_is_an_error() {
        for (text, message) in [
            (
                " leading continuation\n",
                "continuation line outside a field",
            ),
            ("Package a\n", "not followed by a colon"),
            (
                "Package: a\npackage: b\n",
                "duplicate value for 'package' field",
            ),
            (": x\n", "invalid field name"),
        ] {
            let err = parse_paragraphs(text, "t").unwrap_err().to_string();
            assert!(err.contains(message), "{text:?}: {err}");
        }
        let many: String = (0..=MAX_FIELDS).map(|i| format!("F{i}: v\n")).collect();
        assert!(parse_paragraphs(&many, "t").is_err());
        assert!(parse_paragraph("A: 1\n\nB: 2\n", "control").is_err());
    }
}
