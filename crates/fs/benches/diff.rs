//! Diff cost follows the number of changed nodes, not the size of the tree:
//! 10 changes in a 100,000-node tree vs 10 changes in a 1,000-node tree.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::Instant;

use kiln_fs::{Ino, Snapshot, Store, Tree, diff};

/// Builds a tree of about `nodes` nodes: directories of `fanout` entries, files at
/// the leaves. Returns the snapshot and the paths of its files.
fn build(store: &std::sync::Arc<Store>, nodes: usize, fanout: usize) -> (Snapshot, Vec<Vec<u8>>) {
    let mut t = Tree::new(store);
    let mut files = Vec::new();
    let mut count = 1;
    let mut level: Vec<(Ino, Vec<u8>)> = vec![(t.root(), Vec::new())];
    while count < nodes {
        let mut next = Vec::new();
        for (dir, path) in &level {
            for i in 0..fanout {
                if count >= nodes {
                    break;
                }
                let name = format!("n{i:02}").into_bytes();
                let mut p = path.clone();
                p.push(b'/');
                p.extend_from_slice(&name);
                let d = t.mkdir(*dir, &name, 0o755, 0, 0).expect("mkdir");
                next.push((d, p));
                count += 1;
            }
        }
        // The last level becomes files instead of directories when it would overshoot.
        if count + next.len() * fanout > nodes {
            for (dir, path) in &next {
                for i in 0..fanout {
                    if count >= nodes {
                        break;
                    }
                    let name = format!("f{i:02}").into_bytes();
                    let f = t.create_file(*dir, &name, 0o644, 0, 0).expect("create");
                    t.write_at(f, 0, &name).expect("write");
                    let mut p = path.clone();
                    p.push(b'/');
                    p.extend_from_slice(&name);
                    files.push(p);
                    count += 1;
                }
            }
            break;
        }
        level = next;
    }
    (t.snapshot().expect("snapshot"), files)
}

/// Modifies 10 files spread over the tree and returns the new snapshot.
fn change_ten(base: &Snapshot, files: &[Vec<u8>]) -> Snapshot {
    let mut t = Tree::from_snapshot(base);
    let step = files.len() / 10;
    for i in 0..10 {
        let root = t.root();
        let f = t
            .resolve(root, &files[i * step], kiln_fs::Follow::No)
            .expect("resolve");
        t.write_at(f, 0, b"changed").expect("write");
    }
    t.snapshot().expect("snapshot")
}

/// Seconds per diff: the best of several batches (the machine is shared, so the
/// minimum is the figure least disturbed by other work).
fn time_diff(a: &Snapshot, b: &Snapshot) -> (f64, usize) {
    let rounds = 500;
    let mut changes = 0;
    let mut best = f64::MAX;
    for _ in 0..7 {
        let start = Instant::now();
        for _ in 0..rounds {
            changes = std::hint::black_box(diff(a, b)).len();
        }
        best = best.min(start.elapsed().as_secs_f64() / rounds as f64);
    }
    (best, changes)
}

fn main() {
    let store = Store::temp().expect("store");
    let mut results = Vec::new();
    for nodes in [1_000, 100_000] {
        let t0 = Instant::now();
        let (base, files) = build(&store, nodes, 10);
        let built = t0.elapsed();
        let t_id = Instant::now();
        base.id();
        let full_id = t_id.elapsed();
        let mut changed = base.clone();
        let mut frozen = std::time::Duration::MAX;
        for _ in 0..20 {
            let t1 = Instant::now();
            changed = change_ten(&base, &files);
            frozen = frozen.min(t1.elapsed());
        }
        let t2 = Instant::now();
        changed.id();
        let incr_id = t2.elapsed();
        let (per_diff, changes) = time_diff(&base, &changed);
        println!(
            "{nodes:>7} nodes ({} files): build+freeze {:.2} ms, first id {:.2} ms; \
             reopen+10 writes+freeze {:.3} ms, id after 10 changes {:.1} us, diff {:.2} us ({changes} changes)",
            files.len(),
            built.as_secs_f64() * 1e3,
            full_id.as_secs_f64() * 1e3,
            frozen.as_secs_f64() * 1e3,
            incr_id.as_secs_f64() * 1e6,
            per_diff * 1e6,
        );
        results.push(per_diff);
    }
    println!(
        "diff time ratio 100,000 / 1,000 nodes: {:.2}",
        results[1] / results[0]
    );
}
