//! A build service calls `kiln_engine::build` over and over in one process: every build
//! must give back everything it took (threads, memory), or a long-lived service dies of
//! it. Each build here really runs its RUN step (a new build arg each time) and a COPY.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kiln_engine::progress::{Event, EventSink};
use kiln_engine::{BuildRequest, Network};

/// Builds a service makes in the test: enough that a leak of one thread or a few hundred
/// KiB per build stands far out of the noise.
const BUILDS: usize = 1_000;

/// Builds before the baseline is taken: the first ones fill the allocator's arenas, the
/// module cache and the lazily started pools, which are paid once per process.
const WARM_UP: usize = 20;

/// RSS the process may gain over the post-warm-up figure. Measured (debug build, 980
/// builds after the warm-up): with the runtime kept alive by its own launcher, threads
/// went 22 -> 1,002 (an epoch ticker per build) and RSS grew by 91,800 KiB (with a bundled
/// multicall module in the RUN instead, by 920 MB in only 40 builds); with the launcher
/// carried per process, threads 2 -> 2 and RSS +2,088 KiB, allocator noise.
const RSS_TOLERANCE_KIB: u64 = 32 << 10;

/// How long a build's last threads (epoch ticker, tokio workers) may take to exit after
/// `build` returns: the ticker notices its runtime is gone within one 10 ms tick.
const SETTLE: Duration = Duration::from_secs(2);

/// Each build copies a tiny wasm command into the image and runs it: a real wasm process
/// (a runtime, a module loaded through its cache, a store, the shell as its launcher)
/// at a fraction of the cost of loading a bundled multicall module, so 1,000 builds stay
/// well under a minute in a debug build.
const DOCKERFILE: &str = "\
FROM scratch
ARG N
COPY tiny /bin/tiny
RUN /bin/tiny && echo \"run-$N\" > /out && echo \"run-$N\"
";

/// The smallest WASI command: one page of memory and an empty `_start` (exit status 0).
const TINY_WASM: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
    0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
    0x05, 0x03, 0x01, 0x00, 0x01, // memory section: one memory, 1 page
    0x07, 0x13, 0x02, // export section, 19 bytes, 2 exports
    0x06, b'_', b's', b't', b'a', b'r', b't', 0x00, 0x00, // "_start": function 0
    0x06, b'm', b'e', b'm', b'o', b'r', b'y', 0x02, 0x00, // "memory": memory 0
    0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code section: an empty body
];

/// Counts the RUN outputs that name the build they belong to.
#[derive(Default)]
struct RunOutputs(AtomicUsize);

impl EventSink for RunOutputs {
    fn emit(&self, event: Event) {
        if let Event::StepOutput { text, .. } = event
            && text.contains("run-")
        {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn request(dir: &Path, n: usize) -> BuildRequest {
    BuildRequest {
        build_args: vec![("N".into(), n.to_string())],
        network: Network {
            enabled: false,
            allowed_hosts: Vec::new(),
        },
        ..BuildRequest::new(dir.join("ctx"), dir.join("cache"))
    }
}

/// `Threads:` and `VmRSS:` (KiB) of this process.
fn threads_and_rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (field("Threads:"), field("VmRSS:"))
}

/// The thread count once this process is quiet: the lowest of a few readings, since a
/// finished build's epoch ticker takes up to one 10 ms tick to notice and exit.
fn quiet_threads() -> u64 {
    (0..10)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(20));
            threads_and_rss().0
        })
        .min()
        .unwrap()
}

/// The thread count once the last build's threads have exited, or after `SETTLE`.
fn settled_threads(baseline: u64) -> u64 {
    let until = Instant::now() + SETTLE;
    loop {
        let threads = quiet_threads();
        if threads <= baseline || Instant::now() >= until {
            return threads;
        }
    }
}

fn build(dir: &Path, n: usize, sink: &Arc<RunOutputs>) {
    let events: Arc<dyn EventSink> = sink.clone();
    let built = kiln_engine::build(request(dir, n), events).unwrap();
    drop(built);
}

#[test]
fn a_thousand_builds_give_back_their_threads_and_memory() {
    let modules = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kiln-modules");
    // SAFETY: set before the first build, while this test's thread is the only one that
    // reads the environment (the harness runs no other test in this binary).
    unsafe { std::env::set_var("KILN_MODULE_CACHE", modules) };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("ctx")).unwrap();
    std::fs::write(dir.path().join("ctx/Dockerfile"), DOCKERFILE).unwrap();
    let tiny = dir.path().join("ctx/tiny");
    std::fs::write(&tiny, TINY_WASM).unwrap();
    std::fs::set_permissions(&tiny, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sink = Arc::new(RunOutputs::default());

    for n in 0..WARM_UP {
        build(dir.path(), n, &sink);
    }
    let threads0 = quiet_threads();
    let (_, rss0) = threads_and_rss();
    let started = Instant::now();
    for n in WARM_UP..BUILDS {
        build(dir.path(), n, &sink);
    }
    let elapsed = started.elapsed();
    let threads1 = settled_threads(threads0);
    let (_, rss1) = threads_and_rss();
    eprintln!(
        "{} builds in {elapsed:?}; threads {threads0} -> {threads1}; \
         RSS {rss0} KiB -> {rss1} KiB ({:+} KiB)",
        BUILDS - WARM_UP,
        rss1 as i64 - rss0 as i64
    );
    assert_eq!(
        sink.0.load(Ordering::Relaxed),
        BUILDS,
        "every build runs its RUN step"
    );
    assert_eq!(threads1, threads0, "threads left behind by builds");
    assert!(
        rss1 <= rss0 + RSS_TOLERANCE_KIB,
        "RSS grew from {rss0} KiB to {rss1} KiB over {} builds",
        BUILDS - WARM_UP
    );
}
