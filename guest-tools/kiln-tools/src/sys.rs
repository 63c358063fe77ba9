//! The few operations WASI p1 cannot express, through `kiln-abi` (host imports on wasm,
//! the host OS natively so the tools' logic can be tested with `cargo test`).

pub use kiln_abi::*;

/// Gives `to` the owner and group of `from` (sed -i, install): best effort, since a
/// rewritten file must not change owner but failing to copy it is not worth aborting.
pub fn copy_owner(from: &str, to: &str) {
    if let Ok(st) = kiln_abi::stat(from, true) {
        let _ = kiln_abi::chown(to, Some(st.uid), Some(st.gid), true);
    }
}
