//! A small, blocking client for the OCI distribution API: pull into a [`Layout`], push an
//! [`Image`] from one.
//!
//! Why not `oci-client`: it is async (tokio + reqwest, hyper, its own TLS stack) and would
//! pull a second HTTP stack into kiln next to `ureq`, which the runtime's network capability
//! already uses; kiln's callers are blocking threads, and the API surface kiln needs (manifests,
//! blobs, uploads, token auth) is small. So this is a few hundred lines on `ureq` with the parts
//! that matter done carefully: every blob and manifest verified against its digest,
//! manifest size limits, credentials never in errors or logs.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use ureq::http::{self, Response};
use ureq::{Agent, Body, SendBody};

use crate::auth::{CredentialStore, Credentials};
use crate::config::Platform;
use crate::digest::{Digest, Hasher, unwrap_io};
use crate::error::{OciError, Result};
use crate::image::{Image, Kind, kind_of, parse_checked, select_platform};
use crate::index::PlatformIndex;
use crate::layout::{Layout, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE};
use crate::reference::Reference;

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";
const MAX_INDEX_DEPTH: usize = 4;
/// Error bodies and token responses are small; don't buffer more than this of them.
const MAX_SMALL_BODY: u64 = 1 << 20;

/// How to talk to registries.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    pub credentials: CredentialStore,
    /// Use plain HTTP for every registry (otherwise only for localhost / 127.0.0.0/8 / ::1).
    pub insecure: bool,
    /// Upload blobs in chunks of this many bytes (PATCH); `None` uploads each blob in one PUT.
    pub chunk_size: Option<u64>,
}

/// A blocking registry client. Tokens are cached per registry and scope.
pub struct RegistryClient {
    agent: Agent,
    opts: RegistryOptions,
    tokens: Mutex<HashMap<String, String>>,
}

/// A repository on a registry, with the token scopes this session needs.
struct Repo {
    base: String,
    registry: String,
    name: String,
    scopes: Vec<String>,
}

/// What [`RegistryClient::push`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushReport {
    /// The manifest digest: the pushed image is `reference@digest`.
    pub digest: Digest,
    /// Blobs uploaded, and their total size.
    pub uploaded: u64,
    pub bytes_uploaded: u64,
    /// Blobs the repository already had (skipped after a HEAD).
    pub existing: u64,
    /// Blobs mounted from another repository of the same registry (no upload).
    pub mounted: u64,
}

enum BlobPush {
    Existing,
    Mounted,
    Uploaded(u64),
}

impl Repo {
    fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.base, self.name)
    }
}

enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// A byte range of a blob file, reopened for each attempt.
    Blob {
        layout: &'a Layout,
        digest: &'a Digest,
        offset: u64,
        len: u64,
    },
}

impl RegistryClient {
    pub fn new(opts: RegistryOptions) -> RegistryClient {
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(300)))
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .max_redirects(10)
            .build()
            .into();
        RegistryClient {
            agent,
            opts,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    fn repo(&self, r: &Reference, actions: &str) -> Repo {
        let host = r.api_host();
        let scheme = if self.opts.insecure || is_local(host) {
            "http"
        } else {
            "https"
        };
        Repo {
            base: format!("{scheme}://{host}"),
            registry: r.registry.clone(),
            name: r.repository.clone(),
            scopes: vec![format!("repository:{}:{actions}", r.repository)],
        }
    }

    /// Pull `reference` for `platform` (default `linux/<host arch>`) into `dest`, tagged
    /// `tag`. Blobs already in `dest` are not downloaded again; every downloaded blob is
    /// verified before it becomes visible, and the tag is written last.
    pub fn pull(
        &self,
        reference: &Reference,
        platform: Option<&Platform>,
        dest: &Layout,
        tag: &str,
    ) -> Result<Image> {
        let repo = self.repo(reference, "pull");
        let wanted = platform.cloned().unwrap_or_else(Platform::host_linux);
        let mut object = reference.object();
        let mut expected = reference.digest.clone();
        for _ in 0..MAX_INDEX_DEPTH {
            let (bytes, desc) = self.get_manifest(&repo, &object, expected.as_ref())?;
            let what = format!("manifest {} of {reference}", desc.digest());
            match kind_of(desc.media_type(), &what)? {
                Kind::Index => {
                    let index: ImageIndex = parse_checked(&bytes, &desc, &what)?;
                    let child = select_platform(&index, &wanted, &what)?;
                    let d = Digest::from_oci(child.digest())?;
                    object = d.to_string();
                    expected = Some(d);
                }
                Kind::Manifest => {
                    let manifest: ImageManifest = parse_checked(&bytes, &desc, &what)?;
                    if manifest.config().size() > MAX_CONFIG_SIZE {
                        return Err(OciError::TooLarge {
                            what: format!("config of {reference}"),
                            size: manifest.config().size(),
                            limit: MAX_CONFIG_SIZE,
                        });
                    }
                    for blob in std::iter::once(manifest.config()).chain(manifest.layers()) {
                        self.fetch_blob(&repo, blob, dest)?;
                    }
                    dest.write_blob(&bytes)?;
                    let image = dest.load_descriptor(&desc, Some(&wanted))?;
                    dest.tag(tag, &desc)?;
                    return Ok(image);
                }
            }
        }
        Err(OciError::invalid(
            format!("{reference}"),
            "image index nested too deeply",
        ))
    }

    /// Fetch a manifest or index (size-limited, digest-verified when the digest is known).
    fn get_manifest(
        &self,
        repo: &Repo,
        object: &str,
        expected: Option<&Digest>,
    ) -> Result<(Vec<u8>, Descriptor)> {
        let url = repo.url(&format!("manifests/{object}"));
        let resp = self.send(
            repo,
            "GET",
            &url,
            &[("Accept", MANIFEST_ACCEPT)],
            &Payload::Empty,
        )?;
        let resp = expect_status(resp, &[200], &url)?;
        let content_type = header(&resp, "content-type")
            .map(|c| c.split(';').next().unwrap_or("").trim().to_owned());
        if let Some(len) = header(&resp, "content-length").and_then(|l| l.parse::<u64>().ok())
            && len > MAX_MANIFEST_SIZE
        {
            return Err(OciError::TooLarge {
                what: format!("manifest {url}"),
                size: len,
                limit: MAX_MANIFEST_SIZE,
            });
        }
        let bytes = read_body(resp, MAX_MANIFEST_SIZE, &url)?;
        let digest = match expected {
            Some(d) => {
                let mut h = Hasher::new(d.algorithm());
                h.update(&bytes);
                let actual = h.finish();
                if &actual != d {
                    return Err(OciError::DigestMismatch {
                        what: format!("manifest {url}"),
                        expected: d.to_string(),
                        actual: actual.to_string(),
                    });
                }
                actual
            }
            None => Digest::sha256_of(&bytes),
        };
        let media_type = match content_type.as_deref() {
            Some(ct) if ct.starts_with("application/vnd.") => MediaType::from(ct),
            // Some registries answer application/json: trust the document's own mediaType.
            _ => serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("mediaType")?.as_str().map(MediaType::from))
                .ok_or_else(|| OciError::UnsupportedMediaType {
                    what: format!("manifest {url}"),
                    media_type: content_type.clone().unwrap_or_default(),
                })?,
        };
        let desc = Descriptor::new(media_type, bytes.len() as u64, digest.to_oci());
        Ok((bytes, desc))
    }

    fn fetch_blob(&self, repo: &Repo, desc: &Descriptor, dest: &Layout) -> Result<()> {
        let digest = Digest::from_oci(desc.digest())?;
        if dest.has_blob(&digest) && dest.blob_size(&digest)? == desc.size() {
            return Ok(());
        }
        let url = repo.url(&format!("blobs/{digest}"));
        // A connection that drops mid-body is retried from the start (the partial blob
        // never became visible); a digest mismatch is not retried.
        let mut attempt = 0;
        loop {
            let resp = self.send(repo, "GET", &url, &[], &Payload::Empty)?;
            let resp = expect_status(resp, &[200], &url)?;
            let reader = resp.into_body().into_reader();
            match dest.import_blob(reader, &digest, Some(desc.size())) {
                Ok(_) => return Ok(()),
                Err(OciError::Stream { .. }) if attempt < 2 => attempt += 1,
                Err(OciError::DigestMismatch {
                    expected, actual, ..
                }) => {
                    return Err(OciError::DigestMismatch {
                        what: format!("blob from {url}"),
                        expected,
                        actual,
                    });
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Push `image` to `reference` (its tag, or its digest). Blobs the repository already
    /// has are skipped; blobs missing there are first offered as cross-repository mounts
    /// from `mount_from` (e.g. the base image's repository on the same registry), then
    /// uploaded. The manifest goes last.
    pub fn push(
        &self,
        image: &Image,
        reference: &Reference,
        mount_from: &[Reference],
    ) -> Result<PushReport> {
        let blobs = image.blobs()?;
        self.push_manifest(
            image.layout(),
            &image.descriptor,
            &blobs,
            reference,
            mount_from,
        )
    }

    /// Push the manifest `manifest` (any media type: an image's, or an artifact's such as
    /// kiln's cache) from `layout` to `reference`, after the `blobs` it names, as
    /// [`RegistryClient::push`] does. A tag is one PUT, made last, so a concurrent reader
    /// or writer never sees it name blobs the registry lacks.
    pub fn push_manifest(
        &self,
        layout: &Layout,
        manifest: &Descriptor,
        blobs: &[Descriptor],
        reference: &Reference,
        mount_from: &[Reference],
    ) -> Result<PushReport> {
        let mut repo = self.repo(reference, "pull,push");
        let sources: Vec<&str> = mount_from
            .iter()
            .filter(|m| m.registry == reference.registry && m.repository != reference.repository)
            .map(|m| m.repository.as_str())
            .collect();
        repo.scopes
            .extend(sources.iter().map(|s| format!("repository:{s}:pull")));
        let digest = Digest::from_oci(manifest.digest())?;
        let mut report = PushReport {
            digest: digest.clone(),
            uploaded: 0,
            bytes_uploaded: 0,
            existing: 0,
            mounted: 0,
        };
        for blob in blobs {
            match self.push_blob(&repo, layout, blob, sources.first().copied())? {
                BlobPush::Existing => report.existing += 1,
                BlobPush::Mounted => report.mounted += 1,
                BlobPush::Uploaded(n) => {
                    report.uploaded += 1;
                    report.bytes_uploaded += n;
                }
            }
        }
        let bytes = layout.read_blob(&digest, MAX_MANIFEST_SIZE)?;
        self.put_manifest(&repo, reference, manifest, &bytes)?;
        Ok(report)
    }

    /// The manifest (or index, or artifact manifest) `reference` names, size-limited and
    /// checked against its digest when the reference has one; `None` when the registry
    /// has no such tag (404), so a first `--cache-from` finds nothing rather than failing.
    pub fn fetch_manifest(&self, reference: &Reference) -> Result<Option<(Vec<u8>, Descriptor)>> {
        let repo = self.repo(reference, "pull");
        match self.get_manifest(&repo, &reference.object(), reference.digest.as_ref()) {
            Ok(found) => Ok(Some(found)),
            Err(OciError::Registry { message, .. }) if message.starts_with("HTTP 404") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Download the blob `desc` of `reference`'s repository into `dest` (verified;
    /// nothing is fetched when `dest` has it already).
    pub fn fetch_blob_into(
        &self,
        reference: &Reference,
        desc: &Descriptor,
        dest: &Layout,
    ) -> Result<()> {
        let repo = self.repo(reference, "pull");
        self.fetch_blob(&repo, desc, dest)
    }

    /// Push a multi-platform `index` to `reference`: each image by its digest (blobs
    /// first, as [`RegistryClient::push`]), then the index under the reference's tag, so
    /// the tag never names an index whose manifests the registry lacks. The report's
    /// digest is the index's; its counts add up every image's.
    pub fn push_index(&self, index: &PlatformIndex, reference: &Reference) -> Result<PushReport> {
        let mut total = PushReport {
            digest: index.digest()?,
            uploaded: 0,
            bytes_uploaded: 0,
            existing: 0,
            mounted: 0,
        };
        for image in &index.images {
            let by_digest = Reference {
                digest: Some(image.digest()?),
                ..reference.clone()
            };
            let one = self.push(image, &by_digest, &[])?;
            total.uploaded += one.uploaded;
            total.bytes_uploaded += one.bytes_uploaded;
            total.existing += one.existing;
            total.mounted += one.mounted;
        }
        let repo = self.repo(reference, "pull,push");
        self.put_manifest(&repo, reference, &index.descriptor, &index.bytes()?)?;
        Ok(total)
    }

    /// PUTs a manifest or index (`desc` says its media type) as `reference`'s tag or digest.
    fn put_manifest(
        &self,
        repo: &Repo,
        reference: &Reference,
        desc: &Descriptor,
        bytes: &[u8],
    ) -> Result<()> {
        let url = repo.url(&format!("manifests/{}", reference.object()));
        let media_type = desc.media_type().to_string();
        let resp = self.send(
            repo,
            "PUT",
            &url,
            &[("Content-Type", &media_type)],
            &Payload::Bytes(bytes),
        )?;
        expect_status(resp, &[200, 201], &url)?;
        Ok(())
    }

    fn push_blob(
        &self,
        repo: &Repo,
        layout: &Layout,
        desc: &Descriptor,
        mount_from: Option<&str>,
    ) -> Result<BlobPush> {
        let digest = Digest::from_oci(desc.digest())?;
        let size = layout.blob_size(&digest)?;
        if size != desc.size() {
            return Err(OciError::SizeMismatch {
                what: format!("blob {digest}"),
                expected: desc.size(),
                actual: size,
            });
        }
        let head_url = repo.url(&format!("blobs/{digest}"));
        let resp = self.send(repo, "HEAD", &head_url, &[], &Payload::Empty)?;
        if resp.status() == 200 {
            return Ok(BlobPush::Existing);
        }
        let start_url = match mount_from {
            Some(from) => repo.url(&format!(
                "blobs/uploads/?mount={digest}&from={}",
                percent_encode(from)
            )),
            None => repo.url("blobs/uploads/"),
        };
        let resp = self.send(
            repo,
            "POST",
            &start_url,
            &[("Content-Length", "0")],
            &Payload::Empty,
        )?;
        // 201: mounted; 202: the registry declined the mount (or none was asked), upload.
        let resp = expect_status(resp, &[201, 202], &start_url)?;
        if resp.status() == 201 {
            return Ok(BlobPush::Mounted);
        }
        let mut location = next_location(repo, resp, &start_url)?;
        let chunk = self.opts.chunk_size.filter(|c| *c > 0 && *c < size);
        if let Some(chunk) = chunk {
            let mut offset = 0;
            while offset < size {
                let len = chunk.min(size - offset);
                let range = format!("{}-{}", offset, offset + len - 1);
                let resp = self.send(
                    repo,
                    "PATCH",
                    &location,
                    &[
                        ("Content-Type", "application/octet-stream"),
                        ("Content-Range", &range),
                    ],
                    &Payload::Blob {
                        layout,
                        digest: &digest,
                        offset,
                        len,
                    },
                )?;
                location = next_location(repo, expect_status(resp, &[202], &location)?, &location)?;
                offset += len;
            }
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let put_url = format!("{location}{sep}digest={digest}");
        let payload = match chunk {
            Some(_) => Payload::Empty,
            None => Payload::Blob {
                layout,
                digest: &digest,
                offset: 0,
                len: size,
            },
        };
        let resp = self.send(
            repo,
            "PUT",
            &put_url,
            &[("Content-Type", "application/octet-stream")],
            &payload,
        )?;
        expect_status(resp, &[201, 204], &put_url)?;
        Ok(BlobPush::Uploaded(size))
    }

    /// Send a request with the cached authorization; on 401, answer the challenge once.
    fn send(
        &self,
        repo: &Repo,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        payload: &Payload<'_>,
    ) -> Result<Response<Body>> {
        // Credentials go only to the registry itself: an upload Location on another host
        // (a storage backend) gets the request without them.
        if !url.starts_with(&format!("{}/", repo.base)) {
            return self.send_once(method, url, headers, payload, None);
        }
        let key = format!("{}|{}", repo.registry, repo.scopes.join(" "));
        let cached = self.lock_tokens().get(&key).cloned();
        let resp = self.send_once(method, url, headers, payload, cached.as_deref())?;
        if resp.status() != 401 {
            return Ok(resp);
        }
        let challenge = header(&resp, "www-authenticate").unwrap_or_default();
        let auth = self.authenticate(repo, &challenge)?;
        self.lock_tokens().insert(key, auth.clone());
        let resp = self.send_once(method, url, headers, payload, Some(&auth))?;
        if resp.status() == 401 {
            return Err(OciError::Auth {
                registry: repo.registry.clone(),
                reason: format!("{method} {url} was refused with the credentials given"),
            });
        }
        Ok(resp)
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One request, retried (GET/HEAD only: they are idempotent and carry no body) on
    /// connection failures and 502/503/504, with a short backoff.
    fn send_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        payload: &Payload<'_>,
        auth: Option<&str>,
    ) -> Result<Response<Body>> {
        let retries = if matches!(method, "GET" | "HEAD") {
            3
        } else {
            0
        };
        let mut attempt = 0;
        loop {
            let result = self.send_raw(method, url, headers, payload, auth);
            let transient = match &result {
                Ok(resp) => matches!(resp.status().as_u16(), 502..=504),
                Err(OciError::Registry { .. }) => true,
                Err(_) => false,
            };
            if !transient || attempt >= retries {
                return result;
            }
            attempt += 1;
            std::thread::sleep(Duration::from_millis(250 << attempt));
        }
    }

    fn send_raw(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        payload: &Payload<'_>,
        auth: Option<&str>,
    ) -> Result<Response<Body>> {
        let mut b = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(a) = auth {
            b = b.header("Authorization", a);
        }
        let net = |e: ureq::Error| OciError::Registry {
            url: url.to_owned(),
            message: e.to_string(),
        };
        let bad = |e: http::Error| OciError::invalid(format!("request {url}"), e.to_string());
        match payload {
            Payload::Empty => {
                let b = if method == "PUT" && !headers.iter().any(|(k, _)| *k == "Content-Length") {
                    b.header("Content-Length", "0")
                } else {
                    b
                };
                self.agent.run(b.body(()).map_err(bad)?).map_err(net)
            }
            Payload::Bytes(bytes) => self.agent.run(b.body(*bytes).map_err(bad)?).map_err(net),
            Payload::Blob {
                layout,
                digest,
                offset,
                len,
            } => {
                let path = layout.blob_path(digest);
                let mut f = File::open(&path).map_err(|e| OciError::io(&path, e))?;
                f.seek(SeekFrom::Start(*offset))
                    .map_err(|e| OciError::io(&path, e))?;
                let body = SendBody::from_owned_reader(f.take(*len));
                let req = b
                    .header("Content-Length", len.to_string())
                    .body(body)
                    .map_err(bad)?;
                self.agent.run(req).map_err(|e| match e {
                    ureq::Error::Io(io) => unwrap_io(&format!("uploading {digest}"), io),
                    other => net(other),
                })
            }
        }
    }

    /// Answer a `WWW-Authenticate` challenge: Basic with the stored credentials, or Bearer
    /// by fetching a token from the realm (anonymously if there are no credentials).
    fn authenticate(&self, repo: &Repo, challenge: &str) -> Result<String> {
        let creds = self.opts.credentials.lookup(&repo.registry)?;
        let (scheme, params) = parse_challenge(challenge).ok_or_else(|| OciError::Auth {
            registry: repo.registry.clone(),
            reason: format!("unsupported WWW-Authenticate challenge {challenge:?}"),
        })?;
        match (scheme.as_str(), creds) {
            ("basic", Some(Credentials::Basic { username, password })) => {
                Ok(basic_header(&username, &password))
            }
            ("basic", _) => Err(OciError::Auth {
                registry: repo.registry.clone(),
                reason: format!(
                    "authentication required and no username/password is known (run `docker login {}`)",
                    repo.registry
                ),
            }),
            ("bearer", creds) => self.fetch_token(repo, &params, creds),
            _ => Err(OciError::Auth {
                registry: repo.registry.clone(),
                reason: format!("unsupported authentication scheme {scheme:?}"),
            }),
        }
    }

    fn fetch_token(
        &self,
        repo: &Repo,
        params: &HashMap<String, String>,
        creds: Option<Credentials>,
    ) -> Result<String> {
        let fail = |reason: String| OciError::Auth {
            registry: repo.registry.clone(),
            reason,
        };
        let realm = params
            .get("realm")
            .filter(|r| r.starts_with("https://") || r.starts_with("http://"))
            .ok_or_else(|| fail("bearer challenge without an http(s) realm".into()))?;
        let service = params.get("service").cloned().unwrap_or_default();
        let scope = repo.scopes.join(" ");
        let resp = match creds {
            Some(Credentials::IdentityToken(token)) => {
                let form = form_encode(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("service", &service),
                    ("scope", &scope),
                    ("client_id", "kiln"),
                ]);
                let req = http::Request::builder()
                    .method("POST")
                    .uri(realm.as_str())
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(form.into_bytes())
                    .map_err(|e| fail(e.to_string()))?;
                self.agent.run(req)
            }
            other => {
                let url = format!(
                    "{realm}{}{}",
                    if realm.contains('?') { '&' } else { '?' },
                    form_encode(
                        &std::iter::once(("service", service.as_str()))
                            .chain(repo.scopes.iter().map(|s| ("scope", s.as_str())))
                            .collect::<Vec<_>>()
                    )
                );
                let mut b = http::Request::builder().method("GET").uri(url);
                if let Some(Credentials::Basic { username, password }) = other {
                    b = b.header("Authorization", basic_header(&username, &password));
                }
                let req = b.body(()).map_err(|e| fail(e.to_string()))?;
                self.agent.run(req)
            }
        }
        .map_err(|e| fail(format!("token request to {realm} failed: {e}")))?;
        if resp.status() != 200 {
            return Err(fail(format!(
                "token server {realm} answered {}",
                resp.status()
            )));
        }
        let body = read_body(resp, MAX_SMALL_BODY, realm)?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| OciError::json(format!("token from {realm}"), e))?;
        let token = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail(format!("token server {realm} returned no token")))?;
        Ok(format!("Bearer {token}"))
    }
}

fn is_local(host: &str) -> bool {
    let h = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    h == "localhost"
        || h == "[::1]"
        || h.parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn basic_header(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn read_body(resp: Response<Body>, limit: u64, url: &str) -> Result<Vec<u8>> {
    resp.into_body()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => OciError::TooLarge {
                what: format!("response from {url}"),
                size: limit + 1,
                limit,
            },
            other => OciError::Registry {
                url: url.to_owned(),
                message: other.to_string(),
            },
        })
}

/// Accept one of `ok` statuses; otherwise turn the registry's error JSON into a message.
fn expect_status(resp: Response<Body>, ok: &[u16], url: &str) -> Result<Response<Body>> {
    let status = resp.status().as_u16();
    if ok.contains(&status) {
        return Ok(resp);
    }
    let body = read_body(resp, 64 << 10, url).unwrap_or_default();
    let detail = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let errs = v.get("errors")?.as_array()?;
            Some(
                errs.iter()
                    .map(|e| {
                        format!(
                            "{}: {}",
                            e.get("code").and_then(|c| c.as_str()).unwrap_or("?"),
                            e.get("message").and_then(|c| c.as_str()).unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    Err(OciError::Registry {
        url: url.to_owned(),
        message: format!("HTTP {status}: {detail}"),
    })
}

/// The upload URL for the next request, from a `Location` header (absolute or relative).
fn next_location(repo: &Repo, resp: Response<Body>, url: &str) -> Result<String> {
    let loc = header(&resp, "location").ok_or_else(|| OciError::Registry {
        url: url.to_owned(),
        message: "upload response without Location".into(),
    })?;
    Ok(
        if loc.starts_with("http://") || loc.starts_with("https://") {
            loc
        } else if loc.starts_with('/') {
            format!("{}{loc}", repo.base)
        } else {
            format!("{}/{loc}", repo.base)
        },
    )
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parse `Bearer realm="...",service="...",scope="..."` into (lowercase scheme, params).
fn parse_challenge(h: &str) -> Option<(String, HashMap<String, String>)> {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    if scheme.is_empty() {
        return None;
    }
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        params.insert(key.trim().to_ascii_lowercase(), value);
    }
    Some((scheme.to_ascii_lowercase(), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push""#,
        )
        .unwrap();
        assert_eq!(s, "bearer");
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/alpine:pull,push");
        let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(
            (s.as_str(), p["realm"].as_str()),
            ("basic", "Registry Realm")
        );
        assert!(parse_challenge("").is_none());
    }

    #[test]
    fn local_hosts_use_http() {
        for h in [
            "localhost:5000",
            "127.0.0.1:40000",
            "localhost",
            "[::1]:5000",
        ] {
            assert!(is_local(h), "{h}");
        }
        for h in ["example.com", "127.example.com:1", "localhost.evil.com"] {
            assert!(!is_local(h), "{h}");
        }
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_encode(&[("scope", "repository:a/b:pull,push"), ("empty", "")]),
            "scope=repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
