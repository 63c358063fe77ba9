//! The README's secret walk-through server: `Hello, Admin` to basic auth admin/password,
//! `Hello, guest` to everyone else, on 127.0.0.1:8080 (or the port given). Stops after
//! ten minutes. The same server the end-to-end tests use.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

#[path = "../../../tests/support/server.rs"]
#[allow(dead_code)] // the tests use more of it than this example
mod server;

fn main() {
    let port = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let server = server::HelloServer::start_on(port);
    println!(
        "serving on {} for ten minutes (Ctrl-C to stop)",
        server.url()
    );
    std::thread::sleep(std::time::Duration::from_secs(600));
}
