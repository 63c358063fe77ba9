//! Which checks run and whether they fail the build: `# check=` parser directives and
//! comments, and the `BUILDKIT_DOCKERFILE_CHECK` build argument.

use super::Rule;

/// `skip=Rule1,Rule2;experimental=Rule3;error=true`, as BuildKit reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckConfig {
    pub skip_all: bool,
    /// Rule names as written; BuildKit compares them case-sensitively.
    pub skip: Vec<String>,
    /// Lint warnings fail the build.
    pub error: bool,
    pub experimental_all: bool,
    pub experimental: Vec<String>,
}

/// BuildKit splits the value into at most this many `;` parts; a fourth option is then
/// part of the third option's value.
const MAX_OPTIONS: usize = 3;

impl CheckConfig {
    /// Parses a check value; the error says which option is wrong.
    pub fn parse(s: &str) -> Result<CheckConfig, String> {
        let mut c = CheckConfig::default();
        let s = s.trim();
        if s.is_empty() {
            return Ok(c);
        }
        for part in s.splitn(MAX_OPTIONS, ';') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("invalid check option {part:?}"))?;
            match k.trim() {
                "skip" => (c.skip_all, c.skip) = rule_list(v),
                "experimental" => (c.experimental_all, c.experimental) = rule_list(v),
                "error" => {
                    c.error = parse_bool(v.trim())
                        .ok_or_else(|| format!("failed to parse check option {part:?}"))?;
                }
                other => return Err(format!("invalid check option {other:?}")),
            }
        }
        Ok(c)
    }

    /// Whether `rule` runs: experimental rules only when enabled by name or `all`, other
    /// rules unless skipped.
    pub fn enabled(&self, rule: Rule) -> bool {
        let listed = |names: &[String]| names.iter().any(|n| n == rule.name());
        if rule.experimental() {
            self.experimental_all || listed(&self.experimental)
        } else {
            !self.skip_all && !listed(&self.skip)
        }
    }

    /// The configuration with a `# check=` comment's skips and experiments added (an
    /// instruction's comment never turns `error` on or off, as in BuildKit).
    pub(crate) fn merged(&self, other: &CheckConfig) -> CheckConfig {
        let mut c = self.clone();
        c.skip_all |= other.skip_all;
        c.skip.extend(other.skip.iter().cloned());
        c.experimental_all |= other.experimental_all;
        c.experimental.extend(other.experimental.iter().cloned());
        c
    }

    /// The first `check=` among an instruction's comments, as BuildKit finds it: the
    /// directive syntax without `#`, the value up to the first space (so a trailing
    /// `// why` is allowed). An invalid one is ignored.
    pub(crate) fn from_comments(comments: &[String]) -> Option<CheckConfig> {
        let value = comments.iter().find_map(|c| {
            let (name, value) = crate::syntax::split_directive(c)?;
            (name == "check").then_some(value)
        })?;
        let value = value.split(' ').next().unwrap_or("");
        CheckConfig::parse(value).ok()
    }
}

/// `all` or a comma-separated list of rule names.
fn rule_list(v: &str) -> (bool, Vec<String>) {
    let v = v.trim();
    if v == "all" {
        (true, Vec::new())
    } else {
        (false, v.split(',').map(|r| r.trim().to_string()).collect())
    }
}

/// Go's `strconv.ParseBool`, which BuildKit uses for `error=`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_buildkit() {
        let c = CheckConfig::parse(" skip = A, B ;error=True;experimental=all").unwrap();
        assert_eq!(c.skip, ["A", "B"]);
        assert!(c.error && c.experimental_all && !c.skip_all);
        assert!(CheckConfig::parse("skip=all").unwrap().skip_all);
        assert_eq!(CheckConfig::parse("").unwrap(), CheckConfig::default());
        assert_eq!(
            CheckConfig::parse("bogus=1").unwrap_err(),
            "invalid check option \"bogus\""
        );
        assert_eq!(
            CheckConfig::parse("skip").unwrap_err(),
            "invalid check option \"skip\""
        );
        assert!(CheckConfig::parse("error=yes").is_err());
        // Names are compared as written, like BuildKit's.
        let c = CheckConfig::parse("skip=jsonargsrecommended").unwrap();
        assert!(c.enabled(Rule::JsonArgsRecommended));
        let c = CheckConfig::parse("skip=JSONArgsRecommended").unwrap();
        assert!(!c.enabled(Rule::JsonArgsRecommended));
        assert!(c.enabled(Rule::UndefinedVar));
    }

    #[test]
    fn experimental_rules_need_opting_in() {
        let rule = Rule::InvalidDefinitionDescription;
        assert!(!CheckConfig::default().enabled(rule));
        let c = CheckConfig::parse("skip=all;experimental=InvalidDefinitionDescription").unwrap();
        assert!(c.enabled(rule));
        assert!(!c.enabled(Rule::UndefinedVar));
        assert!(
            CheckConfig::parse("experimental=all")
                .unwrap()
                .enabled(rule)
        );
    }

    #[test]
    fn comments_add_to_the_file_config() {
        let comments = ["say why".to_string(), "check=skip=A // allowed".to_string()];
        let local = CheckConfig::from_comments(&comments).unwrap();
        assert_eq!(local.skip, ["A"]);
        let file = CheckConfig::parse("skip=B;error=true").unwrap();
        let m = file.merged(&local);
        assert_eq!(m.skip, ["B", "A"]);
        assert!(m.error);
        assert_eq!(CheckConfig::from_comments(&["check=bogus".into()]), None);
        assert_eq!(CheckConfig::from_comments(&["no directive".into()]), None);
    }
}
