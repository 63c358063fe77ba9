//! Shell interpreter (kiln-shell). Work in progress: see issue 4.
