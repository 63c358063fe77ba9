//! Dockerfile frontend (kiln-dockerfile). Work in progress: see issue 5.
