//! Shared helpers for kiln's end-to-end tests (in `tests/tests/`), which drive the real `kiln` binary.
