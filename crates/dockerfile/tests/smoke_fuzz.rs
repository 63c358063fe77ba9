//! Stable-Rust smoke fuzzing: a few seconds of random and mutated Dockerfiles through the
//! parser and everything consuming its model; any panic fails the test and prints the
//! input. (The coverage-guided target is `fuzz/` for `cargo +nightly fuzz run parse`.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use kiln_dockerfile::args::{BuildArgs, GlobalScope, Platform, StageScope};
use kiln_dockerfile::graph::StageGraph;
use kiln_dockerfile::{Dockerfile, Instruction, expand, expand_words};

const TOKENS: &[&str] = &[
    "FROM ",
    "from ",
    "RUN ",
    "COPY ",
    "ADD ",
    "ENV ",
    "ARG ",
    "LABEL ",
    "EXPOSE ",
    "VOLUME ",
    "WORKDIR ",
    "USER ",
    "CMD ",
    "ENTRYPOINT ",
    "SHELL ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "STOPSIGNAL ",
    "MAINTAINER ",
    " AS ",
    " as ",
    "scratch",
    "alpine",
    "a",
    "b",
    "0",
    "1",
    "--mount=",
    "type=secret",
    "type=cache",
    "type=bind",
    "type=tmpfs",
    "type=ssh",
    ",id=x",
    ",target=/t",
    ",from=a",
    ",mode=0",
    ",size=1k",
    ",required",
    ",rw",
    "--from=",
    "--chmod=",
    "--chown=",
    "--link",
    "--platform=",
    "--network=none",
    "--interval=1s",
    "--",
    "-",
    "=",
    "$",
    "${",
    "}",
    ":-",
    ":+",
    ":?",
    "#",
    "##",
    "%",
    "%%",
    "/",
    "//",
    "*",
    "?",
    "[!a]",
    "[",
    "]",
    "\\",
    "`",
    "\n",
    "\n",
    "\n",
    " ",
    "  ",
    "\t",
    "\"",
    "'",
    "<<EOF",
    "<<-EOF",
    "<<'EOF'",
    "EOF",
    "\tEOF",
    "3<<E",
    "E",
    "[\"a\"]",
    "[\"a\", 1]",
    "NONE",
    "CMD",
    "# escape=`\n",
    "# check=error=true\n",
    "# syntax=x\n",
    "\r\n",
    "é",
    "\u{feff}",
    "{",
    ":",
    "\\\n",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, no dependency.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn token_soup(rng: &mut Rng) -> String {
    let n = rng.below(60);
    (0..n).map(|_| TOKENS[rng.below(TOKENS.len())]).collect()
}

fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for _ in 0..=rng.below(8) {
        let pos = if chars.is_empty() {
            0
        } else {
            rng.below(chars.len() + 1)
        };
        match rng.below(4) {
            0 if pos < chars.len() => {
                chars.remove(pos);
            }
            1 => {
                let t: Vec<char> = TOKENS[rng.below(TOKENS.len())].chars().collect();
                chars.splice(pos..pos, t);
            }
            2 if pos < chars.len() => {
                let end = (pos + rng.below(40)).min(chars.len());
                chars.drain(pos..end);
            }
            _ => {
                let c = char::from_u32(rng.below(0x80) as u32).unwrap_or('x');
                chars.insert(pos, c);
            }
        }
    }
    chars.into_iter().collect()
}

fn exercise(text: &str) {
    let lookup = |n: &str| n.len().is_multiple_of(2).then(|| format!("v{n} x"));
    let _ = expand(text, '\\', &lookup);
    let _ = expand_words(text, '`', &lookup);
    let _ = kiln_dockerfile::parse_onbuild_trigger(text);
    match kiln_dockerfile::parse(text, "Dockerfile") {
        Err(e) => {
            let _ = e.to_string();
        }
        Ok(df) => use_model(&df),
    }
}

fn use_model(df: &Dockerfile) {
    let build = BuildArgs {
        values: [("a".to_string(), "b".to_string())].into(),
        target_platform: Platform::parse("linux/amd64").unwrap(),
        build_platform: Platform::parse("linux/arm64").unwrap(),
        target_stage: None,
    };
    let Ok(global) = GlobalScope::new(df, &build) else {
        return;
    };
    if let Ok(g) = StageGraph::new(df, &global)
        && let Ok(t) = StageGraph::target(df, None)
    {
        let order = g.required(t);
        assert_eq!(order.last(), Some(&t));
    }
    for (i, stage) in df.stages.iter().enumerate() {
        let _ = kiln_dockerfile::lint::undefined_vars(df, i, &["HOME"]);
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

#[test]
fn no_panics_on_random_input() {
    let dir = format!("{}/tests/corpus", env!("CARGO_MANIFEST_DIR"));
    let mut seeds: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    let budget = std::env::var("KILN_SMOKE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let deadline = Instant::now() + Duration::from_secs(budget);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut runs = 0u64;
    while Instant::now() < deadline {
        let input = if rng.below(2) == 0 {
            token_soup(&mut rng)
        } else {
            let seed = seeds[rng.below(seeds.len())].clone();
            mutate(&mut rng, &seed)
        };
        if catch_unwind(AssertUnwindSafe(|| exercise(&input))).is_err() {
            panic!("panic on input {input:?}");
        }
        runs += 1;
    }
    eprintln!("smoke fuzz: {runs} inputs in {budget}s without a panic");
    assert!(runs > 100, "too few inputs ran ({runs})");
}
