//! Push and pull against a real `docker-registry` (Debian's distribution 2.x) started on
//! 127.0.0.1, with and without htpasswd basic auth; skopeo inspects what kiln pushed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use kiln_oci::*;

struct Registry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start docker-registry; with `auth`, protect it with htpasswd user `kiln`/`hunter2`.
fn start_registry(auth: bool) -> Option<Registry> {
    if !have_tool("docker-registry") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut yml = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
        dir.path().join("data").display()
    );
    if auth {
        let hash = bcrypt::hash_with_result("hunter2", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        let htpasswd = dir.path().join("htpasswd");
        std::fs::write(&htpasswd, format!("kiln:{hash}\n")).unwrap();
        yml.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
            htpasswd.display()
        ));
    }
    let config = dir.path().join("config.yml");
    std::fs::write(&config, yml).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reg = Registry {
        child,
        addr,
        _dir: dir,
    };
    let start = Instant::now();
    while TcpStream::connect(&reg.addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "registry did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(reg)
}

fn layers_of(image: &Image) -> Vec<Vec<u8>> {
    image
        .layers()
        .unwrap()
        .iter()
        .map(|l| {
            let mut v = Vec::new();
            image.open_layer(l).unwrap().read_to_end(&mut v).unwrap();
            v
        })
        .collect()
}

fn skopeo_inspect(reference: &str, creds: Option<&str>) -> serde_json::Value {
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--tls-verify=false"]);
    if let Some(c) = creds {
        cmd.args(["--creds", c]);
    }
    serde_json::from_str(&run(cmd.arg(format!("docker://{reference}")))).unwrap()
}

fn sample(dir: &Path, c: Compression) -> Image {
    let layout = Layout::open_or_create(dir).unwrap();
    build_sample(&layout, "app", c)
}

#[test]
fn push_and_pull_anonymous_monolithic_and_chunked() {
    let Some(reg) = start_registry(false) else {
        return;
    };
    let have_skopeo = have_tool("skopeo");
    let work = tempfile::tempdir().unwrap();
    let client = RegistryClient::new(RegistryOptions::default());
    for (c, chunk) in [(Compression::Gzip, None), (Compression::Zstd, Some(700))] {
        let image = sample(&work.path().join(format!("src-{c:?}")), c);
        let name = format!("{}/kiln/sample:{c:?}", reg.addr).to_lowercase();
        let r: Reference = name.parse().unwrap();
        let client = RegistryClient::new(RegistryOptions {
            chunk_size: chunk,
            ..Default::default()
        });
        let report = client.push(&image, &r, &[]).unwrap();
        let digest = report.digest.clone();
        assert_eq!(digest, image.digest().unwrap());
        // Both iterations push to the same repository, and the config (same diff_ids)
        // is shared: the second push finds it there.
        let shared = u64::from(c == Compression::Zstd);
        assert_eq!(
            (report.uploaded, report.existing, report.mounted),
            (3 - shared, shared, 0)
        );
        // Pushing again only HEADs blobs and re-puts the manifest.
        let again = client.push(&image, &r, &[]).unwrap();
        assert_eq!(
            (again.digest, again.uploaded, again.existing),
            (digest.clone(), 0, 3)
        );
        // Another repository of the same registry gets the blobs by cross-repo mount.
        let other: Reference = format!("{}/kiln/derived-{c:?}:1", reg.addr)
            .to_lowercase()
            .parse()
            .unwrap();
        let mounted = client
            .push(&image, &other, std::slice::from_ref(&r))
            .unwrap();
        assert_eq!(
            (mounted.uploaded, mounted.mounted, mounted.existing),
            (0, 3, 0),
            "{mounted:?}"
        );
        let dest = Layout::open_or_create(work.path().join(format!("mounted-{c:?}"))).unwrap();
        let pulled = client.pull(&other, None, &dest, "m").unwrap();
        assert_eq!(layers_of(&pulled), vec![layer1_tar(), layer2_tar()]);
        if have_skopeo {
            let v = skopeo_inspect(&name, None);
            assert_eq!(v["Digest"], digest.to_string());
            assert_eq!(v["Layers"].as_array().unwrap().len(), 2);
        }
        let dest = Layout::open_or_create(work.path().join(format!("dest-{c:?}"))).unwrap();
        let pulled = client.pull(&r, None, &dest, "pulled").unwrap();
        assert_eq!(pulled.digest().unwrap(), digest);
        assert_eq!(layers_of(&pulled), vec![layer1_tar(), layer2_tar()]);
        // by digest too
        let by_digest: Reference = format!("{}/kiln/sample@{digest}", reg.addr)
            .parse()
            .unwrap();
        let again = client.pull(&by_digest, None, &dest, "by-digest").unwrap();
        assert_eq!(again.digest().unwrap(), digest);
    }
    let missing: Reference = format!("{}/kiln/nope:1", reg.addr).parse().unwrap();
    let dest = Layout::open_or_create(work.path().join("none")).unwrap();
    let err = client.pull(&missing, None, &dest, "x").unwrap_err();
    assert!(
        err.to_string().contains("MANIFEST_UNKNOWN") || err.to_string().contains("404"),
        "{err}"
    );
    assert!(dest.tags().unwrap().is_empty());
}

#[test]
fn push_and_pull_with_basic_auth() {
    let Some(reg) = start_registry(true) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let image = sample(&work.path().join("src"), Compression::Gzip);
    let r: Reference = format!("{}/private/app:1", reg.addr).parse().unwrap();

    let anonymous = RegistryClient::new(RegistryOptions::default());
    let err = anonymous.push(&image, &r, &[]).unwrap_err();
    assert!(matches!(err, OciError::Auth { .. }), "{err}");

    let mut wrong = CredentialStore::anonymous();
    wrong.insert(
        &reg.addr,
        Credentials::Basic {
            username: "kiln".into(),
            password: "nope".into(),
        },
    );
    let err = RegistryClient::new(RegistryOptions {
        credentials: wrong,
        ..Default::default()
    })
    .push(&image, &r, &[])
    .unwrap_err();
    assert!(matches!(err, OciError::Auth { .. }), "{err}");
    assert!(
        !err.to_string().contains("nope"),
        "password leaked into error: {err}"
    );

    let mut good = CredentialStore::anonymous();
    good.insert(
        &reg.addr,
        Credentials::Basic {
            username: "kiln".into(),
            password: "hunter2".into(),
        },
    );
    let digest = RegistryClient::new(RegistryOptions {
        credentials: good,
        ..Default::default()
    })
    .push(&image, &r, &[])
    .unwrap()
    .digest;
    if have_tool("skopeo") {
        let v = skopeo_inspect(&r.to_string(), Some("kiln:hunter2"));
        assert_eq!(v["Digest"], digest.to_string());
    }

    // Pull with credentials from a Docker config.json, as `docker login` writes it.
    let cfg = work.path().join("config.json");
    std::fs::write(
        &cfg,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"a2lsbjpodW50ZXIy"}}}}}}"#,
            reg.addr
        ),
    )
    .unwrap();
    let client = RegistryClient::new(RegistryOptions {
        credentials: CredentialStore::with_docker_config_file(cfg),
        ..Default::default()
    });
    let dest = Layout::open_or_create(work.path().join("dest")).unwrap();
    let pulled = client.pull(&r, None, &dest, "base").unwrap();
    assert_eq!(pulled.digest().unwrap(), digest);
    assert_eq!(layers_of(&pulled), vec![layer1_tar(), layer2_tar()]);

    let dest2 = Layout::open_or_create(work.path().join("dest2")).unwrap();
    let err = anonymous.pull(&r, None, &dest2, "base").unwrap_err();
    assert!(matches!(err, OciError::Auth { .. }), "{err}");
}

#[test]
fn pull_selects_platform_from_pushed_index() {
    let Some(reg) = start_registry(false) else {
        return;
    };
    if !have_tool("skopeo") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layout = Layout::open_or_create(work.path().join("src")).unwrap();
    let mut descs = Vec::new();
    for p in ["linux/amd64", "linux/arm64/v8", "linux/riscv64"] {
        let layers = vec![write_layer(
            &layout,
            format!("{p}\n").as_bytes(),
            Compression::Gzip,
        )];
        let mut config = sample_config(&layers);
        config.set_platform(&p.parse().unwrap());
        descs.push(
            layout
                .write_image(&config, &layers, &Default::default())
                .unwrap(),
        );
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": descs,
    });
    let bytes = to_canonical_json(&index, "index").unwrap();
    let d = layout.write_blob(&bytes).unwrap();
    layout
        .tag(
            "multi",
            &Descriptor::new(MediaType::ImageIndex, bytes.len() as u64, d.to_oci()),
        )
        .unwrap();
    let name = format!("{}/kiln/multi:1", reg.addr);
    run(Command::new("skopeo").args([
        "copy",
        "-q",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.root().display()),
        &format!("docker://{name}"),
    ]));
    let client = RegistryClient::new(RegistryOptions::default());
    let dest = Layout::open_or_create(work.path().join("dest")).unwrap();
    for p in ["linux/arm64", "linux/riscv64", "linux/amd64"] {
        let want: Platform = p.parse().unwrap();
        let img = client
            .pull(&name.parse().unwrap(), Some(&want), &dest, p)
            .unwrap();
        assert!(want.matches(&img.config.platform()), "{p}");
        let mut layer = Vec::new();
        img.open_layer(&img.layers().unwrap()[0])
            .unwrap()
            .read_to_end(&mut layer)
            .unwrap();
        assert!(String::from_utf8(layer).unwrap().starts_with(p), "{p}");
    }
    let err = client
        .pull(
            &name.parse().unwrap(),
            Some(&"windows/amd64".parse().unwrap()),
            &dest,
            "w",
        )
        .unwrap_err();
    assert!(matches!(err, OciError::PlatformNotFound { .. }), "{err}");
}
