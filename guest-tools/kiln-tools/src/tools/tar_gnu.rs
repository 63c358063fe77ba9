//! Archive members written the way GNU tar's default (`gnu`) format writes them, so
//! `tar cf` in a RUN step gives the bytes GNU tar gives for the same tree (with
//! `--sort=name`, kiln's directory order): `ustar  ` magic, a six-digit checksum
//! followed by NUL and space, names and link targets past 100 bytes in `././@LongLink`
//! records (owned by root, as GNU writes them), and the archive padded to GNU's
//! 10240-byte record.

use std::io::{self, Read, Write};

use tar::{Builder, EntryType, Header};

/// GNU tar's default record: 20 blocks of 512 bytes; archives are padded to a multiple.
pub(crate) const RECORD: u64 = 20 * 512;
/// The name and linkname fields' size; longer values go in a LongLink record first.
const NAME_FIELD: usize = 100;
const LONG_LINK: &[u8] = b"././@LongLink";

/// A writer that counts what passes through (to pad the archive to a whole record).
pub(crate) struct Counting<W> {
    pub(crate) inner: W,
    pub(crate) written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Zeros that bring an archive of `written` bytes (end blocks included) to a record.
pub(crate) fn record_padding(written: u64) -> u64 {
    (RECORD - written % RECORD) % RECORD
}

/// Appends one member: LongLink records for a long `name` or `link`, then `header`
/// with the (possibly cut) name and link in place and GNU's checksum, then `data`.
pub(crate) fn append<W: Write>(
    builder: &mut Builder<W>,
    header: &mut Header,
    name: &[u8],
    link: Option<&[u8]>,
    data: impl Read,
) -> io::Result<()> {
    if name.len() > NAME_FIELD {
        long_link(builder, EntryType::GNULongName, name)?;
    }
    if let Some(link) = link.filter(|l| l.len() > NAME_FIELD) {
        long_link(builder, EntryType::GNULongLink, link)?;
    }
    let old = header.as_old_mut();
    put(&mut old.name, name);
    put(&mut old.linkname, link.unwrap_or_default());
    set_checksum(header);
    builder.append(header, data)
}

/// The `././@LongLink` record carrying `value` (NUL-terminated) for the next member.
fn long_link<W: Write>(builder: &mut Builder<W>, kind: EntryType, value: &[u8]) -> io::Result<()> {
    let mut h = Header::new_gnu();
    put(&mut h.as_old_mut().name, LONG_LINK);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(value.len() as u64 + 1);
    h.set_entry_type(kind);
    h.set_username("root")?;
    h.set_groupname("root")?;
    set_checksum(&mut h);
    builder.append(&h, value.chain(&[0u8][..]))
}

/// Copies as much of `value` as fits into `field`, zero-filling the rest.
fn put(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field.fill(0);
    field[..n].copy_from_slice(&value[..n]);
}

/// GNU's checksum field: six octal digits, NUL, space.
fn set_checksum(header: &mut Header) {
    header.as_old_mut().cksum = *b"        ";
    let sum: u32 = header.as_bytes().iter().map(|&b| u32::from(b)).sum();
    let digits = format!("{:06o}\0 ", sum & 0o777_777);
    header.as_old_mut().cksum.copy_from_slice(digits.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_gnu_shaped_and_valid() {
        let mut h = Header::new_gnu();
        h.set_size(6);
        h.set_mode(0o644);
        set_checksum(&mut h);
        let field = h.as_old().cksum;
        assert_eq!(&field[6..], b"\0 ");
        let stored = u32::from_str_radix(std::str::from_utf8(&field[..6]).unwrap(), 8).unwrap();
        let mut blank = h.clone();
        blank.as_old_mut().cksum = *b"        ";
        assert_eq!(stored, blank.as_bytes().iter().map(|&b| u32::from(b)).sum());
    }

    /// A tree with every kind of member and name GNU tar encodes specially.
    #[cfg(unix)]
    fn sample_tree(root: &std::path::Path) {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let long_dir = root.join("tree").join("d".repeat(120));
        std::fs::create_dir_all(&long_dir).unwrap();
        std::fs::create_dir_all(root.join("tree/empty")).unwrap();
        let files: [(&str, &[u8], u32); 4] = [
            ("tree/a.txt", b"hello\n", 0o644),
            ("tree/setuid", b"#!/bin/sh\n", 0o4755),
            ("tree/caf\u{e9} name", b"utf8", 0o600),
            ("tree/big", &[7u8; 1500], 0o644),
        ];
        for (p, data, mode) in files {
            std::fs::write(root.join(p), data).unwrap();
            let perms = std::fs::Permissions::from_mode(mode);
            std::fs::set_permissions(root.join(p), perms).unwrap();
        }
        let exact = format!("tree/{}", "x".repeat(95));
        std::fs::write(root.join(&exact), b"100-byte name").unwrap();
        std::fs::write(long_dir.join("f".repeat(110)), b"long").unwrap();
        std::fs::hard_link(root.join("tree/a.txt"), long_dir.join("hard")).unwrap();
        symlink("a.txt", root.join("tree/link")).unwrap();
        symlink("t".repeat(150), root.join("tree/long-target")).unwrap();
        let sticky = std::fs::Permissions::from_mode(0o1777);
        std::fs::set_permissions(root.join("tree/empty"), sticky).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn tar_cf_writes_the_bytes_gnu_tar_writes() {
        let Some(gnu) = ["/usr/bin/tar", "/bin/tar"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
        else {
            panic!("this test compares with GNU tar, which is not installed");
        };
        let root = std::env::temp_dir().join(format!("kiln-tar-gnu-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        sample_tree(&root);
        let touch = std::process::Command::new("find")
            .args([
                "tree",
                "-exec",
                "touch",
                "-h",
                "-d",
                "@1700000000",
                "{}",
                "+",
            ])
            .current_dir(&root)
            .status()
            .unwrap();
        assert!(touch.success());
        let theirs = std::process::Command::new(gnu)
            .args(["--sort=name", "-cf", "-", "tree"])
            .current_dir(&root)
            .output()
            .unwrap();
        assert!(theirs.status.success());
        let ours_path = root.join("ours.tar");
        let dir = root.to_str().unwrap().to_owned();
        let args = ["cf", ours_path.to_str().unwrap(), "-C", &dir, "tree"];
        assert_eq!(
            super::super::tar::main("tar", args.map(String::from).to_vec()),
            0
        );
        let ours = std::fs::read(&ours_path).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(ours.len(), theirs.stdout.len());
        assert!(ours == theirs.stdout, "archives differ");
    }

    #[test]
    fn archives_are_padded_to_whole_records() {
        assert_eq!(record_padding(RECORD), 0);
        assert_eq!(record_padding(3 * 512), RECORD - 3 * 512);
        assert_eq!(record_padding(RECORD + 512), RECORD - 512);
    }
}
