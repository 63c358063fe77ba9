//! Image configuration: oci-spec's `ImageConfiguration` plus the Docker fields it lacks
//! (`Healthcheck`, `Shell`, `OnBuild`, `ArgsEscaped`), with canonical serialisation.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use oci_spec::image::{Arch, Config, History, ImageConfiguration, Os};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Digest;
use crate::canonical::{rfc3339, value_to_canonical_json};
use crate::error::{OciError, Result};

/// A target platform, `os/arch[/variant]` as in `--platform linux/arm64/v8`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// `linux/<host arch>`: what `docker build` targets by default on this host.
    pub fn host_linux() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: None,
        }
    }

    /// Whether an image for `other` satisfies a request for `self`. A missing requested
    /// variant accepts any; arm64's default variant is v8.
    pub fn matches(&self, other: &Platform) -> bool {
        if self.os != other.os || self.architecture != other.architecture {
            return false;
        }
        let norm = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", None) => Some("v8".to_owned()),
            (_, v) => v.map(str::to_owned),
        };
        self.variant.is_none() || norm(self) == norm(other)
    }
}

/// The architectures kiln builds for, as OCI names them (Go's `GOARCH` values that have
/// Linux images). A `--platform` naming any other is refused before anything runs.
const KNOWN_ARCHITECTURES: &[&str] = &[
    "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le", "loong64",
];

impl Platform {
    /// A `--platform` value as buildx reads it: a comma-separated list of `os/arch[/variant]`,
    /// each normalised as containerd does (`x86_64` is `amd64`, `aarch64` is `arm64`,
    /// `arm64/v8` is `arm64`, a bare `arm` is `arm/v7`). An empty entry, an unknown
    /// architecture, an OS other than `linux`, and a platform named twice are errors.
    pub fn parse_list(list: &str) -> Result<Vec<Platform>> {
        let bad = |reason: String| OciError::invalid(format!("platform list {list:?}"), reason);
        let mut out: Vec<Platform> = Vec::new();
        for (n, entry) in list.split(',').enumerate() {
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(bad(format!("entry {} is empty", n + 1)));
            }
            let p = entry.parse::<Platform>()?.normalized()?;
            if out.contains(&p) {
                return Err(bad(format!("{p} is named twice")));
            }
            out.push(p);
        }
        Ok(out)
    }

    /// containerd's normal form of this platform, checked against the platforms kiln
    /// builds for.
    pub fn normalized(&self) -> Result<Platform> {
        let os = self.os.to_ascii_lowercase();
        let arch = self.architecture.to_ascii_lowercase();
        let variant = self.variant.as_deref().map(str::to_ascii_lowercase);
        let (architecture, variant) = match (arch.as_str(), variant.as_deref()) {
            ("x86_64" | "x86-64", None) => ("amd64".to_owned(), None),
            ("aarch64", v) | ("arm64", v) if matches!(v, None | Some("v8")) => {
                ("arm64".to_owned(), None)
            }
            ("armhf", None) => ("arm".to_owned(), Some("v7".to_owned())),
            ("armel", None) => ("arm".to_owned(), Some("v6".to_owned())),
            ("arm", None) => ("arm".to_owned(), Some("v7".to_owned())),
            ("i386", None) => ("386".to_owned(), None),
            (a, v) => (a.to_owned(), v.map(str::to_owned)),
        };
        let what = || format!("platform {self}");
        if os != "linux" {
            return Err(OciError::invalid(
                what(),
                "kiln builds Linux images only: use linux/<arch>",
            ));
        }
        if !KNOWN_ARCHITECTURES.contains(&architecture.as_str()) {
            return Err(OciError::invalid(
                what(),
                format!(
                    "unknown architecture {architecture:?} (known: {})",
                    KNOWN_ARCHITECTURES.join(", ")
                ),
            ));
        }
        Ok(Platform {
            os,
            architecture,
            variant,
        })
    }
}

impl FromStr for Platform {
    type Err = OciError;

    fn from_str(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = |reason: &str| OciError::invalid(format!("platform {s:?}"), reason);
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("empty component"));
        }
        match parts.as_slice() {
            [os, arch] => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
            }),
            _ => Err(bad("expected os/arch[/variant]")),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Docker's `HEALTHCHECK`, as Docker writes it into `config.Healthcheck` (durations in
/// nanoseconds; zero/absent means "inherit the default").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
}

/// Docker-only fields of the container config, which oci-spec does not model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DockerExtensions {
    pub healthcheck: Option<Healthcheck>,
    /// `SHELL` instruction.
    pub shell: Option<Vec<String>>,
    /// `ONBUILD` triggers.
    pub on_build: Option<Vec<String>>,
    pub args_escaped: Option<bool>,
}

/// An image config being built or read from a base image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// Everything but the container config (`spec.config` stays `None`).
    pub spec: ImageConfiguration,
    pub docker: DockerExtensions,
    /// The container config, held apart from `spec` because oci-spec only lets it be
    /// replaced whole: editing it there cost a copy of every label per instruction, so
    /// 10,000 LABEL lines took time quadratic in their number. Its `Env` is in `env`.
    container: Option<Config>,
    /// The container config's `Env`, held apart with an index by name: setting a
    /// variable copied and scanned the whole list, so 10,000 ENV lines were quadratic.
    /// `Some` only while `container` is.
    env: Option<EnvList>,
    /// Bytes of the history's `created_by` lines, kept as entries are added, so a build
    /// can stop a history growing past [`crate::MAX_CONFIG_SIZE`] at the step that does it
    /// without summing the whole history per step.
    history_bytes: u64,
}

/// `Env` entries (`NAME=value`) in order, with the position of each name's first entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct EnvList {
    entries: Vec<String>,
    index: HashMap<String, usize>,
}

impl EnvList {
    fn new(entries: Vec<String>) -> EnvList {
        let mut index = HashMap::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            index.entry(env_name(entry).to_owned()).or_insert(i);
        }
        EnvList { entries, index }
    }

    /// BuildKit's `addEnv`: a name already present has its first entry replaced in
    /// place; a new one goes at the end.
    fn set(&mut self, name: &str, value: &str) {
        let entry = format!("{name}={value}");
        let i = self.index.get(name).copied();
        match i.and_then(|i| self.entries.get_mut(i)) {
            Some(old) => *old = entry,
            None => {
                self.index.insert(name.to_owned(), self.entries.len());
                self.entries.push(entry);
            }
        }
    }
}

/// The name of an `Env` entry: up to the first `=`, or all of it (as BuildKit reads it).
fn env_name(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(name, _)| name)
}

impl ImageConfig {
    /// An empty config (no layers, no history) for `platform`, created at `epoch`.
    pub fn new(platform: &Platform, epoch: i64) -> ImageConfig {
        let mut c = ImageConfig::default();
        c.set_platform(platform);
        c.set_created(epoch);
        c
    }

    /// Parse a config blob (OCI or Docker). Unknown fields are ignored.
    pub fn from_json(bytes: &[u8]) -> Result<ImageConfig> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| OciError::json("image config", e))?;
        if !value.is_object() {
            return Err(OciError::invalid("image config", "not a JSON object"));
        }
        let mut spec: ImageConfiguration =
            serde_json::from_value(value.clone()).map_err(|e| OciError::json("image config", e))?;
        let mut container = spec.config().clone();
        spec.set_config(None);
        let env = container.as_mut().and_then(take_env);
        let c = value.get("config");
        let field = |name: &str| c.and_then(|c| c.get(name)).filter(|v| !v.is_null());
        let docker = DockerExtensions {
            healthcheck: from_field(field("Healthcheck"), "Healthcheck")?,
            shell: from_field(field("Shell"), "Shell")?,
            on_build: from_field(field("OnBuild"), "OnBuild")?,
            args_escaped: field("ArgsEscaped").and_then(Value::as_bool),
        };
        let history_bytes = spec
            .history()
            .iter()
            .flatten()
            .map(|h| h.created_by().as_ref().map_or(0, String::len) as u64)
            .sum();
        Ok(ImageConfig {
            spec,
            docker,
            container,
            env,
            history_bytes,
        })
    }

    /// Canonical JSON bytes: the same config always serialises to the same bytes.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let mut v = serde_json::to_value(&self.spec).map_err(|e| OciError::json("config", e))?;
        if let (Some(c), Some(obj)) = (&self.container, v.as_object_mut()) {
            let mut c = to_value(c)?;
            if let (Some(env), Some(c)) = (&self.env, c.as_object_mut()) {
                c.insert("Env".into(), to_value(&env.entries)?);
            }
            obj.insert("config".into(), c);
        }
        let extras = self.docker_fields()?;
        if !extras.is_empty() {
            let obj = v
                .as_object_mut()
                .ok_or_else(|| OciError::invalid("image config", "not an object"))?;
            let cfg = obj
                .entry("config")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(cfg) = cfg.as_object_mut() {
                cfg.extend(extras);
            }
        }
        value_to_canonical_json(&v, "image config")
    }

    fn docker_fields(&self) -> Result<Vec<(String, Value)>> {
        let d = &self.docker;
        let mut out = Vec::new();
        if let Some(h) = &d.healthcheck {
            out.push(("Healthcheck".into(), to_value(h)?));
        }
        if let Some(s) = &d.shell {
            out.push(("Shell".into(), to_value(s)?));
        }
        if let Some(o) = &d.on_build {
            out.push(("OnBuild".into(), to_value(o)?));
        }
        if let Some(a) = d.args_escaped {
            out.push(("ArgsEscaped".into(), Value::Bool(a)));
        }
        Ok(out)
    }

    pub fn platform(&self) -> Platform {
        Platform {
            os: self.spec.os().to_string(),
            architecture: self.spec.architecture().to_string(),
            variant: self.spec.variant().clone(),
        }
    }

    pub fn set_platform(&mut self, p: &Platform) {
        self.spec.set_os(Os::from(p.os.as_str()));
        self.spec
            .set_architecture(Arch::from(p.architecture.as_str()));
        self.spec.set_variant(p.variant.clone());
    }

    /// Set `created` to the source date epoch.
    pub fn set_created(&mut self, epoch: i64) {
        self.spec.set_created(Some(rfc3339(epoch)));
    }

    /// The container config (Env, Cmd, ...), empty if the image has none.
    pub fn container(&self) -> Config {
        let mut c = self.container.clone().unwrap_or_default();
        c.set_env(self.env.as_ref().map(|e| e.entries.clone()));
        c
    }

    /// Edit the container config in place (created empty if absent); nothing is copied.
    /// `f` sees it without `Env` (read by [`ImageConfig::env`], changed by
    /// [`ImageConfig::set_env_var`]); an `Env` that `f` sets replaces the whole list.
    pub fn update_container(&mut self, f: impl FnOnce(&mut Config)) {
        let c = self.container.get_or_insert_with(Config::default);
        f(c);
        if let Some(env) = take_env(c) {
            self.env = Some(env);
        }
    }

    /// The container config's `Env` entries (`NAME=value`), empty if it has none.
    pub fn env(&self) -> &[String] {
        self.env.as_ref().map_or(&[], |e| &e.entries)
    }

    /// Sets one variable in `Env` as BuildKit's ENV does: an existing name keeps its
    /// place with the new value, a new one is appended. O(1) however long `Env` is.
    pub fn set_env_var(&mut self, name: &str, value: &str) {
        self.container.get_or_insert_with(Config::default);
        self.env
            .get_or_insert_with(EnvList::default)
            .set(name, value);
    }

    /// The layers' diff_ids, in order.
    pub fn diff_ids(&self) -> Result<Vec<Digest>> {
        self.spec
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| d.parse())
            .collect()
    }

    /// Append a layer: its diff_id to rootfs and a history entry for it.
    pub fn add_layer(
        &mut self,
        diff_id: &Digest,
        created_by: &str,
        comment: Option<&str>,
        epoch: i64,
    ) {
        self.spec
            .rootfs_mut()
            .diff_ids_mut()
            .push(diff_id.to_string());
        self.push_history(history(created_by, comment, epoch, false));
    }

    /// Append a history entry for a step that changed only metadata (`empty_layer: true`,
    /// as BuildKit marks ENV, CMD, LABEL, ...).
    pub fn add_empty_layer_history(&mut self, created_by: &str, comment: Option<&str>, epoch: i64) {
        self.push_history(history(created_by, comment, epoch, true));
    }

    /// Appends in place (copying the history per step made many steps quadratic).
    fn push_history(&mut self, h: History) {
        self.history_bytes += h.created_by().as_ref().map_or(0, String::len) as u64;
        self.spec.history_mut().get_or_insert_with(Vec::new).push(h);
    }

    /// Bytes of the history's `created_by` lines (which hold every LABEL, EXPOSE, ENV
    /// and RUN as expanded): the config is at least this large.
    pub fn history_bytes(&self) -> u64 {
        self.history_bytes
    }
}

fn history(created_by: &str, comment: Option<&str>, epoch: i64, empty: bool) -> History {
    let mut h = History::default();
    h.set_created(Some(rfc3339(epoch)));
    h.set_created_by(Some(created_by.to_owned()));
    h.set_comment(comment.map(str::to_owned));
    h.set_empty_layer(empty.then_some(true));
    h
}

/// Moves `Env` out of `c` into an indexed list (oci-spec has no `env_mut`, so this copies
/// the list once; it is only set whole when a config is read or a stage starts).
fn take_env(c: &mut Config) -> Option<EnvList> {
    let env = c.env().clone()?;
    c.set_env(None);
    Some(EnvList::new(env))
}

fn to_value<T: Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| OciError::json("image config", e))
}

fn from_field<T: serde::de::DeserializeOwned>(v: Option<&Value>, name: &str) -> Result<Option<T>> {
    v.cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| OciError::json(format!("image config {name}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ImageConfig {
        let mut c = ImageConfig::new(&"linux/arm64/v8".parse().unwrap(), 1_700_000_000);
        c.update_container(|k| {
            k.set_env(Some(vec!["PATH=/usr/bin".into(), "A=1".into()]));
            k.set_cmd(Some(vec!["sh".into()]));
            k.set_working_dir(Some("/app".into()));
            k.set_user(Some("1000:1000".into()));
            k.set_labels(Some(
                [("b", "2"), ("a", "1"), ("c", "3")]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            ));
            k.set_exposed_ports(Some(vec![
                "80/tcp".into(),
                "443/tcp".into(),
                "53/udp".into(),
            ]));
            k.set_volumes(Some(vec!["/data".into(), "/cache".into()]));
            k.set_stop_signal(Some("SIGTERM".into()));
        });
        c.docker.healthcheck = Some(Healthcheck {
            test: vec!["CMD-SHELL".into(), "curl -f http://localhost/".into()],
            interval: Some(30_000_000_000),
            retries: Some(3),
            ..Default::default()
        });
        c.docker.shell = Some(vec!["/bin/bash".into(), "-c".into()]);
        let d = Digest::sha256_of(b"layer");
        c.add_layer(&d, "RUN make", None, 1_700_000_000);
        c.add_empty_layer_history("ENV A=1", Some("buildkit.dockerfile.v0"), 1_700_000_000);
        c
    }

    #[test]
    fn history_bytes_follow_added_and_parsed_entries() {
        let mut c = sample();
        let before = c.history_bytes();
        c.add_empty_layer_history("LABEL a=1", None, 0);
        c.add_layer(&Digest::sha256_of(b"x"), "RUN true", None, 0);
        assert_eq!(c.history_bytes(), before + 9 + 8);
        let parsed = ImageConfig::from_json(&c.to_json().unwrap()).unwrap();
        assert_eq!(parsed.history_bytes(), c.history_bytes());
    }

    #[test]
    fn canonical_and_roundtrips() {
        let c = sample();
        let a = c.to_json().unwrap();
        for _ in 0..5 {
            assert_eq!(sample().to_json().unwrap(), a);
        }
        let text = String::from_utf8(a.clone()).unwrap();
        assert!(text.contains(r#""Healthcheck":{"Interval":30000000000,"Retries":3,"Test":["CMD-SHELL","curl -f http://localhost/"]}"#), "{text}");
        assert!(
            text.contains(r#""ExposedPorts":{"443/tcp":{},"53/udp":{},"80/tcp":{}}"#),
            "{text}"
        );
        assert!(text.contains(r#""created":"2023-11-14T22:13:20Z""#));
        assert!(text.contains(r#""empty_layer":true"#));
        assert!(text.contains(r#""variant":"v8""#));
        let back = ImageConfig::from_json(&a).unwrap();
        assert_eq!(back.docker, c.docker);
        assert_eq!(back.to_json().unwrap(), a);
        assert_eq!(back.platform().to_string(), "linux/arm64/v8");
        assert_eq!(back.diff_ids().unwrap(), vec![Digest::sha256_of(b"layer")]);
    }

    #[test]
    fn env_vars_are_replaced_in_place_as_buildkit_does() {
        let mut c = ImageConfig::default();
        assert!(c.env().is_empty());
        c.update_container(|k| {
            k.set_env(Some(
                ["PATH=/bin", "A=1", "no-equals", "A=dup"]
                    .map(String::from)
                    .to_vec(),
            ));
        });
        c.set_env_var("A", "2=two");
        c.set_env_var("B", "3");
        c.set_env_var("PATH", "/x:/bin");
        c.set_env_var("no-equals", "now");
        let want = ["PATH=/x:/bin", "A=2=two", "no-equals=now", "A=dup", "B=3"];
        assert_eq!(c.env(), want);
        assert_eq!(
            c.container().env().as_deref(),
            Some(&want.map(String::from)[..])
        );
        // `update_container` hands over the config without Env and keeps it.
        c.update_container(|k| {
            assert!(k.env().is_none());
            k.set_user(Some("1000".into()));
        });
        assert_eq!(c.env(), want);
        let json = c.to_json().unwrap();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(
            text.contains(r#""Env":["PATH=/x:/bin","A=2=two","no-equals=now","A=dup","B=3"]"#),
            "{text}"
        );
        let back = ImageConfig::from_json(&json).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.to_json().unwrap(), json);
    }

    #[test]
    fn an_env_var_set_on_an_empty_config_creates_its_container_config() {
        let mut c = ImageConfig::default();
        c.set_env_var("A", "1");
        let text = String::from_utf8(c.to_json().unwrap()).unwrap();
        assert!(text.contains(r#""config":{"Env":["A=1"]}"#), "{text}");
    }

    #[test]
    fn platform_parsing_and_matching() {
        let p: Platform = "linux/arm64".parse().unwrap();
        assert!(p.matches(&"linux/arm64/v8".parse().unwrap()));
        let v8: Platform = "linux/arm64/v8".parse().unwrap();
        assert!(v8.matches(&"linux/arm64".parse().unwrap()));
        let v7: Platform = "linux/arm/v7".parse().unwrap();
        assert!(!v7.matches(&"linux/arm/v6".parse().unwrap()));
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//x".parse::<Platform>().is_err());
    }

    #[test]
    fn platform_lists_are_split_normalised_and_checked() {
        let list = Platform::parse_list("linux/amd64, linux/aarch64,linux/arm").unwrap();
        let shown: Vec<String> = list.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown, ["linux/amd64", "linux/arm64", "linux/arm/v7"]);
        let err = |s: &str| Platform::parse_list(s).unwrap_err().to_string();
        assert!(
            err("linux/amd64,,").contains("entry 2 is empty"),
            "{}",
            err("linux/amd64,,")
        );
        let twice = err("linux/arm64,linux/arm64/v8");
        assert!(twice.contains("linux/arm64 is named twice"), "{twice}");
        let unknown = err("linux/amd64,linux/sparc");
        assert!(
            unknown.contains("unknown architecture \"sparc\""),
            "{unknown}"
        );
        assert!(err("windows/amd64").contains("Linux images only"));
        assert!(err("").contains("entry 1 is empty"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(ImageConfig::from_json(b"[]").is_err());
        assert!(ImageConfig::from_json(b"{\"architecture\":1}").is_err());
    }
}
