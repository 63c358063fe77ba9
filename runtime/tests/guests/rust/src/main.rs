//! One test guest with many modes (argv[1]); see runtime/tests/*.rs for expectations.

use std::fs;
use std::io::{self, ErrorKind, Read, Write};

#[link(wasm_import_module = "kiln_v1")]
unsafe extern "C" {
    fn spawn(
        argv: *const u8,
        argv_len: usize,
        env: *const u8,
        env_len: usize,
        cwd: *const u8,
        cwd_len: usize,
        fd0: i32,
        fd1: i32,
        fd2: i32,
        pid: *mut u32,
    ) -> u32;
    fn wait(pid: u32, status: *mut u32) -> u32;
    fn http_request(
        m: *const u8,
        ml: usize,
        u: *const u8,
        ul: usize,
        h: *const u8,
        hl: usize,
        b: *const u8,
        bl: usize,
        status: *mut u32,
        hfd: *mut u32,
        bfd: *mut u32,
    ) -> u32;
    fn last_error(buf: *mut u8, len: usize, out: *mut u32) -> u32;
}

fn chdir_pwd() {
    if let Some(pwd) = std::env::var_os("PWD") {
        std::env::set_current_dir(pwd).expect("chdir $PWD");
    }
}

fn kind(r: io::Result<impl Sized>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("{:?}", e.kind()),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("");
    if mode != "nochdir" {
        chdir_pwd();
    }
    match mode {
        "cwd" => {
            chdir_pwd();
            print!(
                "{}",
                fs::read_to_string("relative.txt").unwrap_or_else(|e| format!("error {e}\n"))
            );
            println!("cwd={}", std::env::current_dir().unwrap().display());
        }
        "nochdir" => {
            print!(
                "{}",
                fs::read_to_string("relative.txt").unwrap_or_else(|e| format!("error {e}\n"))
            );
        }
        "std_fs" => std_fs(),
        "loop" => {
            let mut x: u64 = 0;
            loop {
                x = x.wrapping_add(1);
                std::hint::black_box(x);
            }
        }
        "grow" => {
            let mut v: Vec<Vec<u8>> = Vec::new();
            loop {
                v.push(vec![1u8; 1 << 20]);
            }
        }
        "flood" => {
            let line = [b'x'; 4096];
            let mut out = io::stdout().lock();
            loop {
                if out.write_all(&line).is_err() {
                    std::process::exit(3);
                }
            }
        }
        "yes" => {
            let mut out = io::stdout().lock();
            loop {
                if let Err(e) = out.write_all(b"y\n") {
                    eprintln!("yes: {:?}", e.kind());
                    std::process::exit(if e.kind() == ErrorKind::BrokenPipe {
                        0
                    } else {
                        2
                    });
                }
            }
        }
        "head1" => {
            let mut line = String::new();
            io::stdin().read_line(&mut line).unwrap();
            print!("{line}");
        }
        "cat" => {
            let mut s = Vec::new();
            io::stdin().read_to_end(&mut s).unwrap();
            io::stdout().write_all(&s).unwrap();
        }
        "echo" => println!("{}", args[2..].join(" ")),
        "exit" => std::process::exit(args[2].parse().unwrap()),
        "read" => {
            for p in &args[2..] {
                match fs::read(p) {
                    Ok(b) => println!("{p}: ok {}", String::from_utf8_lossy(&b).trim_end()),
                    Err(e) => println!("{p}: {:?}", e.kind()),
                }
            }
        }
        "ls" => {
            for p in &args[2..] {
                match fs::read_dir(p) {
                    Ok(rd) => {
                        let mut names: Vec<String> = rd
                            .map(|e| e.unwrap().file_name().into_string().unwrap())
                            .collect();
                        names.sort();
                        println!("{p}: {}", names.join(","));
                    }
                    Err(e) => println!("{p}: {:?}", e.kind()),
                }
            }
        }
        "secret" => secret(&args[2..]),
        "fds" => {
            let mut files = Vec::new();
            loop {
                match fs::File::open("/etc/hostname") {
                    Ok(f) => files.push(f),
                    Err(e) => {
                        println!("opened {} then {:?}", files.len(), e.raw_os_error());
                        break;
                    }
                }
            }
        }
        "write" => {
            let r = fs::write(&args[2], &args[3]);
            println!("{}", kind(r));
        }
        "spawn" => spawn_child(&args[2..]),
        "http" => http(&args[2]),
        _ => {
            eprintln!("unknown mode {mode:?}");
            std::process::exit(2);
        }
    }
}

fn std_fs() {
    chdir_pwd();
    fs::create_dir_all("a/b/c").unwrap();
    fs::write("a/b/c/f", b"data").unwrap();
    assert_eq!(fs::read("a/b/c/f").unwrap(), b"data");
    assert_eq!(fs::metadata("a/b/c/f").unwrap().len(), 4);
    assert!(fs::metadata("a/b").unwrap().is_dir());
    assert_eq!(
        fs::create_dir("a").unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    assert_eq!(fs::read("missing").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        fs::remove_dir("a").unwrap_err().raw_os_error(),
        Some(55),
        "ENOTEMPTY"
    );
    assert_eq!(
        fs::read("a/b/c/f/x").unwrap_err().kind(),
        ErrorKind::NotADirectory
    );
    fs::write("a/z", b"1").unwrap();
    fs::write("a/y", b"2").unwrap();
    let names: Vec<String> = fs::read_dir("a")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["b", "y", "z"], "readdir is sorted");
    fs::rename("a/z", "a/w").unwrap();
    #[allow(deprecated)]
    fs::soft_link("w", "a/sym").unwrap();
    assert_eq!(fs::read_link("a/sym").unwrap().to_str(), Some("w"));
    assert_eq!(fs::read("a/sym").unwrap(), b"1");
    fs::hard_link("a/w", "a/hard").unwrap();
    fs::remove_file("a/w").unwrap();
    assert_eq!(fs::read("a/hard").unwrap(), b"1");
    assert_eq!(fs::read("a/sym").unwrap_err().kind(), ErrorKind::NotFound);
    let mut f = fs::OpenOptions::new().append(true).open("a/hard").unwrap();
    f.write_all(b"23").unwrap();
    drop(f);
    assert_eq!(fs::read_to_string("a/hard").unwrap(), "123");
    fs::remove_dir_all("a").unwrap();
    assert!(!fs::exists("a").unwrap());
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    println!("std_fs ok now={t}");
}

fn secret(paths: &[String]) {
    for p in paths {
        println!(
            "read {p}: {}",
            match fs::read_to_string(p) {
                Ok(s) => format!("ok {}", s.trim_end()),
                Err(e) => format!("{:?}", e.kind()),
            }
        );
        println!("write {p}: {}", kind(fs::write(p, "overwritten")));
        println!(
            "append {p}: {}",
            kind(fs::OpenOptions::new().append(true).open(p))
        );
        println!("delete {p}: {}", kind(fs::remove_file(p)));
        println!("rename {p}: {}", kind(fs::rename(p, "/tmp-renamed")));
        println!(
            "rename-onto {p}: {}",
            kind(fs::write("/victim", "v").and_then(|_| fs::rename("/victim", p)))
        );
        let meta = fs::metadata(p).map(|m| m.len());
        println!("stat {p}: {meta:?}");
    }
    for d in ["/run", "/run/secrets", "/root"] {
        match fs::read_dir(d) {
            Ok(rd) => {
                let mut names: Vec<String> = rd
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect();
                names.sort();
                println!("ls {d}: {}", names.join(","));
            }
            Err(e) => println!("ls {d}: {:?}", e.kind()),
        }
    }
    println!(
        "mkdir in /run/secrets: {}",
        kind(fs::create_dir("/run/secrets/new"))
    );
    println!(
        "rmdir /run/secrets: {}",
        kind(fs::remove_dir("/run/secrets"))
    );
}

fn nul_join(items: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in items {
        out.extend_from_slice(i.as_bytes());
        out.push(0);
    }
    out
}

fn spawn_child(argv: &[String]) {
    let a = nul_join(argv);
    let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    let e = nul_join(&env);
    let mut pid = 0u32;
    let mut status = 0u32;
    let err = unsafe {
        spawn(
            a.as_ptr(),
            a.len(),
            e.as_ptr(),
            e.len(),
            std::ptr::null(),
            0,
            0,
            1,
            2,
            &mut pid,
        )
    };
    if err != 0 {
        println!("spawn errno {err}");
        return;
    }
    let err = unsafe { wait(pid, &mut status) };
    println!("child status {status} errno {err}");
}

fn http(url: &str) {
    let (mut status, mut hfd, mut bfd) = (0u32, 0u32, 0u32);
    let m = b"GET";
    let err = unsafe {
        http_request(
            m.as_ptr(),
            3,
            url.as_ptr(),
            url.len(),
            std::ptr::null(),
            0,
            std::ptr::null(),
            0,
            &mut status,
            &mut hfd,
            &mut bfd,
        )
    };
    let mut buf = vec![0u8; 512];
    let mut n = 0u32;
    unsafe { last_error(buf.as_mut_ptr(), buf.len(), &mut n) };
    buf.truncate(n as usize);
    println!(
        "http errno {err} status {status} msg {}",
        String::from_utf8_lossy(&buf)
    );
}
