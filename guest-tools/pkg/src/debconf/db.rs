//! debconf's database as Debian's debconf keeps it (`/etc/debconf.conf`'s default setup):
//! questions in `/var/cache/debconf/config.dat` (password questions in `passwords.dat`),
//! templates in `templates.dat`. Each file is a list of rfc822-like stanzas in
//! debconf's `Format::822` (name, fields, owners, true flags, variables; newlines in
//! values as `\n`), loaded whole and rewritten whole as `DbDriver::File` does: a changed
//! database goes to `<file>-new`, the previous file becomes `<file>-old`, and the new one
//! is renamed into place; an unchanged one is not touched.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::{Error, is_space};

/// A database file is read whole into memory, so it is bounded. A Debian desktop's
/// templates.dat (every installed package's templates with all translations) is about
/// 20 MiB; 256 MiB is far past any real system and stops a hostile image from making
/// the tool read without end.
pub const MAX_DB_FILE_BYTES: u64 = 256 << 20;

/// One named entry: a question in config.dat, a template in templates.dat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Item {
    /// Field names are lower case (`value`, `template`, `description-de.utf-8`).
    pub fields: BTreeMap<String, String>,
    pub owners: BTreeSet<String>,
    /// Flag values as set (`true`, `false`); only `true` ones are written.
    pub flags: BTreeMap<String, String>,
    pub variables: BTreeMap<String, String>,
}

/// Which questions a file takes (debconf.conf's `Accept-Type`/`Reject-Type: password`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepts {
    Everything,
    Passwords,
    AllButPasswords,
}

impl Accepts {
    /// Whether an item of `kind` (a template type) belongs in this file; debconf matches
    /// the type against the regex `password`.
    fn accepts(self, kind: &str) -> bool {
        match self {
            Accepts::Everything => true,
            Accepts::Passwords => kind.contains("password"),
            Accepts::AllButPasswords => !kind.contains("password"),
        }
    }
}

/// One database file (`DbDriver::File` over `DbDriver::Cache`).
#[derive(Debug)]
pub struct DbFile {
    path: PathBuf,
    mode: u32,
    /// Keep the previous file as `<file>-old` when saving.
    backup: bool,
    accepts: Accepts,
    items: BTreeMap<String, Item>,
    dirty: bool,
}

impl DbFile {
    /// Loads `path` (creating it empty with `mode` when missing, as debconf does).
    pub fn open(path: PathBuf, mode: u32, backup: bool, accepts: Accepts) -> Result<Self, Error> {
        let mut file = DbFile {
            path,
            mode,
            backup,
            accepts,
            items: BTreeMap::new(),
            dirty: false,
        };
        match read_bounded(&file.path, MAX_DB_FILE_BYTES) {
            Ok(text) => file.items = parse(&text),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                create_parent(&file.path)?;
                write_with_mode(&file.path, b"", mode)?;
                // A file that did not exist has nothing to back up.
                file.backup = false;
            }
            Err(e) => return Err(e),
        }
        Ok(file)
    }

    /// A database that lives only in memory (tests; never saved).
    pub fn in_memory(accepts: Accepts) -> Self {
        DbFile {
            path: PathBuf::new(),
            mode: 0o644,
            backup: false,
            accepts,
            items: BTreeMap::new(),
            dirty: false,
        }
    }

    pub fn exists(&self, item: &str) -> bool {
        self.items.contains_key(item)
    }

    pub fn get(&self, item: &str) -> Option<&Item> {
        self.items.get(item)
    }

    /// Every item name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.items.keys()
    }

    /// Mutable access to an existing item, marking the file changed (as every debconf
    /// setter does, even when the value is the same).
    fn touch(&mut self, item: &str) -> Option<&mut Item> {
        let found = self.items.get_mut(item)?;
        self.dirty = true;
        Some(found)
    }

    /// Adds `owner` to `item`, creating the item; `false` when this file does not take
    /// items of `kind`.
    pub fn add_owner(&mut self, item: &str, owner: &str, kind: &str) -> bool {
        if !self.items.contains_key(item) && !self.accepts.accepts(kind) {
            return false;
        }
        let entry = self.items.entry(item.to_owned()).or_default();
        if entry.owners.insert(owner.to_owned()) {
            self.dirty = true;
        }
        true
    }

    /// Removes `owner` from `item`; an item left without owners is deleted.
    pub fn remove_owner(&mut self, item: &str, owner: &str) -> bool {
        let Some(entry) = self.items.get_mut(item) else {
            return false;
        };
        if entry.owners.remove(owner) {
            self.dirty = true;
        }
        if entry.owners.is_empty() {
            self.items.remove(item);
            self.dirty = true;
        }
        true
    }

    pub fn field(&self, item: &str, field: &str) -> Option<&str> {
        self.items.get(item)?.fields.get(field).map(String::as_str)
    }

    pub fn set_field(&mut self, item: &str, field: &str, value: &str) -> bool {
        self.touch(item)
            .map(|e| e.fields.insert(field.to_owned(), value.to_owned()))
            .is_some()
    }

    pub fn remove_field(&mut self, item: &str, field: &str) {
        if let Some(e) = self.touch(item) {
            e.fields.remove(field);
        }
    }

    /// A flag's value; `false` for an unset flag of an existing item.
    pub fn flag(&self, item: &str, flag: &str) -> Option<&str> {
        let entry = self.items.get(item)?;
        Some(entry.flags.get(flag).map_or("false", String::as_str))
    }

    pub fn set_flag(&mut self, item: &str, flag: &str, value: &str) -> bool {
        self.touch(item)
            .map(|e| e.flags.insert(flag.to_owned(), value.to_owned()))
            .is_some()
    }

    pub fn variable(&self, item: &str, name: &str) -> Option<&str> {
        self.items
            .get(item)?
            .variables
            .get(name)
            .map(String::as_str)
    }

    pub fn set_variable(&mut self, item: &str, name: &str, value: &str) -> bool {
        self.touch(item)
            .map(|e| e.variables.insert(name.to_owned(), value.to_owned()))
            .is_some()
    }

    /// Writes the file if anything changed (`DbFile::shutdown`).
    pub fn save(&mut self) -> Result<(), Error> {
        if !self.dirty || self.path.as_os_str().is_empty() {
            return Ok(());
        }
        let new = suffixed(&self.path, "-new");
        write_with_mode(&new, format(&self.items).as_bytes(), self.mode)?;
        if self.backup && self.path.exists() {
            // debconf only logs a failed backup; the save goes on.
            let _ = std::fs::rename(&self.path, suffixed(&self.path, "-old"));
        }
        std::fs::rename(&new, &self.path).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })?;
        self.dirty = false;
        Ok(())
    }
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Reads at most `limit` bytes of `path` as text (bytes that are not UTF-8 are replaced:
/// Debian's debconf data has been UTF-8 since 2008).
pub fn read_bounded(path: &Path, limit: u64) -> Result<String, Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    Ok(String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

fn create_parent(path: &Path) -> Result<(), Error> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::create_dir(dir)
            .map_err(|source| Error::Io {
                path: dir.to_owned(),
                source,
            }),
        _ => Ok(()),
    }
}

/// Writes `bytes` to `path` with `mode` under the process umask (debconf's `sysopen`).
fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    std::fs::write(path, bytes).map_err(io)?;
    let text = path.to_string_lossy();
    kiln_abi::chmod(&text, mode & !kiln_abi::umask(), true).map_err(io)
}

/// Parses a whole file in debconf's 822 format (`Format::822::read`, stanza after stanza;
/// a stanza without `Name` is dropped).
pub fn parse(text: &str) -> BTreeMap<String, Item> {
    let mut items = BTreeMap::new();
    let mut lines = text.split('\n').peekable();
    while lines.peek().is_some() {
        let (name, item) = parse_stanza(&mut lines);
        if let Some(name) = name {
            items.insert(name, item);
        }
    }
    items
}

fn parse_stanza<'a>(lines: &mut impl Iterator<Item = &'a str>) -> (Option<String>, Item) {
    let mut item = Item::default();
    let mut name = None;
    let mut in_variables = false;
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        if in_variables {
            if line.starts_with(is_space) {
                let line = line.trim_start_matches(is_space);
                let (var, value) = split_variable(line);
                item.variables
                    .insert(var.to_owned(), value.replace("\\n", "\n"));
                continue;
            }
            in_variables = false;
        }
        let Some((key, value)) = split_field(line) else {
            continue;
        };
        match key.to_ascii_lowercase().as_str() {
            "owners" => item.owners.extend(split_list(value).map(str::to_owned)),
            "flags" => {
                for flag in split_list(value) {
                    item.flags.insert(flag.to_owned(), "true".to_owned());
                }
            }
            "variables" => in_variables = true,
            "name" => name = Some(value.to_owned()),
            "" => {}
            key => {
                item.fields
                    .insert(key.to_owned(), value.replace("\\n", "\n"));
            }
        }
    }
    (name, item)
}

/// `key: value` split as debconf's `split(/:\s?/, $line, 2)`.
fn split_field(line: &str) -> Option<(&str, &str)> {
    let (key, rest) = line.split_once(':')?;
    let value = rest.strip_prefix(is_space).unwrap_or(rest);
    Some((key, value))
}

/// ` name = value` (already left-trimmed) as `split(/\s*=\s?/, $line, 2)`.
fn split_variable(line: &str) -> (&str, &str) {
    match line.split_once('=') {
        Some((var, rest)) => (
            var.trim_end_matches(is_space),
            rest.strip_prefix(is_space).unwrap_or(rest),
        ),
        None => (line, ""),
    }
}

/// A list field split on `,` followed by blanks (`split(/,\s+/)`).
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let text = rest?;
        let mut search = 0;
        while let Some(i) = text[search..].find(',').map(|i| i + search) {
            let after = &text[i + 1..];
            let trimmed = after.trim_start_matches(is_space);
            if trimmed.len() < after.len() {
                rest = Some(trimmed);
                return Some(&text[..i]);
            }
            search = i + 1;
        }
        rest = None;
        Some(text)
    })
    .filter(|s| !s.is_empty())
}

/// The whole file in debconf's 822 format (`Format::822::write` for every item, sorted).
pub fn format(items: &BTreeMap<String, Item>) -> String {
    let mut out = String::new();
    for (name, item) in items {
        format_item(&mut out, name, item);
    }
    out
}

fn format_item(out: &mut String, name: &str, item: &Item) {
    out.push_str(&format!("Name: {name}\n"));
    for (field, value) in &item.fields {
        out.push_str(&format!(
            "{}: {}\n",
            ucfirst(field),
            value.replace('\n', "\\n")
        ));
    }
    if !item.owners.is_empty() {
        let owners: Vec<&str> = item.owners.iter().map(String::as_str).collect();
        out.push_str(&format!("Owners: {}\n", owners.join(", ")));
    }
    let flags: Vec<&str> = item
        .flags
        .iter()
        .filter(|(_, v)| *v == "true")
        .map(|(k, _)| k.as_str())
        .collect();
    if !flags.is_empty() {
        out.push_str(&format!("Flags: {}\n", flags.join(", ")));
    }
    if !item.variables.is_empty() {
        out.push_str("Variables:\n");
        for (var, value) in &item.variables {
            out.push_str(&format!(" {var} = {}\n", value.replace('\n', "\\n")));
        }
    }
    out.push('\n');
}

/// Perl's `ucfirst`.
fn ucfirst(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANZAS: &str = "Name: a/q\nTemplate: a/q\nValue: one\\ntwo\nOwners: a, b\nFlags: seen\nVariables:\n x = 1\n y = a\\nb\n\nName: b/q\nTemplate: b/q\nValue: \nOwners: b\n\n";

    #[test]
    fn stanzas_read_back_byte_for_byte() {
        let items = parse(STANZAS);
        assert_eq!(items.len(), 2);
        let a = &items["a/q"];
        assert_eq!(a.fields["value"], "one\ntwo");
        assert_eq!(a.variables["y"], "a\nb");
        assert_eq!(a.flags["seen"], "true");
        assert_eq!(format(&items), STANZAS);
    }

    #[test]
    fn false_flags_and_empty_owner_lists_are_not_written() {
        let mut items = parse("Name: q\nOwners: p\n\n");
        let q = items.get_mut("q").unwrap();
        q.flags.insert("seen".into(), "false".into());
        assert_eq!(format(&items), "Name: q\nOwners: p\n\n");
    }

    #[test]
    fn lists_split_on_a_comma_and_blanks_only() {
        let got: Vec<&str> = split_list("a, b,c,  d").collect();
        assert_eq!(got, ["a", "b,c", "d"]);
        assert_eq!(split_list("").count(), 0);
    }

    #[test]
    fn owners_and_passwords_go_where_debconf_conf_puts_them() {
        let mut config = DbFile::in_memory(Accepts::AllButPasswords);
        let mut passwords = DbFile::in_memory(Accepts::Passwords);
        assert!(!config.add_owner("p/pw", "p", "password"));
        assert!(passwords.add_owner("p/pw", "p", "password"));
        assert!(config.add_owner("p/q", "p", "string"));
        assert!(config.remove_owner("p/q", "p"));
        assert!(!config.exists("p/q"), "an item without owners goes");
    }
}
