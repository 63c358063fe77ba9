//! Users and groups from the image's `/etc/passwd` and `/etc/group` (there is no NSS in a
//! build step: the files are the whole database).

use std::fs;

/// One `/etc/passwd` or `/etc/group` entry: name, numeric id, primary gid (passwd only),
/// home directory (passwd only), members (group only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    pub name: String,
    pub id: u32,
    pub gid: u32,
    pub home: String,
    pub members: Vec<String>,
}

/// Parses passwd (`name:pw:uid:gid:gecos:home:shell`) or group (`name:pw:gid:members`)
/// text, skipping malformed lines and comments.
pub fn parse(text: &str, group: bool) -> Vec<Entry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let id = f.get(2)?.trim().parse().ok()?;
            let name = (*f.first()?).to_owned();
            if name.is_empty() {
                return None;
            }
            Some(if group {
                Entry {
                    name,
                    id,
                    members: f
                        .get(3)
                        .map(|m| {
                            m.split(',')
                                .filter(|s| !s.is_empty())
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                    ..Entry::default()
                }
            } else {
                Entry {
                    name,
                    id,
                    gid: f.get(3)?.trim().parse().ok()?,
                    home: f.get(5).unwrap_or(&"").to_string(),
                    members: Vec::new(),
                }
            })
        })
        .collect()
}

fn load(group: bool) -> Vec<Entry> {
    let path = if group { "/etc/group" } else { "/etc/passwd" };
    fs::read_to_string(path)
        .map(|t| parse(&t, group))
        .unwrap_or_default()
}

pub fn users() -> Vec<Entry> {
    load(false)
}

pub fn groups() -> Vec<Entry> {
    load(true)
}

pub fn user_name(uid: u32) -> Option<String> {
    users().into_iter().find(|e| e.id == uid).map(|e| e.name)
}

pub fn group_name(gid: u32) -> Option<String> {
    groups().into_iter().find(|e| e.id == gid).map(|e| e.name)
}

pub fn home_of(uid: u32) -> Option<String> {
    users()
        .into_iter()
        .find(|e| e.id == uid)
        .map(|e| e.home)
        .filter(|h| !h.is_empty())
}

/// A user given by name or number (`chown 1000 f` works without a passwd entry).
pub fn resolve_user(spec: &str) -> Option<Entry> {
    let all = users();
    if let Some(e) = all.iter().find(|e| e.name == spec) {
        return Some(e.clone());
    }
    let id: u32 = spec.parse().ok()?;
    Some(all.into_iter().find(|e| e.id == id).unwrap_or(Entry {
        name: spec.to_owned(),
        id,
        gid: id,
        ..Entry::default()
    }))
}

/// A group given by name or number.
pub fn resolve_group(spec: &str) -> Option<u32> {
    if let Some(e) = groups().into_iter().find(|e| e.name == spec) {
        return Some(e.id);
    }
    spec.parse().ok()
}

/// Caches id -> name lookups for tools that print many (ls -l).
#[derive(Default)]
pub struct Names {
    users: Option<Vec<Entry>>,
    groups: Option<Vec<Entry>>,
}

impl Names {
    pub fn user(&mut self, uid: u32) -> String {
        let users = self.users.get_or_insert_with(users);
        users
            .iter()
            .find(|e| e.id == uid)
            .map_or_else(|| uid.to_string(), |e| e.name.clone())
    }

    pub fn group(&mut self, gid: u32) -> String {
        let groups = self.groups.get_or_insert_with(groups);
        groups
            .iter()
            .find(|e| e.id == gid)
            .map_or_else(|| gid.to_string(), |e| e.name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_and_group() {
        let p = parse(
            "root:x:0:0:root:/root:/bin/sh\n#c\nbad\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n",
            false,
        );
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].home, "/root");
        assert_eq!(p[1].id, 65534);
        let g = parse("wheel:x:10:root,alice\nempty:x:20:\n", true);
        assert_eq!(g[0].members, ["root", "alice"]);
        assert!(g[1].members.is_empty());
    }
}
