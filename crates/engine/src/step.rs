//! One Dockerfile instruction applied to a stage: variable expansion, the cache key, and
//! the effect (a layer for RUN/COPY/ADD/WORKDIR, a config change for the rest).

use std::collections::BTreeMap;
use std::sync::Arc;

use kiln_dockerfile::args::StageScope;
use kiln_dockerfile::graph::{EdgeKind, StageSource};
use kiln_dockerfile::{Copy, Healthcheck, Instruction, ShellOrExec, Step};
use kiln_fs::{Timestamp, Tree};

use crate::cache::{CacheKey, StepRecord};
use crate::copy::{self, Placement};
use crate::engine::Shared_;
use crate::error::StepError;
use crate::inputs::{CopyFrom, CopyInputs, StepInputs};
use crate::progress::StepId;
use crate::state::{StageLayer, StageState};

/// What happened to a step.
pub(crate) enum Outcome {
    Cached,
    Done,
}

/// BuildKit's comment on history entries it writes.
const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// Where a step is: its stage and position (for graph edges) and its progress id.
pub(crate) struct At<'a> {
    pub stage: usize,
    pub step: usize,
    pub id: &'a StepId,
}

/// The image's ENV as pairs (the base of a stage's variable scope).
pub(crate) fn env_of(state: &StageState) -> Vec<(String, String)> {
    state
        .config
        .env()
        .iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// Applies one step to the stage.
pub(crate) fn run(
    shared: &Shared_,
    state: &mut StageState,
    scope: &mut StageScope<'_>,
    step: &Step,
    at: &At<'_>,
    deps: &BTreeMap<usize, Arc<StageState>>,
) -> Result<Outcome, StepError> {
    let expanded = scope.dispatch(&step.instruction)?;
    let epoch = shared.req.epoch;
    let text = step.original.as_str();
    match expanded {
        Instruction::Arg(decls) => {
            let values = scope.args();
            let values = decls
                .iter()
                .map(|d| {
                    let value = values.iter().find(|(k, _)| *k == d.name);
                    (d.name.as_str(), value.map(|(_, v)| v.as_str()))
                })
                .collect();
            state.key = StepInputs::Arg { values }.key(Some(state.key))?;
            Ok(Outcome::Done)
        }
        Instruction::Env { vars, .. } => {
            // One variable at a time in place, as BuildKit's ENV: a redefined name keeps
            // its place in the image's Env.
            for (k, v) in &vars {
                state.config.set_env_var(k, v);
            }
            history_only(state, text, epoch)?;
            Ok(Outcome::Done)
        }
        Instruction::Workdir(dir) => {
            let cwd = workdir(state);
            let path = copy::normalize_abs(&if dir.starts_with('/') {
                dir
            } else {
                format!("{cwd}/{dir}")
            });
            let key = StepInputs::Workdir { path: &path, epoch }.key(Some(state.key))?;
            let outcome = layer_step(shared, state, key, text, |_, tree| {
                let how = placement(tree, None, None, epoch)?;
                copy::mkdir_p(tree, &path, &how).map_err(|source| StepError::Workdir {
                    path: path.clone(),
                    source,
                })?;
                Ok(())
            })?;
            state.config.update_container(|c| {
                c.set_working_dir(Some(path.clone()));
            });
            Ok(outcome)
        }
        Instruction::User(user) => {
            config_step(state, text, epoch, |c| {
                c.set_user(Some(user.clone()));
            })?;
            Ok(Outcome::Done)
        }
        Instruction::Label { labels, .. } => {
            // In place: copying every label per LABEL line made many lines quadratic.
            config_step(state, text, epoch, |c| {
                c.labels_mut()
                    .get_or_insert_with(Default::default)
                    .extend(labels.iter().cloned());
            })?;
            Ok(Outcome::Done)
        }
        Instruction::Expose(ports) => {
            config_step(state, text, epoch, |c| {
                let mut all = c.exposed_ports().clone().unwrap_or_default();
                for p in &ports {
                    let p = if p.contains('/') {
                        p.clone()
                    } else {
                        format!("{p}/tcp")
                    };
                    if !all.contains(&p) {
                        all.push(p);
                    }
                }
                all.sort();
                c.set_exposed_ports(Some(all));
            })?;
            Ok(Outcome::Done)
        }
        Instruction::Volume(vols) => {
            config_step(state, text, epoch, |c| {
                let mut all = c.volumes().clone().unwrap_or_default();
                for v in &vols {
                    if !all.contains(v) {
                        all.push(v.clone());
                    }
                }
                all.sort();
                c.set_volumes(Some(all));
            })?;
            Ok(Outcome::Done)
        }
        Instruction::Cmd(cmd) => {
            let argv = argv_of(&cmd, &shell_of(state));
            config_step(state, text, epoch, |c| {
                c.set_cmd(Some(argv));
            })?;
            Ok(Outcome::Done)
        }
        Instruction::Entrypoint(ep) => {
            let argv = argv_of(&ep, &shell_of(state));
            config_step(state, text, epoch, |c| {
                c.set_entrypoint(Some(argv));
                // Docker resets an inherited CMD when ENTRYPOINT is set.
                c.set_cmd(None);
            })?;
            Ok(Outcome::Done)
        }
        Instruction::Shell(shell) => {
            state.config.docker.shell = Some(shell);
            history_only(state, text, epoch)?;
            Ok(Outcome::Done)
        }
        Instruction::StopSignal(sig) => {
            config_step(state, text, epoch, |c| {
                c.set_stop_signal(Some(sig.clone()));
            })?;
            Ok(Outcome::Done)
        }
        Instruction::Healthcheck(h) => {
            state.config.docker.healthcheck = Some(healthcheck(&h));
            history_only(state, text, epoch)?;
            Ok(Outcome::Done)
        }
        Instruction::Onbuild { expression, .. } => {
            state
                .config
                .docker
                .on_build
                .get_or_insert_with(Vec::new)
                .push(expression);
            history_only(state, text, epoch)?;
            Ok(Outcome::Done)
        }
        Instruction::Maintainer(m) => {
            config_step(state, text, epoch, |c| {
                c.labels_mut()
                    .get_or_insert_with(Default::default)
                    .insert("maintainer".into(), m.clone());
            })?;
            Ok(Outcome::Done)
        }
        Instruction::Copy(c) => copy_step(shared, state, &c, false, text, at, deps),
        Instruction::Add(c) => copy_step(shared, state, &c, true, text, at, deps),
        Instruction::Run(run) => crate::run::run_step(shared, state, &run, scope, text, at, deps),
    }
}

/// A step that only changes the config: a history entry and a new key.
fn config_step(
    state: &mut StageState,
    text: &str,
    epoch: i64,
    f: impl FnOnce(&mut oci_spec::image::Config),
) -> Result<(), StepError> {
    state.config.update_container(f);
    history_only(state, text, epoch)
}

fn history_only(state: &mut StageState, text: &str, epoch: i64) -> Result<(), StepError> {
    state
        .config
        .add_empty_layer_history(text, Some(HISTORY_COMMENT), epoch);
    state.key = StepInputs::Config { instruction: text }.key(Some(state.key))?;
    Ok(())
}

pub(crate) fn workdir(state: &StageState) -> String {
    state
        .config
        .container()
        .working_dir()
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into())
}

pub(crate) fn shell_of(state: &StageState) -> Vec<String> {
    state
        .config
        .docker
        .shell
        .clone()
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
}

fn argv_of(cmd: &ShellOrExec, shell: &[String]) -> Vec<String> {
    match cmd {
        ShellOrExec::Exec(v) => v.clone(),
        ShellOrExec::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
    }
}

/// Docker's Healthcheck: `CMD-SHELL` runs through the container's own shell at run time,
/// so the build's SHELL does not apply.
fn healthcheck(h: &Healthcheck) -> kiln_oci::Healthcheck {
    let nanos = |d: &Option<std::time::Duration>| d.map(|d| d.as_nanos() as u64);
    match h {
        Healthcheck::None => kiln_oci::Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        },
        Healthcheck::Check {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => {
            let test = match test {
                ShellOrExec::Exec(v) => std::iter::once("CMD".to_owned())
                    .chain(v.iter().cloned())
                    .collect(),
                ShellOrExec::Shell(s) => vec!["CMD-SHELL".to_owned(), s.clone()],
            };
            kiln_oci::Healthcheck {
                test,
                interval: nanos(interval),
                timeout: nanos(timeout),
                start_period: nanos(start_period),
                start_interval: nanos(start_interval),
                retries: retries.map(u64::from),
            }
        }
    }
}

/// Runs a filesystem-changing step through the cache: on a hit, the recorded layer is
/// reused without touching files; on a miss, `effect` runs on a tree opened from the
/// current snapshot and the diff becomes the step's layer.
pub(crate) fn layer_step(
    shared: &Shared_,
    state: &mut StageState,
    key: CacheKey,
    created_by: &str,
    effect: impl FnOnce(&mut StageState, &mut Tree) -> Result<(), StepError>,
) -> Result<Outcome, StepError> {
    layer_step_with_secrets(shared, state, key, created_by, BTreeMap::new(), effect)
}

/// [`layer_step`] for a step that mounts secrets: `secrets` are the keyed digests of the
/// values it is given, by id; a record made with other values is not a hit.
pub(crate) fn layer_step_with_secrets(
    shared: &Shared_,
    state: &mut StageState,
    key: CacheKey,
    created_by: &str,
    secrets: BTreeMap<String, String>,
    effect: impl FnOnce(&mut StageState, &mut Tree) -> Result<(), StepError>,
) -> Result<Outcome, StepError> {
    let epoch = shared.req.epoch;
    if !shared.req.no_cache
        && let Some(rec) = shared.cache.get(key)?
        && rec.secrets == secrets
        && let Some(layers) = cached_layer(shared, &rec)
    {
        match layers {
            Some(layer) => {
                shared.note_layer(&layer);
                state.config.add_layer(
                    &layer.layer.diff_id,
                    created_by,
                    Some(HISTORY_COMMENT),
                    epoch,
                );
                state.push_cached(layer);
            }
            None => state
                .config
                .add_empty_layer_history(created_by, Some(HISTORY_COMMENT), epoch),
        }
        state.key = key;
        return Ok(Outcome::Cached);
    }
    let snapshot = state.snapshot()?;
    let mut tree = Tree::from_snapshot(&snapshot);
    tree.set_clock(Timestamp::from_secs(epoch));
    effect(state, &mut tree)?;
    let next = tree.snapshot()?;
    let layer = state.commit(next, epoch, shared.req.compression)?;
    match &layer {
        Some(l) => {
            shared.note_layer(l);
            state
                .config
                .add_layer(&l.layer.diff_id, created_by, Some(HISTORY_COMMENT), epoch)
        }
        None => state
            .config
            .add_empty_layer_history(created_by, Some(HISTORY_COMMENT), epoch),
    }
    shared.cache.put(
        key,
        &StepRecord {
            layer: layer.as_ref().map(StageLayer::to_ref),
            secrets,
        },
    )?;
    state.key = key;
    Ok(Outcome::Done)
}

/// The layer a cache record names, if its blob is still there. `Some(None)`: the step
/// changed nothing. `None`: the record is unusable (blob pruned), so the step reruns.
fn cached_layer(shared: &Shared_, rec: &StepRecord) -> Option<Option<StageLayer>> {
    let Some(r) = &rec.layer else {
        return Some(None);
    };
    let layer = StageLayer::from_ref(r).ok()?;
    let digest = kiln_oci::Digest::from_oci(layer.layer.descriptor.digest()).ok()?;
    shared.blobs.has_blob(&digest).then_some(Some(layer))
}

/// Ownership and mode for copied files: `--chown` resolved in the destination image.
fn placement(
    tree: &mut Tree,
    chown: Option<&str>,
    chmod: Option<&str>,
    epoch: i64,
) -> Result<Placement, StepError> {
    let (uid, gid) = match chown {
        Some(spec) => crate::passwd::resolve_owner(tree, spec)?,
        None => (0, 0),
    };
    let chmod = chmod
        .map(|text| {
            kiln_dockerfile::Chmod::parse(text).map_err(|why| StepError::Chmod {
                text: text.to_owned(),
                why,
            })
        })
        .transpose()?;
    Ok(Placement {
        uid,
        gid,
        chmod,
        mtime: Timestamp::from_secs(epoch),
    })
}

/// One COPY or ADD, with what every source kind needs: the absolute destination,
/// whether it is a directory of several sources, the history text and the file times.
struct CopyPlan<'a> {
    c: &'a Copy,
    add: bool,
    dest: String,
    several: bool,
    created_by: String,
    epoch: i64,
}

fn copy_step(
    shared: &Shared_,
    state: &mut StageState,
    c: &Copy,
    add: bool,
    text: &str,
    at: &At<'_>,
    deps: &BTreeMap<usize, Arc<StageState>>,
) -> Result<Outcome, StepError> {
    // `--parents` changes where files land; copying without it would put them in the
    // wrong place, so refuse rather than ignore. (`--link` only changes how BuildKit
    // stores the layer, not its contents, so it needs nothing here.)
    if c.parents {
        return Err(StepError::Unsupported {
            feature: "COPY --parents".into(),
            instead: "copy each directory with its own COPY",
        });
    }
    let cwd = workdir(state);
    let dest = if c.dest.starts_with('/') {
        c.dest.clone()
    } else {
        format!("{}/{}", cwd.trim_end_matches('/'), c.dest)
    };
    // A URL is never a pattern: its `?` starts a query string.
    let several = c.sources.len() + c.heredocs.len() > 1
        || c.sources
            .iter()
            .any(|s| !(add && crate::add::is_url(s)) && s.contains(['*', '?', '[']));
    let plan = CopyPlan {
        c,
        add,
        dest,
        several,
        created_by: format!("{text} # buildkit"),
        epoch: shared.req.epoch,
    };
    let Some(_) = &c.from else {
        return copy_from_context(shared, state, &plan, &shared.context);
    };
    let source = copy_from_source(shared, at)?
        .ok_or(StepError::Internal("COPY --from source was not resolved"))?;
    // `--from=NAME` where `--build-context NAME=/dir` names a host directory copies from
    // that directory as from the build context (its own .dockerignore applied).
    if let Some(dir) = crate::images::local_context(shared, &source) {
        return copy_from_context(shared, state, &plan, &dir?);
    }
    copy_from_stage(shared, state, &plan, source_state(shared, &source, deps)?)
}

/// COPY/ADD from the build context or a named directory (and ADD of URLs), keyed on the
/// content of what the sources match.
fn copy_from_context(
    shared: &Shared_,
    state: &mut StageState,
    plan: &CopyPlan<'_>,
    context: &crate::context::Context,
) -> Result<Outcome, StepError> {
    let (c, add, dest, epoch) = (plan.c, plan.add, plan.dest.as_str(), plan.epoch);
    let (urls, locals): (Vec<&String>, Vec<&String>) =
        c.sources.iter().partition(|s| add && crate::add::is_url(s));
    let mut downloads = Vec::new();
    let mut url_digests = Vec::new();
    for url in urls {
        let (file, digest) = crate::add::download(
            url,
            c.checksum.as_deref(),
            &shared.req.network,
            &shared.req.step_limits,
        )?;
        url_digests.push((url.as_str(), digest));
        downloads.push((crate::add::url_file_name(url), file));
    }
    let sources = context_sources(context, &locals, &c.exclude)?;
    let from = CopyFrom::Context {
        content: hex::encode(context.digest_sources(&sources)?),
        urls: url_digests,
    };
    let inputs = CopyInputs::new(c, add, dest, from, epoch);
    let unpack = inputs.unpack;
    let key = StepInputs::Copy(inputs).key(Some(state.key))?;
    layer_step(shared, state, key, &plan.created_by, |_, tree| {
        let how = placement(tree, c.chown.as_deref(), c.chmod.as_deref(), epoch)?;
        let mut open = copy::context_opener(context);
        for source in &sources {
            if unpack && unpack_archive(context, tree, source, dest, &how)? {
                continue;
            }
            copy::place(
                tree,
                std::slice::from_ref(source),
                dest,
                plan.several,
                &how,
                &mut *open,
            )?;
        }
        for (name, file) in &mut downloads {
            place_download(tree, name, file, dest, plan.several, &how)?;
        }
        heredoc_files(tree, c, dest, &how)
    })
}

/// What `patterns` match in `context`, without what `--exclude` names (matched against
/// paths relative to a copied directory, and relative to the context).
fn context_sources(
    context: &crate::context::Context,
    patterns: &[&String],
    exclude: &[String],
) -> Result<Vec<crate::context::Source>, StepError> {
    let exclude = crate::context::IgnoreRules::exclusions(exclude)?;
    let mut sources = Vec::new();
    for s in patterns {
        sources.extend(context.resolve(s)?);
    }
    for s in &mut sources {
        let base = s.top.rel.clone();
        s.children.retain(|e| {
            let inner = e.rel[base.len()..].trim_start_matches('/');
            !exclude.is_excluded(inner) && !exclude.is_excluded(&e.rel)
        });
    }
    sources.retain(|s| !exclude.is_excluded(&s.top.rel));
    Ok(sources)
}

/// COPY --from a stage or an image, keyed on the source's key, so a cached build never
/// opens the source's files: its tree is materialised only when this step runs.
fn copy_from_stage(
    shared: &Shared_,
    state: &mut StageState,
    plan: &CopyPlan<'_>,
    mut src_state: StageState,
) -> Result<Outcome, StepError> {
    let (c, dest, epoch) = (plan.c, plan.dest.as_str(), plan.epoch);
    let from = CopyFrom::Stage { key: src_state.key };
    let key =
        StepInputs::Copy(CopyInputs::new(c, plan.add, dest, from, epoch)).key(Some(state.key))?;
    layer_step(shared, state, key, &plan.created_by, |_, tree| {
        let how = placement(tree, c.chown.as_deref(), c.chmod.as_deref(), epoch)?;
        let mut src_tree = Tree::from_snapshot(&src_state.snapshot()?);
        let mut sources = Vec::new();
        for s in &c.sources {
            sources.extend(copy::tree_sources(&mut src_tree, s)?);
        }
        copy::place(
            tree,
            &sources,
            dest,
            plan.several,
            &how,
            &mut copy::open_in_tree(&mut src_tree),
        )?;
        Ok(())
    })
}

/// Where this step's `COPY --from` copies from, as the stage graph resolved it.
fn copy_from_source(shared: &Shared_, at: &At<'_>) -> Result<Option<StageSource>, StepError> {
    Ok(shared.graph.nodes[at.stage]
        .edges
        .iter()
        .find(|e| e.kind == EdgeKind::Copy { step: at.step })
        .map(|e| e.source.clone()))
}

/// ADD of a local archive: unpacked into the destination directory. `false` if the
/// source is not an archive (it is then copied as a file).
fn unpack_archive(
    context: &crate::context::Context,
    tree: &mut Tree,
    source: &crate::context::Source,
    dest: &str,
    how: &Placement,
) -> Result<bool, StepError> {
    if !matches!(source.top.kind, crate::context::EntryKind::File { .. }) {
        return Ok(false);
    }
    let file = context.open_file(&source.top.rel)?.into_std();
    let (head, reader) = crate::add::peek(file)?;
    let Some(kind) = crate::add::unpackable(&head) else {
        return Ok(false);
    };
    crate::add::unpack(tree, reader, kind, dest, how)?;
    Ok(true)
}

/// ADD of a URL: the file keeps the URL's name inside a directory destination, mode 0600
/// as BuildKit gives downloads (unless --chmod).
fn place_download(
    tree: &mut Tree,
    name: &str,
    file: &mut std::fs::File,
    dest: &str,
    several: bool,
    how: &Placement,
) -> Result<(), StepError> {
    let entry = crate::context::Entry {
        rel: name.to_owned(),
        kind: crate::context::EntryKind::File { size: 0 },
        mode: 0o600,
    };
    let source = crate::context::Source {
        top: entry,
        children: Vec::new(),
    };
    let mut once = Some(file.try_clone().map_err(crate::add::AddError::Spool)?);
    let mut open = move |_: &str| -> Result<Box<dyn std::io::Read>, copy::CopyError> {
        once.take()
            .map(|f| Box::new(f) as Box<dyn std::io::Read>)
            .ok_or_else(|| copy::CopyError::NotFound("download".into()))
    };
    copy::place(tree, &[source], dest, several, how, &mut open)?;
    Ok(())
}

/// `COPY <<EOF /dest` writes each heredoc body as a file named after its delimiter.
fn heredoc_files(tree: &mut Tree, c: &Copy, dest: &str, how: &Placement) -> Result<(), StepError> {
    for h in &c.heredocs {
        let path = if c.sources.len() + c.heredocs.len() > 1 || dest.ends_with('/') {
            format!("{}/{}", dest.trim_end_matches('/'), h.name)
        } else {
            dest.to_owned()
        };
        let entry = crate::context::Entry {
            rel: h.name.clone(),
            kind: crate::context::EntryKind::File {
                size: h.content.len() as u64,
            },
            mode: 0o644,
        };
        let source = crate::context::Source {
            top: entry,
            children: Vec::new(),
        };
        let body = h.content.clone();
        let mut open = move |_: &str| -> Result<Box<dyn std::io::Read>, copy::CopyError> {
            Ok(Box::new(std::io::Cursor::new(body.clone().into_bytes())))
        };
        copy::place(tree, &[source], &path, false, how, &mut open)?;
    }
    Ok(())
}

/// The state a `--from` names: a finished stage this stage depends on, or an image.
pub(crate) fn source_state(
    shared: &Shared_,
    source: &StageSource,
    deps: &BTreeMap<usize, Arc<StageState>>,
) -> Result<StageState, StepError> {
    match source {
        StageSource::Stage(i) => deps
            .get(i)
            .map(|s| (**s).clone())
            .ok_or(StepError::Internal(
                "a --from stage was not built before its user",
            )),
        StageSource::Scratch => Ok(StageState::new(
            crate::cache::CacheKey::root("scratch", ""),
            kiln_oci::ImageConfig::default(),
            Vec::new(),
            shared.store.clone(),
            shared.blobs.clone(),
        )),
        StageSource::Image(name) => {
            let image = crate::images::resolve_base(shared, name, &shared.req.platform)?;
            Ok(crate::images::state_of_image(shared, &image, name)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmd_and_entrypoint_run_shell_form_through_the_shell() {
        let sh = vec!["/bin/sh".to_owned(), "-c".to_owned()];
        assert_eq!(
            argv_of(&ShellOrExec::Shell("echo $A".into()), &sh),
            ["/bin/sh", "-c", "echo $A"]
        );
        let exec = ShellOrExec::Exec(vec!["a".into(), "b c".into()]);
        assert_eq!(argv_of(&exec, &sh), ["a", "b c"]);
    }

    #[test]
    fn healthchecks_are_written_as_docker_writes_them() {
        assert_eq!(healthcheck(&Healthcheck::None).test, ["NONE"]);
        let check = Healthcheck::Check {
            test: ShellOrExec::Shell("curl -f localhost".into()),
            interval: Some(std::time::Duration::from_secs(30)),
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: Some(3),
        };
        let written = healthcheck(&check);
        assert_eq!(written.test, ["CMD-SHELL", "curl -f localhost"]);
        assert_eq!(written.interval, Some(30_000_000_000));
        assert_eq!(written.timeout, None);
        assert_eq!(written.retries, Some(3));
        let exec = Healthcheck::Check {
            test: ShellOrExec::Exec(vec!["probe".into()]),
            interval: None,
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: None,
        };
        assert_eq!(healthcheck(&exec).test, ["CMD", "probe"]);
    }

    /// A stage with no layers and `config`, over a private store and blob layout.
    fn stage(dir: &std::path::Path, config: kiln_oci::ImageConfig) -> StageState {
        let store = kiln_fs::Store::open(crate::places::CacheLayout::new(dir).files()).unwrap();
        let blobs =
            kiln_oci::Layout::open_or_create(crate::places::CacheLayout::new(dir).blobs()).unwrap();
        StageState::new(
            CacheKey::root("scratch", ""),
            config,
            Vec::new(),
            store,
            blobs,
        )
    }

    #[test]
    fn a_stage_sees_its_config_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = stage(dir.path(), kiln_oci::ImageConfig::default());
        assert_eq!(workdir(&s), "/");
        assert_eq!(shell_of(&s), ["/bin/sh", "-c"]);
        assert!(env_of(&s).is_empty());
        s.config.update_container(|c| {
            c.set_working_dir(Some("/app".into()));
            c.set_env(Some(vec!["A=1=2".into(), "no-equals".into()]));
        });
        s.config.docker.shell = Some(vec!["/bin/bash".into(), "-c".into()]);
        assert_eq!(workdir(&s), "/app");
        assert_eq!(shell_of(&s), ["/bin/bash", "-c"]);
        // Values keep their own `=`; an entry without one is not a variable.
        assert_eq!(env_of(&s), [("A".to_owned(), "1=2".to_owned())]);
    }

    #[test]
    fn config_steps_chain_the_key_and_add_empty_history() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = stage(dir.path(), kiln_oci::ImageConfig::default());
        let root = s.key;
        config_step(&mut s, "ENV A=1", 0, |c| {
            c.set_user(Some("1".into()));
        })
        .unwrap();
        s.config.set_env_var("A", "1");
        let after_env = s.key;
        assert_ne!(after_env, root);
        history_only(&mut s, "SHELL [\"/bin/sh\", \"-c\"]", 0).unwrap();
        assert_ne!(s.key, after_env);
        // The same instructions from the same parent give the same key.
        let mut again = stage(dir.path(), kiln_oci::ImageConfig::default());
        config_step(&mut again, "ENV A=1", 0, |_| {}).unwrap();
        assert_eq!(again.key, after_env);
        assert_eq!(env_of(&s), [("A".to_owned(), "1".to_owned())]);
    }
}
