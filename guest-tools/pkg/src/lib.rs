//! kiln's Debian package tools, one multicall wasm32-wasip1 module dispatched by argv[0]
//! (the third embedded module, beside uutils and kiln-tools): dpkg, apt and the helpers
//! maintainer scripts call. Package indexes and archives are untrusted input, so they are
//! parsed here, inside the sandbox. A separate module so that every other RUN step does not
//! pay for compiling its OpenPGP and decompression code.

pub mod progress;
pub mod query;
pub mod scripts;
pub mod triggers;
mod tools;
pub mod util;

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
/// `kiln-pkg`), returning its exit status.
pub fn run(mut argv: Vec<String>) -> i32 {
    let arg0 = if argv.is_empty() {
        String::new()
    } else {
        argv.remove(0)
    };
    let mut name = arg0.rsplit('/').next().unwrap_or(&arg0).to_owned();
    if name.starts_with("kiln-pkg") {
        if argv.is_empty() {
            util::warn("kiln-pkg", "missing tool name (try `kiln-pkg --list`)");
            return 1;
        }
        name = argv.remove(0);
        if name == "--list" {
            for tool in names() {
                println!("{tool}");
            }
            return 0;
        }
    }
    match lookup(&name) {
        Some(main) => main(&name, argv),
        None => {
            util::warn("kiln-pkg", format!("{name}: tool not bundled"));
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

    #[test]
    fn an_unknown_tool_is_127() {
        assert_eq!(super::run(vec!["no-such-tool".into()]), 127);
        assert_eq!(super::run(vec!["kiln-pkg".into()]), 1);
    }
}
