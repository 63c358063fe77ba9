//! One Dockerfile instruction applied to a stage: variable expansion, the cache key, and
//! the effect (a layer for RUN/COPY/ADD/WORKDIR, a config change for the rest).

use std::collections::BTreeMap;
use std::sync::Arc;

use kiln_dockerfile::args::StageScope;
use kiln_dockerfile::graph::StageSource;
use kiln_dockerfile::{Healthcheck, Instruction, ShellOrExec, Step};
use kiln_fs::{Timestamp, Tree};

use crate::cache::{CacheKey, StepRecord};
use crate::copy;
use crate::copy_step::{copy_step, placement};
use crate::engine::Shared_;
use crate::error::StepError;
use crate::history;
use crate::inputs::StepInputs;
use crate::progress::StepId;
use crate::state::{StageLayer, StageState};

/// What happened to a step.
pub(crate) enum Outcome {
    Cached,
    Done,
}

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
            add_history(state, &history::arg(&decls), epoch);
            Ok(Outcome::Done)
        }
        Instruction::Env { vars, .. } => {
            // One variable at a time in place, as BuildKit's ENV: a redefined name keeps
            // its place in the image's Env.
            for (k, v) in &vars {
                state.config.set_env_var(k, v);
            }
            seen_by_run(state, &history::pairs("ENV", &vars), text, epoch)?;
            Ok(Outcome::Done)
        }
        Instruction::Workdir(dir) => {
            let cwd = workdir(state);
            let path = copy::normalize_abs(&if dir.starts_with('/') {
                dir
            } else {
                format!("{cwd}/{dir}")
            });
            if path == "/" {
                // `/` always exists: BuildKit makes no layer for it.
                metadata_step(state, "WORKDIR /", epoch, |c| {
                    c.set_working_dir(Some(path.clone()));
                });
                return Ok(Outcome::Done);
            }
            // BuildKit creates the directories as the stage's USER (existing ones keep
            // their owner).
            let user = state.config.container().user().clone().unwrap_or_default();
            let inputs = StepInputs::Workdir {
                path: &path,
                epoch,
                user: &user,
            };
            let key = inputs.key(Some(state.key))?;
            let created_by = format!("WORKDIR {path}");
            let outcome = layer_step(shared, state, key, &created_by, |_, tree| {
                let mut how = placement(tree, None, None, epoch)?;
                if !user.is_empty() {
                    how.owner = Some(crate::passwd::resolve_mkdir_owner(tree, &user)?);
                }
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
            seen_by_run(state, &format!("USER {user}"), text, epoch)?;
            state.config.update_container(|c| {
                c.set_user(Some(user.clone()));
            });
            Ok(Outcome::Done)
        }
        Instruction::Label { labels, .. } => {
            // In place: copying every label per LABEL line made many lines quadratic.
            metadata_step(state, &history::pairs("LABEL", &labels), epoch, |c| {
                c.labels_mut()
                    .get_or_insert_with(Default::default)
                    .extend(labels.iter().cloned());
            });
            Ok(Outcome::Done)
        }
        Instruction::Expose(words) => {
            let mut ports = Vec::new();
            // A range is up to 65,536 ports; many ranges on one line are bounded by the
            // config limit their history entry would break anyway.
            let mut bytes = 0;
            for w in &words {
                let more = kiln_dockerfile::expose_ports(w).map_err(StepError::Expose)?;
                bytes += more.iter().map(|p| p.len() as u64 + 1).sum::<u64>();
                if bytes > kiln_oci::MAX_CONFIG_SIZE {
                    return Err(StepError::ConfigTooLarge { bytes });
                }
                ports.extend(more);
            }
            metadata_step(state, &history::listed("EXPOSE", &ports), epoch, |c| {
                let mut all = c.exposed_ports().clone().unwrap_or_default();
                all.extend(ports);
                // One entry per port, in the order of Go's JSON map keys.
                all.sort();
                all.dedup();
                c.set_exposed_ports(Some(all));
            });
            Ok(Outcome::Done)
        }
        Instruction::Volume(vols) => {
            metadata_step(state, &history::listed("VOLUME", &vols), epoch, |c| {
                let mut all = c.volumes().clone().unwrap_or_default();
                all.extend(vols.iter().cloned());
                all.sort();
                all.dedup();
                c.set_volumes(Some(all));
            });
            Ok(Outcome::Done)
        }
        Instruction::Cmd(cmd) => {
            let argv = argv_of(&cmd, &shell_of(state));
            metadata_step(state, &history::quoted("CMD", &argv), epoch, |c| {
                c.set_cmd(Some(argv));
            });
            Ok(Outcome::Done)
        }
        Instruction::Entrypoint(ep) => {
            let argv = argv_of(&ep, &shell_of(state));
            metadata_step(state, &history::quoted("ENTRYPOINT", &argv), epoch, |c| {
                c.set_entrypoint(Some(argv));
                // Docker resets an inherited CMD when ENTRYPOINT is set.
                c.set_cmd(None);
            });
            Ok(Outcome::Done)
        }
        Instruction::Shell(shell) => {
            seen_by_run(state, &history::listed("SHELL", &shell), text, epoch)?;
            state.config.docker.shell = Some(shell);
            Ok(Outcome::Done)
        }
        Instruction::StopSignal(sig) => {
            metadata_step(state, &format!("STOPSIGNAL {sig}"), epoch, |c| {
                c.set_stop_signal(Some(sig.clone()));
            });
            Ok(Outcome::Done)
        }
        Instruction::Healthcheck(h) => {
            let check = healthcheck(&h);
            add_history(state, &history::healthcheck(&check), epoch);
            state.config.docker.healthcheck = Some(check);
            Ok(Outcome::Done)
        }
        Instruction::Onbuild { expression, .. } => {
            // A trigger for child builds: BuildKit writes no history entry for it.
            state
                .config
                .docker
                .on_build
                .get_or_insert_with(Vec::new)
                .push(expression);
            Ok(Outcome::Done)
        }
        Instruction::Maintainer(m) => {
            // BuildKit sets the image's author.
            state.config.spec.set_author(Some(m.clone()));
            add_history(state, &format!("MAINTAINER {m}"), epoch);
            Ok(Outcome::Done)
        }
        Instruction::Copy(c) => copy_step(shared, state, &c, false, at, deps),
        Instruction::Add(c) => copy_step(shared, state, &c, true, at, deps),
        Instruction::Run(run) => crate::run::run_step(shared, state, &run, scope, at, deps),
    }
}

/// An instruction that only changes the image's metadata (LABEL, CMD, ENTRYPOINT,
/// EXPOSE, VOLUME, STOPSIGNAL, and HEALTHCHECK, MAINTAINER, ONBUILD): a history entry,
/// and the key chain left as it was. No later step sees what it sets, so, as in BuildKit,
/// changing it never reruns a RUN or COPY after it (the config is assembled anew by
/// every build, never taken from the cache).
fn metadata_step(
    state: &mut StageState,
    created_by: &str,
    epoch: i64,
    f: impl FnOnce(&mut oci_spec::image::Config),
) {
    state.config.update_container(f);
    add_history(state, created_by, epoch);
}

/// An instruction later steps see (ENV, USER, SHELL): a history entry, and the key chain
/// extended by the instruction as written. A RUN's inputs hold its environment, user and
/// shell as well; the chain keeps them for the steps whose inputs do not.
fn seen_by_run(
    state: &mut StageState,
    created_by: &str,
    text: &str,
    epoch: i64,
) -> Result<(), StepError> {
    add_history(state, created_by, epoch);
    state.key = StepInputs::Config { instruction: text }.key(Some(state.key))?;
    Ok(())
}

/// A history entry without a layer (`empty_layer: true`).
fn add_history(state: &mut StageState, created_by: &str, epoch: i64) {
    state
        .config
        .add_empty_layer_history(created_by, Some(history::COMMENT), epoch);
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
    if !state.ignore_cache
        && let Some(rec) = shared.cache.get(key)?
        && rec.secrets == secrets
        && let Some(layer) = cached_layer(shared, &rec)
    {
        shared.note_layer(&layer);
        let comment = Some(history::COMMENT);
        state
            .config
            .add_layer(&layer.layer.diff_id, created_by, comment, epoch);
        state.push_cached(layer);
        state.key = key;
        return Ok(Outcome::Cached);
    }
    let snapshot = state.snapshot()?;
    let mut tree = Tree::from_snapshot(&snapshot);
    tree.set_clock(Timestamp::from_secs(epoch));
    // `--disk-quota` bounds every layer step, not only RUN: a 4 MB gzip in the context can
    // unpack to 4 GB through ADD.
    tree.set_disk_quota(shared.req.step_limits.disk_quota());
    effect(state, &mut tree)?;
    let next = tree.snapshot()?;
    // Even a step that changed nothing has its (empty) layer, as BuildKit's RUN, COPY,
    // ADD and WORKDIR do.
    let layer = state.commit(next, epoch, shared.req.compression)?;
    shared.note_layer(&layer);
    state.config.add_layer(
        &layer.layer.diff_id,
        created_by,
        Some(history::COMMENT),
        epoch,
    );
    if state.ignore_cache && !shared.req.no_cache {
        // Only this stage reruns (`--no-cache-filter`): the records a normal build made
        // stay as they are, since the steps after them were not rerun with this layer.
        let diff_id = layer.layer.diff_id.to_string();
        state.key = StepInputs::Rerun { diff_id: &diff_id }.key(Some(key))?;
        return Ok(Outcome::Done);
    }
    shared.cache.put(
        key,
        &StepRecord {
            layer: Some(layer.to_ref()),
            secrets,
        },
    )?;
    state.key = key;
    Ok(Outcome::Done)
}

/// The layer a cache record names, if its blob is still there. `None`: the record is
/// unusable (blob pruned, or written by a kiln that made no layer for a step that changed
/// nothing), so the step reruns.
fn cached_layer(shared: &Shared_, rec: &StepRecord) -> Option<StageLayer> {
    let layer = StageLayer::from_ref(rec.layer.as_ref()?).ok()?;
    let digest = kiln_oci::Digest::from_oci(layer.layer.descriptor.digest()).ok()?;
    shared.blobs.has_blob(&digest).then_some(layer)
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
    fn what_run_sees_chains_the_key_and_metadata_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = stage(dir.path(), kiln_oci::ImageConfig::default());
        let root = s.key;
        seen_by_run(&mut s, "ENV A=1", "ENV A=1", 0).unwrap();
        s.config.set_env_var("A", "1");
        let after_env = s.key;
        assert_ne!(after_env, root);
        seen_by_run(
            &mut s,
            "SHELL [/bin/sh -c]",
            "SHELL [\"/bin/sh\", \"-c\"]",
            0,
        )
        .unwrap();
        assert_ne!(s.key, after_env);
        let after_shell = s.key;
        metadata_step(&mut s, "LABEL a=b", 0, |c| {
            c.set_labels(Some([("a".to_owned(), "b".to_owned())].into()));
        });
        assert_eq!(s.key, after_shell, "a label changes no later step");
        // The same instructions from the same parent give the same key.
        let mut again = stage(dir.path(), kiln_oci::ImageConfig::default());
        seen_by_run(&mut again, "ENV A=1", "ENV A=1", 0).unwrap();
        assert_eq!(again.key, after_env);
        assert_eq!(env_of(&s), [("A".to_owned(), "1".to_owned())]);
        // Each is one entry without a layer, worded as BuildKit words it.
        let history = s.config.spec.history().clone().unwrap();
        let texts: Vec<_> = history
            .iter()
            .map(|h| h.created_by().clone().unwrap())
            .collect();
        assert_eq!(texts, ["ENV A=1", "SHELL [/bin/sh -c]", "LABEL a=b"]);
        assert!(history.iter().all(|h| h.empty_layer() == Some(true)));
    }
}
