//! The COPY and ADD steps: expansion of their flags into a placement, the cache key from
//! what their sources match, and the copy itself (from the context, a named context
//! directory, a stage or image, a URL, or heredocs).

use std::collections::BTreeMap;
use std::sync::Arc;

use kiln_dockerfile::Copy;
use kiln_dockerfile::graph::{EdgeKind, StageSource};
use kiln_fs::{Timestamp, Tree};

use crate::copy::{self, Placement};
use crate::engine::Shared_;
use crate::error::StepError;
use crate::inputs::{CopyFrom, CopyInputs, StepInputs};
use crate::state::StageState;
use crate::step::{At, Outcome, layer_step, source_state, workdir};

/// Ownership and mode for copied files: `--chown` resolved in the destination image.
pub(crate) fn placement(
    tree: &mut Tree,
    chown: Option<&str>,
    chmod: Option<&str>,
    epoch: i64,
) -> Result<Placement, StepError> {
    let owner = chown
        .map(|spec| crate::passwd::resolve_owner(tree, spec))
        .transpose()?;
    let chmod = chmod
        .map(|text| {
            kiln_dockerfile::Chmod::parse(text).map_err(|why| StepError::Chmod {
                text: text.to_owned(),
                why,
            })
        })
        .transpose()?;
    Ok(Placement {
        owner,
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

pub(crate) fn copy_step(
    shared: &Shared_,
    state: &mut StageState,
    c: &Copy,
    add: bool,
    at: &At<'_>,
    deps: &BTreeMap<usize, Arc<StageState>>,
) -> Result<Outcome, StepError> {
    // (`--link` only changes how BuildKit stores the layer, not its contents, so it
    // needs nothing here.)
    if add {
        crate::add::check_checksum_sources(c.checksum.as_deref(), &c.sources)?;
    }
    let cwd = workdir(state);
    let dest = if c.dest.starts_with('/') {
        c.dest.clone()
    } else {
        format!("{}/{}", cwd.trim_end_matches('/'), c.dest)
    };
    // Several sources as written need a directory; a pattern alone does not, as in
    // BuildKit: each match lands on the destination path unless it is a directory.
    let several = c.sources.len() + c.heredocs.len() > 1;
    let plan = CopyPlan {
        c,
        add,
        dest,
        several,
        created_by: crate::history::copy(add, c),
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
    let sources = context_sources(context, &locals, c)?;
    let from = CopyFrom::Context {
        content: hex::encode(context.digest_sources(&sources)?),
        urls: url_digests,
    };
    let inputs = CopyInputs::new(c, add, dest, from, epoch);
    let (unpack, unpack_urls) = (inputs.unpack, inputs.unpack_urls);
    let key = StepInputs::Copy(inputs).key(Some(state.key))?;
    layer_step(shared, state, key, &plan.created_by, |_, tree| {
        let how = placement(tree, c.chown.as_deref(), c.chmod.as_deref(), epoch)?;
        let mut open = copy::context_opener(context);
        for source in &sources {
            if unpack && unpack_local(context, tree, source, dest, &how)? {
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
            if unpack_urls && unpack_download(tree, file, dest, &how)? {
                continue;
            }
            place_download(tree, name, file, dest, plan.several, &how)?;
        }
        heredoc_files(tree, c, dest, &how)
    })
}

/// What `patterns` match in `context` (kept below their pivots with `--parents`),
/// without what `--exclude` names (matched against paths relative to a copied
/// directory, and relative to the context).
fn context_sources(
    context: &crate::context::Context,
    patterns: &[&String],
    c: &Copy,
) -> Result<Vec<crate::context::Source>, StepError> {
    let exclude = crate::context::IgnoreRules::exclusions(&c.exclude)?;
    let mut sources = Vec::new();
    for s in patterns {
        if c.parents {
            sources.extend(context.resolve_parents(s)?);
        } else {
            sources.extend(context.resolve(s)?);
        }
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
            if c.parents {
                sources.extend(copy::tree_parents_sources(&mut src_tree, s)?);
            } else {
                sources.extend(copy::tree_sources(&mut src_tree, s)?);
            }
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
fn unpack_local(
    context: &crate::context::Context,
    tree: &mut Tree,
    source: &crate::context::Source,
    dest: &str,
    how: &Placement,
) -> Result<bool, StepError> {
    if !matches!(source.top.kind, crate::context::EntryKind::File { .. }) {
        return Ok(false);
    }
    unpack_archive(tree, context.open_content(&source.top.rel)?, dest, how)
}

/// `ADD --unpack=true <url>`: the download unpacked if it is an archive; otherwise the
/// file is rewound for [`place_download`].
fn unpack_download(
    tree: &mut Tree,
    file: &mut std::fs::File,
    dest: &str,
    how: &Placement,
) -> Result<bool, StepError> {
    use std::io::Seek;
    let unpacked = unpack_archive(tree, &mut *file, dest, how)?;
    file.rewind().map_err(crate::add::AddError::Spool)?;
    Ok(unpacked)
}

/// Unpacks `reader` into `dest` if it holds an archive ADD unpacks; `false` if not.
fn unpack_archive(
    tree: &mut Tree,
    reader: impl std::io::Read,
    dest: &str,
    how: &Placement,
) -> Result<bool, StepError> {
    let (head, reader) = crate::add::peek(reader)?;
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
        owner: (0, 0),
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
            owner: (0, 0),
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
