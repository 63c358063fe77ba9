//! Guest-side bindings to the `kiln_v1` host imports (see runtime/ABI.md).
