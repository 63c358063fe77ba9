//! The typed project, read from the merged, interpolated and validated document. Only
//! what `compose build` uses is typed; the rest of a service (ports, volumes, ...) is
//! checked for its keys by [`crate::schema`] and otherwise ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_yaml_ng::Value;

#[derive(Debug, Default, Deserialize)]
pub struct ComposeFile {
    pub name: Option<String>,
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretDef>,
    /// Read only to refuse it: kiln compose does not load included projects.
    pub include: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Service {
    pub build: Option<Build>,
    pub image: Option<String>,
    /// The service's platform: the build's when `build.platforms` is empty (compose).
    pub platform: Option<String>,
    #[serde(default)]
    pub profiles: Vec<String>,
    /// Read only to refuse it: kiln compose does not resolve `extends`.
    pub extends: Option<Value>,
}

/// A service's `build:` (the short form `build: DIR` is normalised to `context: DIR`).
#[derive(Debug, Default, Deserialize)]
pub struct Build {
    pub context: Option<String>,
    pub dockerfile: Option<String>,
    pub dockerfile_inline: Option<String>,
    /// `KEY: value`; a bare `KEY` (null) takes its value from the environment.
    #[serde(default)]
    pub args: BTreeMap<String, Option<Scalar>>,
    pub target: Option<String>,
    #[serde(default)]
    pub secrets: Vec<Grant>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, Option<Scalar>>,
    #[serde(default)]
    pub platforms: Vec<String>,
    pub network: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    pub no_cache: bool,
    #[serde(default, deserialize_with = "flag")]
    pub pull: bool,
    #[serde(default)]
    pub cache_from: Vec<String>,
    #[serde(default)]
    pub cache_to: Vec<String>,
    #[serde(default)]
    pub additional_contexts: BTreeMap<String, String>,
    pub ssh: Option<Value>,
    /// The specification's other build keys (`extra_hosts`, `privileged`, ...): refused
    /// by name when present, never silently ignored.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// A secret granted to a build (the short form `- name` is normalised to `source:`).
#[derive(Debug, Default, Deserialize)]
pub struct Grant {
    pub source: String,
    pub target: Option<String>,
    pub uid: Option<Scalar>,
    pub gid: Option<Scalar>,
    pub mode: Option<Scalar>,
}

/// A top-level secret definition.
#[derive(Debug, Default, Deserialize)]
pub struct SecretDef {
    pub file: Option<String>,
    pub environment: Option<String>,
    pub external: Option<Value>,
}

/// A scalar written as a string, number or boolean, as text (`PORT: 8080` is "8080").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Scalar(s)),
            Value::Number(n) => Ok(Scalar(n.to_string())),
            Value::Bool(b) => Ok(Scalar(b.to_string())),
            _ => Err(serde::de::Error::custom(
                "expected a string, number or boolean",
            )),
        }
    }
}

/// A boolean written as `true`, or as a string after interpolation (`"${NOCACHE:-false}"`),
/// as compose converts it.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" | "" => Ok(false),
            _ => Err(serde::de::Error::custom(format!(
                "{s:?} is not a boolean (true or false)"
            ))),
        },
        _ => Err(serde::de::Error::custom("expected true or false")),
    }
}
