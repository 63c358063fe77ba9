//! kiln's Debian package tools, one multicall wasm32-wasip1 module dispatched by argv[0]
//! (the third embedded module, beside uutils and kiln-tools): dpkg, apt and the helpers
//! maintainer scripts call. Package indexes and archives are untrusted input, so they are
//! parsed here, inside the sandbox. A separate module so that every other RUN step does not
//! pay for compiling its OpenPGP and decompression code.

pub mod debconf;
pub mod progress;
pub mod query;
pub mod scripts;
mod tools;
pub mod triggers;
/// Diagnostics in the `tool: message` form, shared with kiln-tools.
pub use kiln_tools::util;

pub use kiln_tools::ToolMain;

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
pub fn run(argv: Vec<String>) -> i32 {
    kiln_tools::dispatch("kiln-pkg", argv, lookup, &mut names())
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
