//! What ldconfig does between its options and its cache: the directory list (`ld.so.conf`
//! with its `include` globs, the command line, the system directories, hwcap and
//! glibc-hwcaps subdirectories), each directory's libraries by soname (the newest file
//! wins, a file beats a link), the soname links, and the entries handed to the cache.
//! glibc 2.36's `elf/ldconfig.c` with Debian 12's patches, step for step.

use std::fs;

use super::arch::{Arch, FLAG_ANY, FLAG_ELF, FLAG_LIBC4};
use super::cache::{Cache, Found, libcmp};
use super::elf;
use super::root::Root;
use super::{describe, warn};

/// Configuration files read in one run: each `include` glob may fan out to many files
/// that include more, and a file may include itself; glibc would recurse forever.
const MAX_CONF_FILES: usize = 4096;
/// Bytes read of one configuration file (real ones are a few lines).
const MAX_CONF_BYTES: u64 = 1 << 20;
/// Subdirectory name glibc 2.33+ looks in for per-ISA builds of a library.
const GLIBC_HWCAPS: &str = "glibc-hwcaps";

/// Debian's `local-ldconfig-ignore-ld.so.diff`: links named after a dynamic linker are
/// never replaced. Three names lack their comma there, so C joins them into one string
/// and none of the three is protected; kept as Debian builds it.
const LD_SONAMES: &[&str] = &[
    "ld-kfreebsd-x86-64.so.1",
    "ld-linux-aarch64.so.1",
    "ld-linux-aarch64_be.so.1",
    "ld-linux-armhf.so.3",
    "ld-linux-ia64.so.2",
    "ld-linux-mipsn8.so.1",
    "ld-linux-riscv64-lp64.so.1ld-linux-riscv64-lp64d.so.1ld-linux-x32.so.2",
    "ld-linux-x86-64.so.2",
    "ld-linux.so.2",
    "ld-linux.so.3",
    "ld.so.1",
    "ld64.so.1",
    "ld64.so.2",
];

/// What the options ask of a scan.
#[derive(Debug, Clone)]
pub(super) struct Options {
    pub(super) verbose: bool,
    /// Create and repair soname links (not `-X`).
    pub(super) link: bool,
    /// Build the cache (not `-N`/`-n`).
    pub(super) build_cache: bool,
    /// `HWCAP_IMPORTANT` or `LD_HWCAP_MASK`.
    pub(super) hwcap_mask: u64,
}

/// One directory to scan.
#[derive(Debug, Clone)]
struct Dir {
    /// As configured (links unresolved): the cache names libraries by it.
    path: String,
    /// The library type a `=libc6`-style suffix asks for.
    flag: i32,
    /// The resolved host path: two names for one directory are one directory.
    id: String,
    from_file: String,
    from_line: u32,
    /// The glibc-hwcaps subdirectory (index in the cache) this directory is.
    subdir: Option<usize>,
}

/// One library of a directory, by soname.
struct DirLib {
    name: String,
    soname: String,
    flag: i32,
    is_link: bool,
    isa_level: u32,
}

pub(super) struct Scanner<'a> {
    arch: &'static Arch,
    root: &'a Root,
    opts: Options,
    dirs: Vec<Dir>,
    conf_files: usize,
    pub(super) cache: Cache,
}

impl<'a> Scanner<'a> {
    pub(super) fn new(arch: &'static Arch, root: &'a Root, opts: Options) -> Scanner<'a> {
        Scanner {
            arch,
            root,
            opts,
            dirs: Vec::new(),
            conf_files: 0,
            cache: Cache::new(arch),
        }
    }

    /// glibc's `add_dir_1`: `line` is `DIR` or `DIR=TYPE`.
    pub(super) fn add_dir(&mut self, line: &str, from_file: &str, from_line: u32) {
        let (path, flag) = match line.split_once('=') {
            Some((path, kind)) => (path, lib_type(kind)),
            None => (line, FLAG_ANY),
        };
        let path = path.trim_end_matches(is_c_space).trim_end_matches('/');
        if path.is_empty() {
            return;
        }
        let id = match self
            .root
            .canon(path)
            .and_then(|id| fs::metadata(&id).map(|_| id))
        {
            Ok(id) => id,
            Err(e) => {
                if self.opts.verbose {
                    warn(&format!("Can't stat {path}: {}", describe(&e)));
                }
                return;
            }
        };
        let dir = Dir {
            path: path.to_owned(),
            flag,
            id: id.clone(),
            from_file: from_file.to_owned(),
            from_line,
            subdir: None,
        };
        if let Some(index) = self.add_single(dir, true) {
            self.add_glibc_hwcaps(index, &id);
        }
    }

    /// glibc's `add_single_dir`: the index of the new directory, or `None` when it is
    /// already listed (which then takes the new type).
    fn add_single(&mut self, dir: Dir, verbose: bool) -> Option<usize> {
        let Some(known) = self.dirs.iter_mut().find(|d| d.id == dir.id) else {
            self.dirs.push(dir);
            return Some(self.dirs.len() - 1);
        };
        if self.opts.verbose && verbose {
            warn(&format!("Path `{}' given more than once", dir.path));
            eprintln!(
                "(from {}:{} and {}:{})",
                dir.from_file, dir.from_line, known.from_file, known.from_line
            );
        }
        known.flag = dir.flag;
        None
    }

    /// Queues `<dir>/glibc-hwcaps/<name>/` for each subdirectory there.
    fn add_glibc_hwcaps(&mut self, index: usize, real: &str) {
        let Ok(list) = fs::read_dir(format!("{real}/{GLIBC_HWCAPS}")) else {
            return;
        };
        let mut names: Vec<String> = list
            .flatten()
            .filter(|e| !e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.') && !n.contains(':'))
            .collect();
        names.sort();
        let parent = self.dirs[index].clone();
        for name in names {
            let path = format!("{}/{GLIBC_HWCAPS}/{name}", parent.path);
            let Ok(id) = self.root.canon(&path) else {
                continue;
            };
            if !fs::metadata(&id).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            let subdir = Some(self.cache.subdir(&name));
            self.add_single(
                Dir {
                    path,
                    id,
                    subdir,
                    ..parent.clone()
                },
                false,
            );
        }
    }

    /// glibc's `parse_conf`: the configuration file `name` (inside the root).
    pub(super) fn parse_conf(&mut self, name: &str) {
        self.conf_files += 1;
        if self.conf_files > MAX_CONF_FILES {
            warn(&format!(
                "{name}: more than {MAX_CONF_FILES} configuration files, ignored"
            ));
            return;
        }
        let text = match self.root.canon(name).and_then(|real| read_conf(&real)) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                warn(&format!(
                    "Warning: ignoring configuration file that cannot be opened: {name}: {}",
                    describe(&e)
                ));
                return;
            }
        };
        // Only '\n' ends a line: a '\r' stays part of it, as with glibc's getline.
        for (i, line) in text.split('\n').enumerate() {
            self.conf_line(name, i as u32 + 1, line);
        }
    }

    fn conf_line(&mut self, name: &str, lineno: u32, line: &str) {
        let line = line.split('#').next().unwrap_or("");
        let line = line.trim_start_matches(is_c_space);
        if line.is_empty() {
            return;
        }
        let keyword = |word: &str| {
            line.get(..word.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(word))
                && matches!(line.as_bytes().get(word.len()), Some(b' ' | b'\t'))
        };
        if line.starts_with("include") && keyword("include") {
            for pattern in line[8..].split([' ', '\t']).filter(|p| !p.is_empty()) {
                self.include(name, pattern);
            }
        } else if keyword("hwcap") {
            warn(&format!("{name}:{lineno}: hwcap directive ignored"));
        } else {
            self.add_dir(line, name, lineno);
        }
    }

    /// glibc's `parse_conf_include`: every file matching `pattern`, in C collation order.
    fn include(&mut self, config: &str, pattern: &str) {
        let pattern = match config.rfind('/') {
            Some(slash) if !pattern.starts_with('/') => format!("{}/{pattern}", &config[..slash]),
            _ => pattern.to_owned(),
        };
        for file in super::glob::expand(self.root, &pattern) {
            self.parse_conf(&file);
        }
    }

    /// The system directories, after the configuration.
    pub(super) fn add_system_dirs(&mut self) {
        for dir in self.arch.system_dirs() {
            self.add_dir(&dir, "<builtin>", 0);
        }
    }

    /// glibc's `search_dirs`: each directory, including those found while scanning.
    pub(super) fn search_dirs(&mut self) {
        let mut i = 0;
        while i < self.dirs.len() {
            let dir = self.dirs[i].clone();
            self.search_dir(&dir);
            i += 1;
        }
    }

    /// glibc's `path_hwcap`: the legacy hwcap bits the trailing components of a path name.
    fn path_hwcap(&self, path: &str) -> u64 {
        let mut hwcap = 0u64;
        for part in path.rsplit('/') {
            let bit = self
                .arch
                .hwcap_bit(part)
                .or_else(|| self.arch.platform_bit(part));
            let bit = match bit {
                Some(bit) => bit,
                None if part == "tls" => super::arch::TLS_HWCAP_BIT,
                None => break,
            };
            hwcap = hwcap.wrapping_add(1u64 << bit);
        }
        hwcap
    }

    fn search_dir(&mut self, dir: &Dir) {
        let hwcap = if dir.subdir.is_none() {
            self.path_hwcap(&dir.path)
        } else {
            0
        };
        if self.opts.verbose {
            let caps = match dir.subdir {
                Some(i) => format!(" (hwcap: \"{}\")", self.cache.subdir_name(i)),
                None if hwcap != 0 => format!(" (hwcap: {hwcap:#018x})"),
                None => String::new(),
            };
            println!(
                "{}:{caps} (from {}:{})",
                dir.path, dir.from_file, dir.from_line
            );
        }
        let listing = self.root.canon(&dir.path).and_then(|real| {
            let names = fs::read_dir(&real)?;
            Ok((real, names))
        });
        let (real_dir, names) = match listing {
            Ok(found) => found,
            Err(e) => {
                if self.opts.verbose {
                    warn(&format!(
                        "Can't open directory {}: {}",
                        dir.path,
                        describe(&e)
                    ));
                }
                return;
            }
        };
        let mut entries: Vec<(String, fs::FileType)> = names
            .flatten()
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.file_type().ok()?)))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut libs: Vec<DirLib> = Vec::new();
        for (name, kind) in entries {
            if let Some(lib) = self.probe(dir, &real_dir, &name, kind) {
                self.keep_newest(&mut libs, lib, dir);
            }
        }
        // glibc keeps the list newest-first.
        for lib in libs.iter().rev() {
            self.register(dir, &real_dir, lib, hwcap);
        }
    }

    /// One directory entry: a library to consider, a subdirectory to queue, or nothing.
    fn probe(
        &mut self,
        dir: &Dir,
        real_dir: &str,
        name: &str,
        kind: fs::FileType,
    ) -> Option<DirLib> {
        if !(kind.is_symlink() || kind.is_file() || kind.is_dir()) {
            return None;
        }
        let hwcap_dir =
            dir.subdir.is_none() && self.arch.is_hwcap_platform(name, self.opts.hwcap_mask);
        if !is_dso(name) && (kind.is_file() || (dir.subdir.is_none() && !hwcap_dir)) {
            return None;
        }
        if is_prelink_temp(name) {
            return None;
        }
        let file = format!("{}/{name}", dir.path);
        let real_file = format!("{real_dir}/{name}");
        let mut is_link = kind.is_symlink();
        let (target, is_dir) = if is_link {
            // Where the link leads, resolved inside the root (glibc stats it).
            let found = self
                .root
                .canon(&file)
                .and_then(|t| fs::metadata(&t).map(|m| (t, m)));
            match found {
                Ok((target, meta)) => (target, meta.is_dir()),
                Err(e) => {
                    if self.opts.verbose {
                        warn(&format!("Cannot stat {file}: {}", describe(&e)));
                    }
                    // A stale link to a versioned library goes.
                    if self.opts.link && name.contains(".so.") {
                        let _ = fs::remove_file(&real_file);
                    }
                    return None;
                }
            }
        } else {
            (real_file.clone(), kind.is_dir())
        };
        if hwcap_dir && is_dir {
            let sub = Dir {
                path: file,
                id: target,
                subdir: None,
                ..dir.clone()
            };
            self.add_single(sub, false);
            return None;
        }
        if !kind.is_file() && !is_link {
            return None;
        }
        let verbose = self.opts.verbose;
        let lib = match elf::process_file(self.arch, &target, &file, name, is_link, verbose) {
            Ok(lib) => lib,
            Err(message) => {
                if let Some(message) = message {
                    warn(&message);
                }
                return None;
            }
        };
        let mut soname = lib
            .soname
            .unwrap_or_else(|| implicit_soname(name, lib.flag));
        if is_link && name != soname && !(name.ends_with(".so") && soname.starts_with(name)) {
            // A link that is neither the soname nor the ld(1) `.so` link is another
            // implementation of the library.
            is_link = false;
        }
        if is_link {
            soname = name.to_owned();
        }
        let mut flag = lib.flag;
        if flag == FLAG_ELF && matches!(dir.flag, 2 | 3) {
            flag = dir.flag;
        }
        if self.opts.verbose {
            wrong_directory(flag, dir.flag, &file);
        }
        Some(DirLib {
            name: name.to_owned(),
            soname,
            flag,
            is_link,
            isa_level: lib.isa_level,
        })
    }

    /// Adds `new` to `libs` unless a library of its soname is there; if one is, the newer
    /// name wins (a file beats a link).
    fn keep_newest(&self, libs: &mut Vec<DirLib>, new: DirLib, dir: &Dir) {
        let Some(old) = libs.iter_mut().find(|l| l.soname == new.soname) else {
            libs.push(new);
            return;
        };
        let newer = (!new.is_link && old.is_link)
            || (new.is_link == old.is_link
                && libcmp(&old.name, &new.name, self.arch.signed_char).is_lt());
        if !newer {
            return;
        }
        if old.flag != new.flag {
            if (old.flag == FLAG_ELF && matches!(new.flag, 2 | 3))
                || (matches!(old.flag, 2 | 3) && new.flag == FLAG_ELF)
            {
                old.flag = new.flag;
            } else {
                warn(&format!(
                    "libraries {} and {} in directory {} have same soname but different type.",
                    old.name, new.name, dir.path
                ));
            }
        }
        old.name = new.name;
        old.is_link = new.is_link;
        old.isa_level = new.isa_level;
    }

    /// The soname link of a library and its cache entry.
    fn register(&mut self, dir: &Dir, real_dir: &str, lib: &DirLib, hwcap: u64) {
        let file = match dir.subdir {
            None => {
                if !lib.is_link {
                    self.create_links(real_dir, &dir.path, &lib.name, &lib.soname);
                }
                &lib.soname
            }
            Some(_) => {
                if self.opts.verbose {
                    println!("\t{} -> {}", lib.soname, lib.name);
                }
                &lib.name
            }
        };
        if self.opts.build_cache {
            let found = Found {
                flags: lib.flag,
                isa_level: lib.isa_level,
                hwcap,
                subdir: dir.subdir,
            };
            self.cache.add(&dir.path, file, &lib.soname, found);
        }
    }

    /// The file `path` names, resolved inside the root, if it exists.
    fn resolve(&self, path: &str) -> Option<String> {
        let real = self.root.canon(path).ok()?;
        fs::symlink_metadata(&real).ok()?;
        Some(real)
    }

    /// glibc's `create_links`: `<dir>/<soname>` made a link to `libname` unless it
    /// already leads there, is no link, or is a dynamic linker's (Debian).
    pub(super) fn create_links(&self, real_dir: &str, dir: &str, libname: &str, soname: &str) {
        let full_lib = format!("{dir}/{libname}");
        let full_so = format!("{dir}/{soname}");
        let real_so = format!("{real_dir}/{soname}");
        let so_is_link = fs::symlink_metadata(&real_so).is_ok_and(|m| m.file_type().is_symlink());
        let (mut do_link, mut do_remove) = (true, true);
        if let Some(so) = self.resolve(&full_so) {
            let Some(lib) = self.resolve(&full_lib) else {
                warn(&format!("Can't stat {full_lib}\n"));
                return;
            };
            if LD_SONAMES.contains(&soname) {
                if self.opts.verbose {
                    warn(&format!("{full_lib} is the dynamic linker, ignoring\n"));
                }
                do_link = false;
            }
            if lib == so {
                do_link = false;
            } else if !so_is_link && fs::symlink_metadata(&real_so).is_ok() {
                warn(&format!("{full_so} is not a symbolic link\n"));
                (do_link, do_remove) = (false, false);
            }
        } else if !so_is_link {
            do_remove = false;
        }
        if self.opts.verbose {
            print!("\t{soname} -> {libname}");
        }
        if !(do_link && self.opts.link) {
            if self.opts.verbose {
                println!();
            }
            return;
        }
        if do_remove && fs::remove_file(&real_so).is_err() {
            warn(&format!("Can't unlink {full_so}"));
            do_link = false;
        }
        if do_link && symlink(libname, &real_so).is_err() {
            warn(&format!("Can't link {full_so} to {libname}"));
            do_link = false;
        }
        if self.opts.verbose {
            println!("{}", if do_link { " (changed)" } else { " (SKIPPED)" });
        }
    }

    /// glibc's `manual_link` (`-l`): the soname link of one library named on the command
    /// line.
    pub(super) fn manual_link(&self, library: &str) {
        let (path, libname) = match library.rfind('/') {
            Some(0) => ("/".to_owned(), &library[1..]),
            Some(slash) => (library[..slash].to_owned(), &library[slash + 1..]),
            None => (".".to_owned(), library),
        };
        let path = match path.starts_with('/') {
            true => path,
            false => match std::env::current_dir() {
                Ok(cwd) => format!("{}/{path}", cwd.to_string_lossy().trim_end_matches('/')),
                Err(_) => path,
            },
        };
        let real_path = match self.root.canon(&path) {
            Ok(real) => real,
            Err(e) => return warn(&format!("Can't find {path}: {}", describe(&e))),
        };
        let real_lib = format!("{}/{libname}", real_path.trim_end_matches('/'));
        match fs::symlink_metadata(&real_lib) {
            Err(e) => return warn(&format!("Cannot lstat {library}: {}", describe(&e))),
            Ok(meta) if !meta.is_file() => {
                return warn(&format!(
                    "Ignored file {library} since it is not a regular file."
                ));
            }
            Ok(_) => {}
        }
        match elf::process_file(
            self.arch,
            &real_lib,
            library,
            libname,
            false,
            self.opts.verbose,
        ) {
            Ok(lib) => {
                let soname = lib
                    .soname
                    .unwrap_or_else(|| implicit_soname(libname, lib.flag));
                self.create_links(real_path.trim_end_matches('/'), &path, libname, &soname);
            }
            Err(message) => {
                if let Some(message) = message {
                    warn(&message);
                }
                warn(&format!(
                    "No link created since soname could not be found for {library}"
                ));
            }
        }
    }
}

fn read_conf(real: &str) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    fs::File::open(real)?
        .take(MAX_CONF_BYTES)
        .read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `std::fs::soft_link` is the only stable symlink call that also exists on WASI.
#[allow(deprecated)]
fn symlink(target: &str, path: &str) -> std::io::Result<()> {
    fs::soft_link(target, path)
}

/// C's `isspace` in the C locale.
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// The flag of a `DIR=TYPE` suffix.
fn lib_type(kind: &str) -> i32 {
    match kind {
        "libc4" => FLAG_LIBC4,
        "libc5" => 2,
        "libc6" | "glibc2" => 3,
        _ => {
            warn(&format!("{kind} is not a known library type"));
            FLAG_ANY
        }
    }
}

/// glibc's `_dl_is_dso`: `lib*.so*`, `ld-*.so*`, `ld.so.*`, `ld64.so.*`.
fn is_dso(name: &str) -> bool {
    ((name.starts_with("lib") || name.starts_with("ld-")) && name.contains(".so"))
        || name.starts_with("ld.so.")
        || name.starts_with("ld64.so.")
}

/// The temporary files prelink leaves (`*.#prelink#`, `*.#prelink#.XXXXXX`).
fn is_prelink_temp(name: &str) -> bool {
    name.ends_with(".#prelink#")
        || (name.len() >= 17 && name.as_bytes()[name.len() - 17..].starts_with(b".#prelink#."))
}

/// The soname of a library without `DT_SONAME`: its name (an a.out one's up to its major
/// version).
fn implicit_soname(name: &str, flag: i32) -> String {
    if flag & 0xff == FLAG_LIBC4 {
        elf::aout_soname(name)
    } else {
        name.to_owned()
    }
}

fn wrong_directory(flag: i32, dir_flag: i32, file: &str) {
    let kind = match flag {
        2 => "libc5",
        3 => "libc6",
        FLAG_LIBC4 => "libc4",
        _ => return,
    };
    if flag != dir_flag && dir_flag != FLAG_ANY {
        warn(&format!("{kind} library {file} in wrong directory"));
    }
}
