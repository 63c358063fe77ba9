//! The shared base image: a static busybox in an OCI image layout, written with kiln-oci so
//! the bench needs no extra tool; both builders start `FROM` it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kiln_oci::{Compression, ImageConfig, LayerWriter, Layout, Platform};

/// Debian's `busybox-static` installs it here.
pub(crate) const BUSYBOX: &str = "/bin/busybox";
pub(crate) const TAG: &str = "latest";

/// The applets the scenarios call, as symlinks to `/bin/busybox`.
const APPLETS: &[&str] = &[
    "base64",
    "cat",
    "cp",
    "dd",
    "echo",
    "env",
    "head",
    "ls",
    "mkdir",
    "rm",
    "seq",
    "sh",
    "sha256sum",
    "sleep",
    "test",
    "touch",
    "tr",
    "true",
    "wc",
    "wget",
];

/// Fixed timestamp for the layer entries, so the base has the same digest on every run.
const EPOCH: u64 = 1_700_000_000;

/// Write the base image into a new layout at `dir`, tagged [`TAG`].
pub(crate) fn write_busybox_layout(busybox: &Path, dir: &Path) -> Result<PathBuf> {
    let layout = Layout::open_or_create(dir).context("creating the base layout")?;
    let mut tar = tar::Builder::new(LayerWriter::new(&layout, Compression::Gzip)?);
    for (d, mode) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("root", 0o700),
        ("tmp", 0o1777),
    ] {
        append(&mut tar, d, tar::EntryType::Directory, mode, &[], None)?;
    }
    let passwd = b"root:x:0:0:root:/root:/bin/sh\n";
    append(
        &mut tar,
        "etc/passwd",
        tar::EntryType::Regular,
        0o644,
        passwd,
        None,
    )?;
    let group = b"root:x:0:\n";
    append(
        &mut tar,
        "etc/group",
        tar::EntryType::Regular,
        0o644,
        group,
        None,
    )?;
    let mut header = header(tar::EntryType::Regular, 0o755);
    let file =
        std::fs::File::open(busybox).with_context(|| format!("opening {}", busybox.display()))?;
    header.set_size(file.metadata()?.len());
    tar.append_data(&mut header, "bin/busybox", file)?;
    for applet in APPLETS {
        let path = format!("bin/{applet}");
        append(
            &mut tar,
            &path,
            tar::EntryType::Symlink,
            0o777,
            &[],
            Some("busybox"),
        )?;
    }
    let mut writer = tar.into_inner()?;
    writer.flush()?;
    let layer = writer.finish()?;

    let mut config = ImageConfig::new(&Platform::host_linux(), EPOCH as i64);
    config.update_container(|c| {
        c.set_env(Some(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        ]));
        c.set_cmd(Some(vec!["/bin/sh".to_owned()]));
    });
    config.add_layer(
        &layer.diff_id,
        "kiln-bench: busybox-static",
        None,
        EPOCH as i64,
    );
    let desc = layout.write_image(&config, &[layer], &BTreeMap::new())?;
    layout.tag(TAG, &desc)?;
    Ok(dir.to_path_buf())
}

fn header(kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(EPOCH);
    h.set_size(0);
    h
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    kind: tar::EntryType,
    mode: u32,
    data: &[u8],
    link: Option<&str>,
) -> Result<()> {
    let mut h = header(kind, mode);
    h.set_size(data.len() as u64);
    match link {
        Some(target) => tar.append_link(&mut h, path, target)?,
        None => tar.append_data(&mut h, path, data)?,
    }
    Ok(())
}
