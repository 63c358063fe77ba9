//! The image's user and group databases (`/etc/passwd`, `/etc/group`), read from a
//! stage's tree. `COPY --chown`, `USER` and the default `HOME` of a step all resolve
//! names here, so they agree on what a name means.
//!
//! Lines are compared as bytes (a database need not be UTF-8); `#` comments, blank lines
//! and lines with too few fields or a non-numeric id are skipped, as libc's readers do.

use std::io::Read;

use kiln_fs::{Follow, FsError, Tree};

/// The most of a database kiln reads: 4 MiB is ~50,000 users, far beyond any image,
/// and bounds what a hostile base image can make a step hold in memory.
const MAX_DB_BYTES: u64 = 4 << 20;

const PASSWD: &str = "/etc/passwd";
const GROUP: &str = "/etc/group";

#[derive(Debug, thiserror::Error)]
pub enum PasswdError {
    #[error("unknown user {0:?}: not in the image's /etc/passwd")]
    UnknownUser(String),
    #[error("unknown group {0:?}: not in the image's /etc/group")]
    UnknownGroup(String),
    #[error("the image's {path} is larger than {MAX_DB_BYTES} bytes")]
    TooLarge { path: &'static str },
    #[error("cannot read the image's {path}: {source}")]
    Read {
        path: &'static str,
        #[source]
        source: FsError,
    },
}

/// Resolves `COPY --chown=user[:group]` against the image's databases, as BuildKit does:
/// numeric ids are used as they are; a user alone implies its primary group, or its own
/// id as group when it has no entry.
pub(crate) fn resolve_owner(tree: &mut Tree, spec: &str) -> Result<(u32, u32), PasswdError> {
    resolve(tree, spec, |uid| uid)
}

/// Resolves `USER user[:group]` as BuildKit's executor (runc's user lookup) does: as
/// [`resolve_owner`], except that a numeric user with no entry runs with group 0.
pub(crate) fn resolve_user(tree: &mut Tree, spec: &str) -> Result<(u32, u32), PasswdError> {
    resolve(tree, spec, |_| 0)
}

/// `user[:group]`; `lone_gid` gives the group of a numeric user with no entry.
fn resolve(
    tree: &mut Tree,
    spec: &str,
    lone_gid: fn(u32) -> u32,
) -> Result<(u32, u32), PasswdError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users = Db::read(tree, PASSWD)?;
    let (uid, primary_gid) = match user.parse::<u32>() {
        Ok(uid) => (
            uid,
            users
                .number_where(2, uid, 3)
                .unwrap_or_else(|| lone_gid(uid)),
        ),
        Err(_) => users
            .ids_of(user, 2, 3)
            .ok_or_else(|| PasswdError::UnknownUser(user.to_owned()))?,
    };
    let gid = match group {
        None => primary_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => Db::read(tree, GROUP)?
                .ids_of(g, 2, 2)
                .map(|(gid, _)| gid)
                .ok_or_else(|| PasswdError::UnknownGroup(g.to_owned()))?,
        },
    };
    Ok((uid, gid))
}

/// The owner BuildKit gives directories a file operation creates as `USER spec`
/// (`WORKDIR`): a number is both uid and gid unless a group follows, a name takes its
/// entry's ids, and a name without an entry is root's (BuildKit does not fail: the
/// step that runs as that user will).
pub(crate) fn resolve_mkdir_owner(tree: &mut Tree, spec: &str) -> Result<(u32, u32), PasswdError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, mut gid) = match user.parse::<u32>() {
        Ok(uid) => (uid, uid),
        Err(_) => Db::read(tree, PASSWD)?.ids_of(user, 2, 3).unwrap_or((0, 0)),
    };
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => Db::read(tree, GROUP)?
                .ids_of(g, 2, 2)
                .map_or(gid, |(n, _)| n),
        };
    }
    Ok((uid, gid))
}

/// The supplementary groups a step of `USER spec` runs with, as BuildKit's executor
/// (runc's user lookup) gives them: the `/etc/group` entries listing the user's name,
/// when `spec` names no group and the user (by name, or by number with an entry) is in
/// `/etc/passwd`; none otherwise. An empty `spec` is root's.
pub(crate) fn supplementary_groups(tree: &mut Tree, spec: &str) -> Result<Vec<u32>, PasswdError> {
    if spec.contains(':') {
        return Ok(Vec::new());
    }
    let users = Db::read(tree, PASSWD)?;
    let user = if spec.is_empty() { "0" } else { spec };
    let name = match user.parse::<u32>() {
        Ok(uid) => users
            .rows()
            .find(|f| f.len() > 2 && number(f[2]) == Some(uid))
            .map(|f| f[0].to_vec()),
        Err(_) => Some(user.as_bytes().to_vec()),
    };
    let Some(name) = name else {
        return Ok(Vec::new());
    };
    let groups = Db::read(tree, GROUP)?;
    Ok(groups
        .rows()
        .filter(|f| f.len() > 3 && f[3].split(|&b| b == b',').any(|m| m == name))
        .filter_map(|f| number(f[2]))
        .collect())
}

/// The home directory of `uid` in the image's `/etc/passwd`, if it has one.
pub(crate) fn home_of(tree: &mut Tree, uid: u32) -> Result<Option<String>, PasswdError> {
    let users = Db::read(tree, PASSWD)?;
    Ok(users
        .rows()
        .find(|f| f.len() > 5 && number(f[2]) == Some(uid))
        .and_then(|f| String::from_utf8(f[5].to_vec()).ok()))
}

/// One colon-separated database; empty when the image has none.
struct Db(Vec<u8>);

impl Db {
    fn read(tree: &mut Tree, path: &'static str) -> Result<Db, PasswdError> {
        // No database (or no /etc) is an image without named users, not an error.
        let Ok(ino) = tree.resolve(tree.root(), path.as_bytes(), Follow::Yes) else {
            return Ok(Db(Vec::new()));
        };
        let read = |source| PasswdError::Read { path, source };
        let reader = tree.open_read(ino).map_err(read)?;
        let mut bytes = Vec::new();
        reader
            .take(MAX_DB_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| read(FsError::Io(e)))?;
        if bytes.len() as u64 > MAX_DB_BYTES {
            return Err(PasswdError::TooLarge { path });
        }
        Ok(Db(bytes))
    }

    /// The fields of each entry line.
    fn rows(&self) -> impl Iterator<Item = Vec<&[u8]>> {
        self.0
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
            .map(|l| l.split(|&b| b == b':').collect())
    }

    /// The numeric fields `a` and `b` of the entry named `name`.
    fn ids_of(&self, name: &str, a: usize, b: usize) -> Option<(u32, u32)> {
        self.rows()
            .filter(|f| f.first() == Some(&name.as_bytes()))
            .find_map(|f| Some((number(f.get(a)?)?, number(f.get(b)?)?)))
    }

    /// The numeric field `want` of the first entry whose numeric field `key` is `value`.
    fn number_where(&self, key: usize, value: u32, want: usize) -> Option<u32> {
        self.rows()
            .filter(|f| f.get(key).and_then(|k| number(k)) == Some(value))
            .find_map(|f| number(f.get(want)?))
    }
}

fn number(field: &[u8]) -> Option<u32> {
    std::str::from_utf8(field).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_fs::Store;

    fn image(passwd: Option<&[u8]>, group: Option<&[u8]>) -> Tree {
        let store = Store::temp().unwrap();
        let mut t = Tree::new(&store);
        let etc = t.mkdir(t.root(), b"etc", 0o755, 0, 0).unwrap();
        for (name, body) in [(&b"passwd"[..], passwd), (b"group", group)] {
            if let Some(body) = body {
                let f = t.create_file(etc, name, 0o644, 0, 0).unwrap();
                t.write_at(f, 0, body).unwrap();
            }
        }
        t
    }

    const USERS: &[u8] = b"root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n";
    const GROUPS: &[u8] = b"root:x:0:\nstaff:x:50:\n";

    #[test]
    fn names_and_numbers_resolve_as_buildkit_does() {
        let mut t = image(Some(USERS), Some(GROUPS));
        assert_eq!(resolve_owner(&mut t, "app").unwrap(), (1000, 1001));
        assert_eq!(resolve_owner(&mut t, "app:staff").unwrap(), (1000, 50));
        assert_eq!(resolve_owner(&mut t, "app:7").unwrap(), (1000, 7));
        assert_eq!(resolve_owner(&mut t, "42:43").unwrap(), (42, 43));
        // A numeric user alone: its primary group if it has an entry, else its own id.
        assert_eq!(resolve_owner(&mut t, "1000").unwrap(), (1000, 1001));
        assert_eq!(resolve_owner(&mut t, "42").unwrap(), (42, 42));
        assert!(matches!(
            resolve_owner(&mut t, "nobody"),
            Err(PasswdError::UnknownUser(u)) if u == "nobody"
        ));
        assert!(matches!(
            resolve_owner(&mut t, "app:wheel"),
            Err(PasswdError::UnknownGroup(g)) if g == "wheel"
        ));
    }

    #[test]
    fn user_differs_from_chown_only_for_a_numeric_user_without_entry() {
        let mut t = image(Some(USERS), Some(GROUPS));
        assert_eq!(resolve_user(&mut t, "42").unwrap(), (42, 0));
        assert_eq!(resolve_owner(&mut t, "42").unwrap(), (42, 42));
        for spec in ["1000", "app", "app:staff", "42:43"] {
            assert_eq!(
                resolve_user(&mut t, spec).unwrap(),
                resolve_owner(&mut t, spec).unwrap(),
                "{spec}"
            );
        }
    }

    #[test]
    fn missing_databases_allow_numbers_only() {
        let mut t = image(None, None);
        assert_eq!(resolve_owner(&mut t, "5:6").unwrap(), (5, 6));
        assert_eq!(resolve_owner(&mut t, "5").unwrap(), (5, 5));
        assert!(matches!(
            resolve_owner(&mut t, "root"),
            Err(PasswdError::UnknownUser(_))
        ));
        assert_eq!(home_of(&mut t, 0).unwrap(), None);
        let store = Store::temp().unwrap();
        let mut bare = Tree::new(&store);
        assert_eq!(resolve_owner(&mut bare, "0").unwrap(), (0, 0));
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let db = b"# comment\n\nshort:x\nbad:x:abc:1::/bad:/bin/sh\r\n\xff\xfe:x:7:7::/x:/sh\nok:x:9:8::/home/ok:/bin/sh\r\n";
        let mut t = image(Some(db), Some(b"grp:x:notanumber:\ngrp:x:12:\n"));
        assert_eq!(resolve_owner(&mut t, "ok").unwrap(), (9, 8));
        assert!(matches!(
            resolve_owner(&mut t, "bad"),
            Err(PasswdError::UnknownUser(_))
        ));
        assert!(matches!(
            resolve_owner(&mut t, "short"),
            Err(PasswdError::UnknownUser(_))
        ));
        assert_eq!(resolve_owner(&mut t, "ok:grp").unwrap(), (9, 12));
        // CRLF endings do not leak into the home directory.
        assert_eq!(home_of(&mut t, 9).unwrap().as_deref(), Some("/home/ok"));
    }

    #[test]
    fn directories_made_as_a_user_get_buildkits_owner() {
        let passwd = b"app:x:1000:2000::/home/app:/bin/sh\n";
        let group = b"staff:x:50:\n";
        let mut t = image(Some(passwd), Some(group));
        let mut owner = |spec: &str| resolve_mkdir_owner(&mut t, spec).unwrap();
        assert_eq!(owner("app"), (1000, 2000));
        assert_eq!(owner("1000"), (1000, 1000));
        assert_eq!(owner("app:staff"), (1000, 50));
        assert_eq!(owner("app:7"), (1000, 7));
        assert_eq!(owner("nobody"), (0, 0));
        assert_eq!(owner("app:nogroup"), (1000, 2000));
    }

    #[test]
    fn supplementary_groups_list_the_users_memberships_as_runc_does() {
        let passwd = b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
        let group = b"root:x:0:root\nwheel:x:10:root,app\nstaff:x:50:bob\ndocker:x:999:app\n";
        let mut t = image(Some(passwd), Some(group));
        let mut groups = |spec: &str| supplementary_groups(&mut t, spec).unwrap();
        assert_eq!(groups("app"), vec![10, 999]);
        assert_eq!(groups("1000"), vec![10, 999]);
        assert_eq!(groups(""), vec![0, 10]);
        // An explicit group, or a uid without an entry, gets no supplementary groups.
        assert_eq!(groups("app:staff"), Vec::<u32>::new());
        assert_eq!(groups("1000:1000"), Vec::<u32>::new());
        assert_eq!(groups("4242"), Vec::<u32>::new());
    }

    #[test]
    fn home_comes_from_the_uid_entry() {
        let mut t = image(Some(USERS), None);
        assert_eq!(home_of(&mut t, 1000).unwrap().as_deref(), Some("/home/app"));
        assert_eq!(home_of(&mut t, 0).unwrap().as_deref(), Some("/root"));
        assert_eq!(home_of(&mut t, 7).unwrap(), None);
    }

    #[test]
    fn huge_databases_are_refused_not_read_whole() {
        let mut big = USERS.to_vec();
        big.resize(MAX_DB_BYTES as usize + 1, b'#');
        let mut t = image(Some(&big), None);
        let err = resolve_owner(&mut t, "app").unwrap_err();
        assert!(
            matches!(err, PasswdError::TooLarge { path: PASSWD }),
            "{err}"
        );
        assert!(home_of(&mut t, 0).is_err());
        // Exactly at the bound is still read.
        big.truncate(MAX_DB_BYTES as usize);
        let mut t = image(Some(&big), None);
        assert_eq!(resolve_owner(&mut t, "app").unwrap(), (1000, 1001));
    }

    #[test]
    fn a_directory_in_place_of_the_database_is_an_error() {
        let store = Store::temp().unwrap();
        let mut t = Tree::new(&store);
        let etc = t.mkdir(t.root(), b"etc", 0o755, 0, 0).unwrap();
        t.mkdir(etc, b"passwd", 0o755, 0, 0).unwrap();
        let err = resolve_owner(&mut t, "app").unwrap_err();
        assert!(matches!(err, PasswdError::Read { .. }), "{err}");
    }
}
