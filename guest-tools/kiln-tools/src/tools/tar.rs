//! tar c|x|t with -f FILE|-, -z (and gzip auto-detection on read), -C DIR, -v,
//! --strip-components N, --exclude PATTERN, --no-same-owner, --numeric-owner,
//! --no-same-permissions, -k, old-style bundled first arguments (`tar xzf a.tgz`).
//! Archives are written in sorted order with owners and modes from kiln's metadata.
//! Extraction refuses `..` members, strips leading `/`, and creates symlinks only after
//! every other member, so an archive cannot plant a link and then write through it.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};

use flate2::read::MultiGzDecoder;
use tar::{Archive, Builder, EntryType, Header, HeaderMode};

use super::tar_gnu;
use crate::glob;
use crate::mode;
use crate::opts::{self, OptSpec, long_id, opt};
use crate::passwd::{self, Names};
use crate::sys::{self, kind};
use crate::util::{self, civil, describe, warn};
use crate::walk::{join, read_dir_sorted};

const STRIP: char = long_id(1);
const EXCLUDE: char = long_id(2);
const NO_SAME_OWNER: char = long_id(3);
const NUMERIC_OWNER: char = long_id(4);
const NO_SAME_PERMS: char = long_id(5);
const IGNORED: char = long_id(6);
const IGNORED_VALUE: char = long_id(7);
const OWNER: char = long_id(8);
const GROUP: char = long_id(9);

const SPECS: &[OptSpec] = &[
    opt('c', Some("create"), false),
    opt('x', Some("extract"), false),
    opt('t', Some("list"), false),
    opt('f', Some("file"), true),
    opt('z', Some("gzip"), false),
    opt('j', Some("bzip2"), false),
    opt('J', Some("xz"), false),
    opt('a', Some("auto-compress"), false),
    opt('C', Some("directory"), true),
    opt('v', Some("verbose"), false),
    opt('p', Some("preserve-permissions"), false),
    opt('o', None, false),
    opt('k', Some("keep-old-files"), false),
    opt('O', Some("to-stdout"), false),
    opt('h', Some("dereference"), false),
    opt(STRIP, Some("strip-components"), true),
    opt(EXCLUDE, Some("exclude"), true),
    opt(NO_SAME_OWNER, Some("no-same-owner"), false),
    opt(NUMERIC_OWNER, Some("numeric-owner"), false),
    opt(NO_SAME_PERMS, Some("no-same-permissions"), false),
    opt(IGNORED, Some("same-owner"), false),
    opt(IGNORED, Some("overwrite"), false),
    opt(IGNORED, Some("no-overwrite-dir"), false),
    opt(IGNORED, Some("warning"), true),
    opt(IGNORED_VALUE, Some("sort"), true),
    opt(IGNORED_VALUE, Some("format"), true),
    opt(OWNER, Some("owner"), true),
    opt(GROUP, Some("group"), true),
];

#[derive(PartialEq, Clone, Copy)]
enum Op {
    Create,
    Extract,
    List,
}

struct Settings {
    verbose: bool,
    strip: usize,
    excludes: Vec<String>,
    same_owner: bool,
    numeric_owner: bool,
    same_perms: bool,
    keep_old: bool,
    to_stdout: bool,
    dereference: bool,
    owner: Option<u32>,
    group: Option<u32>,
}

pub fn main(name: &str, mut args: Vec<String>) -> i32 {
    // `tar xzf file`: a first argument without a dash is a bundle of short options.
    if let Some(first) = args.first()
        && !first.starts_with('-')
        && !first.is_empty()
        && first.chars().all(|c| "cxtfzvCpokjJaOh".contains(c))
    {
        let first = args.remove(0);
        let mut expanded = Vec::new();
        let mut rest = args.into_iter();
        for c in first.chars() {
            expanded.push(format!("-{c}"));
            if (c == 'f' || c == 'C')
                && let Some(v) = rest.next()
            {
                expanded.push(v);
            }
        }
        expanded.extend(rest);
        args = expanded;
    }
    let p = match opts::parse(&args, SPECS, true) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    let ops: Vec<Op> = [('c', Op::Create), ('x', Op::Extract), ('t', Op::List)]
        .iter()
        .filter(|(c, _)| p.has(*c))
        .map(|(_, o)| *o)
        .collect();
    let op = match ops.as_slice() {
        [op] => *op,
        [] => {
            return util::usage_error(
                name,
                "You must specify one of the '-Acdtrux', '--delete' or '--test-label' options",
            );
        }
        _ => {
            return util::usage_error(
                name,
                "You may not specify more than one '-Acdtrux', '--delete' or  '--test-label' option",
            );
        }
    };
    if p.has('j') || p.has('J') {
        warn(
            name,
            "bzip2 and xz compression are not supported by kiln's tar (use gzip: -z)",
        );
        return 2;
    }
    let (uid, _) = sys::identity();
    let settings = Settings {
        verbose: p.has('v'),
        strip: match p.value(STRIP).map(str::parse) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => return util::usage_error(name, "invalid --strip-components value"),
        },
        excludes: p.values(EXCLUDE).map(str::to_owned).collect(),
        same_owner: uid == 0 && !p.has(NO_SAME_OWNER) && !p.has('o'),
        numeric_owner: p.has(NUMERIC_OWNER),
        same_perms: !p.has(NO_SAME_PERMS),
        keep_old: p.has('k'),
        to_stdout: p.has('O'),
        dereference: p.has('h'),
        owner: p
            .value(OWNER)
            .and_then(|o| passwd::resolve_user(o.trim_start_matches('+')).map(|e| e.id)),
        group: p
            .value(GROUP)
            .and_then(|g| passwd::resolve_group(g.trim_start_matches('+'))),
    };
    let file = p.value('f').unwrap_or("-").to_owned();
    let gzip = p.has('z') || (p.has('a') && (file.ends_with(".gz") || file.ends_with(".tgz")));
    let dir = p.value('C').map(str::to_owned);
    let result = match op {
        Op::Create => {
            if p.operands.is_empty() {
                warn(name, "Cowardly refusing to create an empty archive");
                return 2;
            }
            create(&settings, &file, gzip, dir.as_deref(), &p.operands)
        }
        Op::Extract | Op::List => read(&settings, op, &file, dir.as_deref(), &p.operands),
    };
    match result {
        Ok(0) => 0,
        Ok(code) => {
            warn(name, "Exiting with failure status due to previous errors");
            code
        }
        Err(msg) => {
            warn(name, msg);
            2
        }
    }
}

fn excluded(settings: &Settings, path: &str) -> bool {
    let base = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path);
    settings.excludes.iter().any(|p| {
        glob::matches(p.as_bytes(), base.as_bytes()) || glob::matches(p.as_bytes(), path.as_bytes())
    })
}

fn create(
    settings: &Settings,
    file: &str,
    gzip: bool,
    dir: Option<&str>,
    members: &[String],
) -> Result<i32, String> {
    let sink: Box<dyn Write> = if file == "-" {
        Box::new(io::stdout())
    } else {
        Box::new(
            fs::File::create(file).map_err(|e| format!("{file}: Cannot open: {}", describe(&e)))?,
        )
    };
    let io_err = |e: io::Error| format!("write error: {}", describe(&e));
    if gzip {
        let (encoder, status) =
            write_archive(super::gzip::encoder(sink), settings, dir, members).map_err(io_err)?;
        encoder
            .finish()
            .and_then(|mut s| s.flush())
            .map_err(io_err)?;
        Ok(status)
    } else {
        let (mut sink, status) = write_archive(sink, settings, dir, members).map_err(io_err)?;
        sink.flush().map_err(io_err)?;
        Ok(status)
    }
}

fn write_archive<W: Write>(
    sink: W,
    settings: &Settings,
    dir: Option<&str>,
    members: &[String],
) -> io::Result<(W, i32)> {
    let counting = tar_gnu::Counting {
        inner: sink,
        written: 0,
    };
    let mut builder = Builder::new(io::BufWriter::with_capacity(64 * 1024, counting));
    builder.mode(HeaderMode::Complete);
    builder.follow_symlinks(false);
    let mut ctx = CreateCtx {
        settings,
        names: Names::default(),
        links: HashMap::new(),
        status: 0,
        base: dir.map(str::to_owned),
    };
    for member in members {
        ctx.add(&mut builder, member, 0)?;
    }
    let mut counting = builder
        .into_inner()?
        .into_inner()
        .map_err(|e| io::Error::new(e.error().kind(), e.error().to_string()))?;
    let pad = tar_gnu::record_padding(counting.written);
    io::copy(&mut io::repeat(0).take(pad), &mut counting.inner)?;
    Ok((counting.inner, ctx.status))
}

struct CreateCtx<'a> {
    settings: &'a Settings,
    names: Names,
    links: HashMap<(u64, u64), String>,
    status: i32,
    base: Option<String>,
}

impl CreateCtx<'_> {
    fn host_path(&self, member: &str) -> String {
        match &self.base {
            Some(b) if !member.starts_with('/') => join(b, member),
            _ => member.to_owned(),
        }
    }

    fn add(
        &mut self,
        builder: &mut Builder<impl Write>,
        member: &str,
        depth: usize,
    ) -> io::Result<()> {
        let path = self.host_path(member);
        if excluded(self.settings, member) {
            return Ok(());
        }
        let st = match sys::stat(&path, false) {
            Ok(st) if self.settings.dereference && st.is_symlink() => {
                sys::stat(&path, true).unwrap_or(st)
            }
            Ok(st) => st,
            Err(e) => {
                warn("tar", format!("{member}: Cannot stat: {}", describe(&e)));
                self.status = 2;
                return Ok(());
            }
        };
        let mut name = member.trim_start_matches('/').to_owned();
        if name.len() != member.len() && depth == 0 {
            warn("tar", "Removing leading `/' from member names");
        }
        if name.is_empty() {
            name = ".".into();
        }
        let mut header = Header::new_gnu();
        header.set_mode(st.perm());
        header.set_uid(u64::from(self.settings.owner.unwrap_or(st.uid)));
        header.set_gid(u64::from(self.settings.group.unwrap_or(st.gid)));
        header.set_mtime(st.mtime.sec.max(0) as u64);
        if !self.settings.numeric_owner {
            let uname = self.names.user(self.settings.owner.unwrap_or(st.uid));
            let gname = self.names.group(self.settings.group.unwrap_or(st.gid));
            if uname.parse::<u32>().is_err() {
                let _ = header.set_username(&uname);
            }
            if gname.parse::<u32>().is_err() {
                let _ = header.set_groupname(&gname);
            }
        }
        if self.settings.verbose {
            eprintln!("{name}{}", if st.is_dir() { "/" } else { "" });
        }
        match st.mode & kind::MASK {
            kind::DIR => {
                header.set_entry_type(EntryType::Directory);
                header.set_size(0);
                let dir_name = format!("{}/", name.trim_end_matches('/'));
                tar_gnu::append(builder, &mut header, dir_name.as_bytes(), None, io::empty())?;
                let names = match read_dir_sorted(&path) {
                    Ok(n) => n,
                    Err(e) => {
                        warn("tar", format!("{member}: Cannot open: {}", describe(&e)));
                        self.status = 2;
                        return Ok(());
                    }
                };
                for child in names {
                    self.add(builder, &join(member, &child), depth + 1)?;
                }
            }
            kind::SYMLINK => {
                let target = fs::read_link(&path)?;
                header.set_entry_type(EntryType::Symlink);
                header.set_size(0);
                let target = target.to_string_lossy();
                let link = Some(target.as_bytes());
                tar_gnu::append(builder, &mut header, name.as_bytes(), link, io::empty())?;
            }
            kind::REGULAR => {
                if st.nlink > 1 {
                    if let Some(first) = self.links.get(&(st.dev, st.ino)) {
                        header.set_entry_type(EntryType::Link);
                        header.set_size(0);
                        let first = first.clone();
                        let link = Some(first.as_bytes());
                        tar_gnu::append(builder, &mut header, name.as_bytes(), link, io::empty())?;
                        return Ok(());
                    }
                    self.links.insert((st.dev, st.ino), name.clone());
                }
                header.set_entry_type(EntryType::Regular);
                header.set_size(st.size);
                let f = fs::File::open(&path)?;
                // The header promises st.size bytes: never write more or fewer.
                let mut reader = f.take(st.size).chain(io::repeat(0).take(st.size));
                let data = (&mut reader).take(st.size);
                tar_gnu::append(builder, &mut header, name.as_bytes(), None, data)?;
            }
            _ => {
                warn("tar", format!("{member}: socket, device or fifo ignored"));
            }
        }
        Ok(())
    }
}

/// Opens the archive for reading, transparently gunzipping it.
fn open_archive(file: &str) -> Result<Box<dyn Read>, String> {
    let raw: Box<dyn Read> = if file == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(
            fs::File::open(file).map_err(|e| format!("{file}: Cannot open: {}", describe(&e)))?,
        )
    };
    let mut buffered = BufReader::with_capacity(64 * 1024, raw);
    let head = buffered
        .fill_buf()
        .map_err(|e| format!("{file}: Cannot read: {}", describe(&e)))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(MultiGzDecoder::new(buffered)))
    } else {
        Ok(Box::new(buffered))
    }
}

/// Applies --strip-components and rejects unsafe names. None: skip the member.
fn safe_name(raw: &str, strip: usize) -> Result<Option<String>, String> {
    let trimmed = raw.trim_start_matches('/');
    let parts: Vec<&str> = trimmed
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(format!("{raw}: Member name contains '..'"));
    }
    if parts.len() <= strip {
        return Ok(None);
    }
    Ok(Some(parts[strip..].join("/")))
}

fn member_selected(name: &str, members: &[String]) -> bool {
    members.is_empty()
        || members.iter().any(|m| {
            let m = m.trim_end_matches('/');
            name == m
                || name.starts_with(&format!("{m}/"))
                || glob::matches(m.as_bytes(), name.as_bytes())
        })
}

fn read(
    settings: &Settings,
    op: Op,
    file: &str,
    dir: Option<&str>,
    members: &[String],
) -> Result<i32, String> {
    let mut archive = Archive::new(open_archive(file)?);
    let mut status = 0;
    let mut names = Names::default();
    let mut deferred_links: Vec<DeferredLink> = Vec::new();
    let mut dir_modes: Vec<(String, u32, i64)> = Vec::new();
    let mut out = util::stdout();
    let entries = archive
        .entries()
        .map_err(|e| format!("{file}: {}", describe(&e)))?;
    let base = dir.unwrap_or(".").to_owned();
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{file}: Cannot read: {}", describe(&e)))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let header = entry.header().clone();
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        if !member_selected(raw.trim_start_matches("./").trim_end_matches('/'), members)
            || excluded(settings, &raw)
        {
            continue;
        }
        if op == Op::List {
            let line = if settings.verbose {
                list_line(&header, &raw, link.as_deref(), &mut names)
            } else {
                format!("{raw}\n")
            };
            out.write_all(line.as_bytes()).map_err(|e| describe(&e))?;
            continue;
        }
        let name = match safe_name(&raw, settings.strip) {
            Ok(Some(n)) => n,
            Ok(None) => continue,
            Err(msg) => {
                warn("tar", msg);
                status = 2;
                continue;
            }
        };
        if settings.verbose {
            println!("{raw}");
        }
        if settings.to_stdout {
            if header.entry_type().is_file() {
                io::copy(&mut entry, &mut out).map_err(|e| describe(&e))?;
            }
            continue;
        }
        let path = join(&base, &name);
        let perm = header.mode().unwrap_or(0o644) & 0o7777;
        let perm = if settings.same_perms {
            perm
        } else {
            perm & !0o022
        };
        let owner = owner_of(settings, &header);
        let mtime = header.mtime().unwrap_or(0) as i64;
        if let Some(parent) = path
            .rsplit_once('/')
            .map(|(p, _)| p)
            .filter(|p| !p.is_empty())
        {
            let _ = fs::create_dir_all(parent);
        }
        let result = match header.entry_type() {
            EntryType::Directory => {
                let r = match fs::create_dir(&path) {
                    Err(e)
                        if e.kind() == io::ErrorKind::AlreadyExists
                            && fs::metadata(&path).is_ok_and(|m| m.is_dir()) =>
                    {
                        Ok(())
                    }
                    other => other,
                };
                dir_modes.push((path.clone(), perm, mtime));
                r.and_then(|()| set_owner(&path, owner))
            }
            EntryType::Symlink => {
                let target = link.clone().unwrap_or_default();
                deferred_links.push(DeferredLink {
                    path: path.clone(),
                    target,
                    owner,
                });
                Ok(())
            }
            EntryType::Link => {
                let target = match link.as_deref().map(|l| safe_name(l, settings.strip)) {
                    Some(Ok(Some(t))) => join(&base, &t),
                    _ => {
                        warn("tar", format!("{raw}: Cannot hard link: invalid target"));
                        status = 2;
                        continue;
                    }
                };
                remove_existing(&path, settings.keep_old)
                    .and_then(|()| fs::hard_link(&target, &path))
            }
            t if t.is_file() || t == EntryType::Continuous => {
                remove_existing(&path, settings.keep_old)
                    .and_then(|()| write_file(&mut entry, &path, mtime))
                    .and_then(|()| set_owner(&path, owner))
                    .and_then(|()| sys::chmod(&path, perm, true))
            }
            EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => Ok(()),
            _ => {
                warn(
                    "tar",
                    format!("{raw}: devices and fifos cannot be created in a kiln step; skipped"),
                );
                Ok(())
            }
        };
        if let Err(e) = result {
            warn("tar", format!("{name}: Cannot open: {}", describe(&e)));
            status = 2;
        }
    }
    for DeferredLink {
        path,
        target,
        owner,
    } in deferred_links
    {
        let r = remove_existing(&path, settings.keep_old)
            .and_then(|()| symlink(&target, &path))
            .and_then(|()| {
                owner.map_or(Ok(()), |(u, g)| sys::chown(&path, Some(u), Some(g), false))
            });
        if let Err(e) = r {
            warn(
                "tar",
                format!(
                    "{path}: Cannot create symlink to '{target}': {}",
                    describe(&e)
                ),
            );
            status = 2;
        }
    }
    // Directory modes last, deepest first, so a read-only directory can still be filled.
    for (path, perm, _) in dir_modes.iter().rev() {
        let _ = sys::chmod(path, *perm, true);
    }
    out.flush().map_err(|e| describe(&e))?;
    Ok(status)
}

/// A symlink member, created after all other members.
struct DeferredLink {
    path: String,
    target: String,
    owner: Option<(u32, u32)>,
}

fn owner_of(settings: &Settings, header: &Header) -> Option<(u32, u32)> {
    if !settings.same_owner {
        return None;
    }
    let mut uid = header.uid().unwrap_or(0) as u32;
    let mut gid = header.gid().unwrap_or(0) as u32;
    if !settings.numeric_owner {
        if let Some(e) = header
            .username()
            .ok()
            .flatten()
            .and_then(passwd::resolve_user)
            .filter(|e| !e.name.is_empty() && e.name.parse::<u32>().is_err())
        {
            uid = e.id;
        }
        if let Some(g) = header
            .groupname()
            .ok()
            .flatten()
            .filter(|g| g.parse::<u32>().is_err())
            .and_then(passwd::resolve_group)
        {
            gid = g;
        }
    }
    Some((uid, gid))
}

fn set_owner(path: &str, owner: Option<(u32, u32)>) -> io::Result<()> {
    match owner {
        Some((u, g)) => sys::chown(path, Some(u), Some(g), false),
        None => Ok(()),
    }
}

fn remove_existing(path: &str, keep_old: bool) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err(io::Error::from(io::ErrorKind::IsADirectory)),
        Ok(_) if keep_old => Err(io::Error::from(io::ErrorKind::AlreadyExists)),
        Ok(_) => fs::remove_file(path),
        Err(_) => Ok(()),
    }
}

fn write_file(entry: &mut impl Read, path: &str, mtime: i64) -> io::Result<()> {
    let mut f = fs::File::create(path)?;
    io::copy(entry, &mut f)?;
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime.max(0) as u64);
    let _ = f.set_times(fs::FileTimes::new().set_modified(when).set_accessed(when));
    Ok(())
}

/// `std::fs::soft_link` is the only stable symlink call that also exists on WASI
/// (`std::os::wasi::fs` is unstable); it is deprecated only in favour of per-OS names.
#[allow(deprecated)]
fn symlink(target: &str, path: &str) -> io::Result<()> {
    fs::soft_link(target, path)
}

/// A `tar -tv` line: `-rw-r--r-- root/root      6 2024-01-01 00:00 name`.
fn list_line(h: &Header, name: &str, link: Option<&str>, names: &mut Names) -> String {
    let kind_bits = match h.entry_type() {
        EntryType::Directory => kind::DIR,
        EntryType::Symlink => kind::SYMLINK,
        EntryType::Char => kind::CHAR,
        EntryType::Block => kind::BLOCK,
        EntryType::Fifo => kind::FIFO,
        _ => kind::REGULAR,
    };
    let perm = h.mode().unwrap_or(0) & 0o7777;
    let mut mode_text = mode::render(kind_bits | perm);
    if h.entry_type() == EntryType::Link {
        mode_text.replace_range(0..1, "h");
    }
    let user = h
        .username()
        .ok()
        .flatten()
        .map(str::to_owned)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| names.user(h.uid().unwrap_or(0) as u32));
    let group = h
        .groupname()
        .ok()
        .flatten()
        .map(str::to_owned)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| names.group(h.gid().unwrap_or(0) as u32));
    let size = h.size().unwrap_or(0).to_string();
    let owner = format!("{user}/{group}");
    let pad = 19usize.saturating_sub(owner.len() + size.len()).max(1);
    let (y, mo, d, hh, mi, _) = civil(h.mtime().unwrap_or(0) as i64);
    let mut line = format!(
        "{mode_text} {owner}{}{size} {y:04}-{mo:02}-{d:02} {hh:02}:{mi:02} {name}",
        " ".repeat(pad)
    );
    match (h.entry_type(), link) {
        (EntryType::Symlink, Some(t)) => line.push_str(&format!(" -> {t}")),
        (EntryType::Link, Some(t)) => line.push_str(&format!(" link to {t}")),
        _ => {}
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_made_safe() {
        assert_eq!(
            safe_name("/etc/passwd", 0).unwrap().as_deref(),
            Some("etc/passwd")
        );
        assert_eq!(safe_name("./a/b/c", 1).unwrap().as_deref(), Some("b/c"));
        assert_eq!(safe_name("a/", 1).unwrap(), None);
        assert!(safe_name("a/../../x", 0).is_err());
        assert!(safe_name("..", 0).is_err());
    }

    #[test]
    fn member_selection() {
        assert!(member_selected("a/b", &["a".into()]));
        assert!(!member_selected("ab", &["a".into()]));
        assert!(member_selected("x/y.txt", &["x/*.txt".into()]));
        assert!(member_selected("anything", &[]));
    }
}
