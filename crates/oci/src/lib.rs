//! OCI images (kiln-oci). Work in progress: see issue 6.
