//! kiln's build engine: turns a parsed Dockerfile and a build context into an image.
//!
//! It plans stages into a graph of steps, keys each step for the cache, runs `RUN` steps
//! through the shell and runtime with the secrets and mounts that step asks for, applies
//! `COPY`/`ADD` and config instructions, and assembles the image through `kiln-oci`.
//! It is not a parser (`kiln-dockerfile`), a WASI host (`kiln-runtime`) or a file
//! format library (`kiln-fs`, `kiln-oci`): it joins them.

mod add;
mod base_cache;
mod cache;
pub mod cache_remote;
mod checks;
pub mod container;
mod context;
mod copy;
mod copy_step;
mod engine;
mod error;
pub mod export;
mod export_local;
mod git_index;
mod history;
mod host_modes;
mod images;
mod inputs;
mod leak;
mod parents;
mod passwd;
pub mod places;
pub mod progress;
mod redact;
mod run;
mod sandbox;
pub mod secrets;
mod state;
mod step;

// The typed causes a `BuildError` / `StepError` can carry, nameable by embedders that
// match on them.
pub use add::AddError;
pub use cache::{CacheError, prune};
pub use checks::{CheckReport, check};
pub use context::{ContextError, read_build_file};
pub use copy::CopyError;
pub use engine::{BuildRequest, Built, LeakPolicy, Network, build, build_platforms};
pub use error::{BuildError, StepError};
pub use git_index::GitIndexError;
pub use images::{ImageError, NamedContext, NamedContextError, normalize_name};
/// A handle that cancels a build: see [`BuildRequest::cancel`].
pub use kiln_runtime::Cancel;
pub use leak::LeakError;
pub use passwd::PasswdError;
pub use redact::PatternError;
pub use sandbox::StepLimits;
pub use state::StateError;
