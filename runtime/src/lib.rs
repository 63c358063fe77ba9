//! WASI p1 host (kiln-runtime). Work in progress: see issue 3.

pub mod bundled;
