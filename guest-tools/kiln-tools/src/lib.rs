//! kiln's own guest tools, one multicall wasm32-wasip1 module dispatched by argv[0]:
//! what WASI preview 1 cannot express without kiln's `kiln_v1` host imports (modes, owners,
//! spawning, HTTP) and what uutils coreutils lacks. The pure logic (option parsing, netrc,
//! modes, sed/grep engines...) is plain Rust and unit-tested on the host target.
//! It is NOT the shell (that runs on the host) and NOT uutils (a separate module).

pub mod glob;
pub mod mode;
pub mod netrc;
pub mod opts;
pub mod passwd;
pub mod posix_re;
pub mod sys;
mod tools;
pub mod util;
pub mod walk;

/// A tool's entry point: the name it was invoked as, then its arguments (no argv[0]).
pub type ToolMain = fn(&str, Vec<String>) -> i32;

/// The tool implementing `name` (a basename), if this module has it.
pub fn lookup(name: &str) -> Option<ToolMain> {
    tools::TABLE
        .iter()
        .find(|(tool, _)| *tool == name)
        .map(|(_, main)| *main)
}

/// Every tool name, in `tools.txt` order.
pub fn names() -> impl Iterator<Item = &'static str> {
    tools::TABLE.iter().map(|(name, _)| *name)
}

/// Runs the tool named by the basename of `argv[0]` (or by `argv[1]` when invoked as
/// `kiln-tools`), returning its exit status.
pub fn run(argv: Vec<String>) -> i32 {
    dispatch("kiln-tools", argv, lookup, &mut names())
}

/// A multicall module's entry: runs the tool `lookup` finds for the basename of `argv[0]`,
/// or for `argv[1]` when invoked by the module's own name (`<module> --list` lists
/// `names`); 127 for a tool the module does not have. Shared by every kiln module.
pub fn dispatch(
    module: &str,
    mut argv: Vec<String>,
    lookup: fn(&str) -> Option<ToolMain>,
    names: &mut dyn Iterator<Item = &str>,
) -> i32 {
    let arg0 = if argv.is_empty() {
        String::new()
    } else {
        argv.remove(0)
    };
    let mut name = arg0.rsplit('/').next().unwrap_or(&arg0).to_owned();
    if name.starts_with(module) {
        if argv.is_empty() {
            util::warn(module, format!("missing tool name (try `{module} --list`)"));
            return 1;
        }
        name = argv.remove(0);
        if name == "--list" {
            for tool in names {
                println!("{tool}");
            }
            return 0;
        }
    }
    match lookup(&name) {
        Some(main) => main(&name, argv),
        None => {
            util::warn(module, format!("{name}: tool not bundled"));
            127
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_matches_tools_txt() {
        let listed: Vec<&str> = include_str!("../tools.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert_eq!(listed, super::names().collect::<Vec<_>>());
    }
}
