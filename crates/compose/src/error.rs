//! What can go wrong reading a compose project or turning it into build requests.

use std::path::PathBuf;

use kiln_engine::secrets::{SecretError, SecretIdError};

use crate::interpolate::InterpolateError;
use crate::load::MAX_FILE_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// Compose's text when no file is given and none of the default names is found.
    #[error(
        "no configuration file provided: not found (looked for compose.yaml, compose.yml, \
         docker-compose.yml or docker-compose.yaml in {dir} and its parents; use -f FILE)"
    )]
    NotFound { dir: PathBuf },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes: not a compose file kiln reads")]
    TooLarge { path: PathBuf },
    /// Compose's text for an `--env-file` that is not there.
    #[error("couldn't find env file: {path}")]
    EnvFileMissing { path: PathBuf },
    #[error("env file {path}: {source}")]
    EnvFile {
        path: PathBuf,
        source: dotenvy::Error,
    },
    #[error("{path}: {source}")]
    Yaml {
        path: PathBuf,
        source: serde_yaml_ng::Error,
    },
    #[error("{path}: {message}")]
    Shape { path: String, message: String },
    #[error("{path}: {source}")]
    Interpolate {
        path: PathBuf,
        source: InterpolateError,
    },
    #[error("validating {file}: {at} additional properties {keys} not allowed")]
    UnknownKeys {
        file: String,
        at: String,
        keys: String,
    },
    /// A value of the wrong type, found when the merged project is read.
    #[error("{at}: {message}")]
    Model { at: String, message: String },
    /// Compose's text for a service name that is not in the project.
    #[error("no such service: {0}")]
    NoSuchService(String),
    #[error(
        "{at}: {what} is not supported by kiln compose{}",
        if hint.is_empty() { String::new() } else { format!(": {hint}") }
    )]
    Unsupported {
        at: String,
        what: String,
        hint: String,
    },
    /// Compose's wording: a grant of a secret the project does not define.
    #[error("service {service:?} refers to undefined secret {secret}: invalid compose project")]
    UndefinedSecret { service: String, secret: String },
    #[error(
        "service {service:?}: build secret {secret:?} is external: kiln compose reads a build \
         secret only from `file:` or `environment:` (as docker compose does)"
    )]
    ExternalSecret { service: String, secret: String },
    #[error(
        "service {service:?}: build.secrets only supports environment or file-based secrets: {secret:?}"
    )]
    SecretWithoutSource { service: String, secret: String },
    #[error("service {service:?}: build secret {secret:?}: {source}")]
    SecretId {
        service: String,
        secret: String,
        source: SecretIdError,
    },
    #[error("service {service:?}: {source}")]
    Secret {
        service: String,
        source: SecretError,
    },
    /// Compose's wording for both set at once.
    #[error("service {0} declares mutually exclusive dockerfile and dockerfile_inline")]
    DockerfileTwice(String),
    #[error("service {service:?}: writing its dockerfile_inline: {source}")]
    Inline {
        service: String,
        source: std::io::Error,
    },
    #[error("service {service:?}: {source}")]
    Context {
        service: String,
        source: kiln_engine::NamedContextError,
    },
    #[error("service {service:?}: platform {platform:?}: {source}")]
    Platform {
        service: String,
        platform: String,
        // Boxed: OciError is large and every compose Result would carry its size.
        source: Box<kiln_oci::OciError>,
    },
}
