//! dd if= of= bs= ibs= obs= count= skip= seek= conv=notrunc,sync,noerror,ucase,lcase,
//! excl,nocreat,fsync,fdatasync iflag=fullblock,count_bytes,skip_bytes oflag=seek_bytes,
//! append status=none|noxfer|progress. kiln's own because uutils' dd starts a progress
//! thread, which WASI p1 cannot do.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::time::Instant;

use crate::util::{self, describe, warn};

struct Args {
    input: Option<String>,
    output: Option<String>,
    ibs: usize,
    obs: usize,
    count: Option<u64>,
    skip: u64,
    seek: u64,
    conv: Vec<String>,
    iflag: Vec<String>,
    oflag: Vec<String>,
    status: String,
}

/// A dd number: digits with an optional multiplier suffix, `x`-products allowed.
pub fn number(s: &str) -> Option<u64> {
    s.split('x').try_fold(1u64, |acc, part| {
        let split = part
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(part.len());
        let (digits, suffix) = part.split_at(split);
        let n: u64 = digits.parse().ok()?;
        let mult: u64 = match suffix {
            "" | "c" => 1,
            "w" => 2,
            "b" => 512,
            "kB" => 1000,
            "K" | "KiB" | "k" => 1024,
            "MB" => 1000 * 1000,
            "M" | "MiB" => 1 << 20,
            "GB" => 1000 * 1000 * 1000,
            "G" | "GiB" => 1 << 30,
            _ => return None,
        };
        acc.checked_mul(n)?.checked_mul(mult)
    })
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        input: None,
        output: None,
        ibs: 512,
        obs: 512,
        count: None,
        skip: 0,
        seek: 0,
        conv: Vec::new(),
        iflag: Vec::new(),
        oflag: Vec::new(),
        status: String::new(),
    };
    for arg in args {
        let Some((key, value)) = arg.split_once('=') else {
            return Err(format!("unrecognized operand '{arg}'"));
        };
        let num = || number(value).ok_or_else(|| format!("invalid number: '{value}'"));
        let list = || {
            value
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        match key {
            "if" => a.input = Some(value.to_owned()),
            "of" => a.output = Some(value.to_owned()),
            "bs" => {
                let n = num()? as usize;
                a.ibs = n;
                a.obs = n;
            }
            "ibs" => a.ibs = num()? as usize,
            "obs" => a.obs = num()? as usize,
            "count" => a.count = Some(num()?),
            "skip" | "iseek" => a.skip = num()?,
            "seek" | "oseek" => a.seek = num()?,
            "conv" => a.conv.extend(list()),
            "iflag" => a.iflag.extend(list()),
            "oflag" => a.oflag.extend(list()),
            "status" => a.status = value.to_owned(),
            _ => return Err(format!("unrecognized operand '{arg}'")),
        }
    }
    if a.ibs == 0 || a.obs == 0 {
        return Err("invalid number: '0'".into());
    }
    Ok(a)
}

pub fn main(name: &str, args: Vec<String>) -> i32 {
    let a = match parse(&args) {
        Ok(a) => a,
        Err(msg) => return util::usage_error(name, msg),
    };
    match run(&a) {
        Ok(()) => 0,
        Err(msg) => {
            warn(name, msg);
            1
        }
    }
}

#[derive(Default)]
struct Counts {
    in_full: u64,
    in_partial: u64,
    out_full: u64,
    out_partial: u64,
    bytes: u64,
}

fn run(a: &Args) -> Result<(), String> {
    let start = Instant::now();
    let has = |list: &[String], f: &str| list.iter().any(|x| x == f);
    let mut input: Box<dyn Read> = match &a.input {
        Some(path) => {
            let mut f = File::open(path)
                .map_err(|e| format!("failed to open '{path}': {}", describe(&e)))?;
            let skip = if has(&a.iflag, "skip_bytes") {
                a.skip
            } else {
                a.skip * a.ibs as u64
            };
            if skip > 0 {
                f.seek(SeekFrom::Start(skip))
                    .map_err(|e| format!("'{path}': cannot skip: {}", describe(&e)))?;
            }
            Box::new(f)
        }
        None => {
            let mut stdin = io::stdin();
            let skip = if has(&a.iflag, "skip_bytes") {
                a.skip
            } else {
                a.skip * a.ibs as u64
            };
            io::copy(&mut (&mut stdin).take(skip), &mut io::sink()).map_err(|e| describe(&e))?;
            Box::new(stdin)
        }
    };
    let mut output: Box<dyn Write> = match &a.output {
        Some(path) => {
            let mut opts = OpenOptions::new();
            opts.write(true);
            if has(&a.conv, "excl") {
                opts.create_new(true);
            } else if !has(&a.conv, "nocreat") {
                opts.create(true);
            }
            if has(&a.oflag, "append") {
                opts.append(true);
            }
            let mut f = opts
                .open(path)
                .map_err(|e| format!("failed to open '{path}': {}", describe(&e)))?;
            let seek = if has(&a.oflag, "seek_bytes") {
                a.seek
            } else {
                a.seek * a.obs as u64
            };
            if !has(&a.conv, "notrunc") && !has(&a.oflag, "append") {
                f.set_len(seek).map_err(|e| {
                    format!(
                        "failed to truncate to {seek} bytes in output file '{path}': {}",
                        describe(&e)
                    )
                })?;
            }
            if seek > 0 {
                f.seek(SeekFrom::Start(seek))
                    .map_err(|e| format!("'{path}': cannot seek: {}", describe(&e)))?;
            }
            Box::new(f)
        }
        None => Box::new(io::stdout()),
    };
    let count_bytes = has(&a.iflag, "count_bytes");
    let fullblock = has(&a.iflag, "fullblock");
    let sync = has(&a.conv, "sync");
    let mut counts = Counts::default();
    let mut buf = vec![0u8; a.ibs];
    let mut pending: Vec<u8> = Vec::with_capacity(a.obs);
    let mut read_total = 0u64;
    loop {
        let want = match (a.count, count_bytes) {
            (Some(c), false) if counts.in_full + counts.in_partial >= c => break,
            (Some(c), true) if read_total >= c => break,
            (Some(c), true) => (c - read_total).min(a.ibs as u64) as usize,
            _ => a.ibs,
        };
        let mut n = 0;
        loop {
            match input.read(&mut buf[n..want]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if has(&a.conv, "noerror") => {
                    warn("dd", format!("error reading: {}", describe(&e)));
                    break;
                }
                Err(e) => return Err(format!("error reading: {}", describe(&e))),
            }
            if !fullblock || n == want {
                break;
            }
        }
        if n == 0 {
            break;
        }
        read_total += n as u64;
        if n == want {
            counts.in_full += 1;
        } else {
            counts.in_partial += 1;
        }
        let mut block = buf[..n].to_vec();
        if sync && n < a.ibs {
            block.resize(a.ibs, 0);
        }
        if has(&a.conv, "ucase") {
            block.make_ascii_uppercase();
        } else if has(&a.conv, "lcase") {
            block.make_ascii_lowercase();
        }
        pending.extend_from_slice(&block);
        while pending.len() >= a.obs {
            output
                .write_all(&pending[..a.obs])
                .map_err(|e| format!("error writing: {}", describe(&e)))?;
            pending.drain(..a.obs);
            counts.out_full += 1;
            counts.bytes += a.obs as u64;
        }
    }
    if !pending.is_empty() {
        output
            .write_all(&pending)
            .map_err(|e| format!("error writing: {}", describe(&e)))?;
        counts.out_partial += 1;
        counts.bytes += pending.len() as u64;
    }
    output
        .flush()
        .map_err(|e| format!("error writing: {}", describe(&e)))?;
    if a.status != "none" {
        let mut err = io::stderr();
        let _ = writeln!(
            err,
            "{}+{} records in\n{}+{} records out",
            counts.in_full, counts.in_partial, counts.out_full, counts.out_partial
        );
        if a.status != "noxfer" {
            let secs = start.elapsed().as_secs_f64().max(1e-9);
            let _ = writeln!(
                err,
                "{} bytes copied, {secs:.6} s, {:.1} MB/s",
                counts.bytes,
                counts.bytes as f64 / secs / 1e6
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers() {
        assert_eq!(super::number("512"), Some(512));
        assert_eq!(super::number("1M"), Some(1 << 20));
        assert_eq!(super::number("2x3K"), Some(6144));
        assert_eq!(super::number("1kB"), Some(1000));
        assert_eq!(super::number("1Q"), None);
    }
}
