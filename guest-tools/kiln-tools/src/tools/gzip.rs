//! gzip, gunzip, zcat. Output is reproducible: no file name and a zero mtime in the header
//! (GNU's `-n`), so compressing the same bytes in two builds gives the same archive. The
//! header is GNU gzip's (OS byte 3, Unix; XFL from the level); the deflate stream is
//! miniz_oxide's, which decompresses to the same bytes but is not GNU gzip's bit for bit.

use std::fs::{self, File};
use std::io::{self, Read, Write};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::opts::{self, OptSpec, long_id, opt};
use crate::util::{self, describe, warn};

/// GNU gzip's default compression level.
const DEFAULT_LEVEL: u32 = 6;
/// The header's OS byte GNU gzip writes on Unix (flate2's default is 255, unknown).
const OS_UNIX: u8 = 3;

/// A gzip writer at `level` with GNU gzip's header.
fn encoder_at<W: Write>(out: W, level: Compression) -> GzEncoder<W> {
    flate2::GzBuilder::new()
        .operating_system(OS_UNIX)
        .write(out, level)
}

/// A gzip writer at GNU gzip's default level (`tar czf`).
pub(crate) fn encoder<W: Write>(out: W) -> GzEncoder<W> {
    encoder_at(out, Compression::new(DEFAULT_LEVEL))
}

const SPECS: &[OptSpec] = &[
    opt('c', Some("stdout"), false),
    opt('d', Some("decompress"), false),
    opt('f', Some("force"), false),
    opt('k', Some("keep"), false),
    opt('n', Some("no-name"), false),
    opt('N', Some("name"), false),
    opt('q', Some("quiet"), false),
    opt('v', Some("verbose"), false),
    opt('t', Some("test"), false),
    opt('1', Some("fast"), false),
    opt('2', None, false),
    opt('3', None, false),
    opt('4', None, false),
    opt('5', None, false),
    opt('6', None, false),
    opt('7', None, false),
    opt('8', None, false),
    opt('9', Some("best"), false),
    opt(long_id(1), Some("suffix"), true),
];

struct Settings {
    decompress: bool,
    to_stdout: bool,
    force: bool,
    keep: bool,
    test: bool,
    level: Compression,
    suffix: String,
}

pub fn main(name: &str, args: Vec<String>) -> i32 {
    let parsed = match opts::parse(&args, SPECS, true) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    let mut level = Compression::new(DEFAULT_LEVEL);
    for (id, _) in &parsed.opts {
        if let Some(d) = id.to_digit(10) {
            level = Compression::new(d);
        }
    }
    let settings = Settings {
        decompress: name != "gzip" || parsed.has('d') || parsed.has('t'),
        to_stdout: name == "zcat" || parsed.has('c') || parsed.has('t'),
        force: parsed.has('f'),
        keep: parsed.has('k'),
        test: parsed.has('t'),
        level,
        suffix: parsed.value(long_id(1)).unwrap_or(".gz").to_owned(),
    };
    let files = if parsed.operands.is_empty() {
        vec!["-".to_owned()]
    } else {
        parsed.operands
    };
    let mut status = 0;
    for file in &files {
        if let Err(msg) = process(&settings, file) {
            warn(name, msg);
            status = 1;
        }
    }
    status
}

fn process(s: &Settings, file: &str) -> Result<(), String> {
    if file == "-" {
        let stdin = io::stdin();
        let mut out = util::stdout();
        return convert(s, stdin.lock(), &mut out)
            .and_then(|()| out.flush())
            .map_err(|e| format!("stdin: {}", describe(&e)));
    }
    let meta = fs::metadata(file).map_err(|e| format!("{file}: {}", describe(&e)))?;
    if meta.is_dir() {
        return Err(format!("{file} is a directory -- ignored"));
    }
    let input = File::open(file).map_err(|e| format!("{file}: {}", describe(&e)))?;
    if s.to_stdout {
        let mut out = util::stdout();
        return convert(s, input, &mut out)
            .and_then(|()| out.flush())
            .map_err(|e| format!("{file}: {}", describe(&e)));
    }
    let target = if s.decompress {
        match file
            .strip_suffix(&s.suffix)
            .or_else(|| file.strip_suffix(".tgz").map(|_| ""))
        {
            Some("") => format!("{}.tar", &file[..file.len() - 4]),
            Some(stem) => stem.to_owned(),
            None => return Err(format!("{file}: unknown suffix -- ignored")),
        }
    } else {
        if file.ends_with(&s.suffix) {
            return Err(format!(
                "{file} already has {} suffix -- unchanged",
                s.suffix
            ));
        }
        format!("{file}{}", s.suffix)
    };
    if !s.force && fs::symlink_metadata(&target).is_ok() {
        return Err(format!("{target} already exists; not overwritten"));
    }
    let mut out = io::BufWriter::new(
        File::create(&target).map_err(|e| format!("{target}: {}", describe(&e)))?,
    );
    let result = convert(s, input, &mut out).and_then(|()| out.flush());
    if let Err(e) = result {
        let _ = fs::remove_file(&target);
        return Err(format!("{file}: {}", describe(&e)));
    }
    drop(out);
    // std cannot set modes on WASI; keep the original's mode and owner like GNU gzip.
    if let Ok(st) = crate::sys::stat(file, true) {
        let _ = crate::sys::chmod(&target, st.perm(), true);
    }
    crate::sys::copy_owner(file, &target);
    if !s.keep {
        fs::remove_file(file).map_err(|e| format!("{file}: {}", describe(&e)))?;
    }
    Ok(())
}

fn convert(s: &Settings, input: impl Read, out: &mut impl Write) -> io::Result<()> {
    if s.decompress {
        let mut decoder = MultiGzDecoder::new(io::BufReader::new(input));
        if s.test {
            io::copy(&mut decoder, &mut io::sink())?;
        } else {
            io::copy(&mut decoder, out)?;
        }
    } else {
        let mut encoder = encoder_at(out, s.level);
        let mut input = input;
        io::copy(&mut input, &mut encoder)?;
        encoder.try_finish()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GNU `gzip -n -LEVEL` of `data`.
    fn gnu_gzip(data: &[u8], level: u32) -> Vec<u8> {
        let mut child = std::process::Command::new("gzip")
            .args(["-n", "-c", &format!("-{level}")])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("this test compares with GNU gzip");
        child.stdin.take().unwrap().write_all(data).unwrap();
        child.wait_with_output().unwrap().stdout
    }

    #[test]
    fn header_is_gnu_gzips_and_content_round_trips() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for level in [1, 6, 9] {
            let mut ours = encoder_at(Vec::new(), Compression::new(level));
            ours.write_all(&data).unwrap();
            let ours = ours.finish().unwrap();
            let theirs = gnu_gzip(&data, level);
            assert_eq!(ours[..10], theirs[..10], "header at level {level}");
            // The trailer (CRC-32 and size) is the same; the deflate stream may differ.
            assert_eq!(ours[ours.len() - 8..], theirs[theirs.len() - 8..]);
            let mut back = Vec::new();
            MultiGzDecoder::new(&ours[..])
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data);
        }
    }
}
