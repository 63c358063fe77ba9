//! `/etc/ld.so.cache` in glibc 2.36's format (`glibc-ld.so.cache1.1`, the "new" format
//! alone, as ldconfig writes it by default): the header, one entry per library in the
//! order ld.so's binary search expects, the tail-merged string table, and the extension
//! directory (generator string, glibc-hwcaps subdirectory names). Also `-p`, which reads
//! a cache back (hostile input: every offset is checked).

use std::cmp::Ordering;
use std::collections::BTreeSet;

use super::arch::{self, Arch};

const MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const HEADER_BYTES: usize = 48;
const ENTRY_BYTES: usize = 24;
const OLD_HEADER_BYTES: usize = 16;
const OLD_ENTRY_BYTES: usize = 12;
/// `cache_extension_magic`.
const EXTENSION_MAGIC: u32 = -358_342_284i32 as u32;
/// Size of the extension directory with every known section (`cache_extension_size`).
const EXTENSION_DIRECTORY_BYTES: u32 = 8 + 2 * 16;
/// `DL_CACHE_HWCAP_EXTENSION`: the hwcap field indexes the glibc-hwcaps section.
const HWCAP_EXTENSION: u64 = 1 << 62;
/// `DL_CACHE_HWCAP_ISA_LEVEL_MASK`: the ISA levels the hwcap field has room for.
const ISA_LEVEL_MASK: u32 = (1 << 10) - 1;
/// The generator kiln writes in the extension section (glibc writes its own version).
pub(super) const GENERATOR: &str = "ldconfig (kiln) glibc 2.36 cache format";

/// One library in the cache.
#[derive(Debug, Clone)]
struct Entry {
    /// The name ld.so looks up (the soname).
    lib: String,
    /// Where it is.
    path: String,
    flags: i32,
    isa_level: u32,
    hwcap: u64,
    /// Index into [`Cache::subdirs`] for a glibc-hwcaps entry.
    subdir: Option<usize>,
}

/// What a directory scan knows of a library besides its names.
#[derive(Debug, Clone, Copy)]
pub(super) struct Found {
    pub(super) flags: i32,
    pub(super) isa_level: u32,
    /// The legacy hwcap bits of its directory.
    pub(super) hwcap: u64,
    /// The glibc-hwcaps subdirectory it is in.
    pub(super) subdir: Option<usize>,
}

/// A glibc-hwcaps subdirectory name, and whether any entry uses it.
#[derive(Debug)]
struct Subdir {
    name: String,
    used: bool,
}

/// The cache being built.
#[derive(Debug)]
pub(super) struct Cache {
    arch: &'static Arch,
    entries: Vec<Entry>,
    subdirs: Vec<Subdir>,
    /// Every string of the string table (glibc interns subdirectory names even unused).
    strings: BTreeSet<String>,
}

impl Cache {
    pub(super) fn new(arch: &'static Arch) -> Cache {
        Cache {
            arch,
            entries: Vec::new(),
            subdirs: Vec::new(),
            strings: BTreeSet::new(),
        }
    }

    /// The index of a glibc-hwcaps subdirectory name (glibc's
    /// `new_glibc_hwcaps_subdirectory`).
    pub(super) fn subdir(&mut self, name: &str) -> usize {
        self.strings.insert(name.to_owned());
        if let Some(i) = self.subdirs.iter().position(|s| s.name == name) {
            return i;
        }
        self.subdirs.push(Subdir {
            name: name.to_owned(),
            used: false,
        });
        self.subdirs.len() - 1
    }

    pub(super) fn subdir_name(&self, index: usize) -> &str {
        &self.subdirs[index].name
    }

    /// glibc's `add_to_cache`: `soname` found as `file` in `dir` (`path` holds the
    /// directory and file, joined here).
    pub(super) fn add(&mut self, dir: &str, file: &str, soname: &str, lib: Found) {
        let path = format!("{dir}/{file}");
        self.strings.insert(path.clone());
        self.strings.insert(soname.to_owned());
        if let Some(i) = lib.subdir {
            self.subdirs[i].used = true;
        }
        let entry = Entry {
            lib: soname.to_owned(),
            path,
            flags: lib.flags,
            isa_level: lib.isa_level,
            hwcap: lib.hwcap,
            subdir: lib.subdir,
        };
        // glibc inserts each entry after the ones that do not sort after it: a stable
        // sort of the entries in the order they were added.
        let at = self
            .entries
            .partition_point(|e| self.compare(e, &entry) != Ordering::Greater);
        self.entries.insert(at, entry);
    }

    /// glibc's `compare`: names in descending `_dl_cache_libcmp` order; for one name,
    /// larger flags first, glibc-hwcaps entries first (by subdirectory name), then the
    /// most specific legacy hwcap.
    fn compare(&self, a: &Entry, b: &Entry) -> Ordering {
        let by_name = libcmp(&b.lib, &a.lib, self.arch.signed_char);
        if by_name != Ordering::Equal {
            return by_name;
        }
        let subdirs = match (a.subdir, b.subdir) {
            (Some(x), Some(y)) => self.subdirs[x]
                .name
                .as_bytes()
                .cmp(self.subdirs[y].name.as_bytes()),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        b.flags
            .cmp(&a.flags)
            .then(subdirs)
            .then(b.hwcap.count_ones().cmp(&a.hwcap.count_ones()))
            .then(b.hwcap.cmp(&a.hwcap))
    }

    /// The cache file's bytes (glibc's `save_cache` with the new format).
    pub(super) fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let table = StringTable::new(&self.strings)?;
        let mut order: Vec<usize> = (0..self.subdirs.len())
            .filter(|&i| self.subdirs[i].used)
            .collect();
        order.sort_by(|&x, &y| self.subdirs[x].name.cmp(&self.subdirs[y].name));
        let index_of = |i: usize| order.iter().position(|&j| j == i).unwrap_or(0) as u64;
        let w = Writer {
            big_endian: self.arch.big_endian,
        };
        let count = u32::try_from(self.entries.len()).map_err(|_| "too many libraries")?;
        let str_offset = (HEADER_BYTES + ENTRY_BYTES * self.entries.len()) as u32;
        let strings_end = str_offset as usize + table.bytes.len();
        let extension_offset = strings_end.next_multiple_of(4) as u32;
        let mut out = Vec::with_capacity(strings_end + 128);
        out.extend_from_slice(MAGIC);
        w.u32(&mut out, count);
        w.u32(&mut out, table.bytes.len() as u32);
        // cache_file_new_flags_endian_{little,big}, then padding.
        out.extend_from_slice(&[if self.arch.big_endian { 3 } else { 2 }, 0, 0, 0]);
        w.u32(&mut out, extension_offset);
        out.extend_from_slice(&[0; 12]);
        for e in &self.entries {
            let hwcap = match e.subdir {
                None => e.hwcap,
                Some(i) => {
                    if e.isa_level > ISA_LEVEL_MASK {
                        return Err(format!(
                            "{}: ISA level is too high ({} > {ISA_LEVEL_MASK})",
                            e.path, e.isa_level
                        ));
                    }
                    HWCAP_EXTENSION | (u64::from(e.isa_level) << 32) | index_of(i)
                }
            };
            w.u32(&mut out, e.flags as u32);
            w.u32(&mut out, str_offset + table.offset(&e.lib));
            w.u32(&mut out, str_offset + table.offset(&e.path));
            w.u32(&mut out, 0);
            w.u64(&mut out, hwcap);
        }
        out.extend_from_slice(&table.bytes);
        out.resize(extension_offset as usize, 0);
        let hwcaps: Vec<u32> = order
            .iter()
            .map(|&i| str_offset + table.offset(&self.subdirs[i].name))
            .collect();
        write_extensions(&w, &mut out, extension_offset, &hwcaps);
        Ok(out)
    }
}

/// The extension directory, the glibc-hwcaps index array and the generator string.
fn write_extensions(w: &Writer, out: &mut Vec<u8>, at: u32, hwcaps: &[u32]) {
    let hwcaps_offset = at + EXTENSION_DIRECTORY_BYTES;
    let hwcaps_size = 4 * hwcaps.len() as u32;
    let generator_offset = if hwcaps.is_empty() {
        hwcaps_offset - 16
    } else {
        hwcaps_offset + hwcaps_size
    };
    w.u32(out, EXTENSION_MAGIC);
    w.u32(out, if hwcaps.is_empty() { 1 } else { 2 });
    for value in [0, 0, generator_offset, GENERATOR.len() as u32] {
        w.u32(out, value);
    }
    if !hwcaps.is_empty() {
        for value in [1, 0, hwcaps_offset, hwcaps_size] {
            w.u32(out, value);
        }
    }
    for &offset in hwcaps {
        w.u32(out, offset);
    }
    out.extend_from_slice(GENERATOR.as_bytes());
}

/// Integers in the cache's byte order (the architecture's).
struct Writer {
    big_endian: bool,
}

impl Writer {
    fn u32(&self, out: &mut Vec<u8>, v: u32) {
        out.extend_from_slice(&if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }
    fn u64(&self, out: &mut Vec<u8>, v: u64) {
        out.extend_from_slice(&if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }
}

/// glibc's string table: strings sorted so that one that ends another follows it and
/// shares its bytes (tail merging).
struct StringTable<'a> {
    offsets: Vec<(&'a str, u32)>,
    bytes: Vec<u8>,
}

impl<'a> StringTable<'a> {
    fn new(strings: &'a BTreeSet<String>) -> Result<StringTable<'a>, String> {
        let mut sorted: Vec<&str> = strings.iter().map(String::as_str).collect();
        // Reverse lexicographic order of the reversed strings: a suffix right after the
        // longer strings it ends.
        sorted.sort_by(|l, r| r.bytes().rev().cmp(l.bytes().rev()));
        let mut offsets: Vec<(&str, u32)> = Vec::with_capacity(sorted.len());
        let mut end = 0u32;
        for (i, s) in sorted.iter().enumerate() {
            let len = u32::try_from(s.len()).map_err(|_| "String table string is too long")?;
            let offset = match i.checked_sub(1).map(|p| (sorted[p], offsets[p].1)) {
                Some((prev, at)) if prev.ends_with(s) => at + prev.len() as u32 - len,
                _ => end,
            };
            end = end.max(
                offset
                    .checked_add(len + 1)
                    .ok_or("String table is too large")?,
            );
            offsets.push((s, offset));
        }
        let mut bytes = vec![0; end as usize];
        for (s, at) in &offsets {
            bytes[*at as usize..*at as usize + s.len()].copy_from_slice(s.as_bytes());
        }
        offsets.sort_unstable();
        Ok(StringTable { offsets, bytes })
    }

    fn offset(&self, s: &str) -> u32 {
        let i = self
            .offsets
            .binary_search_by(|(k, _)| (*k).cmp(s))
            .unwrap_or(0);
        self.offsets.get(i).map_or(0, |(_, at)| *at)
    }
}

/// glibc's `_dl_cache_libcmp`: digit runs compare as numbers, other bytes as C `char`s.
pub(super) fn libcmp(a: &str, b: &str, signed_char: bool) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let at = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
    let ch = |c: u8| {
        if signed_char {
            i32::from(c as i8)
        } else {
            i32::from(c)
        }
    };
    let (mut i, mut j) = (0, 0);
    while at(a, i) != 0 {
        let (x, y) = (at(a, i), at(b, j));
        match (x.is_ascii_digit(), y.is_ascii_digit()) {
            (true, true) => {
                let (v1, n1) = number(a, i);
                let (v2, n2) = number(b, j);
                (i, j) = (n1, n2);
                if v1 != v2 {
                    return v1.wrapping_sub(v2).cmp(&0);
                }
            }
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            _ if x != y => return (ch(x) - ch(y)).cmp(&0),
            _ => (i, j) = (i + 1, j + 1),
        }
    }
    (ch(at(a, i)) - ch(at(b, j))).cmp(&0)
}

/// The digit run at `i` as C's `int` arithmetic computes it (wrapping), and its end.
fn number(s: &[u8], mut i: usize) -> (i32, usize) {
    let mut v = 0i32;
    while let Some(d) = s.get(i).filter(|d| d.is_ascii_digit()) {
        v = v.wrapping_mul(10).wrapping_add(i32::from(d - b'0'));
        i += 1;
    }
    (v, i)
}

/// `ldconfig -p`: the cache at `bytes` (named `name`) listed as glibc lists it.
pub(super) fn print(arch: &Arch, name: &str, bytes: &[u8], out: &mut String) -> Result<(), String> {
    if bytes.is_empty() {
        return Ok(());
    }
    let not_cache = || "File is not a cache file.\n".to_owned();
    let r = Reader {
        bytes,
        big_endian: arch.big_endian,
    };
    let new_at = if bytes.starts_with(OLD_MAGIC) {
        let nlibs = r.u32(12).ok_or_else(not_cache)? as usize;
        if (bytes.len() - OLD_HEADER_BYTES) / OLD_ENTRY_BYTES < nlibs {
            return Err(not_cache());
        }
        let at = (OLD_HEADER_BYTES + nlibs * OLD_ENTRY_BYTES).next_multiple_of(8);
        let embedded = bytes.len() > at + HEADER_BYTES && bytes[at..].starts_with(MAGIC);
        if !embedded {
            return print_old(&r, name, nlibs, out);
        }
        at
    } else if bytes.starts_with(MAGIC) {
        0
    } else {
        return Err(not_cache());
    };
    print_new(&r, name, new_at, out)
}

/// Bounds-checked reads of a cache file.
struct Reader<'a> {
    bytes: &'a [u8],
    big_endian: bool,
}

impl Reader<'_> {
    fn u32(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
    fn u64(&self, at: usize) -> Option<u64> {
        let b: [u8; 8] = self.bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }
    /// The NUL-terminated string at `base + offset` (`?` when it leaves the file).
    fn string(&self, base: usize, offset: u32) -> String {
        let start = base.saturating_add(offset as usize);
        let Some(rest) = self.bytes.get(start..) else {
            return "?".into();
        };
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        String::from_utf8_lossy(&rest[..end]).into_owned()
    }
}

fn print_old(r: &Reader, name: &str, nlibs: usize, out: &mut String) -> Result<(), String> {
    let strings = OLD_HEADER_BYTES + nlibs * OLD_ENTRY_BYTES;
    out.push_str(&format!("{nlibs} libs found in cache `{name}'\n"));
    for i in 0..nlibs {
        let at = OLD_HEADER_BYTES + i * OLD_ENTRY_BYTES;
        let field = |k: usize| r.u32(at + 4 * k).unwrap_or(0);
        print_entry(
            out,
            &r.string(strings, field(1)),
            field(0) as i32,
            0,
            None,
            &r.string(strings, field(2)),
        );
    }
    Ok(())
}

fn print_new(r: &Reader, name: &str, base: usize, out: &mut String) -> Result<(), String> {
    let flags = r.bytes.get(base + 28).copied().unwrap_or(0);
    let endian_ok = flags == 0 || (flags & 3) == if r.big_endian { 3 } else { 2 };
    if !endian_ok {
        return Err("Cache file has wrong endianness.\n".into());
    }
    let nlibs = r.u32(base + 20).ok_or("File is not a cache file.\n")? as usize;
    let malformed = || format!("Malformed extension data in cache file {name}\n");
    let ext = Extensions::load(r, base).ok_or_else(malformed)?;
    out.push_str(&format!("{nlibs} libs found in cache `{name}'\n"));
    for i in 0..nlibs {
        let at = base + HEADER_BYTES + i * ENTRY_BYTES;
        let (Some(flags), Some(key), Some(value), Some(hwcap)) =
            (r.u32(at), r.u32(at + 4), r.u32(at + 8), r.u64(at + 16))
        else {
            break;
        };
        let subdir = ext.hwcaps_name(r, hwcap);
        print_entry(
            out,
            &r.string(base, key),
            flags as i32,
            hwcap,
            subdir.as_deref(),
            &r.string(base, value),
        );
    }
    if let Some(generator) = ext.generator {
        out.push_str("Cache generated by: ");
        out.push_str(&String::from_utf8_lossy(generator));
        out.push('\n');
    }
    Ok(())
}

fn print_entry(
    out: &mut String,
    lib: &str,
    flags: i32,
    hwcap: u64,
    subdir: Option<&str>,
    path: &str,
) {
    let caps = match subdir {
        Some(name) => format!(", hwcap: \"{name}\""),
        None if hwcap != 0 => format!(", hwcap: {hwcap:#018x}"),
        None => String::new(),
    };
    out.push_str(&format!(
        "\t{lib} ({}{caps}) => {path}\n",
        arch::describe_flags(flags)
    ));
}

/// The extension sections of a cache (glibc's `cache_extension_load`).
struct Extensions<'a> {
    generator: Option<&'a [u8]>,
    /// The glibc-hwcaps section: string table offsets, by index.
    hwcaps: Option<&'a [u8]>,
}

impl<'a> Extensions<'a> {
    fn load(r: &Reader<'a>, base: usize) -> Option<Extensions<'a>> {
        let mut ext = Extensions {
            generator: None,
            hwcaps: None,
        };
        let at = r.u32(base + 32)? as usize;
        if at == 0 {
            return Some(ext);
        }
        if !at.is_multiple_of(4) || r.u32(at)? != EXTENSION_MAGIC {
            return None;
        }
        let count = r.u32(at + 4)? as usize;
        let sections_end = at.checked_add(8)?.checked_add(count.checked_mul(16)?)?;
        if sections_end > r.bytes.len() {
            return None;
        }
        for i in 0..count {
            let s = at + 8 + 16 * i;
            let (tag, offset, size) = (r.u32(s)?, r.u32(s + 8)? as usize, r.u32(s + 12)? as usize);
            let data = r.bytes.get(offset..offset.checked_add(size)?)?;
            match tag {
                0 => ext.generator = Some(data),
                1 if size != 0 && offset % 4 == 0 && size % 4 == 0 => ext.hwcaps = Some(data),
                _ => {}
            }
        }
        Some(ext)
    }

    /// The subdirectory name of a glibc-hwcaps entry's hwcap value.
    fn hwcaps_name(&self, r: &Reader, hwcap: u64) -> Option<String> {
        let extension = ((hwcap >> 32) & !u64::from(ISA_LEVEL_MASK)) == HWCAP_EXTENSION >> 32;
        let array = self.hwcaps.filter(|_| extension)?;
        let index = (hwcap & 0xffff_ffff) as usize;
        let at = index.checked_mul(4)?;
        let b: [u8; 4] = array.get(at..at + 4)?.try_into().ok()?;
        let offset = if r.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        };
        ((offset as usize) < r.bytes.len()).then(|| r.string(0, offset))
    }
}
