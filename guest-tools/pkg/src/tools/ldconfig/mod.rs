//! `ldconfig`, as Debian 12's glibc 2.36 builds it, for the image it runs in: soname links
//! in the directories of `/etc/ld.so.conf` (with its `include` globs) and the trusted
//! ones, and `/etc/ld.so.cache` byte for byte as glibc writes it (bar the generator text
//! in its extension section, which names kiln). libc-bin's trigger runs it after every
//! package with a shared library; scripts run `ldconfig` after installing one by hand.
//!
//! Options: `-v`/`--verbose`, `-N`, `-X`, `-n`, `-r ROOT`, `-C CACHE`, `-f CONF`, `-p`,
//! `-l`, `-i` (there is no auxiliary cache: ldconfig's is keyed on inode numbers and
//! change times, which mean nothing in an image layer), `-c new`. The old cache formats
//! (`-c old`, `-c compat`) are refused by name. Unknown options fail as argp fails them.

mod arch;
mod cache;
mod elf;
mod glob;
mod root;
mod scan;

use std::fs;
use std::io::Write as _;

use arch::Arch;
use root::Root;
use scan::{Options, Scanner};

const TOOL: &str = "ldconfig";
/// argp's exit status for a usage error (`EX_USAGE`).
const EXIT_USAGE: i32 = 64;
/// Bytes of an existing cache `-p` reads: glibc's own are tens of kilobytes.
const MAX_CACHE_BYTES: u64 = 64 << 20;

/// `ldconfig: message` on standard error (glibc's `error (0, 0, ...)`).
fn warn(msg: &str) {
    let _ = std::io::stdout().flush();
    crate::util::warn(TOOL, msg);
}

use crate::util::describe;

/// What the command line asks for.
#[derive(Debug, Default)]
struct Args {
    print: bool,
    verbose: bool,
    no_cache: bool,
    no_links: bool,
    only_cline: bool,
    manual: bool,
    root: Option<String>,
    cache: Option<String>,
    conf: Option<String>,
    rest: Vec<String>,
}

/// A usage error, worded as argp words it.
enum Usage {
    Exit(i32),
    Message(String),
}

pub(crate) fn main(_name: &str, args: Vec<String>) -> i32 {
    let args = match parse(args) {
        Ok(args) => args,
        Err(Usage::Exit(code)) => return code,
        Err(Usage::Message(msg)) => {
            warn(&msg);
            eprintln!("Try `ldconfig --help' or `ldconfig --usage' for more information.");
            return EXIT_USAGE;
        }
    };
    let arch = match arch::detect() {
        Ok(arch) => arch,
        Err(msg) => {
            warn(&msg);
            return 1;
        }
    };
    match run(arch, &args) {
        Ok(()) => 0,
        Err(msg) => {
            warn(&msg);
            1
        }
    }
}

/// Options as argp takes them: clustered short ones, an argument attached or next,
/// long ones by unique prefix, `--` ending them, operands anywhere.
fn parse(argv: Vec<String>) -> Result<Args, Usage> {
    let mut args = Args::default();
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        if arg == "--" {
            args.rest.extend(it.by_ref());
        } else if let Some(long) = arg.strip_prefix("--") {
            long_option(&mut args, long, &mut it)?;
        } else if arg.len() > 1 && arg.starts_with('-') {
            short_options(&mut args, &arg[1..], &mut it)?;
        } else {
            args.rest.push(arg);
        }
    }
    Ok(args)
}

const LONG: &[(&str, char)] = &[
    ("print-cache", 'p'),
    ("verbose", 'v'),
    ("format", 'c'),
    ("ignore-aux-cache", 'i'),
    ("help", '?'),
    ("usage", 'U'),
    ("version", 'V'),
];

fn long_option(
    args: &mut Args,
    long: &str,
    it: &mut impl Iterator<Item = String>,
) -> Result<(), Usage> {
    let (name, value) = match long.split_once('=') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (long, None),
    };
    let hits: Vec<_> = LONG.iter().filter(|(n, _)| n.starts_with(name)).collect();
    let exact = LONG.iter().find(|(n, _)| *n == name);
    let Some(&(full, key)) = exact.or(if hits.len() == 1 { Some(hits[0]) } else { None }) else {
        return Err(Usage::Message(if hits.is_empty() {
            format!("unrecognized option '--{name}'")
        } else {
            format!("option '--{name}' is ambiguous")
        }));
    };
    let value = match (key, value) {
        ('c', Some(v)) => Some(v),
        ('c', None) => Some(
            it.next()
                .ok_or_else(|| Usage::Message(format!("option '--{full}' requires an argument")))?,
        ),
        (_, Some(_)) => {
            return Err(Usage::Message(format!(
                "option '--{full}' doesn't allow an argument"
            )));
        }
        (_, None) => None,
    };
    apply(args, key, value)
}

fn short_options(
    args: &mut Args,
    cluster: &str,
    it: &mut impl Iterator<Item = String>,
) -> Result<(), Usage> {
    for (i, key) in cluster.char_indices() {
        if !matches!(key, 'r' | 'C' | 'f' | 'c') {
            apply(args, key, None)?;
            continue;
        }
        let rest = &cluster[i + key.len_utf8()..];
        let value = if rest.is_empty() {
            it.next()
                .ok_or_else(|| Usage::Message(format!("option requires an argument -- '{key}'")))?
        } else {
            rest.to_owned()
        };
        return apply(args, key, Some(value));
    }
    Ok(())
}

fn apply(args: &mut Args, key: char, value: Option<String>) -> Result<(), Usage> {
    match key {
        'p' => args.print = true,
        'v' => args.verbose = true,
        'N' => args.no_cache = true,
        'X' => args.no_links = true,
        'n' => (args.no_cache, args.only_cline) = (true, true),
        'l' => args.manual = true,
        // No auxiliary cache is read or written.
        'i' => {}
        'r' => args.root = value,
        'C' => args.cache = value,
        'f' => args.conf = value,
        'c' => format(value.as_deref().unwrap_or("new"))?,
        '?' => return Err(Usage::Exit(help())),
        'U' => {
            println!("Usage: ldconfig [-iNnpvVX?] [-C CACHE] [-c FORMAT] [-f CONF] [-r ROOT]");
            return Err(Usage::Exit(0));
        }
        'V' => {
            println!("ldconfig (kiln) for glibc 2.36 (Debian 12)");
            return Err(Usage::Exit(0));
        }
        other => return Err(Usage::Message(format!("invalid option -- '{other}'"))),
    }
    Ok(())
}

/// `-c FORMAT`: glibc ignores a format it does not know; kiln writes only the new one.
fn format(value: &str) -> Result<(), Usage> {
    if matches!(value, "old" | "compat") {
        warn(&format!(
            "the {value} cache format (libc5 era) is not written by kiln's ldconfig; \
             glibc 2.36 reads the default one (-c new)"
        ));
        return Err(Usage::Exit(1));
    }
    Ok(())
}

fn help() -> i32 {
    println!(
        "Usage: ldconfig [OPTION...]\n\
         Configure Dynamic Linker Run Time Bindings.\n\n\
         \x20 -c, --format=FORMAT        Format to use: new (default; old and compat are refused)\n\
         \x20 -C CACHE                   Use CACHE as cache file\n\
         \x20 -f CONF                    Use CONF as configuration file\n\
         \x20 -i, --ignore-aux-cache     Ignore auxiliary cache file (kiln keeps none)\n\
         \x20 -l                         Manually link individual libraries.\n\
         \x20 -n                         Only process directories specified on the command line.  Don't build cache.\n\
         \x20 -N                         Don't build cache\n\
         \x20 -p, --print-cache          Print cache\n\
         \x20 -r ROOT                    Change to and use ROOT as root directory\n\
         \x20 -v, --verbose              Generate verbose messages\n\
         \x20 -X                         Don't update symbolic links\n\
         \x20 -?, --help                 Give this help list\n\
         \x20     --usage                Give a short usage message\n\
         \x20 -V, --version              Print program version"
    );
    0
}

/// The hwcap mask: `LD_HWCAP_MASK` (a C integer literal) or the architecture's.
fn hwcap_mask(arch: &Arch) -> u64 {
    let Ok(mask) = std::env::var("LD_HWCAP_MASK") else {
        return arch.important();
    };
    let mask = mask.trim();
    let parsed = if let Some(hex) = mask.strip_prefix("0x").or_else(|| mask.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16)
    } else if mask.len() > 1 && mask.starts_with('0') {
        u64::from_str_radix(&mask[1..], 8)
    } else {
        mask.parse()
    };
    parsed.unwrap_or(0)
}

fn run(arch: &'static Arch, args: &Args) -> Result<(), String> {
    let root = Root::new(args.root.as_deref());
    let cache_name = args.cache.as_deref().unwrap_or("/etc/ld.so.cache");
    let build_cache = !args.no_cache && !args.manual;
    let relative = args.rest.iter().find(|d| !d.starts_with('/'));
    if let Some(dir) = relative.filter(|_| build_cache) {
        return Err(format!("relative path `{dir}' used to build cache"));
    }
    let opts = Options {
        verbose: args.verbose,
        link: !args.no_links,
        build_cache,
        hwcap_mask: hwcap_mask(arch),
    };
    let mut scan = Scanner::new(arch, &root, opts);
    if !args.manual {
        for dir in &args.rest {
            scan.add_dir(dir, "<cmdline>", 0);
        }
    }
    if args.print {
        return print_cache(arch, &root, cache_name);
    }
    if args.manual {
        args.rest.iter().for_each(|lib| scan.manual_link(lib));
        return Ok(());
    }
    if !args.only_cline {
        scan.parse_conf(args.conf.as_deref().unwrap_or("/etc/ld.so.conf"));
        scan.add_system_dirs();
    }
    scan.search_dirs();
    if build_cache {
        save(&root, cache_name, &scan.cache.to_bytes()?)?;
    }
    Ok(())
}

fn print_cache(arch: &Arch, root: &Root, name: &str) -> Result<(), String> {
    use std::io::Read as _;
    let cant = |e: std::io::Error| format!("Can't open cache file {name}\n: {}", describe(&e));
    let real = root.canon(name).map_err(cant)?;
    let mut bytes = Vec::new();
    fs::File::open(&real)
        .and_then(|f| f.take(MAX_CACHE_BYTES).read_to_end(&mut bytes))
        .map_err(cant)?;
    let mut out = String::new();
    cache::print(arch, name, &bytes, &mut out)?;
    print!("{out}");
    Ok(())
}

/// Writes the cache as glibc does: to `<cache>~` (mode 0644), then renamed over it.
fn save(root: &Root, name: &str, bytes: &[u8]) -> Result<(), String> {
    let (dir, base) = match name.rfind('/') {
        Some(slash) => (&name[..slash], &name[slash + 1..]),
        None => ("/", name),
    };
    let real_dir = root
        .canon(if dir.is_empty() { "/" } else { dir })
        .map_err(|e| format!("Can't open cache file directory {dir}\n: {}", describe(&e)))?;
    let path = format!("{}/{base}", real_dir.trim_end_matches('/'));
    let temp = format!("{path}~");
    // glibc opens it O_NOFOLLOW: never write through a planted link.
    if fs::symlink_metadata(&temp).is_ok_and(|m| m.file_type().is_symlink()) {
        let _ = fs::remove_file(&temp);
    }
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&temp)?;
        file.write_all(bytes)?;
        kiln_abi::chmod(&temp, 0o644, false)?;
        file.sync_all()
    };
    write().map_err(|e| {
        format!(
            "Can't create temporary cache file {name}~: {}",
            describe(&e)
        )
    })?;
    fs::rename(&temp, &path)
        .map_err(|e| format!("Renaming of {name}~ to {name} failed: {}", describe(&e)))
}

#[cfg(test)]
mod tests;
