//! `RUN`: what a step sees (mounts, environment, network, secrets) and its cache key; the
//! step itself runs in the sandbox (`sandbox.rs`).
//!
//! The cache key records a secret's id, target and mode and a keyed digest of its value,
//! never the value.

use std::collections::BTreeMap;
use std::sync::Arc;

use kiln_dockerfile::args::StageScope;
use kiln_dockerfile::graph::{EdgeKind, StageSource};
use kiln_dockerfile::{Mount, NetworkMode, Run, RunProgram};
use kiln_runtime::NetworkPolicy;

use crate::engine::{Shared_, step_key};
use crate::error::StepError;
use crate::state::StageState;
use crate::step::{self, At, Outcome};

pub(crate) fn run_step(
    shared: &Shared_,
    state: &mut StageState,
    run: &Run,
    scope: &StageScope<'_>,
    text: &str,
    at: &At<'_>,
    deps: &BTreeMap<usize, Arc<StageState>>,
) -> Result<Outcome, StepError> {
    let lookup = |name: &str| scope.lookup(name);
    let mounts = run
        .resolve_mounts(shared.dockerfile.directives.escape, &lookup)?;
    let program = run.program();
    let env = scope.run_env();
    let step = crate::sandbox::Exec {
        network: network_for(shared, run.network),
        cwd: step::workdir(state),
        user: state.config.container().user().clone().unwrap_or_default(),
        shell: step::shell_of(state),
        mount_sources: mount_sources(shared, at),
    };
    let mut key = step_key(state.key, "RUN")
        .field("program", format!("{program:?}"))
        .field("shell", step.shell.join("\0"))
        .field("cwd", &step.cwd)
        .field("user", &step.user)
        .field("network", format!("{}", step.network.enabled));
    for (k, v) in &env {
        key = key.field("env", format!("{k}={v}"));
    }
    for (n, m) in mounts.iter().enumerate() {
        key = key.field("mount", mount_key(m, &shared.req.secrets));
        if let Mount::Bind { source, from, .. } = m {
            let named = match from {
                Some(_) => step
                    .mount_sources
                    .get(&n)
                    .and_then(|s| crate::images::local_context(shared, s))
                    .transpose()?,
                None => None,
            };
            if from.is_none() || named.is_some() {
                let context = named.as_ref().unwrap_or(&shared.context);
                key = key.field("mount-content", context_bind_digest(context, source)?);
            }
        }
    }
    let secrets = secret_digests(shared, &mounts)?;
    for (id, digest) in &secrets {
        key = key.field("secret-digest", format!("{id}={digest}"));
    }
    let key = key.finish();
    let created_by = history_text(text, &step.shell, &program);
    step::layer_step_with_secrets(shared, state, key, &created_by, secrets, |state, tree| {
        crate::sandbox::execute(
            shared, state, tree, &mounts, &program, env, &step, at.id, deps,
        )
    })
}

/// Keyed digests (HMAC under the cache's own key) of the secret values this step mounts,
/// by id. They are in the step's key, so the steps after it differ too, and in its record,
/// which must match for a hit: a build given another value never replays this one's
/// result. A plain hash could be brute-forced offline from the cache; this cannot
/// without the key, which never leaves the cache directory.
fn secret_digests(
    shared: &Shared_,
    mounts: &[Mount],
) -> Result<BTreeMap<String, String>, StepError> {
    let mut digests = BTreeMap::new();
    for m in mounts {
        let Mount::Secret { id, .. } = m else {
            continue;
        };
        if let Some(value) = shared.req.secrets.get(id.as_str()) {
            let key = shared.cache.secret_key()?;
            digests.insert(
                id.as_str().to_owned(),
                key.digest(id.as_str(), value.expose())?,
            );
        }
    }
    Ok(digests)
}

fn mount_sources(shared: &Shared_, at: &At<'_>) -> BTreeMap<usize, StageSource> {
    shared.graph.nodes[at.stage]
        .edges
        .iter()
        .filter_map(|e| match e.kind {
            EdgeKind::Mount { step, mount } if step == at.step => Some((mount, e.source.clone())),
            _ => None,
        })
        .collect()
}

/// BuildKit's history text: `RUN /bin/sh -c <script> # buildkit`, with the mount flags as
/// written (they name secrets by id only).
fn history_text(text: &str, shell: &[String], program: &RunProgram) -> String {
    let flags: Vec<&str> = text
        .split_whitespace()
        .skip(1)
        .take_while(|w| w.starts_with("--"))
        .collect();
    let body = match program {
        RunProgram::Shell(s) => format!("{} {s}", shell.join(" ")),
        RunProgram::Exec(argv) => format!(
            "[{}]",
            argv.iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        RunProgram::ScriptFile { name, .. } => format!("<<{name}"),
    };
    let mut text = String::from("RUN ");
    for f in flags {
        text.push_str(f);
        text.push(' ');
    }
    text.push_str(&body);
    text.push_str(" # buildkit");
    text
}

/// A mount's cache-key text: everything that shapes what the step sees, except secret
/// values (never part of a key, not even as a plain hash: a hash of a short token can be
/// guessed offline; the keyed digest is added by [`secret_digests`]). Whether an optional
/// secret was given at all is part of the key, so a build without it does not reuse the
/// result of a build with it.
fn mount_key(m: &Mount, secrets: &crate::secrets::Secrets) -> String {
    match m {
        Mount::Secret {
            id,
            target,
            env,
            required,
            mode,
            uid,
            gid,
        } => format!(
            "secret id={} target={target:?} env={env:?} required={required} mode={mode:o} uid={uid} gid={gid} given={}",
            id.as_str(),
            secrets.get(id.as_str()).is_some()
        ),
        other => format!("{other:?}"),
    }
}

fn network_for(shared: &Shared_, mode: Option<NetworkMode>) -> NetworkPolicy {
    let step_allows = !matches!(mode, Some(NetworkMode::None));
    NetworkPolicy {
        enabled: shared.req.network.enabled && step_allows,
        allowed_hosts: shared.req.network.allowed_hosts.clone(),
    }
}

/// The cache-key text of a context bind mount's content: the digest COPY would use, so a
/// step reruns when what it can see changes (and not when an ignored file changes).
fn context_bind_digest(
    context: &crate::context::Context,
    source: &str,
) -> Result<String, StepError> {
    let sources = context.resolve(source)?;
    Ok(hex::encode(context.digest_sources(&sources)?))
}
