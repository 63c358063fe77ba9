//! The tools, one module each, and the dispatch table (`tools.txt` lists the same names
//! in the same order).

mod apt_get;
mod deb_systemd;
mod debconf;
mod dpkg;
mod dpkg_query;
mod dpkg_reconfigure;
mod dpkg_statoverride;
mod dpkg_trigger;
mod invoke_rc_d;
mod ldconfig;
mod openssl;
mod update_alternatives;

use crate::ToolMain;

pub(crate) static TABLE: &[(&str, ToolMain)] = &[
    ("apt-get", apt_get::main),
    ("apt", apt_get::main),
    ("dpkg", dpkg::main),
    ("dpkg-query", dpkg_query::main),
    ("invoke-rc.d", invoke_rc_d::main),
    ("openssl", openssl::main),
    ("c_rehash", openssl::main),
    ("update-alternatives", update_alternatives::main),
    ("dpkg-trigger", dpkg_trigger::main),
    ("deb-systemd-helper", deb_systemd::helper),
    ("deb-systemd-invoke", deb_systemd::invoke),
    ("ldconfig", ldconfig::main),
    ("debconf-frontend", debconf::frontend),
    ("debconf-escape", debconf::escape),
    ("debconf-set-selections", debconf::set_selections),
    ("dpkg-reconfigure", dpkg_reconfigure::main),
    ("dpkg-statoverride", dpkg_statoverride::main),
];
