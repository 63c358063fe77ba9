//! Entry point of the kiln-pkg multicall module.

fn main() {
    // kiln passes the working directory as $PWD (runtime/ABI.md); WASI p1 has no cwd.
    if let Some(pwd) = std::env::var_os("PWD").filter(|p| p.to_string_lossy().starts_with('/')) {
        let _ = std::env::set_current_dir(pwd);
    }
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(kiln_pkg::run(argv));
}
