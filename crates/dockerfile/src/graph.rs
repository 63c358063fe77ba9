//! The stage dependency graph: bases (`FROM <stage>`), `COPY --from` and
//! `RUN --mount=from=` edges, `--target` selection, and its errors.
//!
//! Name resolution follows BuildKit: a FROM base names a stage only if that stage is
//! defined earlier (so `FROM node AS node` pulls the image `node`); a `COPY --from` or
//! mount `from=` value naming a stage (case-insensitively) must name an earlier stage, and
//! anything else is an image reference (`scratch` is the empty image). `COPY --from` also
//! accepts a stage index. FROM words are expanded with the global ARG scope; `--from`
//! values are literal (BuildKit does not expand them).

use std::collections::BTreeMap;

use crate::args::GlobalScope;
use crate::expand::ExpandError;
use crate::{Dockerfile, Instruction, ParseError, Span, Stage, Step};

/// Where a stage's base, a COPY's files or a mount's contents come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageSource {
    Scratch,
    Stage(usize),
    /// An image reference to pull.
    Image(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    /// `COPY --from`, at step index `step` of the stage.
    Copy { step: usize },
    /// `RUN --mount=from=`, mount number `mount` of step `step`.
    Mount { step: usize, mount: usize },
}

impl EdgeKind {
    /// The same edge after `n` steps were put before its step.
    fn shifted(self, n: usize) -> EdgeKind {
        match self {
            EdgeKind::Copy { step } => EdgeKind::Copy { step: step + n },
            EdgeKind::Mount { step, mount } => EdgeKind::Mount {
                step: step + n,
                mount,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub kind: EdgeKind,
    pub source: StageSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageNode {
    pub base: StageSource,
    /// `--platform` after expansion.
    pub platform: Option<String>,
    /// Edges of the stage's steps, counted as [`StageNode::steps`] counts them.
    pub edges: Vec<Edge>,
    /// The ONBUILD triggers of the base (a stage's ONBUILD instructions, or an image's
    /// `OnBuild`, see [`StageGraph::add_image_triggers`]): run first, as if written right
    /// after FROM, each at the FROM line (as BuildKit reports them).
    pub onbuild: Vec<Step>,
}

impl StageNode {
    /// The steps the stage runs: the base's ONBUILD triggers, then its own.
    pub fn steps<'a>(&'a self, stage: &'a Stage) -> impl Iterator<Item = &'a Step> + 'a {
        self.onbuild.iter().chain(&stage.steps)
    }

    /// The stages this one needs, in first-use order without repeats.
    pub fn stage_deps(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let all = std::iter::once(&self.base).chain(self.edges.iter().map(|e| &e.source));
        for s in all {
            if let StageSource::Stage(i) = s
                && !out.contains(i)
            {
                out.push(*i);
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("target stage {name:?} could not be found{}", crate::suggest::hint(.suggestion.as_deref()))]
    UnknownTarget {
        name: String,
        suggestion: Option<String>,
    },
    #[error("line {line}: invalid stage index {index} (the Dockerfile has {count} stages)")]
    InvalidIndex {
        index: usize,
        count: usize,
        line: usize,
    },
    #[error("circular dependency detected on stage: {0}")]
    Cycle(String),
    #[error(
        "line {line}: cannot copy from stage {from:?}, it needs to be defined before current stage {stage:?}"
    )]
    ForwardReference {
        from: String,
        stage: String,
        line: usize,
    },
    #[error("line {line}: base name ({word}) should not be blank")]
    EmptyBase { word: String, line: usize },
    /// `hint` is BuildKit's " (did you mean X?)" for a mistyped ARG name, or empty.
    #[error("line {line}: empty platform value from expression {word}{hint}")]
    EmptyPlatform {
        word: String,
        line: usize,
        hint: String,
    },
    #[error("line {line}: failed to parse platform {word}: {why}{hint}")]
    InvalidPlatform {
        word: String,
        why: String,
        line: usize,
        hint: String,
    },
    #[error("line {line}: {source}")]
    Expand { line: usize, source: ExpandError },
    #[error("line {line}: ONBUILD trigger of the base image: {source}")]
    Trigger {
        line: usize,
        source: Box<ParseError>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageGraph {
    pub nodes: Vec<StageNode>,
}

/// Like BuildKit's name map, the last stage of a duplicated name is the one found.
fn stage_by_name(df: &Dockerfile, name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    df.stages
        .iter()
        .rposition(|s| s.name.as_deref() == Some(lower.as_str()))
}

/// Stage names to indices, built once per graph.
struct Names<'a>(BTreeMap<&'a str, usize>);

impl<'a> Names<'a> {
    fn new(df: &'a Dockerfile) -> Names<'a> {
        let mut m = BTreeMap::new();
        for s in &df.stages {
            // Like BuildKit's name map, a later duplicate shadows an earlier one.
            if let Some(n) = &s.name {
                m.insert(n.as_str(), s.index);
            }
        }
        Names(m)
    }

    fn source(&self, name: &str) -> StageSource {
        source_in(&self.0, name)
    }
}

fn source_in(names: &BTreeMap<&str, usize>, name: &str) -> StageSource {
    match names.get(name.to_ascii_lowercase().as_str()) {
        Some(&i) => StageSource::Stage(i),
        None if name.eq_ignore_ascii_case("scratch") => StageSource::Scratch,
        None => StageSource::Image(name.to_string()),
    }
}

/// COPY --from and mounts may only use stages defined before the current one.
fn check_order(
    df: &Dockerfile,
    current: usize,
    source: &StageSource,
    line: usize,
) -> Result<(), GraphError> {
    match *source {
        StageSource::Stage(i) if i == current => Err(GraphError::Cycle(stage_label(df, i))),
        StageSource::Stage(i) if i > current => Err(GraphError::ForwardReference {
            from: stage_label(df, i),
            stage: stage_label(df, current),
            line,
        }),
        _ => Ok(()),
    }
}

fn stage_label(df: &Dockerfile, i: usize) -> String {
    df.stages[i]
        .name
        .clone()
        .unwrap_or_else(|| format!("stage-{i}"))
}

/// The ONBUILD instructions of stage `parent`, as the steps a stage built on it runs
/// first, at its FROM line.
fn parent_triggers(df: &Dockerfile, parent: usize, at: Span) -> Vec<Step> {
    df.stages[parent]
        .steps
        .iter()
        .filter_map(|s| match &s.instruction {
            Instruction::Onbuild {
                expression,
                trigger,
            } => Some(trigger_step((**trigger).clone(), expression, at)),
            _ => None,
        })
        .collect()
}

/// A trigger as a step: its first line is its text (the heredoc bodies are in it).
fn trigger_step(instruction: Instruction, expression: &str, at: Span) -> Step {
    let line = expression.lines().next().unwrap_or_default();
    Step {
        instruction,
        span: Span {
            start_line: at.start_line,
            end_line: at.start_line,
        },
        original: line.trim().to_owned(),
    }
}

/// The edges of step `si` of stage `current`: a `COPY --from` or `RUN --mount=from=`.
fn step_edges(
    df: &Dockerfile,
    names: &Names<'_>,
    current: usize,
    si: usize,
    step: &Step,
) -> Result<Vec<Edge>, GraphError> {
    let line = step.span.start_line;
    let mut edges = Vec::new();
    match &step.instruction {
        Instruction::Copy(c) => {
            let Some(from) = &c.from else {
                return Ok(edges);
            };
            let source = match from.parse::<usize>() {
                Ok(index) if index < df.stages.len() => StageSource::Stage(index),
                Ok(index) => {
                    return Err(GraphError::InvalidIndex {
                        index,
                        count: df.stages.len(),
                        line,
                    });
                }
                Err(_) => names.source(from),
            };
            check_order(df, current, &source, line)?;
            edges.push(Edge {
                kind: EdgeKind::Copy { step: si },
                source,
            });
        }
        Instruction::Run(r) => {
            for (mi, m) in r.mounts.iter().enumerate() {
                if let Some(from) = &m.from {
                    let source = names.source(from);
                    check_order(df, current, &source, line)?;
                    edges.push(Edge {
                        kind: EdgeKind::Mount {
                            step: si,
                            mount: mi,
                        },
                        source,
                    });
                }
            }
        }
        _ => {}
    }
    Ok(edges)
}

/// A FROM `--platform` expanded and checked as BuildKit does: an empty or invalid value
/// fails the build, with a hint when an undeclared ARG name looks like a declared one
/// (`linux/${MYARCH}`: did you mean MY_ARCH?).
fn stage_platform(
    global: &GlobalScope,
    word: &str,
    escape: char,
    line: usize,
) -> Result<String, GraphError> {
    let (value, unmatched) =
        crate::expand::expand_tracked(word, escape, &|n| global.get(n).map(str::to_owned))
            .map_err(|source| GraphError::Expand { line, source })?;
    let hint = || {
        let found = unmatched
            .iter()
            .find_map(|u| crate::suggest::search(u, global.names(), true));
        crate::suggest::hint(found.as_deref())
    };
    if value.is_empty() {
        return Err(GraphError::EmptyPlatform {
            word: word.to_owned(),
            line,
            hint: hint(),
        });
    }
    match crate::args::Platform::parse(&value) {
        Ok(_) => Ok(value),
        Err(why) => Err(GraphError::InvalidPlatform {
            word: word.to_owned(),
            why,
            line,
            hint: hint(),
        }),
    }
}

impl StageGraph {
    pub fn new(df: &Dockerfile, global: &GlobalScope) -> Result<StageGraph, GraphError> {
        // A duplicated stage name builds (the later stage shadows the earlier one); the
        // DuplicateStageName check warns about it.
        let esc = df.directives.escape;
        let names = Names::new(df);
        // FROM only sees stages defined before it (so `FROM node AS node` is the image).
        let mut earlier: BTreeMap<&str, usize> = BTreeMap::new();
        let mut nodes = Vec::with_capacity(df.stages.len());
        for stage in &df.stages {
            let line = stage.span.start_line;
            let ex = |w: &str| {
                global
                    .expand(w, esc)
                    .map_err(|source| GraphError::Expand { line, source })
            };
            let base_word = ex(&stage.base)?;
            if base_word.is_empty() {
                return Err(GraphError::EmptyBase {
                    word: stage.base.clone(),
                    line,
                });
            }
            let platform = stage
                .platform
                .as_deref()
                .map(|w| stage_platform(global, w, esc, line))
                .transpose()?;
            let base = source_in(&earlier, &base_word);
            let onbuild = match base {
                StageSource::Stage(parent) => parent_triggers(df, parent, stage.span),
                _ => Vec::new(),
            };
            let mut edges = Vec::new();
            for (si, step) in onbuild.iter().chain(&stage.steps).enumerate() {
                edges.extend(step_edges(df, &names, stage.index, si, step)?);
            }
            nodes.push(StageNode {
                base,
                platform,
                edges,
                onbuild,
            });
            if let Some(n) = &stage.name {
                earlier.insert(n.as_str(), stage.index);
            }
        }
        let g = StageGraph { nodes };
        g.check_cycles(df)?;
        Ok(g)
    }

    /// Adds the ONBUILD triggers of stage `stage`'s base image (its config's `OnBuild`),
    /// known only once the image is resolved: they run before the stage's own steps, and
    /// the stages they name (`COPY --from`, `--mount=from=`) become dependencies, as in
    /// BuildKit. A trigger naming a stage defined after this one is refused, as for any
    /// step, so no cycle can form.
    pub fn add_image_triggers(
        &mut self,
        df: &Dockerfile,
        stage: usize,
        expressions: &[String],
    ) -> Result<(), GraphError> {
        let at = df.stages[stage].span;
        let mut steps = Vec::with_capacity(expressions.len());
        for e in expressions {
            let instruction =
                crate::parse_onbuild_trigger(e).map_err(|source| GraphError::Trigger {
                    line: at.start_line,
                    source: Box::new(source),
                })?;
            steps.push(trigger_step(instruction, e, at));
        }
        let names = Names::new(df);
        let mut edges = Vec::new();
        for (si, step) in steps.iter().enumerate() {
            edges.extend(step_edges(df, &names, stage, si, step)?);
        }
        let node = &mut self.nodes[stage];
        for e in &mut node.edges {
            e.kind = e.kind.shifted(steps.len());
        }
        edges.append(&mut node.edges);
        node.edges = edges;
        steps.append(&mut node.onbuild);
        node.onbuild = steps;
        self.check_cycles(df)
    }

    fn check_cycles(&self, df: &Dockerfile) -> Result<(), GraphError> {
        // 0 = unvisited, 1 = on the stack, 2 = done. Iterative to bound stack use.
        let mut state = vec![0u8; self.nodes.len()];
        for root in 0..self.nodes.len() {
            if state[root] != 0 {
                continue;
            }
            let mut stack = vec![(root, 0usize)];
            state[root] = 1;
            while let Some(&mut (n, ref mut next)) = stack.last_mut() {
                let deps = self.nodes[n].stage_deps();
                if let Some(&d) = deps.get(*next) {
                    *next += 1;
                    match state[d] {
                        0 => {
                            state[d] = 1;
                            stack.push((d, 0));
                        }
                        1 => return Err(GraphError::Cycle(stage_label(df, d))),
                        _ => {}
                    }
                } else {
                    state[n] = 2;
                    stack.pop();
                }
            }
        }
        Ok(())
    }

    /// The `--target` stage: by name (case-insensitive), or the last stage when `None`.
    pub fn target(df: &Dockerfile, target: Option<&str>) -> Result<usize, GraphError> {
        match target {
            None => Ok(df.stages.len().saturating_sub(1)),
            Some(t) => stage_by_name(df, t).ok_or_else(|| GraphError::UnknownTarget {
                name: t.to_string(),
                suggestion: crate::suggest::search(
                    t,
                    df.stages.iter().filter_map(|s| s.name.as_deref()),
                    true,
                ),
            }),
        }
    }

    /// Stages needed to build `target`, dependencies before dependents, `target` last.
    pub fn required(&self, target: usize) -> Vec<usize> {
        let mut order = Vec::new();
        let mut done = vec![false; self.nodes.len()];
        let mut stack = vec![(target, false)];
        while let Some((n, expanded)) = stack.pop() {
            if n >= self.nodes.len() || done[n] {
                continue;
            }
            if expanded {
                done[n] = true;
                order.push(n);
                continue;
            }
            stack.push((n, true));
            for d in self.nodes[n].stage_deps().into_iter().rev() {
                if !done[d] {
                    stack.push((d, false));
                }
            }
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{BuildArgs, Platform};

    fn graph(src: &str) -> Result<(Dockerfile, StageGraph), GraphError> {
        let df = crate::parse(src, "D").unwrap();
        let b = BuildArgs {
            values: [("IMG".to_string(), "busybox".to_string())].into(),
            target_platform: Platform::parse("linux/amd64").unwrap(),
            build_platform: Platform::parse("linux/amd64").unwrap(),
            target_stage: None,
        };
        let g = StageGraph::new(&df, &GlobalScope::new(&df, &b).unwrap())?;
        Ok((df, g))
    }

    #[test]
    fn edges_and_sources() {
        let (_, g) = graph(
            "ARG IMG=alpine\nFROM $IMG AS base\nFROM base AS build\nCOPY --from=0 /a /a\nCOPY --from=nginx:1 /b /b\n\
             RUN --mount=type=cache,target=/c --mount=from=BASE,target=/d true\nFROM scratch\nCOPY --from=build /x /x\n",
        )
        .unwrap();
        assert_eq!(g.nodes[0].base, StageSource::Image("busybox".into()));
        assert_eq!(g.nodes[1].base, StageSource::Stage(0));
        assert_eq!(
            g.nodes[1].edges,
            vec![
                Edge {
                    kind: EdgeKind::Copy { step: 0 },
                    source: StageSource::Stage(0)
                },
                Edge {
                    kind: EdgeKind::Copy { step: 1 },
                    source: StageSource::Image("nginx:1".into())
                },
                Edge {
                    kind: EdgeKind::Mount { step: 2, mount: 1 },
                    source: StageSource::Stage(0)
                },
            ]
        );
        assert_eq!(g.nodes[2].base, StageSource::Scratch);
        assert_eq!(g.required(2), vec![0, 1, 2]);
        assert_eq!(g.required(0), vec![0]);
    }

    #[test]
    fn target_selection() {
        let src = "FROM alpine AS a\nFROM alpine AS b\nCOPY --from=a /x /x\nFROM alpine AS c\n";
        let (df, g) = graph(src).unwrap();
        assert_eq!(StageGraph::target(&df, None).unwrap(), 2);
        let b = StageGraph::target(&df, Some("B")).unwrap();
        assert_eq!(g.required(b), vec![0, 1]);
        assert_eq!(
            StageGraph::target(&df, Some("nope")),
            Err(GraphError::UnknownTarget {
                name: "nope".into(),
                suggestion: None
            })
        );
        assert_eq!(
            StageGraph::target(&df, Some("bb")).unwrap_err().to_string(),
            "target stage \"bb\" could not be found (did you mean b?)"
        );
    }

    #[test]
    fn errors() {
        // A duplicated name builds; the later stage is the one a name finds.
        let (df, g) = graph("FROM a AS x\nFROM b AS x\nFROM x\n").unwrap();
        assert_eq!(StageGraph::target(&df, Some("x")).unwrap(), 1);
        assert_eq!(g.required(2), vec![1, 2]);
        assert!(matches!(
            graph("FROM a\nCOPY --from=0 / /\n"),
            Err(GraphError::Cycle(_))
        ));
        assert_eq!(
            graph("FROM a AS me\nRUN --mount=from=ME,target=/x true\n").unwrap_err(),
            GraphError::Cycle("me".into())
        );
        assert!(matches!(
            graph("FROM a\nCOPY --from=5 / /\n"),
            Err(GraphError::InvalidIndex { index: 5, .. })
        ));
        assert!(matches!(
            graph("FROM $NOTHING\n"),
            Err(GraphError::EmptyBase { .. })
        ));
        assert!(matches!(
            graph("FROM --platform=$NOTHING a\n"),
            Err(GraphError::EmptyPlatform { line: 1, .. })
        ));
        assert_eq!(
            graph("FROM --platform=$BULIDPLATFORM scratch\n")
                .unwrap_err()
                .to_string(),
            "line 1: empty platform value from expression $BULIDPLATFORM (did you mean BUILDPLATFORM?)"
        );
        assert_eq!(
            graph("ARG MY_ARCH=amd64\nFROM --platform=linux/${MYARCH} busybox\n")
                .unwrap_err()
                .to_string(),
            "line 2: failed to parse platform linux/${MYARCH}: invalid platform \"linux/\": expected os/arch[/variant] (did you mean MY_ARCH?)"
        );
        assert!(matches!(
            graph("FROM ${X:?required}\n"),
            Err(GraphError::Expand { line: 1, .. })
        ));
    }

    #[test]
    fn from_sees_only_earlier_stages() {
        let (_, g) = graph("FROM node AS node\nFROM b AS a\nFROM a AS b\n").unwrap();
        assert_eq!(g.nodes[0].base, StageSource::Image("node".into()));
        assert_eq!(g.nodes[1].base, StageSource::Image("b".into()));
        assert_eq!(g.nodes[2].base, StageSource::Stage(1));
    }

    #[test]
    fn forward_references_rejected() {
        let e = graph("FROM alpine AS a\nCOPY --from=b /x /x\nFROM alpine AS b\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2: cannot copy from stage \"b\", it needs to be defined before current stage \"a\""
        );
        assert!(matches!(
            graph("FROM alpine\nCOPY --from=1 /x /x\nFROM alpine\n"),
            Err(GraphError::ForwardReference { .. })
        ));
        assert!(matches!(
            graph("FROM alpine\nRUN --mount=from=later,target=/l x\nFROM alpine AS later\n"),
            Err(GraphError::ForwardReference { .. })
        ));
    }

    #[test]
    fn a_parents_onbuild_triggers_run_first_and_bring_their_dependencies() {
        let (df, g) = graph(
            "FROM alpine AS tools\nFROM alpine AS parent\nONBUILD COPY --from=tools /t /t\n\
             ONBUILD RUN echo hi\nFROM parent AS child\nRUN --mount=from=tools,target=/m true\n",
        )
        .unwrap();
        let child = &g.nodes[2];
        let texts: Vec<&str> = child
            .steps(&df.stages[2])
            .map(|s| s.original.as_str())
            .collect();
        assert_eq!(
            texts,
            [
                "COPY --from=tools /t /t",
                "RUN echo hi",
                "RUN --mount=from=tools,target=/m true"
            ]
        );
        // Triggers are reported at the child's FROM line.
        assert_eq!(child.onbuild[0].span.start_line, 5);
        assert_eq!(
            child.edges,
            [
                Edge {
                    kind: EdgeKind::Copy { step: 0 },
                    source: StageSource::Stage(0)
                },
                Edge {
                    kind: EdgeKind::Mount { step: 2, mount: 0 },
                    source: StageSource::Stage(0)
                },
            ]
        );
        // The parent itself does not run its own triggers.
        assert!(g.nodes[1].onbuild.is_empty() && g.nodes[1].edges.is_empty());
        assert_eq!(g.required(2), [1, 0, 2]);
    }

    #[test]
    fn an_images_triggers_are_added_once_it_is_resolved() {
        let (df, mut g) = graph(
            "FROM alpine AS tools\nFROM alpine AS other\nFROM onbuild-image\nCOPY --from=other /o /o\n",
        )
        .unwrap();
        assert_eq!(g.required(2), [1, 2]);
        let triggers = [
            "COPY --from=tools /t /t".to_owned(),
            "RUN <<EOF\necho hi\nEOF".to_owned(),
        ];
        g.add_image_triggers(&df, 2, &triggers).unwrap();
        let node = &g.nodes[2];
        assert_eq!(node.onbuild.len(), 2);
        assert_eq!(node.onbuild[1].original, "RUN <<EOF");
        // The stage's own COPY moved after the two triggers.
        assert_eq!(
            node.edges.iter().map(|e| e.kind).collect::<Vec<_>>(),
            [EdgeKind::Copy { step: 0 }, EdgeKind::Copy { step: 2 }]
        );
        assert_eq!(g.required(2), [0, 1, 2]);
        // A trigger that is not one instruction, or names a later stage, is an error.
        let bad = ["RUN a\nRUN b".to_owned()];
        assert!(matches!(
            g.add_image_triggers(&df, 2, &bad),
            Err(GraphError::Trigger { line: 3, .. })
        ));
        let forward = ["COPY --from=other /o /o".to_owned()];
        assert!(g.add_image_triggers(&df, 0, &forward).is_err());
    }

    #[test]
    fn platform_expanded() {
        let (_, g) = graph("FROM --platform=$BUILDPLATFORM alpine\n").unwrap();
        assert_eq!(g.nodes[0].platform.as_deref(), Some("linux/amd64"));
    }
}
