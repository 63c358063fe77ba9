//! Bearer-token auth and hostile registries, against an in-test fake registry (a real token
//! server needs JWT signing; this one checks exactly the requests kiln makes).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use common::*;
use kiln_oci::*;

const TOKEN: &str = "tok-123";

#[derive(Default)]
struct Fake {
    /// path -> (content type, body)
    routes: HashMap<String, (String, Vec<u8>)>,
    /// Basic credentials the token endpoint demands (base64), if any.
    token_basic: Option<String>,
    /// Paths answered once with 503 before they work.
    flaky: std::collections::HashSet<String>,
    /// Answer upload starts with this (foreign) Location.
    upload_to: Option<String>,
    log: Vec<String>,
}

fn serve(fake: Arc<Mutex<Fake>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let a = addr.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let fake = fake.clone();
            let addr = a.clone();
            std::thread::spawn(move || handle(conn.unwrap(), &fake, &addr));
        }
    });
    addr
}

fn handle(mut s: TcpStream, fake: &Mutex<Fake>, addr: &str) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let method = line.split_whitespace().next().unwrap_or("").to_owned();
    let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut request_body = vec![0u8; len];
    r.read_exact(&mut request_body).unwrap();
    let auth = headers.get("authorization").cloned().unwrap_or_default();
    let mut f = fake.lock().unwrap();
    f.log
        .push(format!("{method} {target} auth={}", !auth.is_empty()));
    let (status, extra, ctype, body) = if f.flaky.remove(&target) {
        (503, String::new(), "text/plain".into(), b"busy".to_vec())
    } else if let Some(upload) = &f.upload_to
        && auth == format!("Bearer {TOKEN}")
        && method == "POST"
    {
        (
            202,
            format!("Location: {upload}\r\n"),
            "text/plain".into(),
            Vec::new(),
        )
    } else if method == "PUT"
        && ((f.upload_to.is_none() && target.starts_with("/elsewhere"))
            || (target.starts_with("/v2/x/y/manifests/") && auth == format!("Bearer {TOKEN}")))
    {
        (201, String::new(), "text/plain".into(), Vec::new())
    } else if method == "HEAD" && auth == format!("Bearer {TOKEN}") {
        (404, String::new(), "text/plain".into(), Vec::new())
    } else if let Some(q) = target.strip_prefix("/token?") {
        let ok = f
            .token_basic
            .as_ref()
            .is_none_or(|b| auth == format!("Basic {b}"));
        assert!(q.contains("scope=repository%3Ax%2Fy%3Apull"), "{q}");
        if ok {
            (
                200,
                String::new(),
                "application/json".into(),
                format!(r#"{{"token":"{TOKEN}"}}"#).into_bytes(),
            )
        } else {
            (401, String::new(), "text/plain".into(), b"no".to_vec())
        }
    } else if auth != format!("Bearer {TOKEN}") {
        let challenge = format!(
            "WWW-Authenticate: Bearer realm=\"http://{addr}/token\",service=\"fake\",scope=\"repository:x/y:pull\"\r\n"
        );
        (
            401,
            challenge,
            "application/json".into(),
            br#"{"errors":[{"code":"UNAUTHORIZED"}]}"#.to_vec(),
        )
    } else {
        match f.routes.get(&target) {
            Some((ct, body)) => (200, String::new(), ct.clone(), body.clone()),
            None => (
                404,
                String::new(),
                "application/json".into(),
                br#"{"errors":[{"code":"NOT_FOUND","message":"nope"}]}"#.to_vec(),
            ),
        }
    };
    drop(f);
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(&body);
}

/// Publish the sample image's manifest and blobs under repository `x/y`, tag `1`.
fn publish(fake: &Mutex<Fake>, image: &Image) {
    let mut f = fake.lock().unwrap();
    let layout = image.layout();
    let digest = image.digest().unwrap();
    let manifest = layout.read_blob(&digest, MAX_MANIFEST_SIZE).unwrap();
    let ct = image.descriptor.media_type().to_string();
    f.routes
        .insert("/v2/x/y/manifests/1".into(), (ct.clone(), manifest.clone()));
    f.routes
        .insert(format!("/v2/x/y/manifests/{digest}"), (ct, manifest));
    for b in image.blobs().unwrap() {
        let d = Digest::from_oci(b.digest()).unwrap();
        let mut bytes = Vec::new();
        layout
            .open_blob(&d)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        f.routes.insert(
            format!("/v2/x/y/blobs/{d}"),
            ("application/octet-stream".into(), bytes),
        );
    }
}

fn setup() -> (tempfile::TempDir, Image, Arc<Mutex<Fake>>, Reference) {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::open_or_create(dir.path().join("src")).unwrap();
    let image = build_sample(&layout, "app", Compression::Gzip);
    let fake = Arc::new(Mutex::new(Fake::default()));
    publish(&fake, &image);
    let addr = serve(fake.clone());
    let r: Reference = format!("{addr}/x/y:1").parse().unwrap();
    (dir, image, fake, r)
}

#[test]
fn anonymous_bearer_token_flow() {
    let (dir, image, fake, r) = setup();
    let dest = Layout::open_or_create(dir.path().join("dest")).unwrap();
    let client = RegistryClient::new(RegistryOptions::default());
    let pulled = client.pull(&r, None, &dest, "base").unwrap();
    assert_eq!(pulled.digest().unwrap(), image.digest().unwrap());
    let log = fake.lock().unwrap().log.clone();
    // One challenge, one token fetch, then every request carries the cached token.
    assert_eq!(
        log.iter().filter(|l| l.starts_with("GET /token?")).count(),
        1,
        "{log:?}"
    );
    assert_eq!(
        log.iter().filter(|l| l.ends_with("auth=false")).count(),
        2,
        "{log:?}"
    );
}

#[test]
fn bearer_token_with_basic_credentials() {
    let (dir, image, fake, r) = setup();
    fake.lock().unwrap().token_basic = Some("dTpw".into()); // u:p
    let dest = Layout::open_or_create(dir.path().join("dest")).unwrap();
    let err = RegistryClient::new(RegistryOptions::default())
        .pull(&r, None, &dest, "base")
        .unwrap_err();
    assert!(matches!(err, OciError::Auth { .. }), "{err}");
    let mut creds = CredentialStore::anonymous();
    creds.insert(
        &r.registry,
        Credentials::Basic {
            username: "u".into(),
            password: "p".into(),
        },
    );
    let client = RegistryClient::new(RegistryOptions {
        credentials: creds,
        ..Default::default()
    });
    let pulled = client.pull(&r, None, &dest, "base").unwrap();
    assert_eq!(pulled.digest().unwrap(), image.digest().unwrap());
}

#[test]
fn corrupted_blob_from_registry_is_rejected() {
    let (dir, image, fake, r) = setup();
    let layer = image.layers().unwrap()[1].descriptor.clone();
    let d = Digest::from_oci(layer.digest()).unwrap();
    fake.lock()
        .unwrap()
        .routes
        .get_mut(&format!("/v2/x/y/blobs/{d}"))
        .unwrap()
        .1[20] ^= 1;
    let dest = Layout::open_or_create(dir.path().join("dest")).unwrap();
    let err = RegistryClient::new(RegistryOptions::default())
        .pull(&r, None, &dest, "base")
        .unwrap_err();
    assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");
    assert!(!dest.has_blob(&d));
    assert!(dest.tags().unwrap().is_empty());
}

#[test]
fn huge_or_tampered_manifest_from_registry_is_rejected() {
    let (dir, image, fake, r) = setup();
    let dest = Layout::open_or_create(dir.path().join("dest")).unwrap();
    let client = RegistryClient::new(RegistryOptions::default());
    // Pulling by digest: a manifest whose bytes do not match is refused.
    let digest = image.digest().unwrap();
    let by_digest: Reference = format!("{}/x/y@{digest}", r.registry).parse().unwrap();
    {
        let mut f = fake.lock().unwrap();
        let m = f
            .routes
            .get_mut(&format!("/v2/x/y/manifests/{digest}"))
            .unwrap();
        m.1.insert(1, b' ');
    }
    let err = client.pull(&by_digest, None, &dest, "base").unwrap_err();
    assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");
    // A 5 MiB manifest is refused before it is buffered.
    let big = vec![b' '; 5 << 20];
    fake.lock().unwrap().routes.insert(
        "/v2/x/y/manifests/1".into(),
        ("application/vnd.oci.image.manifest.v1+json".into(), big),
    );
    let err = client.pull(&r, None, &dest, "base").unwrap_err();
    assert!(matches!(err, OciError::TooLarge { .. }), "{err}");
    // A manifest served with a config media type is refused.
    let manifest = image
        .layout()
        .read_blob(&digest, MAX_MANIFEST_SIZE)
        .unwrap();
    fake.lock().unwrap().routes.insert(
        "/v2/x/y/manifests/1".into(),
        ("application/vnd.oci.image.config.v1+json".into(), manifest),
    );
    let err = client.pull(&r, None, &dest, "base").unwrap_err();
    assert!(
        matches!(err, OciError::UnsupportedMediaType { .. }),
        "{err}"
    );
    assert!(dest.tags().unwrap().is_empty());
}

#[test]
fn credentials_are_not_sent_to_a_foreign_upload_location() {
    let (_dir, image, fake, r) = setup();
    let storage = Arc::new(Mutex::new(Fake::default()));
    let storage_addr = serve(storage.clone());
    fake.lock().unwrap().upload_to = Some(format!("http://{storage_addr}/elsewhere/upload?id=1"));
    let client = RegistryClient::new(RegistryOptions::default());
    let report = client.push(&image, &r, &[]).unwrap();
    assert_eq!(report.uploaded, 3);
    let log = storage.lock().unwrap().log.clone();
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(
        log.iter()
            .all(|l| l.starts_with("PUT /elsewhere/upload?id=1&digest=")
                && l.ends_with("auth=false")),
        "{log:?}"
    );
}

#[test]
fn transient_registry_errors_are_retried() {
    let (dir, image, fake, r) = setup();
    let layer = image.layers().unwrap()[0].descriptor.clone();
    fake.lock()
        .unwrap()
        .flaky
        .insert(format!("/v2/x/y/blobs/{}", layer.digest()));
    let dest = Layout::open_or_create(dir.path().join("dest")).unwrap();
    let pulled = RegistryClient::new(RegistryOptions::default())
        .pull(&r, None, &dest, "base")
        .unwrap();
    assert_eq!(pulled.digest().unwrap(), image.digest().unwrap());
    let log = fake.lock().unwrap().log.clone();
    let blob_gets = log
        .iter()
        .filter(|l| l.contains(&format!("blobs/{}", layer.digest())))
        .count();
    assert_eq!(blob_gets, 2, "{log:?}");
}
