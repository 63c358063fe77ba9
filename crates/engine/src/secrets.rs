//! Build secrets: where their values come from (`--secret`), and how they are held.
//!
//! A secret value lives only in memory, in a [`SecretValue`] that zeroises itself on drop
//! and never prints its bytes (`Debug` shows the length only). Nothing in this module
//! writes a value anywhere; the step runner hands it to the runtime's mount table.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::PathBuf;

use zeroize::Zeroizing;

/// A secret's id is the Dockerfile's type: one rule for what a Dockerfile asks for and what
/// `--secret` gives.
pub use kiln_dockerfile::{SecretId, SecretIdError};

/// The largest secret value: BuildKit's `MaxSecretSize` (500 KiB), so a build BuildKit
/// accepts is accepted here, and `src=/dev/zero` cannot fill the memory.
pub const MAX_SECRET_BYTES: usize = 500 * 1024;

/// A secret's bytes. Zeroised on drop; `Debug` never shows them.
#[derive(Clone)]
pub struct SecretValue(Zeroizing<Vec<u8>>);

impl SecretValue {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue({} bytes)", self.0.len())
    }
}

/// Where a `--secret` value comes from, as buildx spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
    /// Bare `id=X`: the environment variable X if set, else the file X (buildx's default).
    EnvOrFile(String),
}

/// One parsed `--secret` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    pub id: SecretId,
    pub source: SecretSource,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    BadId(#[from] SecretIdError),
    #[error("invalid --secret {spec:?}: {why}")]
    BadSpec { spec: String, why: String },
    #[error("secret {id}: cannot read {path}: {source}")]
    Read {
        id: SecretId,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("secret {id}: environment variable {var} is not set")]
    MissingEnv { id: SecretId, var: String },
    #[error("secret {id} is larger than {MAX_SECRET_BYTES} bytes, BuildKit's limit")]
    TooLarge { id: SecretId },
    #[error("secret {id} is given twice")]
    Duplicate { id: SecretId },
}

impl SecretSpec {
    /// Parses buildx's `--secret` syntax: `id=X[,src|source=PATH][,env=VAR][,type=file|env]`.
    pub fn parse(spec: &str) -> Result<Self, SecretError> {
        let bad = |why: &str| SecretError::BadSpec {
            spec: spec.to_owned(),
            why: why.to_owned(),
        };
        let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
        for field in spec.split(',') {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| bad("each field must be key=value"))?;
            let slot = match key.trim().to_ascii_lowercase().as_str() {
                "id" => &mut id,
                "src" | "source" => &mut src,
                "env" => &mut env,
                "type" => &mut kind,
                other => return Err(bad(&format!("unknown key {other:?}"))),
            };
            if slot.replace(value.to_owned()).is_some() {
                return Err(bad(&format!("{key} given twice")));
            }
        }
        let kind = kind.as_deref().unwrap_or("");
        let source = match (kind, src, env) {
            (_, Some(_), Some(_)) => return Err(bad("give either src or env, not both")),
            ("" | "file", Some(path), None) => SecretSource::File(path.into()),
            ("" | "env", None, Some(var)) => SecretSource::Env(var),
            ("env", Some(var), None) => SecretSource::Env(var),
            ("file", None, None) => SecretSource::File(required_id(&id, &bad)?.into()),
            ("env", None, None) => SecretSource::Env(required_id(&id, &bad)?),
            ("", None, None) => SecretSource::EnvOrFile(required_id(&id, &bad)?),
            ("file", None, Some(_)) => return Err(bad("type=file takes src, not env")),
            (other, ..) => return Err(bad(&format!("unknown type {other:?}: use file or env"))),
        };
        let id = match (id, &source) {
            (Some(id), _) => id,
            // buildx: `--secret src=./netrc` takes the id from the file name.
            (None, SecretSource::File(path)) => path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| bad("missing id"))?
                .to_owned(),
            (None, SecretSource::Env(var)) => var.clone(),
            (None, SecretSource::EnvOrFile(_)) => return Err(bad("missing id")),
        };
        Ok(Self {
            id: SecretId::new(id)?,
            source,
        })
    }

    /// Reads the value. `lookup_env` is the process environment in the CLI, a map in tests.
    pub fn load(
        &self,
        lookup_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SecretValue, SecretError> {
        let bytes = match &self.source {
            SecretSource::File(path) => self.read_file(path)?,
            SecretSource::Env(var) => lookup_env(var)
                .ok_or_else(|| SecretError::MissingEnv {
                    id: self.id.clone(),
                    var: var.clone(),
                })?
                .into_bytes(),
            SecretSource::EnvOrFile(name) => match lookup_env(name) {
                Some(value) => value.into_bytes(),
                None => self.read_file(&PathBuf::from(name))?,
            },
        };
        // Wrapped first, so a refused value is zeroised when it drops too.
        let value = SecretValue::new(bytes);
        if value.expose().len() > MAX_SECRET_BYTES {
            return Err(SecretError::TooLarge {
                id: self.id.clone(),
            });
        }
        Ok(value)
    }

    /// Reads at most one byte past [`MAX_SECRET_BYTES`], so a huge or endless file is
    /// refused without being held.
    fn read_file(&self, path: &PathBuf) -> Result<Vec<u8>, SecretError> {
        let failed = |source| SecretError::Read {
            id: self.id.clone(),
            path: path.clone(),
            source,
        };
        let file = std::fs::File::open(path).map_err(failed)?;
        let mut bytes = Vec::new();
        file.take(MAX_SECRET_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(failed)?;
        Ok(bytes)
    }
}

fn required_id(
    id: &Option<String>,
    bad: &dyn Fn(&str) -> SecretError,
) -> Result<String, SecretError> {
    id.clone().ok_or_else(|| bad("missing id"))
}

/// The secrets given to one build, by id.
#[derive(Debug, Default, Clone)]
pub struct Secrets(BTreeMap<SecretId, SecretValue>);

impl Secrets {
    /// The secrets of a build from its `--secret` flags as written: each parsed, then
    /// read from its file or variable.
    pub fn from_flags(
        flags: &[String],
        lookup_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SecretError> {
        let specs = flags
            .iter()
            .map(|f| SecretSpec::parse(f))
            .collect::<Result<Vec<_>, _>>()?;
        Self::load(&specs, lookup_env)
    }

    pub fn load(
        specs: &[SecretSpec],
        lookup_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SecretError> {
        let mut map = BTreeMap::new();
        for spec in specs {
            if map
                .insert(spec.id.clone(), spec.load(lookup_env)?)
                .is_some()
            {
                return Err(SecretError::Duplicate {
                    id: spec.id.clone(),
                });
            }
        }
        Ok(Self(map))
    }

    pub fn insert(&mut self, id: SecretId, value: SecretValue) {
        self.0.insert(id, value);
    }

    pub fn get(&self, id: &str) -> Option<&SecretValue> {
        self.0.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&SecretId, &SecretValue)> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn parses_buildx_forms() {
        let s = SecretSpec::parse("id=netrc,src=./netrc").unwrap();
        assert_eq!(s.id.as_str(), "netrc");
        assert_eq!(s.source, SecretSource::File("./netrc".into()));
        let s = SecretSpec::parse("id=tok,env=TOKEN").unwrap();
        assert_eq!(s.source, SecretSource::Env("TOKEN".into()));
        let s = SecretSpec::parse("id=tok,type=env").unwrap();
        assert_eq!(s.source, SecretSource::Env("tok".into()));
        let s = SecretSpec::parse("id=tok").unwrap();
        assert_eq!(s.source, SecretSource::EnvOrFile("tok".into()));
        let s = SecretSpec::parse("type=file,id=a,source=/x/y").unwrap();
        assert_eq!(s.source, SecretSource::File("/x/y".into()));
        let s = SecretSpec::parse("src=/etc/netrc").unwrap();
        assert_eq!(s.id.as_str(), "netrc");
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "",
            "id",
            "id=a,src=x,env=Y",
            "id=a,colour=red",
            "id=a,type=ssh",
            "id=,src=x",
            "id=a\nb,src=x",
            "id=a,id=b",
            "type=env",
        ] {
            assert!(SecretSpec::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn bare_id_prefers_env_then_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tok");
        std::fs::write(&file, b"from-file").unwrap();
        // As in buildx, a bare id that is a path names the file when no variable has
        // that name.
        let spec = SecretSpec::parse(&format!("id={}", file.display())).unwrap();
        assert_eq!(spec.load(&no_env).unwrap().expose(), b"from-file");
        let spec = SecretSpec::parse("id=tok").unwrap();
        let env = |k: &str| (k == "tok").then(|| "from-env".to_owned());
        assert_eq!(spec.load(&env).unwrap().expose(), b"from-env");
        let err = spec.load(&no_env).unwrap_err().to_string();
        assert!(err.contains("secret tok"), "{err}");
    }

    #[test]
    fn ids_follow_the_dockerfile_rule() {
        // A path-like id works on the command line as in the Dockerfile.
        let s = SecretSpec::parse("id=aws/credentials,src=x").unwrap();
        assert_eq!(s.id.as_str(), "aws/credentials");
        let flag = SecretSpec::parse("id=a\u{7}b,src=x")
            .unwrap_err()
            .to_string();
        let mount = SecretId::new("a\u{7}b").unwrap_err().to_string();
        assert_eq!(flag, mount);
    }

    #[test]
    fn debug_never_shows_the_value() {
        let v = SecretValue::new(b"hunter2hunter2".to_vec());
        let shown = format!("{v:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let env = |_: &str| Some("hunter2hunter2".to_owned());
        let s = Secrets::load(&[SecretSpec::parse("id=a,env=A").unwrap()], &env).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn values_past_buildkits_limit_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big");
        std::fs::write(&file, vec![b'x'; MAX_SECRET_BYTES + 1]).unwrap();
        let spec = SecretSpec::parse(&format!("id=big,src={}", file.display())).unwrap();
        let err = spec.load(&no_env).unwrap_err();
        assert!(matches!(err, SecretError::TooLarge { .. }), "{err}");
        std::fs::write(&file, vec![b'x'; MAX_SECRET_BYTES]).unwrap();
        assert_eq!(spec.load(&no_env).unwrap().expose().len(), MAX_SECRET_BYTES);
        let env = |_: &str| Some("y".repeat(MAX_SECRET_BYTES + 1));
        let spec = SecretSpec::parse("id=e,env=E").unwrap();
        assert!(matches!(spec.load(&env), Err(SecretError::TooLarge { .. })));
        // An endless source is cut at the bound, not read to the end.
        #[cfg(unix)]
        {
            let spec = SecretSpec::parse("id=z,src=/dev/zero").unwrap();
            assert!(matches!(
                spec.load(&no_env),
                Err(SecretError::TooLarge { .. })
            ));
        }
    }

    #[test]
    fn missing_env_names_the_variable_not_a_value() {
        let spec = SecretSpec::parse("id=tok,env=NOPE_NOT_SET").unwrap();
        let err = spec.load(&no_env).unwrap_err().to_string();
        assert!(err.contains("NOPE_NOT_SET"));
    }

    #[test]
    fn duplicates_are_rejected() {
        let env = |_: &str| Some("v".to_owned());
        let specs = [
            SecretSpec::parse("id=a,env=A").unwrap(),
            SecretSpec::parse("id=a,env=B").unwrap(),
        ];
        assert!(matches!(
            Secrets::load(&specs, &env),
            Err(SecretError::Duplicate { .. })
        ));
    }
}
