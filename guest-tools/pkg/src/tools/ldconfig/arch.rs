//! What differs between the ldconfig of one architecture and another's: the directories it
//! always scans, the cache flags it gives a library, the hwcap directory names it knows
//! and the byte order of the cache. kiln's ldconfig stands in for the image's own, so it
//! takes the architecture of the image's native `ldconfig` program (see [`detect`]).

use super::elf::{self, Header};

/// `FLAG_ELF`: an ELF library nothing classified further.
pub(super) const FLAG_ELF: i32 = 0x0001;
/// `FLAG_ELF_LIBC6`: linked against glibc 2.
pub(super) const FLAG_ELF_LIBC6: i32 = 0x0003;
/// `FLAG_LIBC4`: an a.out library.
pub(super) const FLAG_LIBC4: i32 = 0x0000;
/// `FLAG_ANY`: a directory without a `=TYPE` suffix.
pub(super) const FLAG_ANY: i32 = -1;
/// glibc's first bit for platform names in a legacy hwcap value (`_DL_FIRST_PLATFORM`).
const FIRST_PLATFORM: u32 = 48;
/// The hwcap bit of a `tls` subdirectory (`TLS_HWCAP_BIT`).
pub(super) const TLS_HWCAP_BIT: u32 = 63;

/// One architecture's ldconfig, as Debian 12 builds glibc 2.36 for it.
#[derive(Debug)]
pub(super) struct Arch {
    /// Debian's multiarch triplet (`/lib/<triplet>` is always scanned).
    pub(super) triplet: &'static str,
    pub(super) big_endian: bool,
    /// Whether C's `char` is signed (`_dl_cache_libcmp` compares `char`s).
    pub(super) signed_char: bool,
    /// Legacy hwcap subdirectory names, by bit number.
    hwcaps: &'static [&'static str],
    /// `HWCAP_IMPORTANT`: which of them ldconfig descends into.
    important: u64,
    /// Platform subdirectory names, from bit [`FIRST_PLATFORM`] on.
    platforms: &'static [&'static str],
    /// Refuses a file this ldconfig does not read (`Err(Some(msg))` with a message,
    /// `Err(None)` silently) before the generic ELF reader runs.
    precheck: fn(&Header, &str, bool) -> Result<(), Option<String>>,
    /// The cache flags from the ELF header and the flags the generic reader found.
    flag: fn(&Header, i32) -> i32,
    /// Reads the x86 ISA level from GNU property notes (x86 only).
    pub(super) reads_isa_level: bool,
}

/// x86-64 and its 32-bit and x32 libraries (glibc's x86 readelflib, built for x86_64).
pub(super) static X86_64: Arch = Arch {
    triplet: "x86_64-linux-gnu",
    big_endian: false,
    signed_char: true,
    hwcaps: &["sse2", "x86_64", "avx512_1"],
    important: 0b111,
    platforms: &["i586", "i686", "haswell", "xeon_phi"],
    precheck: precheck_x86,
    flag: flag_x86,
    reads_isa_level: true,
};

/// AArch64 and the 32-bit Arm libraries it can hold (glibc's arm readelflib).
pub(super) static AARCH64: Arch = Arch {
    triplet: "aarch64-linux-gnu",
    big_endian: false,
    signed_char: false,
    hwcaps: &[
        "fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "fphp",
        "asimdhp", "cpuid", "asimdrdm", "jscvt", "fcma", "lrcpc", "dcpop", "sha3", "sm3", "sm4",
        "asimddp", "sha512", "sve", "asimdfhm", "dit", "uscat", "ilrcpc", "flagm", "ssbs", "sb",
        "paca", "pacg",
    ],
    // HWCAP_ATOMICS
    important: 1 << 8,
    platforms: &[],
    precheck: |_, _, _| Ok(()),
    flag: flag_arm,
    reads_isa_level: false,
};

const EM_386: u16 = 3;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// The architecture whose ldconfig a native `ldconfig` ELF header names.
pub(super) fn for_program(header: &Header) -> Option<&'static Arch> {
    match (header.machine, header.class64, header.big_endian) {
        (EM_X86_64, true, false) => Some(&X86_64),
        (EM_AARCH64, true, false) => Some(&AARCH64),
        _ => None,
    }
}

/// Bytes of the native ldconfig searched for Debian's built-in directories (it is about
/// 1 MB; a hostile image's may be anything).
const MAX_PROGRAM_BYTES: u64 = 16 << 20;

/// The image's architecture: that of the native ldconfig kiln stands in for, which must
/// be Debian's (or a derivative's) glibc ldconfig: another distribution's has other
/// built-in directories (Fedora's `/usr/lib64`), which kiln's would not scan.
pub(super) fn detect() -> Result<&'static Arch, String> {
    let mut seen = None;
    for path in ["/sbin/ldconfig", "/usr/sbin/ldconfig"] {
        if let Ok(Some(header)) = elf::program_header(path) {
            let arch = for_program(&header).ok_or_else(|| {
                format!(
                    "{path} is an ELF program for machine {}; kiln's ldconfig knows glibc's \
                     cache for x86-64 and AArch64 images only",
                    header.machine
                )
            })?;
            return debian_dirs(path, arch).map(|()| arch);
        }
        seen = seen.or(std::fs::metadata(path).ok().map(|_| path));
    }
    Err(match seen {
        Some(path) => format!(
            "{path} is not a glibc ldconfig program; kiln's ldconfig stands in for Debian's"
        ),
        None => "this image has no native ldconfig (/sbin/ldconfig) to stand in for, so its \
                 architecture is unknown"
            .to_owned(),
    })
}

/// Checks that the ldconfig at `path` has Debian's built-in directories for `arch`.
fn debian_dirs(path: &str, arch: &Arch) -> Result<(), String> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    let read =
        std::fs::File::open(path).and_then(|f| f.take(MAX_PROGRAM_BYTES).read_to_end(&mut bytes));
    let wanted = format!("/usr/lib/{}/\0", arch.triplet);
    let found = read.is_ok() && bytes.windows(wanted.len()).any(|w| w == wanted.as_bytes());
    if found {
        return Ok(());
    }
    Err(format!(
        "{path} is not Debian's ldconfig (its built-in directories are not /lib/{t} and \
         /usr/lib/{t}); kiln's ldconfig stands in for Debian's glibc 2.36 only",
        t = arch.triplet
    ))
}

impl Arch {
    /// The directories ldconfig always scans after its configuration (Debian's
    /// `SYSTEM_DIRS`, written with a trailing `/`, which keeps glibc's `lib64` expansion
    /// from applying).
    pub(super) fn system_dirs(&self) -> [String; 4] {
        [
            format!("/lib/{}/", self.triplet),
            format!("/usr/lib/{}/", self.triplet),
            "/lib/".to_owned(),
            "/usr/lib/".to_owned(),
        ]
    }

    /// `_dl_string_hwcap`: the bit of a legacy hwcap name.
    pub(super) fn hwcap_bit(&self, name: &str) -> Option<u32> {
        self.hwcaps
            .iter()
            .position(|h| *h == name)
            .map(|i| i as u32)
    }

    /// `_dl_string_platform`: the bit of a platform name.
    pub(super) fn platform_bit(&self, name: &str) -> Option<u32> {
        let i = self.platforms.iter().position(|p| *p == name)?;
        Some(FIRST_PLATFORM + i as u32)
    }

    /// `is_hwcap_platform`: a subdirectory name ldconfig descends into (an important
    /// hwcap under `mask`, a platform, or `tls`).
    pub(super) fn is_hwcap_platform(&self, name: &str, mask: u64) -> bool {
        let important = self
            .hwcap_bit(name)
            .is_some_and(|bit| (1u64 << bit) & mask != 0);
        important || self.platform_bit(name).is_some() || name == "tls"
    }

    /// `HWCAP_IMPORTANT`, unless `LD_HWCAP_MASK` says otherwise.
    pub(super) fn important(&self) -> u64 {
        self.important
    }

    /// Refuses a file this architecture's ldconfig does not read: `Err(Some(msg))` to
    /// skip it with a message, `Err(None)` to skip it silently.
    pub(super) fn precheck(
        &self,
        header: &Header,
        file: &str,
        verbose: bool,
    ) -> Result<(), Option<String>> {
        (self.precheck)(header, file, verbose)
    }

    /// The cache flags of a library the generic reader classified as `flag`.
    pub(super) fn flag(&self, header: &Header, flag: i32) -> i32 {
        (self.flag)(header, flag)
    }
}

fn precheck_x86(header: &Header, file: &str, verbose: bool) -> Result<(), Option<String>> {
    match header.machine {
        EM_X86_64 => Ok(()),
        EM_386 if !header.class64 => Ok(()),
        // Debian quiets this message unless -v (unsubmitted-quiet-ldconfig.diff).
        machine => Err(verbose.then(|| format!("{file} is for unknown machine {machine}.\n"))),
    }
}

fn flag_x86(header: &Header, flag: i32) -> i32 {
    match (header.machine, header.class64) {
        (EM_X86_64, true) => 0x0300 | FLAG_ELF_LIBC6,
        // x32
        (EM_X86_64, false) => 0x0800 | FLAG_ELF_LIBC6,
        _ => flag,
    }
}

fn flag_arm(header: &Header, flag: i32) -> i32 {
    if header.class64 {
        return 0x0a00 | FLAG_ELF_LIBC6;
    }
    // EF_ARM_EABI_VERSION (e_flags) == EF_ARM_EABI_VER5
    if header.flags & 0xff00_0000 != 0x0500_0000 {
        return flag;
    }
    if header.flags & 0x400 != 0 {
        0x0900 | FLAG_ELF_LIBC6
    } else if header.flags & 0x200 != 0 {
        0x0b00 | FLAG_ELF_LIBC6
    } else {
        FLAG_ELF_LIBC6
    }
}

/// The names `-p` prints for the flags of an entry (glibc's `print_entry`).
pub(super) fn describe_flags(flags: i32) -> String {
    let kind = match flags & 0xff {
        0 => "libc4",
        1 => "ELF",
        2 => "libc5",
        3 => "libc6",
        _ => "unknown",
    };
    let required = match flags & 0xff00 {
        0 => String::new(),
        0x0100 | 0x0400 | 0x0500 | 0x0700 => ",64bit".into(),
        0x0200 => ",IA-64".into(),
        0x0300 => ",x86-64".into(),
        0x0600 => ",N32".into(),
        0x0800 => ",x32".into(),
        0x0900 => ",hard-float".into(),
        0x0a00 => ",AArch64".into(),
        0x0b00 | 0x0f00 => ",soft-float".into(),
        0x0c00 => ",nan2008".into(),
        0x0d00 => ",N32,nan2008".into(),
        0x0e00 => ",64bit,nan2008".into(),
        0x1000 => ",double-float".into(),
        other => format!(",{other}"),
    };
    format!("{kind}{required}")
}
