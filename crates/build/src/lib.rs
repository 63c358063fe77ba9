//! Build engine (kiln-build). Work in progress: see issue 8.
