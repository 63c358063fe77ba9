//! Stable-Rust smoke fuzzing of the interpreter: a few seconds of random token soup and
//! mutated corpus scripts run on the in-memory host with small bounds; a panic fails the
//! test and prints the input. A stack overflow or abort kills the test binary, which
//! fails it too. (The coverage-guided target is `fuzz/`, `cargo +nightly fuzz run shell`.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_shell::io::Capture;
use kiln_shell::memhost::MemHost;
use kiln_shell::{Shell, ShellOptions};

const TOKENS: &[&str] = &[
    " ",
    "\n",
    ";",
    "&",
    "&&",
    "||",
    "|",
    "!",
    "(",
    ")",
    "((",
    "))",
    "{",
    "}",
    "$(",
    "`",
    "$((",
    "${",
    ":-",
    ":=",
    ":?",
    "#",
    "##",
    "%",
    "%%",
    "//",
    "/",
    "}",
    "\"",
    "'",
    "\\",
    "$",
    "$@",
    "$*",
    "$#",
    "$?",
    "$1",
    "x",
    "y",
    "=",
    "+=",
    "f",
    "f()",
    "f(){ ",
    "; }",
    "if ",
    " then ",
    " else ",
    " fi",
    "while ",
    "until ",
    " do ",
    " done",
    "for i in ",
    "case x in ",
    " a) ",
    ";;",
    " esac",
    "echo ",
    "printf ",
    "%s",
    "%*d",
    "%b",
    "read ",
    "eval ",
    ". ",
    "set -e",
    "set -u",
    "set -- ",
    "shift",
    "local ",
    "export ",
    "unset ",
    "trap ",
    "EXIT",
    "return",
    "break",
    "continue",
    "exit",
    "getopts ",
    "test ",
    "[ ",
    " ]",
    "-lt",
    "-n",
    "-f",
    "<",
    ">",
    ">>",
    "<<",
    "<<-",
    "EOF",
    "<<<",
    "2>&1",
    ">&2",
    "<&0",
    "/dev/null",
    "/dev/zero",
    "/tmp/d/",
    "*",
    "?",
    "[a-z]",
    "~",
    "0",
    "1",
    "5000",
    "-1",
    "0x10",
    "**",
    "<<=",
    "?:",
    "++",
    "--",
    "sh -c ",
    "cd ",
    "pwd",
    "wait",
    "umask ",
    "command ",
    "type ",
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
        let pos = rng.below(chars.len() + 1);
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

/// Runs `script` with the fuzz target's bounds (8 MiB of values, 1 s of loops).
fn exercise(script: &str) {
    let host = Arc::new(MemHost::new(
        1 << 20,
        Some(Instant::now() + Duration::from_secs(1)),
    ));
    host.mkdir("/tmp/d");
    let opts = ShellOptions {
        env: vec![("PATH".into(), "/bin".into())],
        cwd: "/tmp".into(),
        stdout: Capture::with_limit(8 << 20),
        stderr: Capture::with_limit(8 << 20),
        memory_limit: 8 << 20,
        ..ShellOptions::default()
    };
    if let Err(e) = Shell::new(host, opts).run_script(script) {
        let _ = e.to_string();
    }
}

#[test]
fn no_panics_on_random_scripts() {
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
            let seed = rng.below(seeds.len());
            mutate(&mut rng, &seeds[seed])
        };
        if catch_unwind(AssertUnwindSafe(|| exercise(&input))).is_err() {
            panic!("panic on input {input:?}");
        }
        runs += 1;
    }
    assert!(runs > 0);
    eprintln!("{runs} scripts");
}
