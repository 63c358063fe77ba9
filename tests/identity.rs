//! The step's user inside RUN: id/whoami, WORKDIR ownership, umask and permission checks for a non-root USER.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::path::PathBuf;

use support::*;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\nstaff:x:50:\nsudo:x:27:app\napp:x:1000:\n";

/// A workspace whose context holds `etc/passwd`, `etc/group` and `dockerfile`.
fn workspace(dockerfile: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write("etc/passwd", PASSWD);
    ws.write("etc/group", GROUP);
    ws.write("Dockerfile", dockerfile);
    ws
}

/// Builds with `extra` flags, exporting the root filesystem; returns its directory.
fn build_rootfs(ws: &Workspace, extra: &[&str]) -> PathBuf {
    let dest = ws.path("rootfs");
    let output = format!("type=local,dest={}", dest.display());
    let mut args = vec!["-o", output.as_str()];
    args.extend_from_slice(extra);
    assert_ok(&ws.build(&args));
    dest
}

fn read(root: &std::path::Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn id_whoami_and_groups_see_the_user_and_workdir_is_made_as_it() {
    let ws = workspace(
        "FROM scratch\n\
         COPY etc/ /etc/\n\
         RUN mkdir /out && chmod 777 /out\n\
         USER app\n\
         WORKDIR /home/app/work\n\
         WORKDIR /out\n\
         RUN id > id && id -un > id-un && whoami > whoami && id -G > id-G && groups > groups \
             && stat -c '%U:%G %a %n' /home /home/app/work /out > workdirs\n\
         USER 4242\n\
         RUN id > id-lone && (whoami 2> whoami-lone || echo \"status $?\" >> whoami-lone)\n\
         USER app:staff\n\
         RUN id > id-group\n",
    );
    let root = build_rootfs(&ws, &[]);
    let out = |rel: &str| read(&root, &format!("out/{rel}"));
    assert_eq!(
        out("id"),
        "uid=1000(app) gid=1000(app) groups=1000(app),27(sudo)\n"
    );
    assert_eq!(out("id-un"), "app\n");
    assert_eq!(out("whoami"), "app\n");
    assert_eq!(out("id-G"), "1000 27\n");
    assert_eq!(out("groups"), "app sudo\n");
    // Created by WORKDIR as app, parents included; an existing one keeps its owner.
    assert_eq!(
        out("workdirs"),
        "app:app 755 /home\napp:app 755 /home/app/work\nroot:root 777 /out\n"
    );
    // A uid without an entry: numbers, group 0, as runc gives it.
    assert_eq!(out("id-lone"), "uid=4242 gid=0(root) groups=0(root)\n");
    let whoami = out("whoami-lone");
    assert!(
        whoami.contains("cannot find name for user ID 4242") && whoami.contains("status 1"),
        "{whoami}"
    );
    // An explicit group replaces the supplementary groups, as BuildKit.
    assert_eq!(
        out("id-group"),
        "uid=1000(app) gid=50(staff) groups=50(staff)\n"
    );
}

#[test]
fn the_umask_reaches_redirections_tools_and_nested_shells() {
    let ws = workspace(
        "FROM scratch\n\
         RUN mkdir /out\n\
         RUN umask 077 && mkdir /out/d && touch /out/f && echo hi > /out/r \
             && sh -c 'touch /out/nested' && stat -c '%a %n' /out/d /out/f /out/r /out/nested > /out/u077\n\
         RUN umask 000 && touch /out/f0 && mkdir /out/d0 && stat -c %a /out/f0 /out/d0 > /out/u000\n\
         RUN touch /out/f22 && mkdir /out/d22 && umask > /out/umask && stat -c %a /out/f22 /out/d22 > /out/u022\n\
         RUN umask 077 && touch /out/c && chmod 664 /out/c && stat -c %a /out/c > /out/chmod\n\
         RUN umask 027 && cp /out/c /out/cp && mkdir -m +w /out/m && chmod +x /out/cp \
             && stat -c %a /out/cp /out/m > /out/u027\n",
    );
    let root = build_rootfs(&ws, &[]);
    assert_eq!(
        read(&root, "out/u077"),
        "700 /out/d\n600 /out/f\n600 /out/r\n600 /out/nested\n"
    );
    assert_eq!(read(&root, "out/u000"), "666\n777\n");
    assert_eq!(read(&root, "out/umask"), "0022\n");
    assert_eq!(read(&root, "out/u022"), "644\n755\n");
    assert_eq!(read(&root, "out/chmod"), "664\n");
    // As GNU cp, mkdir and chmod: a new copy is the source's mode less the umask (664 →
    // 640), and modes without a `who` part are limited by it (+x adds 0110).
    assert_eq!(read(&root, "out/u027"), "750\n750\n");
}

#[test]
fn a_user_cannot_write_into_a_root_owned_workdir() {
    let ws = workspace(
        "FROM scratch\n\
         COPY etc/ /etc/\n\
         RUN mkdir /app\n\
         USER app\n\
         WORKDIR /app\n\
         RUN echo hi > note\n",
    );
    let out = ws.build(&[]);
    assert_fails_with(&out, "Permission denied");
}

#[test]
fn a_script_without_an_exec_bit_does_not_run_root_included() {
    let ws = workspace(
        "FROM scratch\n\
         COPY run.sh /run.sh\n\
         RUN /run.sh\n",
    );
    ws.write("run.sh", "#!/bin/sh\necho ran\n");
    let out = ws.build(&[]);
    assert_fails_with(&out, "/run.sh: Permission denied");
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         COPY etc/ /etc/\n\
         COPY run.sh /run.sh\n\
         RUN mkdir /out && chmod 777 /out && chmod 744 /run.sh && /run.sh > /out/as-root\n\
         USER app\n\
         RUN /run.sh > /out/as-app || echo \"status $?\" > /out/as-app\n",
    );
    let root = build_rootfs(&ws, &[]);
    assert_eq!(read(&root, "out/as-root"), "ran\n");
    assert_eq!(read(&root, "out/as-app"), "status 126\n");
}

#[test]
fn sticky_tmp_secrets_and_system_files_obey_the_users_rights() {
    let ws = workspace(
        "FROM scratch\n\
         COPY etc/ /etc/\n\
         RUN mkdir /tmp /out && chmod 1777 /tmp && chmod 777 /out && echo r > /tmp/roots\n\
         USER app\n\
         RUN touch /tmp/mine && (rm -f /tmp/roots 2> /dev/null || echo refused > /out/sticky) \
             && ls /tmp > /out/tmp-list \
             && ( (echo x >> /etc/passwd) 2> /dev/null || echo refused > /out/passwd )\n\
         RUN --mount=type=secret,id=tok (cat /run/secrets/tok 2> /dev/null || echo refused) > /out/secret-root\n\
         RUN --mount=type=secret,id=tok,uid=1000 wc -c < /run/secrets/tok > /out/secret-mine\n",
    );
    ws.write("tok.txt", "token-value-1234\n");
    let tok = ws.context().join("tok.txt");
    let secret = format!("id=tok,src={}", tok.display());
    let root = build_rootfs(&ws, &["--secret", &secret]);
    assert_eq!(read(&root, "out/sticky"), "refused\n");
    assert_eq!(read(&root, "out/tmp-list"), "mine\nroots\n");
    assert_eq!(read(&root, "out/passwd"), "refused\n");
    assert_eq!(read(&root, "etc/passwd"), PASSWD);
    // BuildKit mounts a secret 0400 root-owned unless told otherwise.
    assert_eq!(read(&root, "out/secret-root"), "refused\n");
    assert_eq!(read(&root, "out/secret-mine").trim(), "17");
}
