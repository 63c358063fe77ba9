//! dpkg's progress lines (`Selecting previously unselected package …`, `Unpacking …`,
//! `Setting up …`), printed for kiln-deb's operations by dpkg and apt-get alike.

use std::io::Write;

use kiln_deb::ops::{Event, Progress};

use crate::query::{ADMIN_DIR, Db};

/// Prints each event as dpkg 1.21 does, on standard output, with dpkg's "(Reading
/// database ...)" line before the first archive is unpacked (when dpkg first loads its
/// file lists).
#[derive(Debug)]
pub struct Printer {
    admindir: String,
    said_reading: bool,
}

impl Default for Printer {
    fn default() -> Printer {
        Printer::new(ADMIN_DIR)
    }
}

impl Printer {
    /// A printer for the database in `admindir` (dpkg's `--admindir`).
    pub fn new(admindir: &str) -> Printer {
        Printer {
            admindir: admindir.to_owned(),
            said_reading: false,
        }
    }
}

impl Progress for Printer {
    fn event(&mut self, event: Event<'_>) {
        let mut out = std::io::stdout().lock();
        if matches!(event, Event::Preparing { .. }) && !self.said_reading {
            self.said_reading = true;
            if let Some(line) = reading_database(&self.admindir) {
                let _ = writeln!(out, "{line}");
            }
        }
        let _ = writeln!(out, "{}", line(&event));
    }
}

/// `(Reading database ... N files and directories currently installed.)` for the
/// database in `admindir` (`None` if it cannot be read: dpkg would have failed earlier).
pub fn reading_database(admindir: &str) -> Option<String> {
    let count = Db::load(admindir).ok()?.file_count().ok()?;
    let what = if count == 1 {
        "file or directory"
    } else {
        "files and directories"
    };
    Some(format!(
        "(Reading database ... {count} {what} currently installed.)"
    ))
}

/// Bound under which dpkg shows an archive's path whole; a longer one loses leading
/// directories, shown as `.../` (dpkg's `summarize_filename`).
const SHORT_PATH: usize = 30;

/// The archive path as dpkg prints it in "Preparing to unpack".
pub fn summarize_filename(path: &str) -> String {
    let mut rest = path;
    while rest.len() > SHORT_PATH {
        match rest.find('/') {
            Some(i) => rest = &rest[i + 1..],
            None => break,
        }
    }
    if rest.len() == path.len() {
        path.to_owned()
    } else {
        format!(".../{rest}")
    }
}

/// The line dpkg prints for `event`.
pub fn line(event: &Event<'_>) -> String {
    match *event {
        Event::Selecting { package } => {
            format!("Selecting previously unselected package {package}.")
        }
        Event::Preparing { archive } => format!(
            "Preparing to unpack {} ...",
            summarize_filename(&archive.to_string_lossy())
        ),
        Event::Unpacking {
            package,
            version,
            replacing: Some(old),
        } => format!("Unpacking {package} ({version}) over ({old}) ..."),
        Event::Unpacking {
            package, version, ..
        } => format!("Unpacking {package} ({version}) ..."),
        Event::SettingUp { package, version } => format!("Setting up {package} ({version}) ..."),
        Event::Removing { package, version } => format!("Removing {package} ({version}) ..."),
        Event::Purging { package, version } => {
            format!("Purging configuration files for {package} ({version}) ...")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_dpkg_prints_them() {
        let unpack = Event::Unpacking {
            package: "jq",
            version: "1.6-2.1",
            replacing: Some("1.6-2"),
        };
        assert_eq!(line(&unpack), "Unpacking jq (1.6-2.1) over (1.6-2) ...");
        let archive = std::path::Path::new("/var/cache/apt/archives/jq_1.6-2.1_amd64.deb");
        assert_eq!(
            line(&Event::Preparing { archive }),
            "Preparing to unpack .../archives/jq_1.6-2.1_amd64.deb ..."
        );
        assert_eq!(
            summarize_filename("hello_2.10-3_amd64.deb"),
            "hello_2.10-3_amd64.deb"
        );
        assert_eq!(summarize_filename("/tmp/a/b.deb"), "/tmp/a/b.deb");
        assert_eq!(
            summarize_filename(
                "/var/tmp/kiln-test/debian-mirror/pool/main/libonig5_6.9.8-1_amd64.deb"
            ),
            ".../libonig5_6.9.8-1_amd64.deb"
        );
        let purge = Event::Purging {
            package: "jq",
            version: "1.6-2.1",
        };
        assert_eq!(
            line(&purge),
            "Purging configuration files for jq (1.6-2.1) ..."
        );
    }
}
