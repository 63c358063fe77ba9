//! Compose's variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+replacement}`, `${VAR+replacement}` and `$$`,
//! applied to every string value of a file (never to keys), before validation.
//!
//! The error texts are compose's (compose-go's template package), so a message a user
//! searches for is the one compose would have printed.

use std::collections::BTreeSet;

use serde_yaml_ng::Value;

/// How deep `${A:-${B:-${C}}}` may nest. Each level is a recursive call: the bound keeps
/// a hostile file from exhausting the stack; real files nest one or two levels.
pub const MAX_NESTING: usize = 32;

/// A template that could not be expanded, without the place it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TemplateError {
    Invalid,
    Missing { var: String, reason: String },
}

/// An interpolation failure at a place in the file (`services.app.build.args.X`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    #[error(
        "invalid interpolation format for {at}.\nYou may need to escape any $ with another $.\n{template}"
    )]
    Invalid { at: String, template: String },
    #[error("error while interpolating {at}: required variable {var} is missing a value{}",
        if reason.is_empty() { String::new() } else { format!(": {reason}") })]
    Missing {
        at: String,
        var: String,
        reason: String,
    },
}

/// Expands templates against `lookup` and remembers which unset variables defaulted to
/// a blank string (compose warns about each once).
pub(crate) struct Interpolator<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    unset: BTreeSet<String>,
}

impl<'a> Interpolator<'a> {
    pub(crate) fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            lookup,
            unset: BTreeSet::new(),
        }
    }

    /// Compose's warning for each variable that was unset and had no default.
    pub(crate) fn warnings(&self) -> Vec<String> {
        self.unset
            .iter()
            .map(|v| format!("The {v:?} variable is not set. Defaulting to a blank string."))
            .collect()
    }

    /// Interpolates every string in `value`; `at` is the path of `value` in the file.
    pub(crate) fn value(&mut self, value: &mut Value, at: &str) -> Result<(), InterpolateError> {
        match value {
            Value::String(text) => *text = self.text(text, at)?,
            Value::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.value(item, &format!("{at}[{i}]"))?;
                }
            }
            Value::Mapping(map) => {
                for (key, item) in map.iter_mut() {
                    let key = crate::schema::key_text(key);
                    self.value(item, &join(at, &key))?;
                }
            }
            Value::Tagged(tagged) => self.value(&mut tagged.value, at)?,
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
        Ok(())
    }

    /// One string, its failure placed at `at`.
    pub(crate) fn text(&mut self, text: &str, at: &str) -> Result<String, InterpolateError> {
        self.expand(text, 0).map_err(|e| match e {
            TemplateError::Invalid => InterpolateError::Invalid {
                at: at.to_owned(),
                template: text.to_owned(),
            },
            TemplateError::Missing { var, reason } => InterpolateError::Missing {
                at: at.to_owned(),
                var,
                reason,
            },
        })
    }

    fn expand(&mut self, text: &str, depth: usize) -> Result<String, TemplateError> {
        if depth > MAX_NESTING {
            return Err(TemplateError::Invalid);
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(tail) = after.strip_prefix('{') {
                let end = closing_brace(tail).ok_or(TemplateError::Invalid)?;
                out.push_str(&self.braced(&tail[..end], depth)?);
                rest = &tail[end + 1..];
            } else {
                let len = name_len(after);
                if len == 0 {
                    return Err(TemplateError::Invalid);
                }
                out.push_str(&self.plain(&after[..len]));
                rest = &after[len..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// `$NAME` / `${NAME}`: the value, or blank with a warning.
    fn plain(&mut self, name: &str) -> String {
        (self.lookup)(name).unwrap_or_else(|| {
            self.unset.insert(name.to_owned());
            String::new()
        })
    }

    /// The inside of `${...}`: a name and an optional operator with its word.
    fn braced(&mut self, body: &str, depth: usize) -> Result<String, TemplateError> {
        let len = name_len(body);
        if len == 0 {
            return Err(TemplateError::Invalid);
        }
        let (name, op) = body.split_at(len);
        if op.is_empty() {
            return Ok(self.plain(name));
        }
        let value = (self.lookup)(name);
        // `:` makes an empty value count as unset.
        let (colon, op) = match op.strip_prefix(':') {
            Some(op) => (true, op),
            None => (false, op),
        };
        let set = value.as_ref().is_some_and(|v| !(colon && v.is_empty()));
        let first = op.chars().next();
        let word = &op[first.map_or(0, char::len_utf8)..];
        match first {
            Some('-') if set => Ok(value.unwrap_or_default()),
            Some('-') => self.expand(word, depth + 1),
            Some('+') if set => self.expand(word, depth + 1),
            Some('+') => Ok(String::new()),
            Some('?') if set => Ok(value.unwrap_or_default()),
            Some('?') => Err(TemplateError::Missing {
                var: name.to_owned(),
                reason: word.to_owned(),
            }),
            _ => Err(TemplateError::Invalid),
        }
    }
}

/// `a.b` from a path and a key; the root has no prefix.
pub(crate) fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

/// Length of the variable name at the start of `s` (`[_A-Za-z][_A-Za-z0-9]*`), 0 if none.
fn name_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    if !bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
    {
        return 0;
    }
    bytes
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .unwrap_or(bytes.len())
}

/// Index of the `}` closing a `${` whose body starts `s`, counting nested `${...}`.
fn closing_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("v".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn expand(text: &str) -> Result<String, InterpolateError> {
        Interpolator::new(&env).text(text, "services.app.image")
    }

    #[test]
    fn every_form_expands_as_compose() {
        let cases = [
            ("$SET-${SET}", "v-v"),
            ("a$$b $${SET}", "a$b ${SET}"),
            ("${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d}", "d d  d"),
            ("${SET:+x} ${EMPTY:+x} ${EMPTY+x} ${UNSET+x}", "x  x "),
            ("${SET:?no} ${EMPTY?no}", "v "),
            ("${UNSET:-${SET}}/${UNSET:-${UNSET2:-deep}}", "v/deep"),
            ("$UNSET.tail", ".tail"),
            ("no dollars", "no dollars"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn errors_use_compose_texts() {
        assert_eq!(
            expand("${X:?set X first}").unwrap_err().to_string(),
            "error while interpolating services.app.image: required variable X is missing a value: set X first"
        );
        assert_eq!(
            expand("${EMPTY:?}").unwrap_err().to_string(),
            "error while interpolating services.app.image: required variable EMPTY is missing a value"
        );
        for bad in [
            "cost $5",
            "${",
            "${SET",
            "${1X}",
            "${SET:x}",
            "$",
            "${}",
            "${SET€}",
            "${SET:}",
        ] {
            assert_eq!(
                expand(bad).unwrap_err().to_string(),
                format!(
                    "invalid interpolation format for services.app.image.\n\
                     You may need to escape any $ with another $.\n{bad}"
                ),
            );
        }
    }

    #[test]
    fn unset_variables_warn_once_and_nesting_is_bounded() {
        let mut i = Interpolator::new(&env);
        i.text("$A ${A} ${B:-x}", "x").unwrap();
        assert_eq!(
            i.warnings(),
            ["The \"A\" variable is not set. Defaulting to a blank string."]
        );
        let deep = format!(
            "{}x{}",
            "${U:-".repeat(MAX_NESTING + 2),
            "}".repeat(MAX_NESTING + 2)
        );
        assert!(matches!(
            i.text(&deep, "x"),
            Err(InterpolateError::Invalid { .. })
        ));
        let ok = format!("{}x{}", "${U:-".repeat(4), "}".repeat(4));
        assert_eq!(i.text(&ok, "x").unwrap(), "x");
    }
}
