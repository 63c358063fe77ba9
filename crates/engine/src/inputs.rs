//! What a step's result depends on, as typed values: one per instruction kind. The cache
//! key is derived from the value ([`StepInputs::key`]: canonical JSON of the whole value,
//! hashed with the parent key under a version prefix), never assembled field by field, so
//! a field added to one of these structs is in the key without anyone remembering to add
//! it. The conversions from the Dockerfile's types destructure them without `..`, so a
//! new Dockerfile option is a compile error here until someone decides what it keys on.
//!
//! Secret values are never an input: a secret mount contributes whether it was given and
//! the keyed digest of its value (`SecretKey::digest`, HMAC under the cache's private key).

use kiln_dockerfile::{Copy, Mount, RunProgram};
use kiln_oci::Compression;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::cache::{CacheError, CacheKey};

/// Hashed before every key: a change to how inputs are written makes all old records
/// unreachable instead of letting them collide with new ones.
const KEY_VERSION: &[u8] = b"kiln-step-v2\0";

/// Everything besides its parent that determines one step's result.
#[derive(Debug, Serialize)]
pub(crate) enum StepInputs<'a> {
    /// `ARG`: each declared name with the value this stage sees (`None`: unset).
    Arg {
        values: Vec<(&'a str, Option<&'a str>)>,
    },
    /// An instruction that only changes the config (ENV, LABEL, USER, CMD, SHELL...), as
    /// written: what it sets reaches later steps' inputs through the config (env, cwd,
    /// user, shell), and the ARG values it expands are keyed at their ARG step.
    Config {
        instruction: &'a str,
    },
    Workdir {
        path: &'a str,
        epoch: i64,
        /// The stage's `USER`: directories WORKDIR creates are theirs, as in BuildKit.
        user: &'a str,
    },
    Copy(CopyInputs<'a>),
    Run(RunInputs<'a>),
    /// A step that reran under `--no-cache-filter` while the rest of the build used the
    /// cache: what follows keys on the layer it made (its diff id), as BuildKit's content
    /// keys would, so a step reading it reruns when its content changed.
    Rerun {
        diff_id: &'a str,
    },
}

impl StepInputs<'_> {
    /// The cache key of a step with these inputs after `parent` (`None` for a root).
    pub(crate) fn key(&self, parent: Option<CacheKey>) -> Result<CacheKey, CacheError> {
        derive(parent, self)
    }
}

/// The one key derivation: sha256 over the version prefix, the parent key and the
/// canonical JSON of `inputs`. serde_json writes struct fields in declaration order and
/// sequences in order, so equal values give equal bytes; the JSON framing keeps fields
/// apart.
fn derive(parent: Option<CacheKey>, inputs: &impl Serialize) -> Result<CacheKey, CacheError> {
    let mut hasher = HashWriter(Sha256::new());
    hasher.0.update(KEY_VERSION);
    if let Some(parent) = parent {
        hasher.0.update(parent.bytes());
    }
    serde_json::to_writer(&mut hasher, inputs).map_err(CacheError::Key)?;
    Ok(CacheKey::from_digest(hasher.0.finalize().into()))
}

/// What every stage's key starts from besides its base: the layer compression (a cached
/// layer is reused as it was stored, so a build asking for another compression must not
/// hit it) and the kiln that runs the steps (its version and bundled userland decide what
/// a RUN produces, so an upgraded kiln never replays an older one's results).
///
/// Not the target platform: a step's result depends on it only through what the key
/// already holds (an image base's manifest digest is its platform's; `TARGET*` ARGs a
/// stage declares are in its ARG and RUN inputs; the wasm userland behaves the same for
/// every platform, `uname -m` included), so the platform-independent steps of a
/// multi-platform build run once. A tool that came to read the platform would have to
/// put it back here.
#[derive(Debug, Serialize)]
pub(crate) struct Toolchain<'a> {
    pub(crate) compression: &'a str,
    pub(crate) kiln: &'a str,
    pub(crate) userland: String,
}

impl Toolchain<'_> {
    /// This kiln, building `req`.
    pub(crate) fn of(req: &crate::BuildRequest) -> Toolchain<'static> {
        let compression = match req.compression {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        };
        Toolchain {
            compression,
            kiln: env!("CARGO_PKG_VERSION"),
            userland: hex::encode(kiln_runtime::userland_digest()),
        }
    }

    /// Its part of every root key, computed once per build.
    pub(crate) fn key(&self) -> Result<CacheKey, CacheError> {
        derive(None, self)
    }
}

/// The key a stage starts from: its base (`scratch` or an image's digest) under the
/// build's [`Toolchain`] key.
pub(crate) fn stage_root(base: &str, toolchain: CacheKey) -> CacheKey {
    CacheKey::root(base, &toolchain.to_hex())
}

/// Feeds serialized bytes straight into the hash (no buffer of the whole value).
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `COPY` and `ADD`.
#[derive(Debug, Serialize)]
pub(crate) struct CopyInputs<'a> {
    pub(crate) add: bool,
    /// The sources as written: a pattern copies into the destination directory even when
    /// it matches one file, which a plain name copies onto, so equal content is not enough.
    pub(crate) sources: &'a [String],
    /// The destination, absolute (after WORKDIR).
    pub(crate) dest: &'a str,
    pub(crate) chown: Option<&'a str>,
    pub(crate) chmod: Option<&'a str>,
    pub(crate) exclude: &'a [String],
    /// `--parents`: matches keep their path below the pivot.
    pub(crate) parents: bool,
    /// `ADD` of a local archive unpacks it (unless `--unpack=false`).
    pub(crate) unpack: bool,
    /// `ADD --unpack=true <url>` unpacks a downloaded archive too.
    pub(crate) unpack_urls: bool,
    /// `COPY <<NAME`: each file's name and body.
    pub(crate) heredocs: Vec<(&'a str, &'a str)>,
    pub(crate) from: CopyFrom<'a>,
    /// Files get the source date epoch as their time.
    pub(crate) epoch: i64,
}

/// Where a `COPY` reads from.
#[derive(Debug, Serialize)]
pub(crate) enum CopyFrom<'a> {
    /// The build context or a `--build-context NAME=DIR`: the digest of what the sources
    /// matched after `.dockerignore` and `--exclude` (names, modes, contents), so an
    /// ignored file never causes a miss; and each `ADD <url>` with its content digest.
    Context {
        content: String,
        urls: Vec<(&'a str, String)>,
    },
    /// Another stage or an image: its cache key (an image's is its manifest digest), so
    /// a cached build never has to open the source's files to know the key.
    Stage { key: CacheKey },
}

impl<'a> CopyInputs<'a> {
    /// The inputs of `c` (its sources given as `from`), destination `dest`.
    pub(crate) fn new(
        c: &'a Copy,
        add: bool,
        dest: &'a str,
        from: CopyFrom<'a>,
        epoch: i64,
    ) -> Self {
        let Copy {
            sources,
            dest: _, // made absolute by the caller
            heredocs,
            from: _, // resolved by the caller into `from`
            chown,
            chmod,
            link: _, // how BuildKit stores a layer, not what is in it
            exclude,
            parents,
            checksum: _,     // verified; the content digest is keyed
            keep_git_dir: _, // git sources are not supported
            unpack,
            json: _, // how it was written
        } = c;
        Self {
            add,
            sources,
            dest,
            chown: chown.as_deref(),
            chmod: chmod.as_deref(),
            exclude,
            parents: *parents,
            unpack: add && *unpack != Some(false),
            unpack_urls: add && *unpack == Some(true),
            heredocs: heredocs
                .iter()
                .map(|h| (h.name.as_str(), h.content.as_str()))
                .collect(),
            from,
            epoch,
        }
    }
}

/// `RUN`: the program and everything it sees.
#[derive(Debug, Serialize)]
pub(crate) struct RunInputs<'a> {
    pub(crate) program: Program<'a>,
    pub(crate) shell: &'a [String],
    pub(crate) cwd: &'a str,
    pub(crate) user: &'a str,
    /// The ARG and ENV values the step's environment holds.
    pub(crate) env: &'a [(String, String)],
    /// Whether the step may reach the network (`--network` and the step's own mode).
    pub(crate) network: bool,
    /// `--allow-host`: which hosts it may reach (empty: any), so a result fetched from a
    /// host is not replayed by a build that may no longer reach it.
    pub(crate) allowed_hosts: &'a [String],
    pub(crate) mounts: Vec<MountInputs<'a>>,
    /// The guest's clock and the files' times.
    pub(crate) epoch: i64,
    /// `BUILDKIT_SANDBOX_HOSTNAME` (what `/etc/hosts` and `hostname` say), left out of
    /// the key when the build does not set it, so those keys stay as they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hostname: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub(crate) enum Program<'a> {
    Shell(&'a str),
    Exec(&'a [String]),
    ScriptFile { name: &'a str, content: &'a str },
}

impl<'a> From<&'a RunProgram> for Program<'a> {
    fn from(p: &'a RunProgram) -> Self {
        match p {
            RunProgram::Shell(s) => Program::Shell(s),
            RunProgram::Exec(argv) => Program::Exec(argv),
            RunProgram::ScriptFile { name, content } => Program::ScriptFile { name, content },
        }
    }
}

/// One `--mount` of a RUN step, with the content it exposes.
#[derive(Debug, Serialize)]
pub(crate) enum MountInputs<'a> {
    Bind {
        target: &'a str,
        source: &'a str,
        readwrite: bool,
        from: BindFrom,
    },
    Cache {
        id: &'a str,
        target: &'a str,
        /// What a new cache starts from, by content, as for a bind of `source`.
        from: Option<BindFrom>,
        source: Option<&'a str>,
        readonly: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Tmpfs {
        target: &'a str,
        size: Option<u64>,
    },
    Secret {
        id: &'a str,
        target: Option<&'a str>,
        env: Option<&'a str>,
        required: bool,
        mode: u32,
        uid: u32,
        gid: u32,
        /// The keyed digest of the value given, `None` when the secret was not given.
        given: Option<&'a str>,
    },
    Ssh {
        id: &'a str,
        target: Option<&'a str>,
        required: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

/// What a bind mount exposes, by content: BuildKit keys a bind by the content it shows,
/// and so does kiln, or a changed source would replay a stale result.
#[derive(Debug, Serialize)]
pub(crate) enum BindFrom {
    /// The build context or a `--build-context NAME=DIR`: the digest of the source as
    /// COPY would see it (after `.dockerignore`).
    Context { content: String },
    /// A stage or an image: its cache key.
    Stage { key: CacheKey },
}

impl<'a> MountInputs<'a> {
    /// The inputs of `m`: `bind` says what a bind mount of `source` (from `from`, `None`
    /// for the context) exposes; `secret_digest` is the keyed digest of a secret mount's
    /// value, if it was given.
    pub(crate) fn new<E>(
        m: &'a Mount,
        secret_digest: Option<&'a str>,
        bind: impl FnOnce(&'a str, Option<&'a str>) -> Result<BindFrom, E>,
    ) -> Result<Self, E> {
        Ok(match m {
            Mount::Bind {
                target,
                source,
                from,
                readwrite,
            } => MountInputs::Bind {
                target,
                source,
                readwrite: *readwrite,
                from: bind(source, from.as_deref())?,
            },
            Mount::Cache {
                id,
                target,
                // How concurrent steps share the directory, not what this one sees
                // (BuildKit leaves it out of the key too; kiln gives every step one tree).
                sharing: _,
                from,
                source,
                readonly,
                mode,
                uid,
                gid,
            } => MountInputs::Cache {
                id,
                target,
                from: match from {
                    Some(f) => Some(bind(source.as_deref().unwrap_or("/"), Some(f))?),
                    None => None,
                },
                source: source.as_deref(),
                readonly: *readonly,
                mode: *mode,
                uid: *uid,
                gid: *gid,
            },
            Mount::Tmpfs { target, size } => MountInputs::Tmpfs {
                target,
                size: *size,
            },
            Mount::Secret {
                id,
                target,
                env,
                required,
                mode,
                uid,
                gid,
            } => MountInputs::Secret {
                id: id.as_str(),
                target: target.as_deref(),
                env: env.as_deref(),
                required: *required,
                mode: *mode,
                uid: *uid,
                gid: *gid,
                given: secret_digest,
            },
            Mount::Ssh {
                id,
                target,
                required,
                mode,
                uid,
                gid,
            } => MountInputs::Ssh {
                id,
                target: target.as_deref(),
                required: *required,
                mode: *mode,
                uid: *uid,
                gid: *gid,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent() -> CacheKey {
        CacheKey::root("scratch", "linux/amd64")
    }

    fn key(inputs: &StepInputs<'_>) -> CacheKey {
        inputs.key(Some(parent())).unwrap()
    }

    #[test]
    fn every_part_of_the_toolchain_is_in_the_root_key() {
        let req = crate::BuildRequest::new("/ctx".into(), "/cache".into());
        let this = Toolchain::of(&req);
        assert_eq!(this.kiln, env!("CARGO_PKG_VERSION"));
        assert_eq!(this.userland, hex::encode(kiln_runtime::userland_digest()));
        let root = |t: &Toolchain<'_>| stage_root("scratch", t.key().unwrap());
        let base = root(&this);
        assert_eq!(base, root(&Toolchain::of(&req)), "deterministic");
        let changed = [
            Toolchain {
                compression: "zstd",
                ..Toolchain::of(&req)
            },
            Toolchain {
                kiln: "0.0.0-other",
                ..Toolchain::of(&req)
            },
            Toolchain {
                userland: "00".repeat(32),
                ..Toolchain::of(&req)
            },
        ];
        for t in &changed {
            assert_ne!(root(t), base, "{t:?} is not in the key");
        }
        assert_ne!(stage_root("sha256:00", this.key().unwrap()), base);
    }

    #[test]
    fn equal_inputs_give_equal_keys_and_every_field_counts() {
        let workdir = |path, epoch| {
            key(&StepInputs::Workdir {
                path,
                epoch,
                user: "",
            })
        };
        assert_eq!(workdir("/a", 0), workdir("/a", 0));
        assert_ne!(workdir("/a", 0), workdir("/b", 0));
        assert_ne!(workdir("/a", 0), workdir("/a", 1));
        let as_app = key(&StepInputs::Workdir {
            path: "/a",
            epoch: 0,
            user: "app",
        });
        assert_ne!(workdir("/a", 0), as_app);
        // The parent is part of the key.
        let inputs = StepInputs::Workdir {
            path: "/a",
            epoch: 0,
            user: "",
        };
        assert_ne!(inputs.key(None).unwrap(), key(&inputs));
        // Kinds never collide, even when their fields look alike.
        assert_ne!(
            key(&StepInputs::Config { instruction: "/a" }),
            key(&StepInputs::Arg {
                values: vec![("/a", None)]
            })
        );
    }

    #[test]
    fn an_unset_arg_differs_from_an_empty_one() {
        let arg = |v| {
            key(&StepInputs::Arg {
                values: vec![("V", v)],
            })
        };
        assert_ne!(arg(None), arg(Some("")));
        assert_ne!(arg(Some("1")), arg(Some("2")));
    }

    fn copy(c: &Copy, from: CopyFrom<'static>) -> CacheKey {
        key(&StepInputs::Copy(CopyInputs::new(c, false, "/d", from, 0)))
    }

    fn context(content: &str) -> CopyFrom<'static> {
        CopyFrom::Context {
            content: content.to_owned(),
            urls: Vec::new(),
        }
    }

    #[test]
    fn copy_keys_on_what_lands_not_how_it_was_written() {
        let plain = Copy::default();
        let base = copy(&plain, context("00"));
        assert_ne!(base, copy(&plain, context("01")));
        let chown = Copy {
            chown: Some("1:1".into()),
            ..Copy::default()
        };
        assert_ne!(base, copy(&chown, context("00")));
        // `--link` and the JSON form change nothing in the layer.
        let link = Copy {
            link: true,
            json: true,
            ..Copy::default()
        };
        assert_eq!(base, copy(&link, context("00")));
        // A pattern that matches the same files lands them elsewhere.
        let glob = Copy {
            sources: vec!["f*".into()],
            ..Copy::default()
        };
        let name = Copy {
            sources: vec!["f".into()],
            ..Copy::default()
        };
        assert_ne!(copy(&glob, context("00")), copy(&name, context("00")));
        let stage = |key| CopyFrom::Stage { key };
        let other = CacheKey::root("other", "");
        assert_ne!(copy(&plain, stage(parent())), copy(&plain, stage(other)));
    }

    fn secret(required: bool) -> Mount {
        Mount::Secret {
            id: kiln_dockerfile::SecretId::new("s").unwrap(),
            target: None,
            env: None,
            required,
            mode: 0o400,
            uid: 0,
            gid: 0,
        }
    }

    fn run_key(mounts: Vec<MountInputs<'_>>) -> CacheKey {
        run_of(Program::Shell("true"), mounts)
    }

    fn run_of(program: Program<'_>, mounts: Vec<MountInputs<'_>>) -> CacheKey {
        key(&StepInputs::Run(RunInputs {
            program,
            shell: &[],
            cwd: "/",
            user: "",
            env: &[],
            network: true,
            allowed_hosts: &[],
            mounts,
            epoch: 0,
            hostname: None,
        }))
    }

    fn no_bind(_: &str, _: Option<&str>) -> Result<BindFrom, ()> {
        Err(())
    }

    #[test]
    fn a_secret_keys_on_whether_and_what_digest_was_given() {
        let m = secret(false);
        let given = |d| run_key(vec![MountInputs::new(&m, d, no_bind).unwrap()]);
        assert_ne!(given(None), given(Some("aa")));
        assert_ne!(given(Some("aa")), given(Some("bb")));
        assert_eq!(given(Some("aa")), given(Some("aa")));
        let required = secret(true);
        assert_ne!(
            given(None),
            run_key(vec![MountInputs::new(&required, None, no_bind).unwrap()])
        );
    }

    #[test]
    fn a_bind_keys_on_the_content_it_exposes() {
        let m = Mount::Bind {
            target: "/m".into(),
            source: "/".into(),
            from: Some("src".into()),
            readwrite: false,
        };
        let exposing = |from: fn() -> BindFrom| {
            let mount = MountInputs::new(&m, None, |source, named| {
                assert_eq!((source, named), ("/", Some("src")));
                Ok::<_, ()>(from())
            });
            run_key(vec![mount.unwrap()])
        };
        let one = || BindFrom::Stage {
            key: CacheKey::root("one", ""),
        };
        let two = || BindFrom::Stage {
            key: CacheKey::root("two", ""),
        };
        assert_ne!(exposing(one), exposing(two));
        // A bind whose content cannot be determined fails the step, never keys blind.
        assert!(MountInputs::new(&m, None, no_bind).is_err());
    }

    #[test]
    fn programs_of_each_form_differ() {
        let shell = RunProgram::Shell("echo a".into());
        let exec = RunProgram::Exec(vec!["echo a".into()]);
        assert_ne!(
            run_of((&shell).into(), Vec::new()),
            run_of((&exec).into(), Vec::new())
        );
    }
}
