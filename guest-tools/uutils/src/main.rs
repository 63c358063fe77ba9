//! The `uutils` multicall module: one wasm32-wasip1 binary that runs the uutils coreutils
//! utility named by the basename of argv[0] (or by argv[1] when argv[0] is `uutils`).
//! It is NOT kiln's own tools (see kiln-tools); the set shipped is `tools.txt`.

use std::ffi::OsString;

type UuMain = fn(std::vec::IntoIter<OsString>) -> i32;

/// The utilities compiled in, by name; `[` is `test`'s other spelling.
fn lookup(name: &str) -> Option<UuMain> {
    let f: UuMain = match name {
        "[" => uu_test::uumain,
        "base32" => uu_base32::uumain,
        "base64" => uu_base64::uumain,
        "basename" => uu_basename::uumain,
        "basenc" => uu_basenc::uumain,
        "cat" => uu_cat::uumain,
        "cksum" => uu_cksum::uumain,
        "b2sum" => uu_b2sum::uumain,
        "md5sum" => uu_md5sum::uumain,
        "sha1sum" => uu_sha1sum::uumain,
        "sha224sum" => uu_sha224sum::uumain,
        "sha256sum" => uu_sha256sum::uumain,
        "sha384sum" => uu_sha384sum::uumain,
        "sha512sum" => uu_sha512sum::uumain,
        "comm" => uu_comm::uumain,
        "csplit" => uu_csplit::uumain,
        "cut" => uu_cut::uumain,
        "date" => uu_date::uumain,
        "dirname" => uu_dirname::uumain,
        "echo" => uu_echo::uumain,
        "expand" => uu_expand::uumain,
        "expr" => uu_expr::uumain,
        "factor" => uu_factor::uumain,
        "false" => uu_false::uumain,
        "fmt" => uu_fmt::uumain,
        "fold" => uu_fold::uumain,
        "head" => uu_head::uumain,
        "join" => uu_join::uumain,
        "link" => uu_link::uumain,
        "ln" => uu_ln::uumain,
        "mktemp" => uu_mktemp::uumain,
        "mv" => uu_mv::uumain,
        "nl" => uu_nl::uumain,
        "nproc" => uu_nproc::uumain,
        "numfmt" => uu_numfmt::uumain,
        "od" => uu_od::uumain,
        "paste" => uu_paste::uumain,
        "pathchk" => uu_pathchk::uumain,
        "pr" => uu_pr::uumain,
        "printenv" => uu_printenv::uumain,
        "printf" => uu_printf::uumain,
        "pwd" => uu_pwd::uumain,
        "readlink" => uu_readlink::uumain,
        "realpath" => uu_realpath::uumain,
        "rm" => uu_rm::uumain,
        "rmdir" => uu_rmdir::uumain,
        "seq" => uu_seq::uumain,
        "shred" => uu_shred::uumain,
        "shuf" => uu_shuf::uumain,
        "sleep" => uu_sleep::uumain,
        "sort" => uu_sort::uumain,
        "split" => uu_split::uumain,
        "sum" => uu_sum::uumain,
        "tail" => uu_tail::uumain,
        "tee" => uu_tee::uumain,
        "test" => uu_test::uumain,
        "touch" => uu_touch::uumain,
        "tr" => uu_tr::uumain,
        "true" => uu_true::uumain,
        "truncate" => uu_truncate::uumain,
        "tsort" => uu_tsort::uumain,
        "uname" => uu_uname::uumain,
        "unexpand" => uu_unexpand::uumain,
        "uniq" => uu_uniq::uumain,
        "unlink" => uu_unlink::uumain,
        "wc" => uu_wc::uumain,
        "yes" => uu_yes::uumain,
        _ => return None,
    };
    Some(f)
}

fn basename(arg0: &str) -> &str {
    arg0.rsplit('/').next().unwrap_or(arg0)
}

fn main() {
    // kiln passes the working directory as $PWD (runtime/ABI.md); WASI p1 has no cwd.
    if let Some(pwd) = std::env::var_os("PWD").filter(|p| p.to_string_lossy().starts_with('/')) {
        let _ = std::env::set_current_dir(pwd);
    }
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let arg0 = args.first().and_then(|a| a.to_str()).unwrap_or("uutils");
    let mut name = basename(arg0).to_owned();
    if name == "uutils" || name == "uutils.wasm" {
        if args.len() < 2 {
            eprintln!("uutils: missing utility name (try `uutils --list`)");
            std::process::exit(1);
        }
        args.remove(0);
        name = args[0].to_string_lossy().into_owned();
        if name == "--list" {
            for tool in include_str!("../tools.txt")
                .lines()
                .filter(|l| !l.starts_with('#'))
            {
                println!("{tool}");
            }
            return;
        }
    }
    let Some(uumain) = lookup(&name) else {
        eprintln!("uutils: {name}: utility not bundled");
        std::process::exit(127);
    };
    let canonical = if name == "[" { "test" } else { name.as_str() };
    if let Err(err) = uucore::locale::setup_localization(canonical) {
        eprintln!("{name}: cannot initialise messages: {err}");
        std::process::exit(99);
    }
    std::process::exit(uumain(args.into_iter()));
}
