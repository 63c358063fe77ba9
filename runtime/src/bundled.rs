//! kiln's bundled guest tools: the wasm32-wasip1 multicall modules built from
//! `guest-tools/` by `build.rs` and embedded in the binary.
//!
//! A tool is chosen by the basename of the command (`/bin/ls`, `/usr/bin/env` and `ls` all
//! select `ls`); the module it lives in dispatches on `argv[0]`, so the runtime runs it with
//! [`BundledTool::argv0`] as the first argument. There are few modules (one per multicall
//! binary) so that compiling them is a once-per-machine cost shared by every tool.

use std::fmt;

/// One embedded wasm module holding several tools.
pub(crate) struct BundledModule {
    /// Short module name, e.g. `uutils` or `kiln-tools`.
    pub name: &'static str,
    /// The wasm binary.
    pub bytes: &'static [u8],
    /// SHA-256 of `bytes`, computed at build time (a stable cache key for compiled code).
    pub sha256: [u8; 32],
    /// `bytes` compiled by `build.rs` with the runtime's engine configuration (a wasmtime
    /// artifact); empty when kiln was cross-compiled. See `precompiled.rs`.
    pub compiled: &'static [u8],
}

impl BundledModule {
    /// `sha256:<hex>` of the module bytes.
    pub(crate) fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.sha256))
    }
}

impl fmt::Debug for BundledModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundledModule")
            .field("name", &self.name)
            .field("len", &self.bytes.len())
            .field("digest", &self.digest())
            .finish()
    }
}

/// A tool selectable by name, and the module that implements it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BundledTool {
    /// The tool's name (`ls`, `sha256sum`, `[`...).
    pub name: &'static str,
    /// The multicall module to instantiate.
    pub module: &'static BundledModule,
}

impl BundledTool {
    /// The `argv[0]` to pass so the multicall module dispatches to this tool.
    pub(crate) fn argv0(&self) -> &'static str {
        self.name
    }
}

mod generated {
    use super::BundledModule;
    include!(concat!(env!("OUT_DIR"), "/bundled_gen.rs"));
}

/// The tool named by `command`'s basename, if kiln bundles one.
pub(crate) fn lookup(command: &str) -> Option<BundledTool> {
    let base = command.rsplit('/').next().unwrap_or(command);
    let index = generated::TOOLS
        .binary_search_by(|(name, _)| (*name).cmp(base))
        .ok()?;
    Some(tool(index))
}

/// Every bundled module, in build order.
pub(crate) fn modules() -> &'static [BundledModule] {
    &generated::MODULES
}

/// Every bundled tool, sorted by name.
pub(crate) fn all() -> impl ExactSizeIterator<Item = BundledTool> {
    (0..generated::TOOLS.len()).map(tool)
}

fn tool(index: usize) -> BundledTool {
    let (name, module) = generated::TOOLS[index];
    BundledTool {
        name,
        module: &generated::MODULES[module],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_uses_the_basename() {
        for cmd in ["cat", "/bin/cat", "/usr/local/bin/cat"] {
            let tool = lookup(cmd).unwrap();
            assert_eq!(tool.name, "cat");
            assert_eq!(tool.argv0(), "cat");
            assert_eq!(tool.module.name, "uutils");
        }
        assert!(lookup("no-such-tool").is_none());
        assert!(lookup("").is_none());
        assert!(lookup("/bin/").is_none());
        let tool = lookup("/usr/sbin/invoke-rc.d").unwrap();
        assert_eq!(tool.module.name, "kiln-pkg");
    }

    #[test]
    fn modules_are_wasm_and_digests_match() {
        use sha2::Digest as _;
        assert_eq!(generated::MODULES.len(), 3);
        for module in &generated::MODULES {
            assert_eq!(&module.bytes[..4], b"\0asm", "{}", module.name);
            let digest: [u8; 32] = sha2::Sha256::digest(module.bytes).into();
            assert_eq!(digest, module.sha256, "{}", module.name);
        }
    }

    #[test]
    fn tools_are_sorted_unique_and_cover_every_module() {
        let names: Vec<_> = all().map(|t| t.name).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        for module in &generated::MODULES {
            assert!(
                all().any(|t| std::ptr::eq(t.module, module)),
                "{}",
                module.name
            );
        }
    }
}
