//! A package's `templates` file (debconf's `Template::load` parser): stanzas separated by
//! a blank line, `Field: value` lines, and an extended value on the continuation lines
//! of a field (` .` an empty line, lines indented twice kept verbatim, other lines
//! joined with a blank). Field names are lower-cased; the first line of `Description`
//! is `description` and the rest `extended_description`, per language
//! (`description-de.utf-8`, `extended_description-de.utf-8`).

use std::collections::BTreeMap;

use super::{Error, is_space};

/// A package's templates file is read whole. Debian's largest (with every translation)
/// are a few hundred KiB; 16 MiB bounds what a hostile package can make the tool hold.
pub const MAX_TEMPLATES_BYTES: u64 = 16 << 20;

/// The fields debconf knows (others are loaded with a warning, as debconf does).
const KNOWN_FIELDS: &[&str] = &["template", "description", "choices", "default", "type"];

/// One stanza: the template's name and its other fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stanza {
    pub name: String,
    /// Lower-case field names; holds `type` when the stanza has one.
    pub fields: BTreeMap<String, String>,
}

/// Parses `text` (the file `file`, named in errors); unknown fields are reported on
/// stderr, as debconf warns.
pub fn parse(text: &str, file: &str) -> Result<Vec<Stanza>, Error> {
    let mut stanzas = Vec::new();
    for (index, record) in records(text).enumerate() {
        let number = index + 1;
        let fields = parse_record(record, number, file)?;
        let mut fields = fields;
        let Some(name) = fields.remove("template") else {
            return Err(Error::Template(format!(
                "Template #{number} in {file} does not contain a 'Template:' line"
            )));
        };
        stanzas.push(Stanza { name, fields });
    }
    Ok(stanzas)
}

/// Records as debconf reads them (`$/ = "\n\n"`, leading and trailing newlines dropped);
/// a record of newlines only is skipped.
fn records(text: &str) -> impl Iterator<Item = &str> {
    text.split("\n\n")
        .map(|r| r.trim_matches('\n'))
        .filter(|r| !r.is_empty())
}

/// The field being read: its name, first-line value and extended value so far.
#[derive(Default)]
struct Pending {
    field: String,
    value: String,
    extended: String,
}

fn parse_record(
    record: &str,
    number: usize,
    file: &str,
) -> Result<BTreeMap<String, String>, Error> {
    let mut data = BTreeMap::new();
    let mut pending = Pending::default();
    for line in record.split('\n') {
        if let Some((field, value)) = field_line(line) {
            save(&mut data, std::mem::take(&mut pending), number, file)?;
            warn_unknown(&field, number, file);
            pending = Pending {
                field,
                value: value.trim_end_matches(is_space).to_owned(),
                extended: String::new(),
            };
        } else {
            continue_line(&mut pending.extended, line)
                .ok_or_else(|| parse_error(line, number, file))?;
        }
    }
    save(&mut data, pending, number, file)?;
    Ok(data)
}

/// `^([-_@.A-Za-z0-9]*):\s?(.*)`: the lower-cased field name and the value.
fn field_line(line: &str) -> Option<(String, &str)> {
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || "-_@.".contains(c)))
        .unwrap_or(line.len());
    let rest = line[end..].strip_prefix(':')?;
    let value = rest.strip_prefix(is_space).unwrap_or(rest);
    Some((line[..end].to_ascii_lowercase(), value))
}

/// Appends a continuation line to the extended value; `None` if the line is none.
fn continue_line(extended: &mut String, line: &str) -> Option<()> {
    let body = line.strip_prefix(is_space)?;
    let ends_open = !extended.is_empty() && !extended.ends_with(['\n', ' ']);
    if body == "." {
        extended.push_str("\n\n");
    } else if body.starts_with(is_space) {
        // Indented twice: a verbatim line.
        if ends_open {
            extended.push('\n');
        }
        extended.push_str(body.trim_end_matches(is_space));
        extended.push('\n');
    } else {
        if ends_open {
            extended.push(' ');
        }
        extended.push_str(body.trim_end_matches(is_space));
    }
    Some(())
}

fn save(
    data: &mut BTreeMap<String, String>,
    pending: Pending,
    number: usize,
    file: &str,
) -> Result<(), Error> {
    if pending.field.is_empty() {
        return Ok(());
    }
    if data.contains_key(&pending.field) {
        return Err(Error::Template(format!(
            "Template #{number} in {file} has a duplicate field \"{}\" with new value \"{}\". \
             Probably two templates are not properly separated by a lone newline.",
            pending.field, pending.value
        )));
    }
    let extended = pending.extended.trim_end_matches('\n');
    if !extended.is_empty() {
        data.insert(format!("extended_{}", pending.field), extended.to_owned());
    }
    data.insert(pending.field, pending.value);
    Ok(())
}

fn warn_unknown(field: &str, number: usize, file: &str) {
    let base = field.split('-').next().unwrap_or(field);
    if !KNOWN_FIELDS.contains(&base) {
        eprintln!("Unknown template field '{field}', in stanza #{number} of {file}");
    }
}

fn parse_error(line: &str, number: usize, file: &str) -> Error {
    Error::Template(format!(
        "Template parse error near `{line}', in stanza #{number} of {file}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATES: &str = "Template: p/q\nType: select\nChoices: yes, no, ask\nDefault: yes\n\
Description: Trust?\n This package\n installs things.\n .\n  - yes: trust\n  - no: do not\nDescription-de.UTF-8: Vertrauen?\n Dieses Paket.\n\n\
Template: p/n\nType: note\nDescription: A note\n";

    #[test]
    fn fields_and_extended_descriptions_as_debconf_reads_them() {
        let stanzas = parse(TEMPLATES, "t").unwrap();
        assert_eq!(stanzas.len(), 2);
        let q = &stanzas[0];
        assert_eq!(q.name, "p/q");
        assert_eq!(q.fields["type"], "select");
        assert_eq!(q.fields["description"], "Trust?");
        assert_eq!(
            q.fields["extended_description"],
            "This package installs things.\n\n - yes: trust\n - no: do not"
        );
        assert_eq!(q.fields["description-de.utf-8"], "Vertrauen?");
        assert_eq!(q.fields["extended_description-de.utf-8"], "Dieses Paket.");
        assert_eq!(stanzas[1].fields["type"], "note");
    }

    #[test]
    fn malformed_templates_fail_with_debconfs_words() {
        let err = parse("Template: a\nType: string\nType: note\n", "f").unwrap_err();
        assert!(
            err.to_string().contains("duplicate field \"type\""),
            "{err}"
        );
        let err = parse("Type: string\n", "f").unwrap_err();
        assert!(
            err.to_string()
                .contains("does not contain a 'Template:' line")
        );
        let err = parse("Template: a\nno colon here\n", "f").unwrap_err();
        assert!(
            err.to_string()
                .contains("Template parse error near `no colon here'")
        );
    }
}
