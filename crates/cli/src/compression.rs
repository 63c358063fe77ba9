//! The layer compression `--output` asks for, spelled as buildx spells it:
//! `compression=uncompressed|gzip|zstd`, `compression-level=N`, `force-compression=BOOL`.
//!
//! kiln compresses a layer once, when the step writes it (the compression is part of every
//! step's cache key), so a build has one compression: outputs that name different ones
//! are an error rather than a silent pick. Levels are fixed (gzip 6, zstd 3: see
//! `kiln_oci::Compression`); a `compression-level` is refused rather than ignored.

use kiln_oci::Compression;

/// The `--output` keys this module reads (`args::parse_output` leaves them to it).
pub(crate) const KEYS: &[&str] = &["compression", "compression-level", "force-compression"];

/// The layer compression of a build exporting to `outputs` (gzip when none says).
pub(crate) fn from_outputs(outputs: &[String]) -> Result<Compression, String> {
    let mut chosen: Option<(Compression, &str)> = None;
    for spec in outputs {
        let Some(asked) = parse(spec)? else {
            continue;
        };
        match chosen {
            Some((first, first_spec)) if first != asked => {
                return Err(format!(
                    "--output {first_spec:?} and --output {spec:?} ask for different layer \
                     compressions; kiln compresses each layer once, so give all outputs the same"
                ));
            }
            _ => chosen = Some((asked, spec)),
        }
    }
    Ok(chosen.map_or(Compression::Gzip, |(c, _)| c))
}

/// The compression one `--output` names, if it names one.
fn parse(spec: &str) -> Result<Option<Compression>, String> {
    let mut asked = None;
    let mut kind_of_output = None;
    for (k, v) in spec.split(',').filter_map(|f| f.split_once('=')) {
        match k {
            "type" => kind_of_output = Some(v),
            "compression" => asked = Some(kind(v)?),
            "compression-level" => level(v)?,
            "force-compression" => force(v)?,
            _ => {}
        }
    }
    if asked.is_some() && kind_of_output == Some("local") {
        return Err("type=local writes files, not layers: it takes no compression".into());
    }
    Ok(asked)
}

fn kind(value: &str) -> Result<Compression, String> {
    match value {
        "gzip" => Ok(Compression::Gzip),
        "zstd" => Ok(Compression::Zstd),
        "uncompressed" => Ok(Compression::None),
        "estargz" => Err("compression=estargz is not supported by kiln; use gzip or zstd".into()),
        other => Err(format!(
            "compression={other:?}: expected uncompressed, gzip or zstd"
        )),
    }
}

/// kiln's levels are fixed (gzip 6, zstd 3); an integer is refused with that reason, and
/// anything else as BuildKit refuses it.
fn level(value: &str) -> Result<(), String> {
    match value.parse::<i32>() {
        Ok(_) => Err(format!(
            "compression-level={value} is not supported yet: kiln compresses gzip at level 6 \
             and zstd at level 3; omit compression-level"
        )),
        Err(_) => Err(format!("compression-level={value:?}: expected an integer")),
    }
}

/// kiln writes every layer of the build in the asked compression; like BuildKit without
/// `force-compression`, a base image's layers keep the compression they were pulled with.
/// Recompressing those is not implemented, so `true` is refused rather than ignored.
fn force(value: &str) -> Result<(), String> {
    match value {
        "false" | "0" => Ok(()),
        "true" | "1" => Err(
            "force-compression=true is not supported yet: kiln writes the build's own layers \
             in the asked compression, but base-image layers keep the one they were pulled with"
                .into(),
        ),
        _ => Err(format!(
            "force-compression={value:?}: expected true or false"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(outputs: &[&str]) -> Result<Compression, String> {
        from_outputs(&outputs.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn compression_is_read_as_buildx_spells_it() {
        assert_eq!(of(&[]), Ok(Compression::Gzip));
        assert_eq!(of(&["type=oci,dest=x.tar"]), Ok(Compression::Gzip));
        assert_eq!(
            of(&["type=oci,dest=x.tar,compression=zstd"]),
            Ok(Compression::Zstd)
        );
        assert_eq!(
            of(&["type=docker,dest=x,compression=uncompressed"]),
            Ok(Compression::None)
        );
        let same = of(&[
            "type=oci,dest=a,compression=zstd",
            "type=registry,compression=zstd",
        ]);
        assert_eq!(same, Ok(Compression::Zstd));
        // An output that names none does not disagree with one that does.
        let one = of(&["type=oci,dest=a", "type=docker,dest=b,compression=zstd"]);
        assert_eq!(one, Ok(Compression::Zstd));
        assert!(of(&["type=oci,dest=a,force-compression=false"]).is_ok());
    }

    #[test]
    fn what_kiln_cannot_honour_is_refused() {
        for bad in [
            &["type=oci,dest=a,compression=lz4"][..],
            &["type=oci,dest=a,compression=estargz"],
            &["type=oci,dest=a,compression-level=high"],
            &["type=oci,dest=a,compression=gzip,compression-level=9"],
            &["type=oci,dest=a,force-compression=true"],
            &["type=local,dest=d,compression=zstd"],
            &[
                "type=oci,dest=a,compression=zstd",
                "type=docker,dest=b,compression=gzip",
            ],
        ] {
            assert!(of(bad).is_err(), "{bad:?}");
        }
    }
}
