//! kiln's real setting: the interpreter over a virtual tree with bundled wasm tools.

use std::sync::{Arc, OnceLock};

use kiln_fs::{Snapshot, Store, Tree};
use kiln_runtime::{Limits, MountTable, NetworkPolicy, Runtime, RuntimeConfig, Vfs};
use kiln_shell::RuntimeHost;

/// One runtime for the whole test binary; compiled modules are cached on disk under
/// the target dir so later runs skip compilation.
pub(crate) fn runtime() -> Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            cache_dir: Some(
                std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiln-shell-modules"),
            ),
            ..Default::default()
        })
        .unwrap()
    })
    .clone()
}

/// A tree holding `/work` with `files` (path, contents) and `/root`, `/tmp`.
pub(crate) fn tree_with(files: &[(&str, &str)]) -> Tree {
    let store = Store::temp().unwrap();
    let mut tree = Tree::from_snapshot(&Snapshot::empty(&store));
    let root = tree.root();
    for d in ["work", "root", "tmp", "bin", "usr"] {
        tree.mkdir(root, d.as_bytes(), 0o755, 0, 0).unwrap();
    }
    let work = tree.lookup(root, b"work").unwrap();
    for (path, content) in files {
        let mut dir = work;
        let parts: Vec<&str> = path.split('/').collect();
        for p in &parts[..parts.len() - 1] {
            dir = match tree.lookup(dir, p.as_bytes()) {
                Ok(i) => i,
                Err(_) => tree.mkdir(dir, p.as_bytes(), 0o755, 0, 0).unwrap(),
            };
        }
        let f = tree
            .create_file(dir, parts[parts.len() - 1].as_bytes(), 0o644, 0, 0)
            .unwrap();
        tree.write_at(f, 0, content.as_bytes()).unwrap();
    }
    tree
}

pub(crate) fn host_with(files: &[(&str, &str)]) -> Arc<RuntimeHost> {
    let tree = Arc::new(parking_lot::Mutex::new(tree_with(files)));
    let vfs = Vfs::new(tree, MountTable::new());
    Arc::new(RuntimeHost::new(
        runtime(),
        vfs,
        Limits::default(),
        NetworkPolicy::default(),
    ))
}
