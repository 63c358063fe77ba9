//! `RUN --mount=...` options, validated with BuildKit's rules and defaults.

use crate::expand::{self, ExpandError, Lookup};

/// The most bytes a secret id may have. BuildKit sets no bound; ids name secrets (path-like
/// ones such as `aws/credentials` included), so PATH_MAX is generous, and it bounds what
/// an id costs in cache keys, records and messages.
pub(crate) const MAX_SECRET_ID_BYTES: usize = 4096;

/// How much of a rejected id an error shows: enough to find it in the Dockerfile or the
/// command line, not a 4 KiB dump.
const SHOWN_ID_CHARS: usize = 64;

/// The id of a build secret: what a Dockerfile asks for (`--mount=type=secret,id=...`) and
/// what a build is given (`--secret id=...`), one type with one rule for both.
///
/// The rule is BuildKit's (any non-empty id; `/`, `.`, `=` and `,` included, so
/// `id=aws/credentials` works on both sides) plus two bounds BuildKit lacks: no control
/// characters (an id is printed in errors and progress, where a newline or an escape
/// sequence could forge output) and at most [`MAX_SECRET_ID_BYTES`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretId(String);

/// Quoted like a string, so a message's `secret {id:?}` reads `secret "npmrc"`.
impl std::fmt::Debug for SecretId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

/// An id that breaks [`SecretId`]'s rule; the only message for a bad id, wherever it
/// was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid secret id {shown:?}: an id must be non-empty, at most {MAX_SECRET_ID_BYTES} bytes, without control characters"
)]
pub struct SecretIdError {
    shown: String,
}

impl SecretId {
    pub fn new(id: impl Into<String>) -> Result<SecretId, SecretIdError> {
        let id = id.into();
        if id.is_empty() || id.len() > MAX_SECRET_ID_BYTES || id.chars().any(char::is_control) {
            let mut shown: String = id.chars().take(SHOWN_ID_CHARS).collect();
            if shown.len() < id.len() {
                shown.push('…');
            }
            return Err(SecretIdError { shown });
        }
        Ok(SecretId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SecretId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lets a map keyed by id be searched with the `&str` a mount names. `Ord`, `Eq` and
/// `Hash` are the inner string's, as `Borrow` requires.
impl std::borrow::Borrow<str> for SecretId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Cache mount sharing mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CacheSharing {
    #[default]
    Shared,
    Private,
    Locked,
}

/// A validated mount, with BuildKit's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// Read-only by default; with `rw` writes are discarded after the step.
    Bind {
        target: String,
        /// Path inside `from` (default `/`).
        source: String,
        /// Stage name/index or image; `None` = the build context.
        from: Option<String>,
        readwrite: bool,
    },
    Cache {
        /// Defaults to the target path.
        id: String,
        target: String,
        sharing: CacheSharing,
        from: Option<String>,
        source: Option<String>,
        readonly: bool,
        /// Default 0o755.
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Tmpfs {
        target: String,
        /// Bytes; `None` = unlimited.
        size: Option<u64>,
    },
    Secret {
        id: SecretId,
        /// Default `/run/secrets/<id>` unless only `env` is given.
        target: Option<String>,
        /// Expose the secret as this environment variable.
        env: Option<String>,
        required: bool,
        /// Default 0o400.
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Ssh {
        /// Default `default`.
        id: String,
        /// `None` = `/run/buildkit/ssh_agent.<n>`, n counting the step's ssh mounts.
        target: Option<String>,
        required: bool,
        /// Default 0o600.
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    #[error("empty mount specification")]
    Empty,
    #[error("malformed mount options: {0}")]
    Csv(&'static str),
    #[error("invalid field '{0}': must be a key=value pair")]
    NotKeyValue(String),
    #[error("unsupported mount type {:?}{}", .0, hint(.0, MOUNT_TYPES))]
    UnknownType(String),
    #[error("unexpected key '{key}' in '{field}'{}", hint(.key, KEYS))]
    UnknownKey { key: String, field: String },
    #[error("unsupported sharing value {:?}{}", .0, hint(.0, SHARING_MODES))]
    UnknownSharing(String),
    #[error("unexpected key '{key}' for mount type '{kind}'")]
    KeyNotAllowed { key: String, kind: &'static str },
    #[error("invalid value '{value}' for {key}")]
    InvalidValue { key: String, value: String },
    #[error("'from' doesn't support variable expansion, define alias stage instead")]
    FromVariable,
    #[error("secret mount should not have a from")]
    SecretFrom,
    #[error("invalid secret mount: one of id, source, target required")]
    SecretNoId,
    #[error("both source and id can't be set")]
    SecretSourceAndId,
    #[error(transparent)]
    SecretId(#[from] SecretIdError),
    #[error("mount target is required for {0} mounts")]
    MissingTarget(&'static str),
    #[error("{0}")]
    Expand(#[from] ExpandError),
}

/// One `--mount` flag as written. `from` is known at parse time (BuildKit forbids
/// variables in it); everything else may contain variables, so the typed [`Mount`] comes
/// from [`MountFlag::resolve`] at dispatch time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountFlag {
    pub raw: String,
    pub from: Option<String>,
}

impl MountFlag {
    /// Validates what can be validated without variables (all of it when the flag has no `$`).
    pub(crate) fn parse(raw: &str) -> Result<MountFlag, MountError> {
        let m = parse_mount(raw, None)?;
        Ok(MountFlag {
            raw: raw.to_string(),
            from: m.from,
        })
    }

    /// Expands variables (with `lookup`) and validates, giving the typed mount.
    pub fn resolve(&self, escape: char, lookup: Lookup<'_>) -> Result<Mount, MountError> {
        let p = parse_mount(&self.raw, Some((escape, lookup)))?;
        p.finish()
    }
}

#[derive(Default)]
struct Parsed {
    kind: Option<String>,
    from: Option<String>,
    source: Option<String>,
    target: Option<String>,
    readonly: Option<bool>,
    required: bool,
    id: Option<String>,
    sharing: Option<CacheSharing>,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    env: Option<String>,
    size: Option<u64>,
    deferred: bool,
}

/// BuildKit's "did you mean" for a mistyped mount type, key or sharing mode.
fn hint(value: &str, options: &[&str]) -> String {
    crate::suggest::hint(crate::suggest::search(value, options.iter().copied(), true).as_deref())
}

const MOUNT_TYPES: &[&str] = &["bind", "cache", "tmpfs", "secret", "ssh"];

const SHARING_MODES: &[&str] = &["shared", "private", "locked"];

fn kind_name(k: &str) -> Option<&'static str> {
    MOUNT_TYPES.iter().copied().find(|t| *t == k)
}

fn parse_bool(key: &str, v: &str) -> Result<bool, MountError> {
    // Go's strconv.ParseBool.
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(invalid(key, v)),
    }
}

fn invalid(key: &str, v: &str) -> MountError {
    MountError::InvalidValue {
        key: key.to_string(),
        value: v.to_string(),
    }
}

fn parse_mount(raw: &str, expander: Option<(char, Lookup<'_>)>) -> Result<Parsed, MountError> {
    let fields = split_csv(raw)?;
    let mut m = Parsed::default();
    for field in &fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let Some(value) = value else {
            flag_without_value(&mut m, &key, field)?;
            continue;
        };
        let value = match expander {
            Some((esc, lookup)) => expand::expand(value, esc, lookup)?,
            None if key == "from" && value.contains(['$', '{', '}']) => {
                return Err(MountError::FromVariable);
            }
            None if value.contains('$') => {
                m.deferred = true;
                check_known_key(&key, field)?;
                continue;
            }
            None => value.to_string(),
        };
        set_key(&mut m, &key, value, field)?;
    }
    if !m.deferred {
        m.check()?;
    }
    Ok(m)
}

fn flag_without_value(m: &mut Parsed, key: &str, field: &str) -> Result<(), MountError> {
    match key {
        "readonly" | "ro" => m.readonly = Some(true),
        "readwrite" | "rw" => m.readonly = Some(false),
        "required" => {
            m.required = true;
        }
        _ => return Err(MountError::NotKeyValue(field.to_string())),
    }
    Ok(())
}

const KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "src",
    "target",
    "dst",
    "destination",
    "readonly",
    "ro",
    "readwrite",
    "rw",
    "required",
    "id",
    "sharing",
    "mode",
    "uid",
    "gid",
    "env",
    "size",
];

fn check_known_key(key: &str, field: &str) -> Result<(), MountError> {
    if KEYS.contains(&key) {
        Ok(())
    } else {
        Err(MountError::UnknownKey {
            key: key.to_string(),
            field: field.to_string(),
        })
    }
}

fn set_key(m: &mut Parsed, key: &str, value: String, field: &str) -> Result<(), MountError> {
    let num = |radix: u32| u32::from_str_radix(&value, radix).map_err(|_| invalid(key, &value));
    match key {
        "type" => {
            let k = value.to_ascii_lowercase();
            kind_name(&k).ok_or_else(|| MountError::UnknownType(value.clone()))?;
            m.kind = Some(k);
        }
        "from" => m.from = Some(value),
        "source" | "src" => m.source = Some(value),
        "target" | "dst" | "destination" => m.target = Some(value),
        "readonly" | "ro" => m.readonly = Some(parse_bool(key, &value)?),
        "readwrite" | "rw" => m.readonly = Some(!parse_bool(key, &value)?),
        "required" => m.required = parse_bool(key, &value)?,
        "id" => m.id = Some(value),
        "sharing" => {
            m.sharing = Some(match value.to_ascii_lowercase().as_str() {
                "shared" => CacheSharing::Shared,
                "private" => CacheSharing::Private,
                "locked" => CacheSharing::Locked,
                _ => return Err(MountError::UnknownSharing(value)),
            })
        }
        "mode" => m.mode = Some(num(8)?),
        "uid" => m.uid = Some(num(10)?),
        "gid" => m.gid = Some(num(10)?),
        "env" => m.env = Some(value),
        "size" => m.size = Some(parse_size(&value).ok_or_else(|| invalid(key, &value))?),
        _ => {
            return Err(MountError::UnknownKey {
                key: key.to_string(),
                field: field.to_string(),
            });
        }
    }
    Ok(())
}

impl Parsed {
    fn kind(&self) -> &'static str {
        self.kind.as_deref().and_then(kind_name).unwrap_or("bind")
    }

    /// BuildKit's cross-field rules.
    fn check(&self) -> Result<(), MountError> {
        let kind = self.kind();
        let not_allowed = |key: &str| MountError::KeyNotAllowed {
            key: key.to_string(),
            kind,
        };
        if self.required && !matches!(kind, "secret" | "ssh") {
            return Err(not_allowed("required"));
        }
        if self.size.is_some() && kind != "tmpfs" {
            return Err(not_allowed("size"));
        }
        if kind == "tmpfs" {
            for (k, set) in [
                ("mode", self.mode.is_some()),
                ("uid", self.uid.is_some()),
                ("gid", self.gid.is_some()),
            ] {
                if set {
                    return Err(not_allowed(k));
                }
            }
        }
        if self.sharing.is_some() && kind != "cache" {
            return Err(not_allowed("sharing"));
        }
        if kind == "secret" {
            if self.from.is_some() {
                return Err(MountError::SecretFrom);
            }
            if self.source.is_none() && self.target.is_none() && self.id.is_none() {
                return Err(MountError::SecretNoId);
            }
            if self.source.is_some() && self.id.is_some() {
                return Err(MountError::SecretSourceAndId);
            }
        }
        if matches!(kind, "bind" | "cache" | "tmpfs")
            && self.target.as_deref().unwrap_or("").is_empty()
        {
            return Err(MountError::MissingTarget(kind));
        }
        Ok(())
    }

    fn finish(self) -> Result<Mount, MountError> {
        self.check()?;
        let target = self.target.clone().unwrap_or_default();
        Ok(match self.kind() {
            "cache" => Mount::Cache {
                id: self.id.unwrap_or_else(|| target.clone()),
                target,
                sharing: self.sharing.unwrap_or_default(),
                from: self.from,
                source: self.source,
                readonly: self.readonly.unwrap_or(false),
                mode: self.mode.unwrap_or(0o755),
                uid: self.uid.unwrap_or(0),
                gid: self.gid.unwrap_or(0),
            },
            "tmpfs" => Mount::Tmpfs {
                target,
                size: self.size,
            },
            "secret" => {
                let id = match (self.source, self.id) {
                    (Some(s), _) | (None, Some(s)) => s,
                    (None, None) => basename(&target).to_string(),
                };
                let id = SecretId::new(id)?;
                let target = match (self.target, &self.env) {
                    (Some(t), _) => Some(t),
                    (None, Some(_)) => None,
                    (None, None) => Some(format!("/run/secrets/{}", basename(id.as_str()))),
                };
                Mount::Secret {
                    id,
                    target,
                    env: self.env,
                    required: self.required,
                    mode: self.mode.unwrap_or(0o400),
                    uid: self.uid.unwrap_or(0),
                    gid: self.gid.unwrap_or(0),
                }
            }
            "ssh" => Mount::Ssh {
                id: self.id.unwrap_or_else(|| "default".into()),
                target: self.target,
                required: self.required,
                mode: self.mode.unwrap_or(0o600),
                uid: self.uid.unwrap_or(0),
                gid: self.gid.unwrap_or(0),
            },
            _ => Mount::Bind {
                target,
                source: self.source.unwrap_or_else(|| "/".into()),
                from: self.from,
                readwrite: !self.readonly.unwrap_or(true),
            },
        })
    }
}

/// Go's `path.Base` for the cases that matter here.
fn basename(p: &str) -> &str {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return if p.is_empty() { "." } else { "/" };
    }
    t.rsplit('/').next().unwrap_or(t)
}

/// docker/go-units `RAMInBytes`: `64m`, `1.5GiB`, `512 kb`, binary multipliers.
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(num_len);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return None;
    }
    let value: f64 = num.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let mut u = unit.as_str();
    let mut mult: f64 = 1.0;
    if let Some(c) = u.chars().next().filter(|c| "kmgtp".contains(*c)) {
        let exp = "kmgtp".find(c)? as i32 + 1;
        mult = 1024f64.powi(exp);
        u = &u[1..];
        u = u.strip_prefix('i').unwrap_or(u);
    }
    u = u.strip_prefix('b').unwrap_or(u);
    if !u.is_empty() {
        return None;
    }
    let bytes = value * mult;
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// One record of Go's `encoding/csv` (comma separated, `"` quoting with `""` escapes).
fn split_csv(s: &str) -> Result<Vec<String>, MountError> {
    if s.is_empty() {
        return Err(MountError::Empty);
    }
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(MountError::Csv("unterminated quoted field")),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.peek() {
                None | Some(',') => {}
                Some(_) => return Err(MountError::Csv("extraneous or missing \" in quoted field")),
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '"' {
                    return Err(MountError::Csv("bare \" in non-quoted field"));
                }
                field.push(c);
                chars.next();
            }
        }
        out.push(field);
        if chars.next().is_none() {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(raw: &str) -> Result<Mount, MountError> {
        MountFlag::parse(raw)?.resolve('\\', &|n| (n == "V").then(|| "val".to_string()))
    }

    #[test]
    fn secret_defaults() {
        assert_eq!(
            m("type=secret,id=npmrc").unwrap(),
            Mount::Secret {
                id: SecretId::new("npmrc").unwrap(),
                target: Some("/run/secrets/npmrc".into()),
                env: None,
                required: false,
                mode: 0o400,
                uid: 0,
                gid: 0,
            }
        );
        let Mount::Secret { id, target, .. } = m("type=secret,target=/root/.netrc").unwrap() else {
            panic!()
        };
        assert_eq!(
            (id.as_str(), target.as_deref()),
            (".netrc", Some("/root/.netrc"))
        );
        let Mount::Secret {
            target,
            env,
            required,
            mode,
            uid,
            ..
        } = m("type=secret,id=tok,env=TOKEN,required,mode=0440,uid=1000").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (target, env.as_deref(), required, mode, uid),
            (None, Some("TOKEN"), true, 0o440, 1000)
        );
        let Mount::Secret { id, .. } = m("type=secret,source=aws,required=false").unwrap() else {
            panic!()
        };
        assert_eq!(id.as_str(), "aws");
    }

    #[test]
    fn secret_errors() {
        assert_eq!(m("type=secret"), Err(MountError::SecretNoId));
        assert_eq!(
            m("type=secret,id=a,source=b"),
            Err(MountError::SecretSourceAndId)
        );
        assert_eq!(m("type=secret,id=a,from=x"), Err(MountError::SecretFrom));
        assert!(matches!(m("type=secret,id="), Err(MountError::SecretId(_))));
    }

    #[test]
    fn secret_ids_follow_buildkit_with_two_bounds() {
        for ok in [
            "npmrc",
            "aws/credentials",
            "a.b-c_d",
            "GITHUB_TOKEN",
            "x=y",
            "ü",
        ] {
            assert_eq!(SecretId::new(ok).unwrap().as_str(), ok);
        }
        let long = "a".repeat(MAX_SECRET_ID_BYTES);
        assert!(SecretId::new(long.clone()).is_ok());
        for bad in [
            String::new(),
            format!("{long}a"),
            "a\nb".into(),
            "\u{1b}[31m".into(),
        ] {
            let err = SecretId::new(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid secret id"), "{err}");
            // A long id is shown cut short, never whole.
            assert!(err.len() < 300, "{err}");
        }
        // The default target of a path-like id is its last component, as in BuildKit.
        let Mount::Secret { target, .. } = m("type=secret,id=aws/credentials").unwrap() else {
            panic!()
        };
        assert_eq!(target.as_deref(), Some("/run/secrets/credentials"));
    }

    #[test]
    fn cache_bind_tmpfs_ssh_defaults() {
        assert_eq!(
            m("type=cache,target=/root/.cache,sharing=locked").unwrap(),
            Mount::Cache {
                id: "/root/.cache".into(),
                target: "/root/.cache".into(),
                sharing: CacheSharing::Locked,
                from: None,
                source: None,
                readonly: false,
                mode: 0o755,
                uid: 0,
                gid: 0,
            }
        );
        assert_eq!(
            m("target=/src,from=build,source=/out,rw").unwrap(),
            Mount::Bind {
                target: "/src".into(),
                source: "/out".into(),
                from: Some("build".into()),
                readwrite: true
            }
        );
        let Mount::Bind {
            readwrite, source, ..
        } = m("type=bind,dst=/x").unwrap()
        else {
            panic!()
        };
        assert!(!readwrite);
        assert_eq!(source, "/");
        assert_eq!(
            m("type=tmpfs,target=/tmp,size=64m").unwrap(),
            Mount::Tmpfs {
                target: "/tmp".into(),
                size: Some(64 << 20)
            }
        );
        assert_eq!(
            m("type=ssh").unwrap(),
            Mount::Ssh {
                id: "default".into(),
                target: None,
                required: false,
                mode: 0o600,
                uid: 0,
                gid: 0
            }
        );
        let Mount::Cache { readonly, .. } = m("type=cache,target=/c,ro").unwrap() else {
            panic!()
        };
        assert!(readonly);
    }

    #[test]
    fn invalid_values_and_keys() {
        assert_eq!(
            m("type=nfs,target=/x"),
            Err(MountError::UnknownType("nfs".into()))
        );
        assert!(matches!(
            m("type=cache,target=/x,mode=999"),
            Err(MountError::InvalidValue { .. })
        ));
        assert!(matches!(
            m("type=cache,target=/x,uid=-1"),
            Err(MountError::InvalidValue { .. })
        ));
        assert!(matches!(
            m("type=cache,target=/x,sharing=all"),
            Err(MountError::UnknownSharing(_))
        ));
        assert!(matches!(
            m("type=bind,target=/x,ro=maybe"),
            Err(MountError::InvalidValue { .. })
        ));
        assert!(matches!(
            m("type=tmpfs,target=/x,size=lots"),
            Err(MountError::InvalidValue { .. })
        ));
        assert!(matches!(
            m("type=cache,target=/x,colour=red"),
            Err(MountError::UnknownKey { .. })
        ));
        assert_eq!(
            m("type=cache,target=/x,exec"),
            Err(MountError::NotKeyValue("exec".into()))
        );
        assert!(matches!(
            m("type=cache,target=/x,required"),
            Err(MountError::KeyNotAllowed { .. })
        ));
        assert!(matches!(
            m("type=bind,target=/x,size=1k"),
            Err(MountError::KeyNotAllowed { .. })
        ));
        assert!(matches!(
            m("type=tmpfs,target=/x,mode=0700"),
            Err(MountError::KeyNotAllowed { .. })
        ));
        assert!(matches!(
            m("type=bind,target=/x,sharing=shared"),
            Err(MountError::KeyNotAllowed { .. })
        ));
        assert_eq!(m("type=cache"), Err(MountError::MissingTarget("cache")));
        assert_eq!(m(""), Err(MountError::Empty));
    }

    #[test]
    fn variables_deferred_and_expanded() {
        let f = MountFlag::parse("type=cache,target=$V,mode=$M").unwrap();
        let Mount::Cache { target, .. } = MountFlag {
            raw: "type=cache,target=/${V}".into(),
            from: None,
        }
        .resolve('\\', &|n| (n == "V").then(|| "val".into()))
        .unwrap() else {
            panic!()
        };
        assert_eq!(target, "/val");
        assert!(matches!(
            f.resolve('\\', &|_| None),
            Err(MountError::InvalidValue { .. })
        ));
        assert_eq!(
            MountFlag::parse("from=$X,target=/a"),
            Err(MountError::FromVariable)
        );
        assert!(matches!(
            MountFlag::parse("type=cache,bogus=$X"),
            Err(MountError::UnknownKey { .. })
        ));
        assert_eq!(
            MountFlag::parse("from=build,target=/a")
                .unwrap()
                .from
                .as_deref(),
            Some("build")
        );
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(
            split_csv("a,\"b,c\",\"d\"\"e\"").unwrap(),
            ["a", "b,c", "d\"e"]
        );
        assert!(split_csv("a\"b").is_err());
        assert!(split_csv("\"ab").is_err());
        assert!(split_csv("\"a\"b").is_err());
        assert_eq!(split_csv("a,").unwrap(), ["a", ""]);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("1.5GiB"), Some(3 << 29));
        assert_eq!(parse_size("2 MB"), Some(2 << 20));
        assert_eq!(parse_size("1x"), None);
        assert_eq!(parse_size("m"), None);
        assert_eq!(parse_size("1.m"), None);
    }

    #[test]
    fn basenames() {
        assert_eq!(basename("/a/b/"), "b");
        assert_eq!(basename("c"), "c");
        assert_eq!(basename("/"), "/");
    }

    #[test]
    fn mistyped_words_get_buildkits_hints() {
        let text = |spec: &str| m(spec).unwrap_err().to_string();
        assert_eq!(
            text("type=cahce,target=/c"),
            "unsupported mount type \"cahce\" (did you mean cache?)"
        );
        assert_eq!(text("type=nfs,target=/c"), "unsupported mount type \"nfs\"");
        assert_eq!(
            text("type=cache,targt=/c"),
            "unexpected key 'targt' in 'targt=/c' (did you mean target?)"
        );
        assert_eq!(
            text("type=cache,target=/c,sharing=lockd"),
            "unsupported sharing value \"lockd\" (did you mean locked?)"
        );
    }
}
