//! Compose files for kiln: what `kiln compose build` reads.
//!
//! It finds a project's files as `docker compose` does (`-f`, `COMPOSE_FILE`, or the
//! default names plus the override file), interpolates them from the environment and
//! `.env` with compose's syntax and error texts, checks their keys against the compose
//! specification, merges them in order, and turns each service's `build:` section into
//! a `kiln_engine::BuildRequest` with its secrets loaded.
//!
//! It is not a compose runtime: it neither runs, pulls nor networks services, and
//! resolves neither `extends` nor `include` (both refused by name). It does not run
//! builds either: the caller runs the requests (`crates/cli`).

mod error;
mod interpolate;
mod load;
mod merge;
mod model;
mod plan;
mod schema;

pub use error::ComposeError;
pub use interpolate::{InterpolateError, MAX_NESTING};
pub use load::{LoadOptions, MAX_FILE_BYTES, Project, load};
pub use model::{Build, ComposeFile, Grant, Scalar, SecretDef, Service};
pub use plan::{Defaults, ServiceBuild, plan};
