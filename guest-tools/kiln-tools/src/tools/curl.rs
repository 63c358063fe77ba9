//! curl with the options Dockerfiles use: -n/--netrc, --netrc-file, --netrc-optional, -u,
//! -H, -o, -O, -L, -f, --fail-with-body, -s, -S, -X, -d/--data-binary/--data-raw, -w, -I,
//! -i, -A, -k, -m, --retry, --compressed, --create-dirs; `wget -O FILE -q URL` is a front.
//! Requests go through the host (`kiln_v1` HTTP import); exit codes and messages follow
//! curl's (6 resolve, 7 connect, 22 HTTP >= 400 with -f, 23 write, 28 timeout, 47
//! redirects). Credentials from -u/netrc are sent only to the URL's host, as curl does.

use std::fs;
use std::io::{self, Read, Write};

use kiln_abi::http::{HttpError, Request};

use crate::netrc;
use crate::opts::{self, OptSpec, long_id, opt};
use crate::util::{self, describe};

const NETRC_FILE: char = long_id(1);
const NETRC_OPTIONAL: char = long_id(2);
const FAIL_WITH_BODY: char = long_id(3);
const RETRY: char = long_id(4);
const DATA_BINARY: char = long_id(5);
const DATA_RAW: char = long_id(6);
const COMPRESSED: char = long_id(7);
const CREATE_DIRS: char = long_id(8);
const CONNECT_TIMEOUT: char = long_id(9);
const MAX_REDIRS: char = long_id(10);
const RETRY_DELAY: char = long_id(11);
const RETRY_MAX_TIME: char = long_id(12);
const LOCATION_TRUSTED: char = long_id(13);
const RETRY_CONNREFUSED: char = long_id(14);
const DATA_URLENCODE: char = long_id(15);
const URL: char = long_id(16);
const PROTO: char = long_id(17);
const TLS: char = long_id(18);
const NOOP_VALUE: char = long_id(19);

const SPECS: &[OptSpec] = &[
    opt('n', Some("netrc"), false),
    opt(NETRC_FILE, Some("netrc-file"), true),
    opt(NETRC_OPTIONAL, Some("netrc-optional"), false),
    opt('u', Some("user"), true),
    opt('H', Some("header"), true),
    opt('o', Some("output"), true),
    opt('O', Some("remote-name"), false),
    opt('L', Some("location"), false),
    opt(LOCATION_TRUSTED, Some("location-trusted"), false),
    opt('f', Some("fail"), false),
    opt(FAIL_WITH_BODY, Some("fail-with-body"), false),
    opt('s', Some("silent"), false),
    opt('S', Some("show-error"), false),
    opt('X', Some("request"), true),
    opt('d', Some("data"), true),
    opt(DATA_BINARY, Some("data-binary"), true),
    opt(DATA_RAW, Some("data-raw"), true),
    opt(DATA_URLENCODE, Some("data-urlencode"), true),
    opt('w', Some("write-out"), true),
    opt('I', Some("head"), false),
    opt('i', Some("include"), false),
    opt('A', Some("user-agent"), true),
    opt('e', Some("referer"), true),
    opt('k', Some("insecure"), false),
    opt('m', Some("max-time"), true),
    opt(CONNECT_TIMEOUT, Some("connect-timeout"), true),
    opt(RETRY, Some("retry"), true),
    opt(RETRY_DELAY, Some("retry-delay"), true),
    opt(RETRY_MAX_TIME, Some("retry-max-time"), true),
    opt(RETRY_CONNREFUSED, Some("retry-connrefused"), false),
    opt(MAX_REDIRS, Some("max-redirs"), true),
    opt(COMPRESSED, Some("compressed"), false),
    opt(CREATE_DIRS, Some("create-dirs"), false),
    opt(URL, Some("url"), true),
    opt(PROTO, Some("proto"), true),
    opt(PROTO, Some("proto-redir"), true),
    opt(TLS, Some("tlsv1.2"), false),
    opt(TLS, Some("tlsv1.3"), false),
    opt(TLS, Some("http1.1"), false),
    opt(TLS, Some("no-progress-meter"), false),
    opt(NOOP_VALUE, Some("cacert"), true),
    opt('#', Some("progress-bar"), false),
    opt('v', Some("verbose"), false),
    opt('q', Some("disable"), false),
    opt('g', Some("globoff"), false),
];

/// A curl failure: exit code and message (printed as `curl: (N) message`).
#[derive(Debug, PartialEq)]
pub struct CurlError {
    pub code: i32,
    pub msg: String,
}

fn cerr(code: i32, msg: impl Into<String>) -> CurlError {
    CurlError {
        code,
        msg: msg.into(),
    }
}

/// Where credentials for a request come from.
#[derive(Debug, Clone, PartialEq)]
enum Netrc {
    None,
    Default { required: bool },
    File(String),
}

/// The parsed command line.
#[derive(Debug)]
pub struct Options {
    urls: Vec<String>,
    outputs: Vec<Option<String>>,
    user: Option<String>,
    netrc: Netrc,
    headers: Vec<String>,
    method: Option<String>,
    data: Option<Vec<u8>>,
    follow: bool,
    trusted: bool,
    max_redirs: u32,
    fail: bool,
    fail_with_body: bool,
    silent: bool,
    show_error: bool,
    write_out: Option<String>,
    head: bool,
    include: bool,
    user_agent: String,
    insecure: bool,
    timeout_ms: u64,
    retries: u32,
    retry_delay_s: Option<u64>,
    retry_connrefused: bool,
    compressed: bool,
    create_dirs: bool,
    verbose: bool,
}

/// Status, headers and body stream of a response.
pub type Exchange = (u16, Vec<(String, String)>, Box<dyn Read>);

/// The HTTP exchange, abstracted so the transfer logic is testable without a host.
pub trait Transport {
    fn send(&mut self, req: &Request) -> Result<Exchange, HttpError>;
}

struct HostTransport;

impl Transport for HostTransport {
    fn send(&mut self, req: &Request) -> Result<Exchange, HttpError> {
        let resp = kiln_abi::http::request(req)?;
        let status = resp.status;
        let headers = resp.headers.clone();
        Ok((status, headers, Box::new(resp)))
    }
}

pub fn main(name: &str, args: Vec<String>) -> i32 {
    let parsed = if name == "wget" {
        parse_wget(&args)
    } else {
        parse_args(&args)
    };
    let options = match parsed {
        Ok(o) => o,
        Err(e) => {
            let _ = writeln!(io::stderr(), "curl: {}", e.msg);
            if e.code == 2 {
                let _ = writeln!(
                    io::stderr(),
                    "curl: try 'curl --help' or 'curl --manual' for more information"
                );
            }
            return e.code;
        }
    };
    let quiet_errors = options.silent && !options.show_error;
    let mut transport = HostTransport;
    let mut stdout = util::stdout();
    let mut status = 0;
    for (index, url) in options.urls.iter().enumerate() {
        let result = transfer(
            &options,
            url,
            options.outputs.get(index).cloned().flatten(),
            &mut transport,
            &mut stdout,
        );
        if let Err(e) = result {
            let _ = stdout.flush();
            if !quiet_errors {
                if name == "wget" {
                    let _ = writeln!(io::stderr(), "wget: {}", e.msg);
                } else {
                    let _ = writeln!(io::stderr(), "curl: ({}) {}", e.code, e.msg);
                }
            }
            status = if name == "wget" {
                wget_code(e.code)
            } else {
                e.code
            };
        }
    }
    if stdout.flush().is_err() && status == 0 {
        status = 23;
    }
    status
}

/// wget's exit codes: 4 network failure, 6 auth failure, 8 server error response.
fn wget_code(curl_code: i32) -> i32 {
    match curl_code {
        6 | 7 | 28 | 35 => 4,
        22 => 8,
        23 => 3,
        _ => 1,
    }
}

fn parse_number<T: std::str::FromStr>(
    opt: &str,
    value: Option<&str>,
) -> Result<Option<T>, CurlError> {
    match value {
        None => Ok(None),
        Some(v) => v.parse::<T>().map(Some).map_err(|_| {
            cerr(
                2,
                format!("option {opt}: expected a proper numerical parameter"),
            )
        }),
    }
}

fn seconds_to_ms(opt: &str, value: Option<&str>) -> Result<u64, CurlError> {
    Ok(parse_number::<f64>(opt, value)?.map_or(0, |s| (s.max(0.0) * 1000.0) as u64))
}

pub fn parse_args(args: &[String]) -> Result<Options, CurlError> {
    let parsed = opts::parse(args, SPECS, true).map_err(|e| match e {
        opts::OptError::Unknown(o) => cerr(2, format!("option {o}: is unknown")),
        other => cerr(2, other.to_string()),
    })?;
    let mut urls = Vec::new();
    let mut outputs: Vec<Option<String>> = Vec::new();
    let mut pending_outputs: Vec<Option<String>> = Vec::new();
    let mut data: Option<Vec<u8>> = None;
    for (id, value) in &parsed.opts {
        let value = value.as_deref();
        match (*id, value) {
            ('o', Some(v)) => pending_outputs.push(Some(v.to_owned())),
            ('O', None) => pending_outputs.push(None),
            (URL, Some(v)) => urls.push(v.to_owned()),
            ('d' | DATA_BINARY | DATA_RAW | DATA_URLENCODE, Some(v)) => {
                let piece = data_piece(*id, v)?;
                let buf = data.get_or_insert_with(Vec::new);
                if !buf.is_empty() {
                    buf.push(b'&');
                }
                buf.extend_from_slice(&piece);
            }
            _ => {}
        }
    }
    urls.extend(parsed.operands.iter().cloned());
    if urls.is_empty() {
        return Err(cerr(2, "no URL specified"));
    }
    // -o/-O pair with URLs in order; `None` in `outputs` means stdout.
    for (i, _) in urls.iter().enumerate() {
        outputs.push(match pending_outputs.get(i) {
            Some(Some(file)) => Some(file.clone()),
            Some(None) => Some(String::new()),
            None => None,
        });
    }
    let netrc = if let Some(file) = parsed.value(NETRC_FILE) {
        Netrc::File(file.to_owned())
    } else if parsed.has('n') {
        Netrc::Default { required: true }
    } else if parsed.has(NETRC_OPTIONAL) {
        Netrc::Default { required: false }
    } else {
        Netrc::None
    };
    Ok(Options {
        urls,
        outputs,
        user: parsed.value('u').map(str::to_owned),
        netrc,
        headers: parsed.values('H').map(str::to_owned).collect(),
        method: parsed.value('X').map(str::to_owned),
        data,
        follow: parsed.has('L') || parsed.has(LOCATION_TRUSTED),
        trusted: parsed.has(LOCATION_TRUSTED),
        max_redirs: parse_number("--max-redirs", parsed.value(MAX_REDIRS))?.unwrap_or(50),
        fail: parsed.has('f') || parsed.has(FAIL_WITH_BODY),
        fail_with_body: parsed.has(FAIL_WITH_BODY),
        silent: parsed.has('s'),
        show_error: parsed.has('S'),
        write_out: parsed.value('w').map(str::to_owned),
        head: parsed.has('I'),
        include: parsed.has('i'),
        user_agent: parsed
            .value('A')
            .unwrap_or(concat!("curl/8.0.0 kiln/", env!("CARGO_PKG_VERSION")))
            .to_owned(),
        insecure: parsed.has('k'),
        timeout_ms: seconds_to_ms("-m", parsed.value('m'))?,
        retries: parse_number("--retry", parsed.value(RETRY))?.unwrap_or(0),
        retry_delay_s: parse_number("--retry-delay", parsed.value(RETRY_DELAY))?,
        retry_connrefused: parsed.has(RETRY_CONNREFUSED),
        compressed: parsed.has(COMPRESSED),
        create_dirs: parsed.has(CREATE_DIRS),
        verbose: parsed.has('v'),
    })
}

/// `wget [-q] [-O FILE] [--header H] [--user U --password P] URL...`
fn parse_wget(args: &[String]) -> Result<Options, CurlError> {
    const W: &[OptSpec] = &[
        opt('O', Some("output-document"), true),
        opt('q', Some("quiet"), false),
        opt('S', Some("server-response"), false),
        opt(long_id(1), Some("header"), true),
        opt(long_id(2), Some("user"), true),
        opt(long_id(3), Some("password"), true),
        opt(long_id(4), Some("no-check-certificate"), false),
        opt('T', Some("timeout"), true),
        opt('t', Some("tries"), true),
        opt(long_id(5), Some("no-verbose"), false),
        opt('c', Some("continue"), false),
        opt(long_id(6), Some("progress"), true),
    ];
    let p = opts::parse(args, W, true).map_err(|e| cerr(2, e.to_string()))?;
    if p.operands.is_empty() {
        return Err(cerr(1, "missing URL"));
    }
    let mut curl_args: Vec<String> = vec!["-L".into(), "-f".into(), "--netrc-optional".into()];
    if p.has('q') {
        curl_args.push("-s".into());
    } else {
        curl_args.push("-sS".into());
    }
    for h in p.values(long_id(1)) {
        curl_args.extend(["-H".into(), h.to_owned()]);
    }
    if let Some(user) = p.value(long_id(2)) {
        let password = p.value(long_id(3)).unwrap_or("");
        curl_args.extend(["-u".into(), format!("{user}:{password}")]);
    }
    if p.has(long_id(4)) {
        curl_args.push("-k".into());
    }
    if let Some(t) = p.value('T') {
        curl_args.extend(["-m".into(), t.to_owned()]);
    }
    for url in &p.operands {
        match p.value('O') {
            Some(file) => curl_args.extend(["-o".into(), file.to_owned()]),
            None => curl_args.push("-O".into()),
        }
        curl_args.push(url.clone());
    }
    parse_args(&curl_args)
}

fn data_piece(id: char, value: &str) -> Result<Vec<u8>, CurlError> {
    let read = |file: &str| -> Result<Vec<u8>, CurlError> {
        let mut buf = Vec::new();
        util::open_input(file)
            .and_then(|mut r| r.read_to_end(&mut buf))
            .map_err(|e| cerr(26, format!("Failed to open {file}: {}", describe(&e))))?;
        Ok(buf)
    };
    Ok(match id {
        'd' => match value.strip_prefix('@') {
            // curl -d @file drops carriage returns and newlines.
            Some(file) => read(file)?
                .into_iter()
                .filter(|b| *b != b'\n' && *b != b'\r')
                .collect(),
            None => value.as_bytes().to_vec(),
        },
        DATA_BINARY => match value.strip_prefix('@') {
            Some(file) => read(file)?,
            None => value.as_bytes().to_vec(),
        },
        DATA_URLENCODE => match value.split_once('=') {
            Some((name, content)) => {
                format!("{name}={}", urlencode(content.as_bytes())).into_bytes()
            }
            None => urlencode(value.as_bytes()).into_bytes(),
        },
        _ => value.as_bytes().to_vec(),
    })
}

fn urlencode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The parts of a URL curl needs: scheme, credentials, host (for netrc), path.
#[derive(Debug, PartialEq)]
pub struct Url {
    pub scheme: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: String,
    /// `host[:port]` as written.
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    pub fn parse(raw: &str) -> Result<Url, CurlError> {
        let raw = raw.trim();
        let (scheme, rest) = match raw.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => ("http".to_owned(), raw),
        };
        if scheme != "http" && scheme != "https" {
            return Err(cerr(1, format!("Protocol \"{scheme}\" not supported")));
        }
        let rest = rest.split('#').next().unwrap_or(rest);
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority_full, path) = rest.split_at(end);
        let (userinfo, authority) = match authority_full.rsplit_once('@') {
            Some((u, a)) => (Some(u), a),
            None => (None, authority_full),
        };
        let host = if let Some(v6) = authority.strip_prefix('[') {
            v6.split(']').next().unwrap_or(v6).to_owned()
        } else {
            authority.split(':').next().unwrap_or(authority).to_owned()
        };
        if host.is_empty() {
            return Err(cerr(3, "URL rejected: No host part in the URL"));
        }
        let (user, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((n, p)) => (Some(percent_decode(n)), Some(percent_decode(p))),
                None => (Some(percent_decode(u)), None),
            },
            None => (None, None),
        };
        let path = if path.is_empty() || path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        Ok(Url {
            scheme,
            user,
            password,
            host: host.to_ascii_lowercase(),
            authority: authority.to_owned(),
            path,
        })
    }

    /// The URL as sent to the host (credentials removed).
    pub fn without_credentials(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.path)
    }

    /// Resolves a `Location` header against this URL.
    pub fn join(&self, location: &str) -> Result<Url, CurlError> {
        if location.contains("://") {
            return Url::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return Url::parse(&format!("{}://{rest}", self.scheme));
        }
        let path = if location.starts_with('/') {
            location.to_owned()
        } else {
            let base = self.path.split('?').next().unwrap_or("/");
            let dir = &base[..base.rfind('/').map_or(0, |p| p + 1)];
            format!("{dir}{location}")
        };
        Ok(Url {
            scheme: self.scheme.clone(),
            user: None,
            password: None,
            host: self.host.clone(),
            authority: self.authority.clone(),
            path,
        })
    }

    /// The file name `-O` uses: the last path segment.
    pub fn remote_name(&self) -> Option<String> {
        let path = self.path.split('?').next().unwrap_or("");
        let name = path.rsplit('/').next().unwrap_or("");
        (!name.is_empty()).then(|| percent_decode(name))
    }
}

fn netrc_path(netrc: &Netrc) -> Option<String> {
    match netrc {
        Netrc::None => None,
        Netrc::File(f) => Some(f.clone()),
        Netrc::Default { .. } => {
            let home = std::env::var("HOME")
                .ok()
                .filter(|h| !h.is_empty())
                .or_else(|| {
                    let (uid, _) = kiln_abi::identity();
                    crate::passwd::home_of(uid)
                })?;
            Some(format!("{}/.netrc", home.trim_end_matches('/')))
        }
    }
}

/// Basic-auth credentials for a request to `url`, from -u, the URL, then netrc.
fn credentials(
    opts: &Options,
    url: &Url,
    original_host: &str,
) -> Result<Option<(String, String)>, CurlError> {
    let same_host = url.host == original_host || opts.trusted;
    let (mut user, mut password) = match (&opts.user, same_host) {
        (Some(u), true) => match u.split_once(':') {
            Some((n, p)) => (Some(n.to_owned()), Some(p.to_owned())),
            None => (Some(u.clone()), None),
        },
        _ => (url.user.clone(), url.password.clone()),
    };
    let netrc_applies = match opts.netrc {
        Netrc::None => false,
        // --netrc-optional: the URL/-u credentials win if complete.
        Netrc::Default { required: false } => password.is_none(),
        _ => password.is_none() || opts.user.is_none(),
    };
    if netrc_applies && let Some(path) = netrc_path(&opts.netrc) {
        match fs::read_to_string(&path) {
            Ok(text) => {
                let found = netrc::lookup(&text, &url.host, user.as_deref())
                    .map_err(|e| cerr(26, format!(".netrc parser error (line {})", e.line)))?;
                if user.is_none() {
                    user = found.login;
                }
                if found.password.is_some() {
                    password = found.password;
                }
            }
            Err(e)
                if e.kind() == io::ErrorKind::NotFound && !matches!(opts.netrc, Netrc::File(_)) => {
            }
            Err(e) => {
                return Err(cerr(
                    26,
                    format!("Couldn't read netrc file {path}: {}", describe(&e)),
                ));
            }
        }
    }
    Ok(user.map(|u| (u, password.unwrap_or_default())))
}

fn basic_auth(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}").into_bytes();
    let mut out = String::from("Basic ");
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn build_request(
    opts: &Options,
    url: &Url,
    method: &str,
    auth: Option<&(String, String)>,
) -> Request {
    let mut headers: Vec<(String, String)> = vec![
        ("User-Agent".into(), opts.user_agent.clone()),
        ("Accept".into(), "*/*".into()),
    ];
    if let Some((u, p)) = auth {
        headers.push(("Authorization".into(), basic_auth(u, p)));
    }
    if opts.compressed {
        headers.push(("Accept-Encoding".into(), "gzip".into()));
    }
    let body = if method == "GET" || method == "HEAD" {
        Vec::new()
    } else {
        opts.data.clone().unwrap_or_default()
    };
    if opts.data.is_some() && !body.is_empty() || (opts.data.is_some() && method == "POST") {
        headers.push((
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
    }
    for h in &opts.headers {
        if let Some((name, value)) = h.split_once(':') {
            let name = name.trim().to_owned();
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
            let value = value.trim();
            if !value.is_empty() {
                headers.push((name, value.to_owned()));
            }
        } else if let Some(name) = h.strip_suffix(';') {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name.trim().to_owned(), String::new()));
        }
    }
    Request {
        method: method.to_owned(),
        url: url.without_credentials(),
        headers,
        body,
        timeout_ms: opts.timeout_ms,
        insecure: opts.insecure,
    }
}

fn map_http_error(url: &Url, e: HttpError) -> CurlError {
    let port = url
        .authority
        .rsplit_once(':')
        .map_or(if url.scheme == "https" { "443" } else { "80" }, |(_, p)| p);
    match e {
        HttpError::NetworkDisabled(m) => cerr(
            7,
            format!("Failed to connect to {} port {port}: {m}", url.host),
        ),
        HttpError::Resolve(_) => cerr(6, format!("Could not resolve host: {}", url.host)),
        HttpError::Connect(m) => cerr(
            7,
            format!("Failed to connect to {} port {port}: {m}", url.host),
        ),
        HttpError::Tls(m) => cerr(60, format!("SSL certificate problem: {m}")),
        HttpError::Timeout(m) => cerr(28, format!("Operation timed out: {m}")),
        HttpError::BadUrl(m) => cerr(3, format!("URL rejected: {m}")),
        HttpError::Other(m) => cerr(
            56,
            format!("Failure when receiving data from the peer: {m}"),
        ),
    }
}

/// Outcome of one transfer, for `-w`.
#[derive(Default)]
struct Info {
    code: u16,
    effective_url: String,
    size: u64,
    content_type: String,
    redirects: u32,
}

/// Runs one URL: request, redirects, retries, output, -w. `output`: None is stdout,
/// Some("") is -O.
pub fn transfer(
    opts: &Options,
    raw_url: &str,
    output: Option<String>,
    transport: &mut dyn Transport,
    stdout: &mut dyn Write,
) -> Result<(), CurlError> {
    let mut attempt = 0;
    loop {
        match transfer_once(opts, raw_url, output.clone(), transport, stdout) {
            Err(e) if attempt < opts.retries && is_transient(&e, opts.retry_connrefused) => {
                attempt += 1;
                let delay = opts.retry_delay_s.unwrap_or(1u64 << (attempt - 1).min(9));
                if !opts.silent {
                    let _ = writeln!(
                        io::stderr(),
                        "Warning: Problem : {}. Will retry in {delay} seconds. {} retries left.",
                        e.msg,
                        opts.retries - attempt + 1
                    );
                }
                std::thread::sleep(std::time::Duration::from_secs(delay.min(600)));
            }
            other => return other,
        }
    }
}

fn is_transient(e: &CurlError, connrefused: bool) -> bool {
    match e.code {
        28 => true,
        7 => connrefused && !e.msg.contains("network access"),
        22 => ["408", "429", "500", "502", "503", "504"]
            .iter()
            .any(|c| e.msg.ends_with(c)),
        _ => false,
    }
}

fn transfer_once(
    opts: &Options,
    raw_url: &str,
    output: Option<String>,
    transport: &mut dyn Transport,
    stdout: &mut dyn Write,
) -> Result<(), CurlError> {
    let mut url = Url::parse(raw_url)?;
    let original_host = url.host.clone();
    let mut method = match (&opts.method, opts.head, &opts.data) {
        (Some(m), _, _) => m.clone(),
        (None, true, _) => "HEAD".into(),
        (None, false, Some(_)) => "POST".into(),
        (None, false, None) => "GET".into(),
    };
    let mut info = Info::default();
    let (status, headers, body) = loop {
        let auth = credentials(opts, &url, &original_host)?;
        let req = build_request(opts, &url, &method, auth.as_ref());
        if opts.verbose {
            let _ = writeln!(io::stderr(), "> {} {} HTTP/1.1", req.method, url.path);
            for (n, v) in &req.headers {
                let shown = if n.eq_ignore_ascii_case("authorization") {
                    "<redacted>"
                } else {
                    v
                };
                let _ = writeln!(io::stderr(), "> {n}: {shown}");
            }
        }
        let (status, headers, body) = transport.send(&req).map_err(|e| map_http_error(&url, e))?;
        if opts.verbose {
            let _ = writeln!(io::stderr(), "< HTTP/1.1 {status}");
            for (n, v) in &headers {
                let _ = writeln!(io::stderr(), "< {n}: {v}");
            }
        }
        let location = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("location"))
            .map(|(_, v)| v.clone());
        match (opts.follow, location) {
            (true, Some(loc)) if matches!(status, 301 | 302 | 303 | 307 | 308) => {
                if info.redirects >= opts.max_redirs {
                    return Err(cerr(
                        47,
                        format!("Maximum ({}) redirects followed", opts.max_redirs),
                    ));
                }
                info.redirects += 1;
                if status == 303 || (matches!(status, 301 | 302) && method == "POST") {
                    method = if method == "HEAD" {
                        method
                    } else {
                        "GET".into()
                    };
                }
                if opts.include {
                    write_head(stdout, status, &headers).map_err(write_error)?;
                }
                url = url.join(&loc)?;
            }
            _ => break (status, headers, body),
        }
    };
    info.code = status;
    info.effective_url = url.without_credentials();
    info.content_type = header(&headers, "content-type")
        .unwrap_or_default()
        .to_owned();
    let failed = opts.fail && status >= 400;
    if failed && !opts.fail_with_body {
        write_out(opts, &info, stdout)?;
        return Err(cerr(
            22,
            format!("The requested URL returned error: {status}"),
        ));
    }
    let file = match output.as_deref() {
        None | Some("-") => None,
        Some("") => Some(
            url.remote_name()
                .ok_or_else(|| cerr(23, "Remote file name has no length"))?,
        ),
        Some(f) => Some(f.to_owned()),
    };
    let gzip = opts.compressed
        && header(&headers, "content-encoding").is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let mut body: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(body))
    } else {
        body
    };
    let copy = |sink: &mut dyn Write, body: &mut dyn Read| -> Result<u64, CurlError> {
        if opts.include || opts.head {
            write_head(sink, status, &headers).map_err(write_error)?;
        }
        if opts.head {
            return Ok(0);
        }
        copy_body(body, sink)
    };
    info.size = match &file {
        None => copy(stdout, &mut body)?,
        Some(path) => {
            if opts.create_dirs
                && let Some((dir, _)) = path.rsplit_once('/')
                && !dir.is_empty()
            {
                fs::create_dir_all(dir).map_err(|e| {
                    cerr(
                        23,
                        format!("Failed creating directory {dir}: {}", describe(&e)),
                    )
                })?;
            }
            let f = fs::File::create(path).map_err(|e| {
                cerr(
                    23,
                    format!("Failed to open the file {path}: {}", describe(&e)),
                )
            })?;
            let mut w = io::BufWriter::new(f);
            let n = copy(&mut w, &mut body)?;
            w.flush().map_err(write_error)?;
            n
        }
    };
    write_out(opts, &info, stdout)?;
    if failed {
        return Err(cerr(
            22,
            format!("The requested URL returned error: {status}"),
        ));
    }
    Ok(())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn write_error(e: io::Error) -> CurlError {
    cerr(
        23,
        format!("Failure writing output to destination: {}", describe(&e)),
    )
}

fn write_head(out: &mut dyn Write, status: u16, headers: &[(String, String)]) -> io::Result<()> {
    write!(out, "HTTP/1.1 {status}\r\n")?;
    for (n, v) in headers {
        write!(out, "{n}: {v}\r\n")?;
    }
    out.write_all(b"\r\n")
}

fn copy_body(body: &mut dyn Read, out: &mut dyn Write) -> Result<u64, CurlError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(cerr(28, "Operation timed out"));
            }
            Err(e) => {
                return Err(cerr(
                    56,
                    format!(
                        "Failure when receiving data from the peer: {}",
                        describe(&e)
                    ),
                ));
            }
        };
        out.write_all(&buf[..n]).map_err(write_error)?;
        total += n as u64;
    }
}

fn write_out(opts: &Options, info: &Info, out: &mut dyn Write) -> Result<(), CurlError> {
    let Some(format) = &opts.write_out else {
        return Ok(());
    };
    let format = match format.strip_prefix('@') {
        Some(file) => {
            let mut s = String::new();
            util::open_input(file)
                .and_then(|mut r| r.read_to_string(&mut s))
                .map_err(|e| cerr(26, format!("Failed to read {file}: {}", describe(&e))))?;
            s
        }
        None => format.clone(),
    };
    out.write_all(render_write_out(&format, info).as_bytes())
        .map_err(write_error)
}

fn render_write_out(format: &str, info: &Info) -> String {
    let mut s = String::new();
    let mut rest = format;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("%{")
            && let Some(end) = after.find('}')
        {
            let var = &after[..end];
            match var {
                "http_code" | "response_code" => s.push_str(&format!("{:03}", info.code)),
                "url_effective" => s.push_str(&info.effective_url),
                "size_download" => s.push_str(&info.size.to_string()),
                "content_type" => s.push_str(&info.content_type),
                "num_redirects" => s.push_str(&info.redirects.to_string()),
                _ => {}
            }
            rest = &after[end + 1..];
        } else if let Some(after) = rest.strip_prefix("%%") {
            s.push('%');
            rest = after;
        } else if let Some(after) = rest.strip_prefix('\\') {
            let mut chars = after.chars();
            match chars.next() {
                Some('n') => s.push('\n'),
                Some('r') => s.push('\r'),
                Some('t') => s.push('\t'),
                Some(c) => {
                    s.push('\\');
                    s.push(c);
                }
                None => s.push('\\'),
            }
            rest = chars.as_str();
        } else {
            let c = rest.chars().next().unwrap_or('\0');
            s.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    type Canned = Result<(u16, Vec<(String, String)>, &'static str), HttpError>;

    struct Fake {
        responses: VecDeque<Canned>,
        seen: Vec<Request>,
    }

    impl Transport for Fake {
        fn send(&mut self, req: &Request) -> Result<Exchange, HttpError> {
            self.seen.push(req.clone());
            let (status, headers, body) =
                self.responses.pop_front().expect("unexpected request")?;
            Ok((status, headers, Box::new(body.as_bytes())))
        }
    }

    fn fake(responses: Vec<Canned>) -> Fake {
        Fake {
            responses: responses.into(),
            seen: Vec::new(),
        }
    }

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    fn run(a: &[&str], f: &mut Fake) -> (Result<(), CurlError>, String) {
        let o = parse_args(&args(a)).unwrap();
        let mut out = Vec::new();
        let r = transfer(&o, &o.urls[0], o.outputs[0].clone(), f, &mut out);
        (r, String::from_utf8(out).unwrap())
    }

    #[test]
    fn urls() {
        let u = Url::parse("https://us%40r:p%3Aw@Example.COM:8443/a/b.tgz?x=1#frag").unwrap();
        assert_eq!(u.host, "example.com");
        assert_eq!(u.user.as_deref(), Some("us@r"));
        assert_eq!(u.password.as_deref(), Some("p:w"));
        assert_eq!(
            u.without_credentials(),
            "https://Example.COM:8443/a/b.tgz?x=1"
        );
        assert_eq!(u.remote_name().as_deref(), Some("b.tgz"));
        assert_eq!(
            Url::parse("example.com").unwrap().without_credentials(),
            "http://example.com/"
        );
        assert_eq!(Url::parse("ftp://x/").unwrap_err().code, 1);
        assert_eq!(Url::parse("http:///x").unwrap_err().code, 3);
        let j = u.join("../c").unwrap();
        assert_eq!(j.path, "/a/../c");
        assert_eq!(u.join("//other/x").unwrap().host, "other");
        assert_eq!(
            u.join("/root").unwrap().without_credentials(),
            "https://Example.COM:8443/root"
        );
    }

    #[test]
    fn basic_auth_encoding() {
        assert_eq!(
            basic_auth("admin", "password"),
            "Basic YWRtaW46cGFzc3dvcmQ="
        );
        assert_eq!(basic_auth("a", ""), "Basic YTo=");
    }

    #[test]
    fn fail_and_write_out() {
        let mut f = fake(vec![Ok((404, vec![], "nope"))]);
        let (r, out) = run(&["-f", "-w", "%{http_code}\\n", "http://h/x"], &mut f);
        assert_eq!(
            r.unwrap_err(),
            cerr(22, "The requested URL returned error: 404")
        );
        assert_eq!(out, "404\n");
        let mut f = fake(vec![Ok((401, vec![], "denied"))]);
        let (r, out) = run(&["http://h/x"], &mut f);
        assert!(r.is_ok());
        assert_eq!(out, "denied");
        let mut f = fake(vec![Ok((500, vec![], "body"))]);
        let (r, out) = run(&["--fail-with-body", "http://h/x"], &mut f);
        assert_eq!(r.unwrap_err().code, 22);
        assert_eq!(out, "body");
    }

    #[test]
    fn redirects_keep_credentials_on_the_original_host() {
        let loc = |l: &str| vec![("Location".to_owned(), l.to_owned())];
        let mut f = fake(vec![
            Ok((302, loc("/next"), "")),
            Ok((301, loc("http://other/final"), "")),
            Ok((200, vec![], "done")),
        ]);
        let (r, out) = run(&["-L", "-u", "u:p", "http://h/start"], &mut f);
        r.unwrap();
        assert_eq!(out, "done");
        let auth = |r: &Request| r.headers.iter().any(|(n, _)| n == "Authorization");
        assert!(auth(&f.seen[0]) && auth(&f.seen[1]) && !auth(&f.seen[2]));
        assert_eq!(f.seen[2].url, "http://other/final");
        let mut f = fake(vec![Ok((302, loc("/x"), "moved"))]);
        let (_, out) = run(&["http://h/start"], &mut f);
        assert_eq!(out, "moved", "without -L the redirect body is the output");
    }

    #[test]
    fn post_data_and_headers() {
        let mut f = fake(vec![Ok((200, vec![], ""))]);
        let (r, _) = run(
            &[
                "-d",
                "a=1",
                "-d",
                "b=2",
                "-H",
                "X-Test: yes",
                "-H",
                "Accept:",
                "http://h/",
            ],
            &mut f,
        );
        r.unwrap();
        let req = &f.seen[0];
        assert_eq!(req.method, "POST");
        assert_eq!(req.body, b"a=1&b=2");
        assert!(req.headers.contains(&("X-Test".into(), "yes".into())));
        assert!(!req.headers.iter().any(|(n, _)| n == "Accept"));
        let mut f = fake(vec![Ok((200, vec![], ""))]);
        run(&["-X", "PUT", "--data-binary", "x", "http://h/"], &mut f)
            .0
            .unwrap();
        assert_eq!(f.seen[0].method, "PUT");
    }

    #[test]
    fn network_errors_map_to_curl_codes() {
        let mut f = fake(vec![Err(HttpError::NetworkDisabled(
            "network access is disabled for this step".into(),
        ))]);
        let e = run(&["http://h:81/"], &mut f).0.unwrap_err();
        assert_eq!(e.code, 7);
        assert_eq!(
            e.msg,
            "Failed to connect to h port 81: network access is disabled for this step"
        );
        let mut f = fake(vec![Err(HttpError::Resolve("x".into()))]);
        assert_eq!(run(&["http://nohost/"], &mut f).0.unwrap_err().code, 6);
    }

    #[test]
    fn retry_on_transient_status() {
        let mut f = fake(vec![Ok((503, vec![], "")), Ok((200, vec![], "ok"))]);
        let (r, out) = run(
            &[
                "-s",
                "-f",
                "--retry",
                "1",
                "--retry-delay",
                "0",
                "http://h/",
            ],
            &mut f,
        );
        r.unwrap();
        assert_eq!(out, "ok");
    }

    #[test]
    fn bad_options() {
        assert_eq!(
            parse_args(&args(&["--bogus", "http://h"]))
                .unwrap_err()
                .code,
            2
        );
        assert_eq!(parse_args(&args(&["-s"])).unwrap_err().code, 2);
    }
}
