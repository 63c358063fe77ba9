//! Large and adversarial inputs stay fast and bounded (no quadratic blow-ups, no deep
//! recursion).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::Instant;

use kiln_dockerfile::args::{BuildArgs, GlobalScope, Platform};
use kiln_dockerfile::graph::StageGraph;

#[test]
fn long_stage_chain() {
    let mut src = String::from("FROM scratch AS s0\nENV A=1\n");
    for i in 1..3000 {
        src.push_str(&format!(
            "FROM s{} AS s{i}\nWORKDIR $A/x\nCOPY --from=s0 / /\n",
            i - 1
        ));
    }
    let start = Instant::now();
    let df = kiln_dockerfile::parse(&src, "D").unwrap();
    let b = BuildArgs {
        values: Default::default(),
        target_platform: Platform::parse("linux/amd64").unwrap(),
        build_platform: Platform::parse("linux/amd64").unwrap(),
        target_stage: None,
    };
    let g = StageGraph::new(&df, &GlobalScope::new(&df, &b).unwrap()).unwrap();
    let order = g.required(2999);
    assert_eq!(order.len(), 3000);
    assert_eq!(order[0], 0);
    assert!(df.warnings.is_empty(), "{:?}", &df.warnings[..1]);
    assert!(start.elapsed().as_secs() < 30, "took {:?}", start.elapsed());
}

#[test]
fn huge_instruction_and_heredoc() {
    let body = "echo hello world\n".repeat(50_000);
    let src = format!(
        "FROM a\nRUN <<EOF\n{body}EOF\nRUN {}\n",
        "x \\\n".repeat(20_000)
    );
    let start = Instant::now();
    let df = kiln_dockerfile::parse(&src, "D").unwrap();
    assert_eq!(df.stages[0].steps.len(), 2);
    assert!(start.elapsed().as_secs() < 30, "took {:?}", start.elapsed());
}

#[test]
fn deeply_nested_substitution_in_dockerfile() {
    let deep = "${a:-".repeat(5000) + &"}".repeat(5000);
    let src = format!("FROM scratch\nWORKDIR /{deep}\n");
    let df = kiln_dockerfile::parse(&src, "D").unwrap();
    assert!(
        df.stages[0].steps[0]
            .instruction
            .expand('\\', &|_| None)
            .is_err()
    );
}
