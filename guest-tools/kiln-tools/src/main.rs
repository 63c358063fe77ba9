//! Entry point of the kiln-tools multicall module.

fn main() {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(kiln_tools::run(argv));
}
