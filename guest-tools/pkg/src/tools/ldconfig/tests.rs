use std::cmp::Ordering;
use std::path::Path;
use std::process::Command;

use super::cache::libcmp;

#[test]
fn libcmp_compares_digit_runs_as_numbers() {
    assert_eq!(
        libcmp("libfoo.so.10", "libfoo.so.9", true),
        Ordering::Greater
    );
    assert_eq!(libcmp("libfoo.so.1", "libfoo.so.1", true), Ordering::Equal);
    assert_eq!(libcmp("libfoo.so.01", "libfoo.so.1", true), Ordering::Equal);
    assert_eq!(libcmp("liba.so", "libb.so", true), Ordering::Less);
    // A digit sorts after any other byte.
    assert_eq!(libcmp("lib1", "libz", true), Ordering::Greater);
    // C's char is signed on x86 and unsigned on Arm.
    assert_eq!(libcmp("lib\u{e9}", "libz", true), Ordering::Less);
    assert_eq!(libcmp("lib\u{e9}", "libz", false), Ordering::Greater);
}

use super::arch::{AARCH64, X86_64};
use super::elf::{Lib, process_file};

/// A little-endian ELF shared object of `class64`/`machine`: a PT_LOAD over the whole
/// file, a PT_DYNAMIC with DT_STRTAB, DT_SONAME `libx.so.1` and DT_NEEDED `libc.so.6`.
fn elf(class64: bool, machine: u16, flags: u32) -> Vec<u8> {
    let (ehdr, phdr, dyn_size) = if class64 { (64, 56, 16) } else { (52, 32, 8) };
    let dynamic = ehdr + 2 * phdr;
    let strtab = dynamic + 4 * dyn_size;
    let strings = b"\0libx.so.1\0libc.so.6\0";
    let len = strtab + strings.len();
    let mut b = vec![0u8; len];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = if class64 { 2 } else { 1 };
    b[5] = 1;
    b[16..18].copy_from_slice(&3u16.to_le_bytes());
    b[18..20].copy_from_slice(&machine.to_le_bytes());
    let put = |b: &mut Vec<u8>, at: usize, v: u64, wide: bool| {
        if wide {
            b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        } else {
            b[at..at + 4].copy_from_slice(&(v as u32).to_le_bytes());
        }
    };
    if class64 {
        put(&mut b, 32, ehdr as u64, true);
        b[48..52].copy_from_slice(&flags.to_le_bytes());
        b[56..58].copy_from_slice(&2u16.to_le_bytes());
    } else {
        put(&mut b, 28, ehdr as u64, false);
        b[36..40].copy_from_slice(&flags.to_le_bytes());
        b[44..46].copy_from_slice(&2u16.to_le_bytes());
    }
    // (type, offset, filesz) of PT_LOAD and PT_DYNAMIC; vaddr == offset.
    for (i, (kind, offset, size)) in [(1u32, 0, len), (2, dynamic, 4 * dyn_size)]
        .into_iter()
        .enumerate()
    {
        let at = ehdr + i * phdr;
        b[at..at + 4].copy_from_slice(&kind.to_le_bytes());
        if class64 {
            put(&mut b, at + 8, offset as u64, true);
            put(&mut b, at + 16, offset as u64, true);
            put(&mut b, at + 32, size as u64, true);
        } else {
            put(&mut b, at + 4, offset as u64, false);
            put(&mut b, at + 8, offset as u64, false);
            put(&mut b, at + 16, size as u64, false);
        }
    }
    for (i, (tag, val)) in [(5u64, strtab as u64), (14, 1), (1, 11), (0, 0)]
        .into_iter()
        .enumerate()
    {
        let at = dynamic + i * dyn_size;
        put(&mut b, at, tag, class64);
        put(&mut b, at + dyn_size / 2, val, class64);
    }
    b[strtab..].copy_from_slice(strings);
    b
}

fn probe(arch: &'static super::arch::Arch, bytes: &[u8]) -> Result<Lib, Option<String>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libx.so.1.0");
    std::fs::write(&path, bytes).unwrap();
    let path = path.to_str().unwrap();
    process_file(arch, path, "/l/libx.so.1.0", "libx.so.1.0", false, true)
}

#[test]
fn elf_flags_follow_each_architectures_ldconfig() {
    let lib = |flag| {
        Ok(Lib {
            flag,
            soname: Some("libx.so.1".into()),
            isa_level: 0,
        })
    };
    assert_eq!(probe(&X86_64, &elf(true, 62, 0)), lib(0x0303));
    assert_eq!(probe(&X86_64, &elf(false, 62, 0)), lib(0x0803));
    // i386: libc6 because it needs libc.so.6.
    assert_eq!(probe(&X86_64, &elf(false, 3, 0)), lib(0x0003));
    assert_eq!(
        probe(&X86_64, &elf(true, 183, 0)),
        Err(Some("/l/libx.so.1.0 is for unknown machine 183.\n".into()))
    );
    assert_eq!(probe(&AARCH64, &elf(true, 183, 0)), lib(0x0a03));
    // 32-bit Arm EABI 5: hard float, soft float, neither.
    assert_eq!(probe(&AARCH64, &elf(false, 40, 0x0500_0400)), lib(0x0903));
    assert_eq!(probe(&AARCH64, &elf(false, 40, 0x0500_0200)), lib(0x0b03));
    assert_eq!(probe(&AARCH64, &elf(false, 40, 0x0500_0000)), lib(0x0003));
}

#[test]
fn hostile_elf_files_are_skipped_with_glibcs_words_and_never_panic() {
    let truncated = Err(Some("file /l/libx.so.1.0 is truncated\n".to_owned()));
    let good = elf(true, 62, 0);
    let with = |at: usize, value: &[u8]| {
        let mut b = good.clone();
        b[at..at + value.len()].copy_from_slice(value);
        b
    };
    // e_phoff past the end; e_phnum far past the end.
    assert_eq!(
        probe(&X86_64, &with(32, &u64::MAX.to_le_bytes())),
        truncated
    );
    assert_eq!(
        probe(&X86_64, &with(56, &u16::MAX.to_le_bytes())),
        truncated
    );
    // PT_DYNAMIC offset past the end; DT_STRTAB past the end; DT_SONAME past the end.
    assert_eq!(
        probe(&X86_64, &with(64 + 56 + 8, &u64::MAX.to_le_bytes())),
        truncated
    );
    let dynamic = 64 + 2 * 56;
    assert_eq!(
        probe(&X86_64, &with(dynamic + 8, &(1u64 << 40).to_le_bytes())),
        truncated
    );
    assert_eq!(
        probe(&X86_64, &with(dynamic + 24, &u64::MAX.to_le_bytes())),
        truncated
    );
    // No DT_NULL before the end of the file.
    assert_eq!(probe(&X86_64, &with(dynamic + 48, &[7; 16])), truncated);
    // A string table without a NUL to end the soname.
    let mut unterminated = good.clone();
    let len = unterminated.len();
    unterminated[len - 11..].fill(b'x');
    assert_eq!(probe(&X86_64, &unterminated), truncated);
    // Not ELF, empty, too small, big-endian, not a shared object.
    assert_eq!(
        probe(&X86_64, &[b'x'; 100]),
        Err(Some(
            "/l/libx.so.1.0 is not an ELF file - it has the wrong magic bytes at the start.\n"
                .into()
        ))
    );
    assert_eq!(
        probe(&X86_64, b""),
        Err(Some("File /l/libx.so.1.0 is empty, not checked.".into()))
    );
    assert_eq!(
        probe(&X86_64, b"\x7fEL"),
        Err(Some(
            "File /l/libx.so.1.0 is too small, not checked.".into()
        ))
    );
    assert_eq!(probe(&X86_64, &with(5, &[2])), Err(None));
    assert_eq!(probe(&X86_64, &with(16, &[2, 0])), Err(None));
    // Every single-byte corruption of the header and tables ends without a panic.
    for at in 0..dynamic + 64 {
        for value in [0, 0x7f, 0xff] {
            let _ = probe(&X86_64, &with(at, &[value]));
        }
    }
}

use super::cache::{self, Cache, Found};

#[test]
fn a_cache_prints_back_and_corrupted_ones_never_panic() {
    let mut c = Cache::new(&X86_64);
    let v3 = c.subdir("x86-64-v3");
    let lib = |hwcap, subdir| Found {
        flags: 0x0303,
        isa_level: 0,
        hwcap,
        subdir,
    };
    c.add("/usr/lib", "libz.so.1", "libz.so.1", lib(0, None));
    c.add("/opt/tls", "libz.so.1", "libz.so.1", lib(1 << 63, None));
    c.add(
        "/opt/glibc-hwcaps/x86-64-v3",
        "libz.so.1.3",
        "libz.so.1",
        lib(0, Some(v3)),
    );
    c.add("/usr/lib", "libzstd.so.1", "libzstd.so.1", lib(0, None));
    let bytes = c.to_bytes().unwrap();
    let mut out = String::new();
    cache::print(&X86_64, "/etc/ld.so.cache", &bytes, &mut out).unwrap();
    assert_eq!(
        out,
        "4 libs found in cache `/etc/ld.so.cache'\n\
         \tlibzstd.so.1 (libc6,x86-64) => /usr/lib/libzstd.so.1\n\
         \tlibz.so.1 (libc6,x86-64, hwcap: \"x86-64-v3\") => /opt/glibc-hwcaps/x86-64-v3/libz.so.1.3\n\
         \tlibz.so.1 (libc6,x86-64, hwcap: 0x8000000000000000) => /opt/tls/libz.so.1\n\
         \tlibz.so.1 (libc6,x86-64) => /usr/lib/libz.so.1\n\
         Cache generated by: ldconfig (kiln) glibc 2.36 cache format\n"
    );
    for at in 0..bytes.len() {
        for value in [0, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[at] = value;
            let _ = cache::print(&X86_64, "c", &bad, &mut String::new());
            let _ = cache::print(&X86_64, "c", &bad[..at], &mut String::new());
        }
    }
}

/// AArch64, which this host's glibc cannot speak for: Debian's own arm64 ldconfig, run by
/// qemu-user, against kiln's AArch64 ldconfig on the arm64 base (made by
/// tests/packages/make-debian-arm64-base, which leaves no cache): the same cache but for
/// the generator text, the same links. Skipped with a notice without qemu or the base.
#[test]
fn matches_debians_arm64_ldconfig_under_qemu() {
    const BASE: &str = "/var/tmp/kiln-test/debian-bookworm-arm64.tar";
    const QEMU: &str = "/usr/bin/qemu-aarch64-static";
    if !Path::new(BASE).exists() || !Path::new(QEMU).exists() {
        assert!(
            std::env::var_os("KILN_REQUIRE_DEBIAN").is_none(),
            "{BASE} or {QEMU} missing"
        );
        eprintln!("skipped: {BASE} or {QEMU} missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (dir.path().join("kiln"), dir.path().join("debian"));
    std::fs::create_dir(&ours).unwrap();
    let status = Command::new("tar")
        .arg("-xf")
        .arg(BASE)
        .arg("-C")
        .arg(&ours)
        .status();
    assert!(status.unwrap().success());
    let lib = ours.join("usr/lib/aarch64-linux-gnu");
    std::fs::remove_file(lib.join("libz.so.1")).unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(&ours)
        .arg(&theirs)
        .status();
    assert!(status.unwrap().success());
    let status = Command::new(QEMU)
        .arg(theirs.join("usr/sbin/ldconfig"))
        .arg("-r")
        .arg(&theirs)
        .status();
    assert!(status.unwrap().success());
    let args = super::Args {
        root: Some(ours.to_str().unwrap().to_owned()),
        ..Default::default()
    };
    super::run(&AARCH64, &args).unwrap();
    let cache = |root: &Path| std::fs::read(root.join("etc/ld.so.cache")).unwrap();
    let (glibc, kiln) = (cache(&theirs), cache(&ours));
    assert!(glibc.len() > 1000);
    let generator = super::cache::GENERATOR.as_bytes();
    let ext = u32::from_le_bytes(glibc[32..36].try_into().unwrap()) as usize;
    let at = u32::from_le_bytes(glibc[ext + 16..ext + 20].try_into().unwrap()) as usize;
    let mut expected = glibc[..at].to_vec();
    expected[ext + 20..ext + 24].copy_from_slice(&(generator.len() as u32).to_le_bytes());
    expected.extend_from_slice(generator);
    assert!(expected == kiln, "the arm64 caches differ");
    let link =
        |root: &Path| std::fs::read_link(root.join("usr/lib/aarch64-linux-gnu/libz.so.1")).unwrap();
    assert_eq!(link(&ours), link(&theirs));
}
