//! Layout, export and import round trips and corrupted-input handling, without external tools.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::fs;
use std::io::Read;

use common::*;
use kiln_oci::*;

fn layer_bytes(image: &Image) -> Vec<Vec<u8>> {
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

#[test]
fn build_load_and_read_layers() {
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();
        let image = build_sample(&layout, "app:1", c);
        assert_eq!(layer_bytes(&image), vec![layer1_tar(), layer2_tar()]);
        assert_eq!(
            image.config.container().cmd().clone().unwrap(),
            vec!["/bin/tool"]
        );
        let ann = image.manifest.annotations().clone().unwrap();
        assert_eq!(ann[ANNOTATION_CREATED], "2023-11-14T22:13:20Z");
        assert_eq!(
            image.layers().unwrap()[0].descriptor.media_type(),
            &c.media_type()
        );
        // nothing but the layout's own files and blobs is left behind
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["blobs", "index.json", "oci-layout"]);
    }
}

#[test]
fn same_image_same_bytes_everywhere() {
    let outs: Vec<_> = (0..2)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            let layout = Layout::open_or_create(dir.path()).unwrap();
            let image = build_sample(&layout, "app:1", Compression::Gzip);
            let mut oci = Vec::new();
            write_oci_archive(&image, &["app:1"], &mut oci).unwrap();
            let mut docker = Vec::new();
            write_docker_archive(&image, &["app:1".into()], &mut docker).unwrap();
            let index = fs::read(dir.path().join("index.json")).unwrap();
            (image.digest().unwrap(), oci, docker, index)
        })
        .collect();
    assert_eq!(outs[0], outs[1]);
}

#[test]
fn tag_replaces_and_keeps_others() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::open_or_create(dir.path()).unwrap();
    let a = build_sample(&layout, "a", Compression::Gzip);
    let b = build_sample(&layout, "b", Compression::Zstd);
    layout.tag("a", &b.descriptor).unwrap();
    let tags = layout.tags().unwrap();
    assert_eq!(tags.len(), 2);
    assert_eq!(
        layout.resolve(Some("a")).unwrap().digest(),
        b.descriptor.digest()
    );
    assert_ne!(a.descriptor.digest(), b.descriptor.digest());
    assert!(layout.resolve(Some("zzz")).is_err());
    assert!(layout.resolve(None).is_err(), "two images: must name one");
}

#[test]
fn export_import_roundtrips() {
    let src_dir = tempfile::tempdir().unwrap();
    let src = Layout::open_or_create(src_dir.path()).unwrap();
    let image = build_sample(&src, "app:1", Compression::Gzip);
    let work = tempfile::tempdir().unwrap();
    let dest = Layout::open_or_create(work.path().join("store")).unwrap();

    let copy = work.path().join("copy");
    export_oci_layout(&image, &copy, Some("v1")).unwrap();
    let a = import_oci_layout(&copy, Some("v1"), None, &dest, "from-layout").unwrap();
    assert_eq!(a.descriptor.digest(), image.descriptor.digest());

    let archive = work.path().join("img.oci.tar");
    write_file_atomic(&archive, |w| write_oci_archive(&image, &["v1"], w)).unwrap();
    let b = import_oci_archive(&archive, Some("v1"), None, &dest, "from-oci-archive").unwrap();
    assert_eq!(b.descriptor.digest(), image.descriptor.digest());

    let darchive = work.path().join("img.docker.tar");
    write_file_atomic(&darchive, |w| {
        write_docker_archive(&image, &["app:1".into()], w)
    })
    .unwrap();
    let c = import_docker_archive(&darchive, Some("app:1"), &dest, "from-docker").unwrap();
    // docker-archive layers are uncompressed: same diff_ids and config, other blobs
    assert_eq!(c.config_digest().unwrap(), image.config_digest().unwrap());
    assert_eq!(layer_bytes(&c), layer_bytes(&image));
    assert_eq!(
        c.layers().unwrap()[0].descriptor.media_type(),
        &MediaType::ImageLayer
    );
    assert_eq!(dest.tags().unwrap().len(), 3);
}

/// Write the sample into a fresh layout and return (tempdir, layout, image).
fn fixture() -> (tempfile::TempDir, Layout, Image) {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::open_or_create(dir.path()).unwrap();
    let image = build_sample(&layout, "app", Compression::Gzip);
    (dir, layout, image)
}

fn layer_blob_path(layout: &Layout, image: &Image, i: usize) -> std::path::PathBuf {
    let l = &image.layers().unwrap()[i];
    layout.blob_path(&Digest::from_oci(l.descriptor.digest()).unwrap())
}

fn assert_nothing_imported(dest: &Layout, bad: &Digest) {
    assert!(dest.tags().unwrap().is_empty(), "tag written after failure");
    assert!(!dest.has_blob(bad), "corrupted blob became visible");
    let stray: Vec<_> = fs::read_dir(dest.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".kiln-tmp"))
        .collect();
    assert!(stray.is_empty(), "temporary files left: {stray:?}");
}

#[test]
fn corrupted_layer_blob_is_rejected() {
    let (_d, layout, image) = fixture();
    let path = layer_blob_path(&layout, &image, 1);
    let mut bytes = fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let work = tempfile::tempdir().unwrap();
    let dest = Layout::open_or_create(work.path()).unwrap();
    let err = import_oci_layout(layout.root(), None, None, &dest, "x").unwrap_err();
    assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");
    let bad = Digest::from_oci(image.layers().unwrap()[1].descriptor.digest()).unwrap();
    assert_nothing_imported(&dest, &bad);
    // Reading the corrupted layer directly fails too.
    let mut sink = Vec::new();
    let res = image
        .open_layer(&image.layers().unwrap()[1])
        .unwrap()
        .read_to_end(&mut sink);
    assert!(res.is_err());
}

#[test]
fn truncated_blob_is_rejected() {
    let (_d, layout, image) = fixture();
    let path = layer_blob_path(&layout, &image, 0);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let dest = Layout::open_or_create(work.path()).unwrap();
    let err = import_oci_layout(layout.root(), None, None, &dest, "x").unwrap_err();
    assert!(matches!(err, OciError::SizeMismatch { .. }), "{err}");
    let bad = Digest::from_oci(image.layers().unwrap()[0].descriptor.digest()).unwrap();
    assert_nothing_imported(&dest, &bad);
}

#[test]
fn wrong_media_type_is_rejected() {
    let (_d, layout, image) = fixture();
    let mut desc = image.descriptor.clone();
    desc.set_media_type(MediaType::ImageLayerGzip);
    layout.tag("app", &desc).unwrap();
    let err = layout.load_image(Some("app"), None).unwrap_err();
    assert!(
        matches!(err, OciError::UnsupportedMediaType { .. }),
        "{err}"
    );
    // Index media type on a manifest document: caught by the mediaType cross-check.
    desc.set_media_type(MediaType::ImageIndex);
    layout.tag("app", &desc).unwrap();
    let err = layout.load_image(Some("app"), None).unwrap_err();
    assert!(err.to_string().contains("document says"), "{err}");
}

#[test]
fn huge_manifest_is_rejected() {
    let (_d, layout, _image) = fixture();
    let mut big = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":""#.to_vec();
    big.extend(std::iter::repeat_n(b'a', 5 << 20));
    big.extend(br#""}}"#);
    let d = layout.write_blob(&big).unwrap();
    let desc = Descriptor::new(MediaType::ImageManifest, big.len() as u64, d.to_oci());
    layout.tag("huge", &desc).unwrap();
    let err = layout.load_image(Some("huge"), None).unwrap_err();
    assert!(matches!(err, OciError::TooLarge { .. }), "{err}");
}

#[test]
fn docker_archive_with_wrong_diff_id_is_rejected() {
    let (_d, layout, image) = fixture();
    let work = tempfile::tempdir().unwrap();
    // A docker-archive whose layer content does not match the config's diff_id.
    let arch = work.path().join("bad.tar");
    let mut b = tar::Builder::new(fs::File::create(&arch).unwrap());
    let config = layout
        .read_blob(&image.config_digest().unwrap(), MAX_CONFIG_SIZE)
        .unwrap();
    add_file(&mut b, "config.json", 0o644, 0, 0, &config);
    add_file(&mut b, "l1.tar", 0o644, 0, 0, &layer1_tar());
    add_file(&mut b, "l2.tar", 0o644, 0, 0, &layer1_tar()); // wrong content
    add_file(
        &mut b,
        "manifest.json",
        0o644,
        0,
        0,
        br#"[{"Config":"config.json","RepoTags":["bad:1"],"Layers":["l1.tar","l2.tar"]}]"#,
    );
    b.into_inner().unwrap();
    let dest = Layout::open_or_create(work.path().join("store")).unwrap();
    let err = import_docker_archive(&arch, None, &dest, "bad").unwrap_err();
    assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");
    assert!(dest.tags().unwrap().is_empty());
}

#[test]
fn hostile_archive_paths_are_rejected() {
    let work = tempfile::tempdir().unwrap();
    let arch = work.path().join("evil.tar");
    // Raw header: the tar crate refuses to *write* `..` paths, so build the name by hand.
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..13].copy_from_slice(b"../escape.txt");
    h.set_size(3);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut data = h.as_bytes().to_vec();
    data.extend(b"abc");
    data.resize(1024 + 1024, 0);
    fs::write(&arch, data).unwrap();
    let dest = Layout::open_or_create(work.path().join("store")).unwrap();
    let err = import_docker_archive(&arch, None, &dest, "x").unwrap_err();
    assert!(err.to_string().contains("escapes"), "{err}");
    assert!(!work.path().join("escape.txt").exists());
}

#[test]
fn multi_platform_index_selects_platform() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::open_or_create(dir.path()).unwrap();
    let mut descs = Vec::new();
    for p in ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"] {
        let layers = vec![write_layer(&layout, &layer1_tar(), Compression::Gzip)];
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
    for p in ["linux/arm64", "linux/arm/v7", "linux/amd64"] {
        let want: Platform = p.parse().unwrap();
        let img = layout.load_image(Some("multi"), Some(&want)).unwrap();
        assert!(want.matches(&img.config.platform()), "{p}");
    }
    let err = layout
        .load_image(Some("multi"), Some(&"linux/s390x".parse().unwrap()))
        .unwrap_err();
    assert!(matches!(err, OciError::PlatformNotFound { .. }), "{err}");
    assert!(err.to_string().contains("linux/arm/v7"));
}

#[test]
fn corrupted_oci_archive_is_rejected() {
    let (dir, layout, image) = fixture();
    let path = layer_blob_path(&layout, &image, 0);
    let mut bytes = fs::read(&path).unwrap();
    bytes[12] ^= 0x55;
    fs::write(&path, &bytes).unwrap();
    // Tar the (now corrupted) layout by hand, as another tool would.
    let work = tempfile::tempdir().unwrap();
    let arch = work.path().join("bad.oci.tar");
    let mut b = tar::Builder::new(fs::File::create(&arch).unwrap());
    b.append_dir_all(".", dir.path()).unwrap();
    b.into_inner().unwrap();
    let dest = Layout::open_or_create(work.path().join("store")).unwrap();
    let err = import_oci_archive(&arch, Some("app"), None, &dest, "x").unwrap_err();
    assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");
    let bad = Digest::from_oci(image.layers().unwrap()[0].descriptor.digest()).unwrap();
    assert_nothing_imported(&dest, &bad);
}

#[test]
fn concurrent_tags_are_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::open_or_create(dir.path()).unwrap();
    let image = build_sample(&layout, "base", Compression::None);
    std::thread::scope(|s| {
        for t in 0..6 {
            let layout = Layout::open(dir.path()).unwrap();
            let desc = image.descriptor.clone();
            s.spawn(move || {
                for i in 0..10 {
                    layout.tag(&format!("t{t}-{i}"), &desc).unwrap();
                }
            });
        }
    });
    assert_eq!(layout.tags().unwrap().len(), 61);
}

#[test]
fn gc_removes_only_unreachable_old_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::open_or_create(dir.path()).unwrap();
    let keep = build_sample(&layout, "keep", Compression::Gzip);
    let orphan = layout.write_blob(b"nobody refers to me").unwrap();
    // Too young: kept.
    let stats = layout.gc(std::time::Duration::from_secs(3600)).unwrap();
    assert_eq!(stats.blobs_removed, 0);
    let stats = layout.gc(std::time::Duration::ZERO).unwrap();
    assert_eq!(stats.blobs_removed, 1);
    assert!(!layout.has_blob(&orphan));
    // The tagged image is intact.
    let again = layout.load_image(Some("keep"), None).unwrap();
    assert_eq!(layer_bytes(&again), layer_bytes(&keep));
}

#[test]
fn docker_archive_rejects_invalid_repo_tags() {
    let (_d, _layout, image) = fixture();
    let mut out = Vec::new();
    let err = write_docker_archive(&image, &["Not A Name".into()], &mut out).unwrap_err();
    assert!(matches!(err, OciError::InvalidReference { .. }), "{err}");
    assert!(out.is_empty(), "partial archive written");
}
