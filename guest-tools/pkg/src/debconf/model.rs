//! Questions and templates over the three database files, with the rules of debconf's
//! `Question.pm`, `Template.pm` and the `Stack` driver: a question is an item of the
//! config stack (config.dat, or passwords.dat for password questions) naming its
//! template; a template is an item of templates.dat whose owners are the questions using
//! it; a question's value falls back to its template's default.

use std::path::Path;

use super::Error;
use super::db::{Accepts, DbFile};
use super::templates::{self, MAX_TEMPLATES_BYTES};

/// Where debconf keeps its database (debconf.conf's defaults), below the root.
const CONFIG_DAT: &str = "var/cache/debconf/config.dat";
const PASSWORDS_DAT: &str = "var/cache/debconf/passwords.dat";
const TEMPLATES_DAT: &str = "var/cache/debconf/templates.dat";

/// The whole database.
#[derive(Debug)]
pub struct Db {
    /// The config stack, searched in this order: config.dat, passwords.dat.
    config: DbFile,
    passwords: DbFile,
    templates: DbFile,
}

impl Db {
    /// Loads the database of the system at `root` (`/` for the step's own).
    pub fn load(root: &Path) -> Result<Self, Error> {
        Ok(Db {
            config: DbFile::open(root.join(CONFIG_DAT), 0o644, true, Accepts::AllButPasswords)?,
            passwords: DbFile::open(root.join(PASSWORDS_DAT), 0o600, false, Accepts::Passwords)?,
            templates: DbFile::open(root.join(TEMPLATES_DAT), 0o644, true, Accepts::Everything)?,
        })
    }

    /// An empty database that is never saved (tests).
    pub fn in_memory() -> Self {
        Db {
            config: DbFile::in_memory(Accepts::AllButPasswords),
            passwords: DbFile::in_memory(Accepts::Passwords),
            templates: DbFile::in_memory(Accepts::Everything),
        }
    }

    /// Writes every file that changed (`Debconf::Db->save`).
    pub fn save(&mut self) -> Result<(), Error> {
        self.config.save()?;
        self.passwords.save()?;
        self.templates.save()
    }

    pub fn config_file(&self) -> &DbFile {
        &self.config
    }

    pub fn templates_file(&self) -> &DbFile {
        &self.templates
    }

    /// The config-stack file holding `question`.
    fn holder(&self, question: &str) -> Option<&DbFile> {
        [&self.config, &self.passwords]
            .into_iter()
            .find(|f| f.exists(question))
    }

    fn holder_mut(&mut self, question: &str) -> Option<&mut DbFile> {
        if self.config.exists(question) {
            Some(&mut self.config)
        } else if self.passwords.exists(question) {
            Some(&mut self.passwords)
        } else {
            None
        }
    }

    pub fn question_exists(&self, question: &str) -> bool {
        self.holder(question).is_some()
    }

    /// Every question, sorted by name.
    pub fn questions(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .config
            .names()
            .chain(self.passwords.names())
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Adds an owner; a new question goes to the file that takes its `kind`.
    fn add_owner(&mut self, question: &str, owner: &str, kind: &str) -> bool {
        match self.holder_mut(question) {
            Some(file) => file.add_owner(question, owner, kind),
            None => {
                self.config.add_owner(question, owner, kind)
                    || self.passwords.add_owner(question, owner, kind)
            }
        }
    }

    pub fn field(&self, question: &str, field: &str) -> Option<&str> {
        self.holder(question)?.field(question, field)
    }

    pub fn set_field(&mut self, question: &str, field: &str, value: &str) -> bool {
        self.holder_mut(question)
            .is_some_and(|f| f.set_field(question, field, value))
    }

    /// A flag of an existing question (`false` when unset); `isdefault` is the inverse of
    /// `seen`, as debconf keeps it for old scripts.
    pub fn flag(&self, question: &str, flag: &str) -> Option<String> {
        let file = self.holder(question)?;
        if flag == "isdefault" {
            let seen = file.flag(question, "seen") == Some("true");
            return Some(if seen { "false" } else { "true" }.to_owned());
        }
        file.flag(question, flag).map(str::to_owned)
    }

    /// Sets a flag; what debconf's FSET answers with (the value set, or for
    /// `isdefault` the flag read back).
    pub fn set_flag(&mut self, question: &str, flag: &str, value: &str) -> Option<String> {
        let file = self.holder_mut(question)?;
        if flag == "isdefault" {
            let seen = if value == "true" { "false" } else { "true" };
            file.set_flag(question, "seen", seen);
            return self.flag(question, flag);
        }
        file.set_flag(question, flag, value)
            .then(|| value.to_owned())
    }

    pub fn set_variable(&mut self, question: &str, name: &str, value: &str) -> bool {
        self.holder_mut(question)
            .is_some_and(|f| f.set_variable(question, name, value))
    }

    /// The question's owners, sorted and joined as debconf shows them.
    pub fn owners(&self, question: &str) -> Option<String> {
        let item = self.holder(question)?.get(question)?;
        let owners: Vec<&str> = item.owners.iter().map(String::as_str).collect();
        Some(owners.join(", "))
    }

    /// The template a question uses, if that template exists.
    pub fn template_of(&self, question: &str) -> Option<&str> {
        let name = self.field(question, "template")?;
        self.templates.exists(name).then_some(name)
    }

    /// A template field as debconf reads it in the C locale: `field-en`, then a
    /// `field-en.<charset>` translation, then `field`; `''` when none (debconf's
    /// template accessor never answers undef).
    pub fn template_field(&self, template: &str, field: &str) -> String {
        let Some(item) = self.templates.get(template) else {
            return String::new();
        };
        let english = format!("{field}-en");
        let charset = format!("{english}.");
        let found = item.fields.get(&english).or_else(|| {
            item.fields
                .iter()
                .find(|(k, _)| k.starts_with(&charset))
                .map(|(_, v)| v)
        });
        let plain = field.split('-').next().unwrap_or(field);
        found
            .or_else(|| item.fields.get(field))
            .or_else(|| item.fields.get(plain).filter(|_| field.contains('-')))
            .cloned()
            .unwrap_or_default()
    }

    /// A template field with translations switched off (`Choices-C`, then `Choices`), as
    /// the select element reads choices.
    pub fn template_field_c(&self, template: &str, field: &str) -> String {
        let Some(item) = self.templates.get(template) else {
            return String::new();
        };
        item.fields
            .get(&format!("{field}-c"))
            .or_else(|| item.fields.get(field))
            .cloned()
            .unwrap_or_default()
    }

    /// The question's value: its own, else its template's default.
    pub fn value(&self, question: &str) -> Option<String> {
        if let Some(v) = self.field(question, "value") {
            return Some(v.to_owned());
        }
        self.template_of(question)
            .map(|t| self.template_field(t, "default"))
    }

    /// A question's own field, else its template's (`Question::AUTOLOAD`).
    pub fn question_field(&self, question: &str, field: &str) -> Option<String> {
        if let Some(v) = self.field(question, field) {
            return Some(v.to_owned());
        }
        self.template_of(question)
            .map(|t| self.template_field(t, field))
    }

    /// `text` with the question's `${var}`s substituted (`\${var}` stays literal).
    pub fn expand(&self, question: &str, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            let Some(len) = rest[start + 2..].find(['{', '}']) else {
                break;
            };
            let end = start + 2 + len;
            if !rest[end..].starts_with('}') || len == 0 {
                // Not a variable here; one may still start inside what follows.
                out.push_str(&rest[..=start]);
                rest = &rest[start + 1..];
                continue;
            }
            let var = &rest[start + 2..end];
            let escaped = rest[..start].ends_with('\\');
            out.push_str(&rest[..start - usize::from(escaped)]);
            if escaped {
                out.push_str(&format!("${{{var}}}"));
            } else if let Some(v) = self
                .holder(question)
                .and_then(|f| f.variable(question, var))
            {
                out.push_str(v);
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Creates a question owned by `owner` (`Question->new`): unseen.
    pub fn new_question(&mut self, question: &str, owner: &str, kind: &str) -> bool {
        if !self.add_owner(question, owner, kind) {
            return false;
        }
        self.set_flag(question, "seen", "false");
        true
    }

    /// Adds an owner to an existing or new question (`Question->addowner`).
    pub fn add_question_owner(&mut self, question: &str, owner: &str, kind: &str) -> bool {
        self.add_owner(question, owner, kind)
    }

    /// Points `question` at `template`, moving the template's ownership
    /// (`Question->template`).
    pub fn set_template(&mut self, question: &str, template: &str) {
        let old = self.field(question, "template").map(str::to_owned);
        if old.as_deref() == Some(template) {
            return;
        }
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            self.templates.remove_owner(&old, question);
        }
        self.set_field(question, "template", template);
        let kind = self
            .templates
            .field(template, "type")
            .unwrap_or_default()
            .to_owned();
        self.templates.add_owner(template, question, &kind);
    }

    /// Drops `owner` from `question`; a question left without owners goes, and so does
    /// its hold on its template (`Question->removeowner`).
    pub fn remove_question_owner(&mut self, question: &str, owner: &str) {
        let template = self.field(question, "template").map(str::to_owned);
        let Some(file) = self.holder_mut(question) else {
            return;
        };
        file.remove_owner(question, owner);
        if let Some(template) = template.filter(|t| !t.is_empty())
            && !self.question_exists(question)
        {
            self.templates.remove_owner(&template, question);
        }
    }

    pub fn template_exists(&self, template: &str) -> bool {
        self.templates.exists(template)
    }

    /// Creates (or takes over) template `name` of `kind` for `owner`, with its question
    /// of the same name (`Template->new`).
    pub fn new_template(&mut self, name: &str, owner: &str, kind: &str) {
        let owned = self
            .templates
            .get(name)
            .is_some_and(|t| !t.owners.is_empty());
        if self.question_exists(name) {
            self.add_owner(name, owner, kind);
        } else if self.new_question(name, owner, kind) {
            self.set_template(name, name);
        }
        if owned {
            self.repair_template_questions(name, owner, kind);
            return;
        }
        self.templates.add_owner(name, name, kind);
        self.templates.set_field(name, "type", kind);
    }

    /// Questions a template lists as owners but the config lacks are made again, with
    /// debconf's warning.
    fn repair_template_questions(&mut self, template: &str, owner: &str, kind: &str) {
        let owners: Vec<String> = self
            .templates
            .get(template)
            .map(|t| t.owners.iter().cloned().collect())
            .unwrap_or_default();
        for question in owners {
            if !self.question_exists(&question) {
                eprintln!(
                    "warning: possible database corruption. Will attempt to repair by \
                     adding back missing question {question}."
                );
                if self.new_question(&question, owner, kind) {
                    self.set_template(&question, template);
                }
            }
        }
    }

    /// Sets one field of a template.
    pub fn set_template_field(&mut self, template: &str, field: &str, value: &str) {
        self.templates.set_field(template, field, value);
    }

    /// Loads a templates file's text for `owner` (`Template->load`): each template is
    /// made (with its question) and its fields replaced by the file's.
    pub fn load_templates(&mut self, text: &str, file: &str, owner: &str) -> Result<(), Error> {
        for stanza in templates::parse(text, file)? {
            let Some(kind) = stanza.fields.get("type").cloned() else {
                return Err(Error::Template(format!(
                    "template {} in {file} has no type",
                    stanza.name
                )));
            };
            self.new_template(&stanza.name, owner, &kind);
            self.clear_template(&stanza.name);
            for (field, value) in &stanza.fields {
                self.templates.set_field(&stanza.name, field, value);
            }
        }
        Ok(())
    }

    /// Reads and loads the templates file at `path` for `owner`.
    pub fn load_templates_file(&mut self, path: &Path, owner: &str) -> Result<(), Error> {
        let text = super::db::read_bounded(path, MAX_TEMPLATES_BYTES)?;
        self.load_templates(&text, &path.to_string_lossy(), owner)
    }

    fn clear_template(&mut self, template: &str) {
        let fields: Vec<String> = self
            .templates
            .get(template)
            .map(|t| t.fields.keys().cloned().collect())
            .unwrap_or_default();
        for field in fields {
            self.templates.remove_field(template, &field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATES: &str = "Template: p/q\nType: string\nDefault: hello ${who}\n\
Description: Say ${what}\n\nTemplate: p/pw\nType: password\nDescription: Secret\n";

    fn loaded() -> Db {
        let mut db = Db::in_memory();
        db.load_templates(TEMPLATES, "templates", "p").unwrap();
        db
    }

    #[test]
    fn loading_templates_makes_their_questions() {
        let db = loaded();
        assert!(db.question_exists("p/q"));
        assert_eq!(db.template_of("p/q"), Some("p/q"));
        assert_eq!(db.owners("p/q").as_deref(), Some("p"));
        assert_eq!(db.value("p/q").as_deref(), Some("hello ${who}"));
        assert_eq!(db.flag("p/q", "seen").as_deref(), Some("false"));
        assert!(db.passwords.exists("p/pw"), "a password question");
        assert!(!db.config.exists("p/pw"));
        let t = db.templates.get("p/q").unwrap();
        assert!(t.owners.contains("p/q"));
        assert_eq!(t.fields["type"], "string");
    }

    #[test]
    fn variables_expand_and_escaped_ones_stay() {
        let mut db = loaded();
        db.set_variable("p/q", "who", "world");
        assert_eq!(
            db.expand("p/q", "hi ${who}, \\${who} ${none}!"),
            "hi world, ${who} !"
        );
        assert_eq!(db.expand("p/q", "${ and ${}"), "${ and ${}");
        assert_eq!(db.expand("p/q", "${a${who}"), "${aworld");
    }

    #[test]
    fn removing_the_last_owner_drops_question_and_template_hold() {
        let mut db = loaded();
        db.remove_question_owner("p/q", "p");
        assert!(!db.question_exists("p/q"));
        assert!(!db.template_exists("p/q"), "its only owner went");
    }
}
