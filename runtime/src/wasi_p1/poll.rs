//! `poll_oneoff` over clocks and in-memory pipes. Pipes have no wakeup shared across
//! several of them, so waiting polls in short sleeps; a clock-only poll simply sleeps.

use std::time::{Duration, Instant};

use wasmtime::{Caller, Linker};

use super::handle::Handle;
use super::mem::*;
use super::types::*;
use super::{Ctx, HErr, HResult, host, ret, split};
use crate::error::Errno;
use crate::stdio::Stdio;

const POLL_INTERVAL: Duration = Duration::from_millis(2);
/// The longest a sleeping `poll_oneoff` goes without checking whether its build was
/// cancelled: a `sleep 3600` in a cancelled build ends within this.
const CANCEL_CHECK: Duration = Duration::from_millis(50);

enum Sub {
    Clock { userdata: u64, at: Instant },
    Fd { userdata: u64, fd: u32, write: bool },
}

struct Event {
    userdata: u64,
    errno: Errno,
    kind: u8,
    nbytes: u64,
    hangup: bool,
}

fn parse(mem: &[u8], ctx: &Ctx, ptr: u32, n: u32, now: Instant) -> Result<Vec<Sub>, Errno> {
    (0..n)
        .map(|i| {
            let at = ptr + i * SUBSCRIPTION_SIZE;
            let userdata = read_u64(mem, at)?;
            match slice(mem, at + 8, 1)?[0] {
                EVENTTYPE_CLOCK => {
                    let id = read_u32(mem, at + 16)?;
                    let timeout = read_u64(mem, at + 24)?;
                    let flags = read_u16(mem, at + 40)?;
                    let elapsed =
                        u64::try_from(ctx.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    let wait_ns = if flags & SUBCLOCKFLAGS_ABSTIME == 0 {
                        timeout
                    } else {
                        match id {
                            CLOCK_REALTIME => timeout.saturating_sub(ctx.realtime_ns),
                            CLOCK_MONOTONIC | CLOCK_PROCESS_CPUTIME | CLOCK_THREAD_CPUTIME => {
                                timeout.saturating_sub(elapsed)
                            }
                            _ => return Err(Errno::INVAL),
                        }
                    };
                    if id > CLOCK_THREAD_CPUTIME {
                        return Err(Errno::INVAL);
                    }
                    let at = now
                        .checked_add(Duration::from_nanos(wait_ns))
                        .unwrap_or(now + Duration::from_secs(1 << 32));
                    Ok(Sub::Clock { userdata, at })
                }
                t @ (EVENTTYPE_FD_READ | EVENTTYPE_FD_WRITE) => Ok(Sub::Fd {
                    userdata,
                    fd: read_u32(mem, at + 16)?,
                    write: t == EVENTTYPE_FD_WRITE,
                }),
                _ => Err(Errno::INVAL),
            }
        })
        .collect()
}

/// Readiness of one fd subscription, if ready.
fn fd_ready(ctx: &Ctx, userdata: u64, fd: u32, write: bool) -> Option<Event> {
    let kind = if write {
        EVENTTYPE_FD_WRITE
    } else {
        EVENTTYPE_FD_READ
    };
    let ev = |errno, nbytes, hangup| {
        Some(Event {
            userdata,
            errno,
            kind,
            nbytes,
            hangup,
        })
    };
    let h = match ctx.fds.get(fd) {
        Ok(h) => h,
        Err(e) => return ev(e, 0, false),
    };
    match (&**h, write) {
        (
            Handle::Stdio {
                stdio: Stdio::PipeRead(r),
                ..
            },
            false,
        ) => {
            let (avail, eof) = r.poll();
            (avail > 0 || eof)
                .then_some(())
                .and(ev(Errno(0), avail as u64, eof))
        }
        (
            Handle::Stdio {
                stdio: Stdio::PipeWrite(w),
                ..
            },
            true,
        ) => {
            let (room, closed) = w.poll();
            if closed {
                return ev(Errno::PIPE, 0, true);
            }
            (room > 0)
                .then_some(())
                .and(ev(Errno(0), room as u64, false))
        }
        (h, false) => {
            let left = h
                .as_file()
                .and_then(|f| f.stat().ok().map(|s| s.size.saturating_sub(f.position())))
                .unwrap_or(0);
            ev(Errno(0), left, false)
        }
        (_, true) => ev(Errno(0), 0, false),
    }
}

fn poll(caller: &mut Caller<'_, Ctx>, inp: u32, out: u32, n: u32) -> HResult<u32> {
    if n == 0 {
        return Err(Errno::INVAL.into());
    }
    let start = Instant::now();
    let subs = {
        let (mem, ctx) = split(caller)?;
        parse(mem, ctx, inp, n, start)?
    };
    loop {
        let (mem, ctx) = split(caller)?;
        let now = Instant::now();
        let mut events = Vec::new();
        let mut next_clock: Option<Instant> = None;
        for s in &subs {
            match *s {
                Sub::Clock { userdata, at } => {
                    if now >= at {
                        events.push(Event {
                            userdata,
                            errno: Errno(0),
                            kind: EVENTTYPE_CLOCK,
                            nbytes: 0,
                            hangup: false,
                        });
                    } else {
                        next_clock = Some(next_clock.map_or(at, |c: Instant| c.min(at)));
                    }
                }
                Sub::Fd {
                    userdata,
                    fd,
                    write,
                } => events.extend(fd_ready(ctx, userdata, fd, write)),
            }
        }
        if !events.is_empty() {
            for (i, e) in events.iter().enumerate() {
                let at = out + i as u32 * EVENT_SIZE;
                slice_mut(mem, at, EVENT_SIZE)?.fill(0);
                write_u64(mem, at, e.userdata)?;
                write_u16(mem, at + 8, e.errno.0)?;
                write_u8(mem, at + 10, e.kind)?;
                write_u64(mem, at + 16, e.nbytes)?;
                write_u16(mem, at + 24, if e.hangup { EVENTRWFLAGS_HANGUP } else { 0 })?;
            }
            return Ok(events.len() as u32);
        }
        if let Some(stop) = ctx.limits.stop_due(now) {
            let e = wasmtime::format_err!("{stop}");
            ctx.stopped = Some(stop);
            return Err(HErr::Trap(e));
        }
        let only_clocks = subs.iter().all(|s| matches!(s, Sub::Clock { .. }));
        let mut wake = next_clock.unwrap_or(now + POLL_INTERVAL);
        if !only_clocks {
            wake = wake.min(now + POLL_INTERVAL);
        }
        if let Some(d) = ctx.limits.deadline {
            wake = wake.min(d);
        }
        // A long sleep still notices a cancelled build within this long.
        wake = wake.min(now + CANCEL_CHECK);
        std::thread::sleep(wake.saturating_duration_since(now));
    }
}

pub(crate) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    host!(
        linker,
        "wasi_snapshot_preview1",
        "poll_oneoff",
        |caller, inp: u32, out: u32, n: u32, nevents: u32| {
            let count = poll(&mut caller, inp, out, n)?;
            let (mem, _) = split(&mut caller)?;
            Ok(write_u32(mem, nevents, count)?)
        }
    );
    Ok(())
}
