//! Feeds arbitrary text to the Dockerfile parser and everything that consumes its model
//! (expansion, mounts, stage graph, error rendering); any panic is a bug.
#![no_main]

use kiln_dockerfile::args::{BuildArgs, GlobalScope, Platform, StageScope};
use kiln_dockerfile::graph::StageGraph;
use kiln_dockerfile::{Instruction, expand, expand_words};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lookup = |n: &str| n.len().is_multiple_of(2).then(|| format!("v{n} x"));
    let _ = expand(text, '\\', &lookup);
    let _ = expand_words(text, '`', &lookup);
    let _ = kiln_dockerfile::parse_onbuild_trigger(text);
    match kiln_dockerfile::parse(text, "Dockerfile") {
        Err(e) => {
            let _ = e.to_string();
        }
        Ok(df) => exercise(&df),
    }
});

fn exercise(df: &kiln_dockerfile::Dockerfile) {
    let build = BuildArgs {
        values: Default::default(),
        target_platform: Platform::parse("linux/amd64").unwrap(),
        build_platform: Platform::parse("linux/arm64").unwrap(),
        target_stage: None,
    };
    let Ok(global) = GlobalScope::new(df, &build) else {
        return;
    };
    if let Ok(g) = StageGraph::new(df, &global) {
        if let Ok(t) = StageGraph::target(df, None) {
            let _ = g.required(t);
        }
    }
    for stage in &df.stages {
        let mut scope = StageScope::new(&build, &global, df.directives.escape, Vec::new());
        for step in &stage.steps {
            let _ = scope.dispatch(&step.instruction);
            if let Instruction::Run(r) = &step.instruction {
                let _ = r.program();
                let _ = r.resolve_mounts(df.directives.escape, &|n| scope.lookup(n));
            }
        }
        let _ = scope.run_env();
    }
}
