//! dpkg's progress lines (`Selecting previously unselected package …`, `Unpacking …`,
//! `Setting up …`), printed for kiln-deb's operations by dpkg and apt-get alike.

use std::io::Write;

use kiln_deb::ops::{Event, Progress};

/// Prints each event as dpkg 1.21 does, on standard output.
#[derive(Debug, Default)]
pub struct Printer;

impl Progress for Printer {
    fn event(&mut self, event: Event<'_>) {
        let _ = writeln!(std::io::stdout().lock(), "{}", line(&event));
    }
}

/// The line dpkg prints for `event`.
pub fn line(event: &Event<'_>) -> String {
    match *event {
        Event::Selecting { package } => {
            format!("Selecting previously unselected package {package}.")
        }
        Event::Preparing { archive } => {
            format!("Preparing to unpack {} ...", archive.display())
        }
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
        let archive = std::path::Path::new(".../jq_1.6-2.1_amd64.deb");
        assert_eq!(
            line(&Event::Preparing { archive }),
            "Preparing to unpack .../jq_1.6-2.1_amd64.deb ..."
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
