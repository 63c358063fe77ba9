//! Multi-platform builds through the binary: `--platform` with a list builds each
//! platform (RUN steps need no emulation: they are wasm), shares the steps that do not
//! read the platform, and writes one OCI image index to every output.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use support::{Workspace, assert_fails_with, assert_ok, decompressed, text};
use support::{have, host_arch, start_registry};

/// A step shared by every platform, then one that reads `TARGETARCH`.
const DOCKERFILE: &str = "FROM scratch\n\
    RUN echo shared > /shared\n\
    ARG TARGETARCH TARGETPLATFORM BUILDPLATFORM\n\
    RUN echo $TARGETARCH > /arch && echo $TARGETPLATFORM built on $BUILDPLATFORM > /where\n";

const TWO: &str = "linux/amd64,linux/arm64";

/// The files of an OCI archive, by path.
fn archive_files(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut tar = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut out = BTreeMap::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut body = Vec::new();
        entry.read_to_end(&mut body).unwrap();
        out.insert(name, body);
    }
    out
}

fn blob<'a>(files: &'a BTreeMap<String, Vec<u8>>, digest: &str) -> &'a [u8] {
    let path = format!("blobs/{}", digest.replace(':', "/"));
    files.get(&path).unwrap_or_else(|| panic!("{path} missing"))
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

/// `path`'s content in the uncompressed layer tar `layer`, if it holds it.
fn file_in_layer(layer: &[u8], path: &str) -> Option<String> {
    let mut tar = tar::Archive::new(layer);
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            == path
        {
            let mut body = String::new();
            entry.read_to_string(&mut body).unwrap();
            return Some(body);
        }
    }
    None
}

#[test]
fn two_platforms_give_an_index_of_two_images_each_with_its_run_output() {
    let ws = Workspace::new();
    ws.write("Dockerfile", DOCKERFILE);
    let archive = ws.path("multi.tar");
    let dest = format!("type=oci,dest={}", archive.display());
    let out = ws.build(&["--platform", TWO, "-t", "multi:1", "-o", &dest]);
    assert_ok(&out);
    let log = text(&out.stderr);
    // Each platform's steps are shown under it, and the step that does not read the
    // platform ran once: the second platform hit the first's result.
    assert!(
        log.contains("[linux/amd64 stage-0 1/2] RUN echo shared"),
        "{log}"
    );
    let shared = log
        .lines()
        .find(|l| l.contains("[linux/arm64 stage-0 1/2] RUN echo shared"))
        .unwrap_or_else(|| panic!("{log}"));
    let number = shared.split_whitespace().next().unwrap();
    assert!(log.contains(&format!("{number} CACHED")), "{log}");
    let arm_run = log
        .lines()
        .find(|l| l.contains("[linux/arm64 stage-0 2/2] RUN"))
        .unwrap_or_else(|| panic!("{log}"));
    let number = arm_run.split_whitespace().next().unwrap();
    assert!(!log.contains(&format!("{number} CACHED")), "{log}");

    let files = archive_files(&archive);
    let top = json(&files["index.json"]);
    let index_desc = &top["manifests"][0];
    assert_eq!(
        index_desc["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let index = json(blob(&files, index_desc["digest"].as_str().unwrap()));
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2, "{index}");
    let mut shared_layers = Vec::new();
    for (entry, arch) in manifests.iter().zip(["amd64", "arm64"]) {
        assert_eq!(entry["platform"]["architecture"], arch, "{index}");
        let manifest = json(blob(&files, entry["digest"].as_str().unwrap()));
        let config = json(blob(&files, manifest["config"]["digest"].as_str().unwrap()));
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["os"], "linux");
        let layers = manifest["layers"].as_array().unwrap();
        let last = decompressed(blob(&files, layers[1]["digest"].as_str().unwrap()));
        assert_eq!(
            file_in_layer(&last, "arch").as_deref(),
            Some(format!("{arch}\n").as_str())
        );
        let host = host_arch();
        assert_eq!(
            file_in_layer(&last, "where"),
            Some(format!("linux/{arch} built on linux/{host}\n"))
        );
        shared_layers.push(layers[0]["digest"].clone());
    }
    // The shared step's layer is one blob for both platforms.
    assert_eq!(shared_layers[0], shared_layers[1]);

    // The store holds the index too: `kiln run` picks this host's image from it.
    let run = ws
        .kiln()
        .args(["run", "multi:1", "cat", "/arch"])
        .output()
        .unwrap();
    assert_ok(&run);
    assert_eq!(text(&run.stdout), format!("{}\n", host_arch()));
}

#[test]
fn a_two_platform_build_is_pushed_as_an_index_and_pulled_per_platform() {
    let Some(reg) = start_registry() else { return };
    let ws = Workspace::new();
    ws.write("Dockerfile", DOCKERFILE);
    let name = format!("{}/kiln/multi:1", reg.addr);
    let out = ws.build(&["--platform", TWO, "-t", &name, "--push"]);
    assert_ok(&out);
    if have("skopeo") {
        let raw = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{name}"))
            .output()
            .unwrap();
        assert_ok(&raw);
        let index = json(&raw.stdout);
        assert_eq!(
            index["mediaType"],
            "application/vnd.oci.image.index.v1+json"
        );
        let archs: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["platform"]["architecture"].as_str().unwrap())
            .collect();
        assert_eq!(archs, ["amd64", "arm64"]);
        let arm = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--override-arch", "arm64"])
            .arg(format!("docker://{name}"))
            .output()
            .unwrap();
        assert_ok(&arm);
        assert_eq!(json(&arm.stdout)["Architecture"], "arm64");
    }
    // A fresh machine building FROM the index for arm64 gets the arm64 image's files.
    let other = Workspace::new();
    other.write(
        "Dockerfile",
        format!("FROM {name}\nRUN cat /arch > /copy\n"),
    );
    assert_ok(&other.build(&["--platform", "linux/arm64", "-t", "derived"]));
    let copy = other
        .kiln()
        .args(["run", "derived", "cat", "/copy"])
        .output()
        .unwrap();
    assert_ok(&copy);
    assert_eq!(text(&copy.stdout), "arm64\n");
}

#[test]
fn bad_platform_lists_fail_before_building() {
    let ws = Workspace::new();
    ws.write("Dockerfile", DOCKERFILE);
    for (list, message) in [
        ("linux/amd64,,", "entry 2 is empty"),
        (
            "linux/amd64,linux/arm64,linux/amd64",
            "linux/amd64 is named twice",
        ),
        ("linux/amd64,linux/sparc", "unknown architecture \"sparc\""),
        ("linux", "expected os/arch[/variant]"),
    ] {
        let out = ws.build(&["--platform", list]);
        assert_fails_with(&out, message);
        assert!(!text(&out.stderr).contains("RUN"), "{list}: a step ran");
    }
}

#[test]
fn a_docker_archive_refuses_several_platforms_and_local_gets_a_directory_each() {
    let ws = Workspace::new();
    ws.write("Dockerfile", DOCKERFILE);
    let dest = format!("type=docker,dest={}", ws.path("d.tar").display());
    let out = ws.build(&["--platform", TWO, "-o", &dest]);
    assert_fails_with(&out, "type=docker cannot hold a multi-platform image");
    assert!(!ws.path("d.tar").exists());

    let dest = format!("type=local,dest={}", ws.path("out").display());
    assert_ok(&ws.build(&["--platform", TWO, "-o", &dest]));
    for arch in ["amd64", "arm64"] {
        let file = ws.path(&format!("out/linux_{arch}/arch"));
        assert_eq!(std::fs::read_to_string(file).unwrap(), format!("{arch}\n"));
    }
}
