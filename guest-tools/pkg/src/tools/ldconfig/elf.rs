//! Reading what ldconfig needs from a file that may be a shared library: glibc's
//! `process_file` and `process_elf_file` (SONAME, the flags from `PT_INTERP` and
//! `DT_NEEDED`, the x86 ISA level from the GNU property note). Every file is hostile
//! input: it is read by bounded positioned reads, never mapped or read whole, and any
//! offset that leaves the file ends in glibc's "file ... is truncated".

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use super::arch::{Arch, FLAG_ELF, FLAG_ELF_LIBC6, FLAG_LIBC4};

/// Longest name read from a string table (`PATH_MAX`): SONAMEs and interpreter paths are
/// file names, and a hostile string table need not have a NUL anywhere.
const MAX_NAME_BYTES: u64 = 4096;
/// Dynamic entries read before giving up on a library: real ones have well under a
/// hundred; a hostile `PT_DYNAMIC` without `DT_NULL` must not be walked to its end.
const MAX_DYNAMIC_ENTRIES: u64 = 1 << 16;
/// Bytes of a `PT_GNU_PROPERTY` segment looked at: real ones are a few dozen bytes.
const MAX_NOTE_BYTES: u64 = 1 << 16;
/// The smallest file ldconfig looks into: the larger of an a.out `struct exec` and an
/// `Elf64_Ehdr` on a 64-bit ldconfig.
const MIN_FILE_BYTES: u64 = 64;
/// Bytes searched for a linker script's keywords (glibc's choice).
const SCRIPT_PROBE_BYTES: u64 = 512;

const ET_DYN: u16 = 3;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_GNU_PROPERTY: u32 = 0x6474_e553;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_SONAME: u64 = 14;
const NT_GNU_PROPERTY_TYPE_0: u32 = 5;
const GNU_PROPERTY_X86_ISA_1_NEEDED: u32 = 0xc000_8002;

/// The ELF header fields ldconfig looks at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) class64: bool,
    /// `e_ident[EI_CLASS]` as written (1 or 2 for real files).
    class: u8,
    pub(crate) big_endian: bool,
    pub(crate) kind: u16,
    pub(crate) machine: u16,
    pub(crate) flags: u32,
    phoff: u64,
    phnum: u64,
}

/// What ldconfig learnt about a library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lib {
    pub(crate) flag: i32,
    pub(crate) soname: Option<String>,
    pub(crate) isa_level: u32,
}

/// Why a file is not taken: `Some(message)` to print (glibc's wording, a trailing `\n`
/// included where glibc has one), `None` to pass over in silence.
pub(crate) type Skip = Option<String>;

/// Bounded positioned reads of one open file.
struct Input {
    file: File,
    len: u64,
}

impl Input {
    /// `n` bytes at `at`, or `None` when they are not all inside the file.
    fn bytes(&mut self, at: u64, n: u64) -> Option<Vec<u8>> {
        if at.checked_add(n)? > self.len {
            return None;
        }
        let mut buf = vec![0; usize::try_from(n).ok()?];
        self.file.seek(SeekFrom::Start(at)).ok()?;
        self.file.read_exact(&mut buf).ok()?;
        Some(buf)
    }

    /// The NUL-terminated string at `at`: `Err(())` when it leaves the file or exceeds
    /// [`MAX_NAME_BYTES`].
    fn cstr(&mut self, at: u64) -> Result<Vec<u8>, ()> {
        let n = MAX_NAME_BYTES.min(self.len.saturating_sub(at));
        let buf = self.bytes(at, n).ok_or(())?;
        let end = buf.iter().position(|&b| b == 0).ok_or(())?;
        Ok(buf[..end].to_vec())
    }
}

/// Reads integers in the file's byte order.
#[derive(Clone, Copy)]
struct Order(bool);

impl Order {
    fn u16(self, b: &[u8], at: usize) -> u16 {
        let v = [b[at], b[at + 1]];
        if self.0 {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        }
    }
    fn u32(self, b: &[u8], at: usize) -> u32 {
        let mut v = [0; 4];
        v.copy_from_slice(&b[at..at + 4]);
        if self.0 {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }
    fn u64(self, b: &[u8], at: usize) -> u64 {
        let mut v = [0; 8];
        v.copy_from_slice(&b[at..at + 8]);
        if self.0 {
            u64::from_be_bytes(v)
        } else {
            u64::from_le_bytes(v)
        }
    }
    /// An address-sized field: 4 bytes in a 32-bit file, 8 in a 64-bit one.
    fn word(self, b: &[u8], at: usize, class64: bool) -> u64 {
        if class64 {
            self.u64(b, at)
        } else {
            u64::from(self.u32(b, at))
        }
    }
}

fn parse_header(b: &[u8]) -> Header {
    let class64 = b[4] != 1;
    let order = Order(b[5] == 2);
    let (phoff, phnum, flags) = if class64 { (32, 56, 48) } else { (28, 44, 36) };
    Header {
        class64,
        class: b[4],
        big_endian: order.0,
        kind: order.u16(b, 16),
        machine: order.u16(b, 18),
        flags: order.u32(b, flags),
        phoff: order.word(b, phoff, class64),
        phnum: u64::from(order.u16(b, phnum)),
    }
}

/// The ELF header of a program (`Ok(None)` when `path` is no ELF file).
pub(crate) fn program_header(path: &str) -> io::Result<Option<Header>> {
    let mut file = File::open(path)?;
    let mut b = [0; 64];
    file.read_exact(&mut b)?;
    Ok(b.starts_with(b"\x7fELF").then(|| parse_header(&b)))
}

/// glibc's `process_file`: what the file at `real` (named `shown` in messages, `lib` in
/// its directory) tells ldconfig.
pub(crate) fn process_file(
    arch: &Arch,
    real: &str,
    shown: &str,
    lib: &str,
    is_link: bool,
    verbose: bool,
) -> Result<Lib, Skip> {
    let file = match File::open(real) {
        Ok(file) => file,
        // A dangling link to a library is no news.
        Err(_) if is_link && shown.contains(".so") => return Err(None),
        Err(_) => return Err(Some(format!("Input file {shown} not found.\n"))),
    };
    let len = match file.metadata() {
        Ok(meta) if meta.is_dir() => return Err(Some(format!("Cannot mmap file {shown}.\n"))),
        Ok(meta) => meta.len(),
        Err(_) => return Err(Some(format!("Cannot fstat file {shown}.\n"))),
    };
    let mut input = Input { file, len };
    if len < MIN_FILE_BYTES {
        return Err(too_small(&mut input, shown));
    }
    let head = input.bytes(0, MIN_FILE_BYTES).ok_or(None)?;
    // An a.out library (N_MAGIC of `a_info`: ZMAGIC or QMAGIC): its name is its soname.
    if matches!(Order(arch.big_endian).u16(&head, 0), 0o413 | 0o314) {
        return Ok(Lib {
            flag: FLAG_LIBC4,
            soname: Some(aout_soname(lib)),
            isa_level: 0,
        });
    }
    if !head.starts_with(b"\x7fELF") {
        return Err(not_elf(&mut input, shown));
    }
    let header = parse_header(&head);
    // glibc reads the header in its own byte order: a file of the other order has no
    // ET_DYN type to it and is passed over without a word.
    if header.big_endian != arch.big_endian || header.kind != ET_DYN {
        return Err(None);
    }
    arch.precheck(&header, shown, verbose)?;
    let mut lib = read_elf(arch, &mut input, &header, shown, verbose)?;
    lib.flag = arch.flag(&header, lib.flag);
    Ok(lib)
}

fn too_small(input: &mut Input, shown: &str) -> Skip {
    if input.len == 0 {
        return Some(format!("File {shown} is empty, not checked."));
    }
    let head = input.bytes(0, input.len.min(4))?;
    b"\x7fELF"
        .starts_with(&head)
        .then(|| format!("File {shown} is too small, not checked."))
}

fn not_elf(input: &mut Input, shown: &str) -> Skip {
    let head = input.bytes(0, input.len.min(SCRIPT_PROBE_BYTES))?;
    let has = |word: &[u8]| head.windows(word.len()).any(|w| w == word);
    // A linker script (libc.so) or a GDB extension is expected here.
    if has(b"GROUP") || has(b"GNU ld script") || (shown.len() > 7 && shown.ends_with("-gdb.py")) {
        return None;
    }
    Some(format!(
        "{shown} is not an ELF file - it has the wrong magic bytes at the start.\n"
    ))
}

/// An a.out library's soname: its name up to its major version.
pub(crate) fn aout_soname(lib: &str) -> String {
    let Some(major) = lib.find(".so.") else {
        return lib.to_owned();
    };
    match lib[major + 4..].find('.') {
        Some(dot) => lib[..major + 4 + dot].to_owned(),
        None => lib.to_owned(),
    }
}

fn truncated(shown: &str) -> Skip {
    Some(format!("file {shown} is truncated\n"))
}

/// One program header.
struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    align: u64,
}

fn segments(input: &mut Input, h: &Header, shown: &str) -> Result<Vec<Segment>, Skip> {
    let size: u64 = if h.class64 { 56 } else { 32 };
    if h.phoff > input.len {
        return Err(truncated(shown));
    }
    let table = input
        .bytes(h.phoff, h.phnum * size)
        .ok_or_else(|| truncated(shown))?;
    let order = Order(h.big_endian);
    let seg = |b: &[u8]| {
        let w = |at32: usize, at64: usize| {
            if h.class64 {
                order.u64(b, at64)
            } else {
                u64::from(order.u32(b, at32))
            }
        };
        Segment {
            kind: order.u32(b, 0),
            offset: w(4, 8),
            vaddr: w(8, 16),
            filesz: w(16, 32),
            align: w(28, 48),
        }
    };
    Ok(table.chunks_exact(size as usize).map(seg).collect())
}

/// glibc's `process_elf_file` for the file's class.
fn read_elf(
    arch: &Arch,
    input: &mut Input,
    h: &Header,
    shown: &str,
    verbose: bool,
) -> Result<Lib, Skip> {
    let wanted = if h.class64 { 2 } else { 1 };
    if h.class != wanted {
        return Err(verbose.then(|| format!("Unknown ELFCLASS in file {shown}.\n")));
    }
    let segs = segments(input, h, shown)?;
    let mut lib = Lib {
        flag: FLAG_ELF,
        soname: None,
        isa_level: 0,
    };
    let mut dynamic: Option<(u64, u64)> = None;
    for seg in &segs {
        match seg.kind {
            PT_DYNAMIC => {
                if dynamic.is_some() {
                    super::warn("more than one dynamic segment\n");
                }
                // glibc keeps the offset in an `unsigned int`.
                dynamic = Some((seg.offset & 0xffff_ffff, seg.filesz));
            }
            PT_INTERP => {
                if seg.offset > input.len {
                    return Err(truncated(shown));
                }
                let interp = input.cstr(seg.offset).map_err(|()| truncated(shown))?;
                if is_interpreter(&interp) {
                    lib.flag = FLAG_ELF_LIBC6;
                }
            }
            PT_GNU_PROPERTY if arch.reads_isa_level && seg.align == u64::from(wanted) * 4 => {
                if let Some(level) = isa_level(input, h, seg) {
                    lib.isa_level = level;
                }
            }
            _ => {}
        }
    }
    let Some((at, _)) = dynamic.filter(|(_, size)| *size != 0) else {
        return Err(None);
    };
    read_dynamic(input, h, &segs, at, shown, &mut lib)?;
    Ok(lib)
}

/// The dynamic linkers glibc knows, which make a library a libc6 one.
fn is_interpreter(path: &[u8]) -> bool {
    [
        "/lib/ld-linux-x86-64.so.2",
        "/lib/ld-linux.so.2",
        "/libx32/ld-linux-x32.so.2",
        "/lib64/ld-linux-x86-64.so.2",
        "/lib/ld-linux-aarch64.so.1",
        "/lib/ld-linux-aarch64_be.so.1",
        "/lib/ld-linux-aarch64_ilp32.so.1",
        "/lib/ld-linux-aarch64_be_ilp32.so.1",
        "/lib/ld-linux.so.3",
        "/lib/ld-linux-armhf.so.3",
    ]
    .iter()
    .any(|known| known.as_bytes() == path)
}

/// The dynamic entries from `at`, up to `DT_NULL`, as (tag, value).
fn dynamic_entries(
    input: &mut Input,
    h: &Header,
    at: u64,
    shown: &str,
) -> Result<Vec<(u64, u64)>, Skip> {
    let size: u64 = if h.class64 { 16 } else { 8 };
    let order = Order(h.big_endian);
    let mut out = Vec::new();
    for i in 0..MAX_DYNAMIC_ENTRIES {
        let b = input
            .bytes(at + i * size, size)
            .ok_or_else(|| truncated(shown))?;
        let (tag, val) = if h.class64 {
            (order.u64(&b, 0), order.u64(&b, 8))
        } else {
            // d_tag is signed: sign-extend so that a negative 32-bit tag stays unknown.
            (
                i64::from(order.u32(&b, 0) as i32) as u64,
                u64::from(order.u32(&b, 4)),
            )
        };
        if tag == 0 {
            return Ok(out);
        }
        out.push((tag, val));
    }
    Err(Some(format!(
        "{shown} has more than {MAX_DYNAMIC_ENTRIES} dynamic entries, not checked.\n"
    )))
}

fn read_dynamic(
    input: &mut Input,
    h: &Header,
    segs: &[Segment],
    at: u64,
    shown: &str,
    lib: &mut Lib,
) -> Result<(), Skip> {
    if at > input.len {
        return Err(truncated(shown));
    }
    let entries = dynamic_entries(input, h, at, shown)?;
    let Some(&(_, strtab)) = entries.iter().find(|(tag, _)| *tag == DT_STRTAB) else {
        return Err(None);
    };
    // The file offset of the string table: through the PT_LOAD segment holding it.
    let load = segs
        .iter()
        .find(|s| s.kind == PT_LOAD && strtab >= s.vaddr && strtab - s.vaddr < s.filesz);
    let bias = load.map_or(0, |s| s.vaddr.wrapping_sub(s.offset));
    let strings = strtab.wrapping_sub(bias);
    if strings > input.len {
        return Err(truncated(shown));
    }
    for &(tag, val) in &entries {
        if tag != DT_NEEDED && tag != DT_SONAME {
            continue;
        }
        let name_at = strings.checked_add(val).filter(|&p| p <= input.len);
        let name = name_at
            .ok_or(())
            .and_then(|p| input.cstr(p))
            .map_err(|()| truncated(shown))?;
        if tag == DT_NEEDED {
            if lib.flag == FLAG_ELF && (name == b"libc.so.6" || name == b"libm.so.6") {
                lib.flag = FLAG_ELF_LIBC6;
            }
        } else {
            let soname = String::from_utf8(name)
                .map_err(|_| Some(format!("{shown} has a SONAME that is not UTF-8.\n")))?;
            lib.soname = Some(soname);
        }
        if lib.soname.is_some() && lib.flag != FLAG_ELF {
            break;
        }
    }
    Ok(())
}

/// The x86 ISA level a `PT_GNU_PROPERTY` segment asks for (`GNU_PROPERTY_X86_ISA_1_NEEDED`,
/// the number of its highest bit), if it names one.
fn isa_level(input: &mut Input, h: &Header, seg: &Segment) -> Option<u32> {
    let order = Order(h.big_endian);
    let data = input.bytes(seg.offset, seg.filesz.min(MAX_NOTE_BYTES))?;
    let word = if h.class64 { 8 } else { 4 };
    let mut note = 0usize;
    while note + 12 < data.len() {
        let namesz = order.u32(&data, note) as usize;
        let descsz = order.u32(&data, note + 4) as usize;
        let kind = order.u32(&data, note + 8);
        if namesz == 4
            && kind == NT_GNU_PROPERTY_TYPE_0
            && data.get(note + 12..note + 16) == Some(b"GNU\0")
        {
            if descsz < 8 || !descsz.is_multiple_of(word) {
                return None;
            }
            let desc = data.get(note + 16..note + 16 + descsz)?;
            return x86_isa_level(order, desc, word);
        }
        let name_end = align_up(12 + namesz, seg.align as usize)?;
        note = note.checked_add(align_up(name_end.checked_add(descsz)?, seg.align as usize)?)?;
    }
    None
}

fn x86_isa_level(order: Order, desc: &[u8], word: usize) -> Option<u32> {
    let (mut at, mut last) = (0usize, 0u32);
    while desc.len() - at >= 8 {
        let kind = order.u32(desc, at);
        let size = order.u32(desc, at + 4) as usize;
        if kind < last || kind > GNU_PROPERTY_X86_ISA_1_NEEDED {
            return None;
        }
        at += 8;
        let data = desc.get(at..at.checked_add(size)?)?;
        last = kind;
        if kind == GNU_PROPERTY_X86_ISA_1_NEEDED {
            let needed = (size == 4)
                .then(|| order.u32(data, 0))
                .filter(|&v| v != 0)?;
            return Some(31 - needed.leading_zeros());
        }
        at = at.checked_add(align_up(size, word)?)?;
        if at > desc.len() {
            return None;
        }
    }
    None
}

fn align_up(n: usize, align: usize) -> Option<usize> {
    if align <= 1 {
        return Some(n);
    }
    Some(n.checked_add(align - 1)? / align * align)
}
