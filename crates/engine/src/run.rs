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

use crate::engine::Shared_;
use crate::error::StepError;
use crate::inputs::{BindFrom, MountInputs, RunInputs, StepInputs};
use crate::state::StageState;
use crate::step::{self, At, Outcome};

pub(crate) fn run_step(
    shared: &Shared_,
    state: &mut StageState,
    run: &Run,
    scope: &StageScope<'_>,
    at: &At<'_>,
    deps: &BTreeMap<usize, Arc<StageState>>,
) -> Result<Outcome, StepError> {
    let lookup = |name: &str| scope.lookup(name);
    let step = crate::sandbox::Exec {
        mounts: run.resolve_mounts(shared.dockerfile.directives.escape, &lookup)?,
        program: run.program(),
        env: scope.run_env(),
        network: network_for(&shared.req.network, run.network),
        cwd: step::workdir(state),
        user: state.config.container().user().clone().unwrap_or_default(),
        shell: step::shell_of(state),
        mount_sources: mount_sources(shared, at),
        hostname: crate::sandbox::sandbox_hostname(&shared.req.build_args)?,
    };
    let secrets = secret_digests(shared, &step.mounts)?;
    let inputs = RunInputs {
        program: (&step.program).into(),
        shell: &step.shell,
        cwd: &step.cwd,
        user: &step.user,
        env: &key_env(&step.env, scope),
        network: step.network.enabled,
        allowed_hosts: &step.network.allowed_hosts,
        mounts: mount_inputs(shared, &step.mounts, &secrets, &step.mount_sources, deps)?,
        epoch: shared.req.epoch,
        hostname: step.hostname.as_deref(),
    };
    let key = StepInputs::Run(inputs).key(Some(state.key))?;
    let created_by = crate::history::run(&step.shell, &step.program, &scope.history_args());
    step::layer_step_with_secrets(shared, state, key, &created_by, secrets, |state, tree| {
        crate::sandbox::execute(shared, state, tree, step, at.id, deps)
    })
}

/// Runs a step's program as BuildKit does: exec form as written; shell form as the
/// stage's `SHELL` plus the script (kiln's shell takes a `SHELL` of sh or bash with its
/// options, any other program runs as itself); a heredoc with a `#!` line as the `SHELL`
/// plus the path of the file [`add_script_file`] mounted, so its interpreter runs it.
pub(crate) fn run_program(
    sh: &mut kiln_shell::Shell,
    program: &RunProgram,
    shell: &[String],
) -> Result<kiln_shell::ExitStatus, StepError> {
    Ok(match program {
        RunProgram::Exec(argv) => sh.run_argv(argv)?,
        RunProgram::Shell(script) => sh.run_with_shell(shell, script)?,
        RunProgram::ScriptFile { name, .. } => sh.run_with_shell(shell, &script_path(name))?,
    })
}

/// Where BuildKit puts a heredoc that starts with `#!`: a read-only file in a directory
/// mounted for the step only (`/dev/pipes/`), never in a layer.
pub(crate) fn script_path(name: &str) -> String {
    format!("/dev/pipes/{name}")
}

/// Mounts the body of a `RUN <<EOF` that starts with `#!` as BuildKit does: a read-only
/// in-memory file of mode 0755 at `/dev/pipes/<name>`, owned by root. Nothing for other
/// programs.
pub(crate) fn add_script_file(
    table: &mut kiln_runtime::MountTable,
    program: &RunProgram,
) -> Result<(), StepError> {
    if let RunProgram::ScriptFile { name, content } = program {
        let body = kiln_runtime::Zeroizing::new(content.as_bytes().to_vec());
        table.add_secret(&script_path(name), body, 0o755, 0, 0)?;
    }
    Ok(())
}

/// The environment a step's key holds: without the proxy build args the stage did not
/// declare (BuildKit leaves its proxy env out of the key too), so a build behind another
/// proxy replays the results of one behind the first instead of rerunning every RUN.
fn key_env(env: &[(String, String)], scope: &StageScope<'_>) -> Vec<(String, String)> {
    env.iter()
        .filter(|(name, _)| scope.lookup(name).is_some())
        .cloned()
        .collect()
}

/// The key inputs of a step's mounts: each secret with the keyed digest of the value given
/// (from `secrets`), each bind with the content it exposes.
fn mount_inputs<'a>(
    shared: &Shared_,
    mounts: &'a [Mount],
    secrets: &'a BTreeMap<String, String>,
    sources: &BTreeMap<usize, StageSource>,
    deps: &BTreeMap<usize, Arc<StageState>>,
) -> Result<Vec<MountInputs<'a>>, StepError> {
    let mut inputs = Vec::with_capacity(mounts.len());
    for (n, m) in mounts.iter().enumerate() {
        let digest = match m {
            Mount::Secret { id, .. } => secrets.get(id.as_str()).map(String::as_str),
            _ => None,
        };
        inputs.push(MountInputs::new(m, digest, |source, from| {
            bind_from(shared, sources, n, source, from, deps)
        })?);
    }
    Ok(inputs)
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
                key.digest(id.as_str(), value.expose()),
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

/// The network a step gets: the build's (`--network`, `--allow-host`), unless the step
/// asks for none (`RUN --network=none`); a step cannot widen what the build allows.
fn network_for(build: &crate::Network, mode: Option<NetworkMode>) -> NetworkPolicy {
    let step_allows = !matches!(mode, Some(NetworkMode::None));
    NetworkPolicy {
        enabled: build.enabled && step_allows,
        allowed_hosts: build.allowed_hosts.clone(),
    }
}

/// What bind mount number `n` of a step exposes, by content: the digest of its source as
/// COPY would see it in the context or a `--build-context NAME=DIR`, or the key of the
/// stage or image it comes from. A changed stage therefore reruns the step, and a cached
/// step never opens the stage's files.
fn bind_from(
    shared: &Shared_,
    sources: &BTreeMap<usize, StageSource>,
    n: usize,
    source: &str,
    from: Option<&str>,
    deps: &BTreeMap<usize, Arc<StageState>>,
) -> Result<BindFrom, StepError> {
    if from.is_none() {
        return context_bind(&shared.context, source);
    }
    let stage = sources.get(&n).ok_or(StepError::Internal(
        "RUN --mount from= source was not resolved",
    ))?;
    if let Some(dir) = crate::images::local_context(shared, stage) {
        return context_bind(&dir?, source);
    }
    Ok(BindFrom::Stage {
        key: step::source_state(shared, stage, deps)?.key,
    })
}

/// A context bind mount's content: the digest COPY would use, so a step reruns when
/// what it can see changes (and not when an ignored file changes).
fn context_bind(context: &crate::context::Context, source: &str) -> Result<BindFrom, StepError> {
    let sources = context.resolve(source)?;
    Ok(BindFrom::Context {
        content: hex::encode(context.digest_sources(&sources)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_can_only_narrow_the_builds_network() {
        let on = crate::Network {
            enabled: true,
            allowed_hosts: vec!["example.com".into()],
        };
        let off = crate::Network {
            enabled: false,
            allowed_hosts: Vec::new(),
        };
        for mode in [None, Some(NetworkMode::Default), Some(NetworkMode::Host)] {
            let got = network_for(&on, mode);
            assert!(got.enabled, "{mode:?}");
            assert_eq!(got.allowed_hosts, ["example.com"]);
            assert!(!network_for(&off, mode).enabled, "{mode:?}");
        }
        assert!(!network_for(&on, Some(NetworkMode::None)).enabled);
    }
}
