//! Build checks as a BuildKit build reports them: the Dockerfile's warnings for the stages
//! this build needs (checks BuildKit makes while dispatching a stage are not reported for
//! stages the target does not build), plus the checks that need what only the build knows:
//! UndefinedVar for stages on an image (its environment), InvalidBaseImagePlatform (the
//! platform the image resolved to) and CopyIgnoredFile (the `.dockerignore` rules).

use std::path::Path;

use kiln_dockerfile::graph::StageSource;
use kiln_dockerfile::lint::{self, Warning};
use kiln_dockerfile::{Dockerfile, ParseError};
use kiln_oci::Image;

use crate::engine::{Shared_, frontend_platform};
use crate::error::BuildError;
use crate::progress::{Event, EventSink};

/// The build argument that replaces the Dockerfile's `# check=` configuration.
const CHECK_ARG: &str = "BUILDKIT_DOCKERFILE_CHECK";

/// Parses the Dockerfile under the check configuration of `BUILDKIT_DOCKERFILE_CHECK`
/// when given. On a parse error the warnings found before it are reported first, as
/// BuildKit prints them before its error.
pub(crate) fn parse(
    text: &str,
    file_name: &str,
    build_args: &[(String, String)],
    events: &dyn EventSink,
) -> Result<Dockerfile, ParseError> {
    let check = build_args
        .iter()
        .rev()
        .find(|(k, _)| k == CHECK_ARG)
        .map(|(_, v)| v.as_str());
    kiln_dockerfile::parse_unchecked(text, file_name, check).inspect_err(|e| {
        emit(events, &e.warnings);
    })
}

/// Reports this build's warnings (also returned, in BuildKit's short form); with
/// `error=true` any of them fails the build with BuildKit's `lint violation` error.
pub(crate) fn report(shared: &Shared_, needed: &[usize]) -> Result<Vec<String>, BuildError> {
    let df = &shared.dockerfile;
    let mut found: Vec<Warning> = df
        .warnings
        .iter()
        .filter(|w| !w.rule.per_stage() || w.stage.is_none_or(|s| needed.contains(&s)))
        .cloned()
        .collect();
    found.extend(lint::copy_ignored_files(
        df,
        needed,
        shared.context.ignore(),
    ));
    for &stage in needed {
        found.extend(image_checks(shared, stage));
    }
    found.sort_by_key(|w| (w.span.start_line, w.rule));
    emit(shared.events.as_ref(), &found);
    match df.lint_error(&found) {
        Some(e) => Err(e.into()),
        None => Ok(found.iter().map(Warning::short).collect()),
    }
}

fn emit(events: &dyn EventSink, warnings: &[Warning]) {
    for w in warnings {
        events.emit(Event::Warning { message: w.short() });
    }
}

/// UndefinedVar with the environment of the image at the root of the stage's chain of
/// bases, and InvalidBaseImagePlatform for a stage built directly on an image.
fn image_checks(shared: &Shared_, stage: usize) -> Vec<Warning> {
    let df = &shared.dockerfile;
    let mut found = Vec::new();
    if let Some(image) = root_image(shared, stage) {
        let env = image.config.env();
        let names: Vec<&str> = env
            .iter()
            .map(|e| e.split('=').next().unwrap_or(""))
            .collect();
        found.extend(lint::undefined_vars(df, stage, &names));
    }
    if let (StageSource::Image(name), Some(image)) =
        (&shared.graph.nodes[stage].base, shared.bases.get(&stage))
    {
        let expected = frontend_platform(&shared.stage_platform(stage));
        let actual = frontend_platform(&image.config.platform());
        found.extend(lint::base_image_platform(
            df, stage, name, &expected, &actual,
        ));
    }
    found
}

/// The base image a stage's chain of `FROM <stage>` ends in; `None` for `scratch`.
fn root_image(shared: &Shared_, stage: usize) -> Option<&Image> {
    let nodes = &shared.graph.nodes;
    let mut current = stage;
    // A chain visits each stage at most once (the graph refuses cycles).
    for _ in 0..nodes.len() {
        match &nodes[current].base {
            StageSource::Stage(parent) => current = *parent,
            StageSource::Image(_) => return shared.bases.get(&current),
            StageSource::Scratch => return None,
        }
    }
    None
}

/// What `kiln build --check` found: BuildKit's lint subrequest result.
#[derive(Debug)]
pub struct CheckReport {
    /// The Dockerfile as read, for showing the lines a warning points at.
    pub source: String,
    /// The warnings, in line order.
    pub warnings: Vec<Warning>,
    /// The error that ends the check (a parse error, an unknown target, `error=true`
    /// with warnings), and the lines it points at.
    pub error: Option<(String, Option<kiln_dockerfile::Span>)>,
}

/// Checks a Dockerfile without building it, as `docker buildx build --check`: every
/// stage, or those `target` needs. Base images are not pulled, so UndefinedVar is only
/// decided for stages whose whole environment is in the Dockerfile (built on `scratch`).
pub fn check(
    dockerfile: &Path,
    context_dir: &Path,
    target: Option<&str>,
    build_args: &[(String, String)],
) -> Result<CheckReport, BuildError> {
    let source = crate::context::read_build_file(dockerfile).map_err(|source| {
        BuildError::ReadDockerfile {
            path: dockerfile.to_path_buf(),
            source,
        }
    })?;
    let file_name = dockerfile.display().to_string();
    let df = match parse(&source, &file_name, build_args, &crate::progress::Quiet) {
        Ok(df) => df,
        Err(e) => {
            let error = Some((first_line(&e), Some(kiln_dockerfile::Span::line(e.line))));
            let warnings = e.warnings;
            return Ok(CheckReport {
                source,
                warnings,
                error,
            });
        }
    };
    let stages = match checked_stages(&df, target, build_args) {
        Ok(stages) => stages,
        Err(message) => {
            return Ok(CheckReport {
                warnings: df.warnings.clone(),
                source,
                error: Some((message, None)),
            });
        }
    };
    let context = crate::context::Context::open(
        context_dir,
        crate::engine::dockerignore_beside(dockerfile).as_deref(),
    )?;
    let mut warnings: Vec<Warning> = df
        .warnings
        .iter()
        .filter(|w| !w.rule.per_stage() || w.stage.is_none_or(|s| stages.contains(&s)))
        .cloned()
        .collect();
    warnings.extend(lint::copy_ignored_files(&df, &stages, context.ignore()));
    warnings.sort_by_key(|w| (w.span.start_line, w.rule));
    let error = df
        .lint_error(&warnings)
        .map(|e| (first_line(&e), Some(kiln_dockerfile::Span::line(e.line))));
    Ok(CheckReport {
        source,
        warnings,
        error,
    })
}

/// The error's message without the source excerpt its Display adds.
fn first_line(e: &ParseError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// All stages without a target (BuildKit's check covers every target), else the target's.
fn checked_stages(
    df: &Dockerfile,
    target: Option<&str>,
    build_args: &[(String, String)],
) -> Result<Vec<usize>, String> {
    use kiln_dockerfile::args::{BuildArgs, GlobalScope};
    use kiln_dockerfile::graph::StageGraph;
    let Some(target) = target else {
        return Ok((0..df.stages.len()).collect());
    };
    let host = frontend_platform(&kiln_oci::Platform::host_linux());
    let args = BuildArgs {
        values: build_args.iter().cloned().collect(),
        target_platform: host.clone(),
        build_platform: host,
        target_stage: Some(target.to_owned()),
    };
    let global = GlobalScope::new(df, &args).map_err(|e| e.to_string())?;
    let graph = StageGraph::new(df, &global).map_err(|e| e.to_string())?;
    let index = StageGraph::target(df, Some(target)).map_err(|e| e.to_string())?;
    Ok(graph.required(index))
}
