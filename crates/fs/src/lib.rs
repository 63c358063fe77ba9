//! Snapshot filesystem (kiln-fs). Work in progress: see issue 2.
