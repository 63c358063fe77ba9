//! Compose's schema check, for the keys: a key the compose specification does not know
//! fails the load with compose's own text (`services.app.build additional properties
//! 'contxt' not allowed`), naming the file, as `docker compose` does. `x-` keys are
//! extensions and allowed wherever compose allows them. Values of the parts kiln does not
//! read (ports, volumes, ...) are not checked further.

use serde_yaml_ng::Value;

use crate::error::ComposeError;
use crate::interpolate::join;

const TOP_LEVEL: &[&str] = &[
    "version", "name", "include", "services", "networks", "volumes", "secrets", "configs", "models",
];

/// Every key a service may have in the compose specification.
const SERVICE: &[&str] = &[
    "annotations",
    "attach",
    "build",
    "blkio_config",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "command",
    "configs",
    "container_name",
    "cpu_count",
    "cpu_percent",
    "cpu_shares",
    "cpu_quota",
    "cpu_period",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpus",
    "cpuset",
    "credential_spec",
    "depends_on",
    "deploy",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "env_file",
    "label_file",
    "environment",
    "expose",
    "extends",
    "external_links",
    "extra_hosts",
    "gpus",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "isolation",
    "labels",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "models",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "ports",
    "post_start",
    "pre_stop",
    "privileged",
    "profiles",
    "provider",
    "pull_policy",
    "pull_refresh_after",
    "read_only",
    "restart",
    "runtime",
    "scale",
    "security_opt",
    "shm_size",
    "secrets",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "use_api_socket",
    "user",
    "userns_mode",
    "uts",
    "volumes",
    "volumes_from",
    "working_dir",
];

/// Every key of a service's `build:` mapping.
pub(crate) const BUILD: &[&str] = &[
    "context",
    "dockerfile",
    "dockerfile_inline",
    "entitlements",
    "args",
    "ssh",
    "labels",
    "cache_from",
    "cache_to",
    "no_cache",
    "additional_contexts",
    "network",
    "provenance",
    "sbom",
    "pull",
    "target",
    "shm_size",
    "extra_hosts",
    "isolation",
    "privileged",
    "secrets",
    "tags",
    "ulimits",
    "platforms",
];

/// The long form of a secret granted to a service or a build.
const SECRET_GRANT: &[&str] = &["source", "target", "uid", "gid", "mode"];

/// A top-level secret definition.
const SECRET: &[&str] = &[
    "name",
    "environment",
    "file",
    "external",
    "labels",
    "driver",
    "driver_opts",
    "template_driver",
    "content",
];

/// The text of a mapping key (compose keys are strings; a number key is shown as written).
pub(crate) fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => "?".into(),
    }
}

/// Checks one file's keys; `file` names it in the error.
pub(crate) fn validate(doc: &Value, file: &str) -> Result<(), ComposeError> {
    let check = |value: &Value, at: &str, allowed: &[&str]| keys(value, at, allowed, file);
    check(doc, "", TOP_LEVEL)?;
    for (name, service) in entries(doc, "services") {
        let at = join("services", &name);
        check(service, &at, SERVICE)?;
        if let Some(build @ Value::Mapping(_)) = service.get("build") {
            let at = join(&at, "build");
            check(build, &at, BUILD)?;
            grants(build, &at, &check)?;
        }
        grants(service, &at, &check)?;
    }
    for (name, secret) in entries(doc, "secrets") {
        check(secret, &join("secrets", &name), SECRET)?;
    }
    Ok(())
}

/// Checks one mapping at a path against its allowed keys.
type KeyCheck<'a> = &'a dyn Fn(&Value, &str, &[&str]) -> Result<(), ComposeError>;

/// The long-form entries of `value.secrets`.
fn grants(value: &Value, at: &str, check: KeyCheck<'_>) -> Result<(), ComposeError> {
    let Some(Value::Sequence(items)) = value.get("secrets") else {
        return Ok(());
    };
    for (i, item) in items.iter().enumerate() {
        check(item, &format!("{}[{i}]", join(at, "secrets")), SECRET_GRANT)?;
    }
    Ok(())
}

/// The `(name, value)` pairs of the mapping under `key`.
fn entries<'a>(doc: &'a Value, key: &str) -> Vec<(String, &'a Value)> {
    match doc.get(key) {
        Some(Value::Mapping(map)) => map.iter().map(|(k, v)| (key_text(k), v)).collect(),
        _ => Vec::new(),
    }
}

/// Fails naming every key of the mapping `value` that is neither allowed nor `x-`.
fn keys(value: &Value, at: &str, allowed: &[&str], file: &str) -> Result<(), ComposeError> {
    let Value::Mapping(map) = value else {
        return Ok(());
    };
    let unknown: Vec<String> = map
        .keys()
        .map(key_text)
        .filter(|k| !k.starts_with("x-") && !allowed.contains(&k.as_str()))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(ComposeError::UnknownKeys {
        file: file.to_owned(),
        at: if at.is_empty() {
            "(root)".into()
        } else {
            at.to_owned()
        },
        keys: unknown
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Result<(), String> {
        let doc: Value = serde_yaml_ng::from_str(yaml).unwrap();
        validate(&doc, "compose.yaml").map_err(|e| e.to_string())
    }

    #[test]
    fn unknown_keys_fail_as_compose_says() {
        assert_eq!(
            check("services:\n  app:\n    build:\n      contxt: .\n"),
            Err("validating compose.yaml: services.app.build additional properties 'contxt' not allowed".into())
        );
        assert_eq!(
            check("servics: {}\n"),
            Err(
                "validating compose.yaml: (root) additional properties 'servics' not allowed"
                    .into()
            )
        );
        assert_eq!(
            check("services:\n  app:\n    imagee: x\n    buld: .\n"),
            Err("validating compose.yaml: services.app additional properties 'imagee', 'buld' not allowed".into())
        );
        assert_eq!(
            check("services:\n  app:\n    build:\n      secrets: [{source: a, tgt: b}]\n"),
            Err("validating compose.yaml: services.app.build.secrets[0] additional properties 'tgt' not allowed".into())
        );
        assert!(
            check("secrets:\n  a: {fille: x}\n")
                .unwrap_err()
                .contains("secrets.a additional properties 'fille'")
        );
    }

    #[test]
    fn known_and_extension_keys_pass() {
        let yaml = "x-common: &c {a: 1}\nname: p\nservices:\n  app:\n    x-note: hi\n    image: a\n    build:\n      context: .\n      x-kiln: 1\n      secrets: [a, {source: a, target: b, mode: 0440}]\n    ports: ['80:80']\nsecrets:\n  a: {file: ./a}\n";
        assert_eq!(check(yaml), Ok(()));
    }
}
