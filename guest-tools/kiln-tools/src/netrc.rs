//! `.netrc` lookup with curl's rules: `machine NAME` (host compared case-insensitively),
//! `default` (matches any host; only consulted if no machine matched earlier), `login`,
//! `password`, `macdef NAME` (its body runs to the next empty line and is skipped), `#`
//! starting a token comments out the rest of its line, and tokens may be double-quoted with
//! `\"`, `\\`, `\n`, `\r`, `\t` escapes. When the caller already has a login (from `-u user`
//! or the URL), only an entry with that exact login supplies the password.

/// Credentials found for a host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    pub login: Option<String>,
    pub password: Option<String>,
}

/// A malformed token (an unterminated quote), with the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetrcError {
    pub line: usize,
}

#[derive(Debug, PartialEq)]
struct Token {
    text: String,
    quoted: bool,
}

/// Splits the file into tokens, dropping comments and macdef bodies.
fn tokenize(text: &str) -> Result<Vec<Token>, NetrcError> {
    let mut tokens = Vec::new();
    let mut in_macdef = false;
    let mut lines = text.split('\n').enumerate().peekable();
    while let Some((index, raw)) = lines.next() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if in_macdef {
            if line.is_empty() {
                in_macdef = false;
            }
            continue;
        }
        let mut chars = line.chars().peekable();
        let mut line_tokens: Vec<Token> = Vec::new();
        loop {
            while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
            let Some(&first) = chars.peek() else { break };
            if first == '#' {
                break;
            }
            let token = if first == '"' {
                chars.next();
                let mut text = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next() {
                            Some('n') => text.push('\n'),
                            Some('r') => text.push('\r'),
                            Some('t') => text.push('\t'),
                            Some(other) => text.push(other),
                            None => break,
                        },
                        c => text.push(c),
                    }
                }
                if !closed {
                    return Err(NetrcError { line: index + 1 });
                }
                Token { text, quoted: true }
            } else {
                let mut text = String::new();
                while let Some(c) = chars.next_if(|c| !c.is_ascii_whitespace()) {
                    text.push(c);
                }
                Token {
                    text,
                    quoted: false,
                }
            };
            line_tokens.push(token);
        }
        // A macdef's body starts on the following line.
        let macdef_at = line_tokens
            .iter()
            .position(|t| !t.quoted && t.text.eq_ignore_ascii_case("macdef"));
        if let Some(pos) = macdef_at {
            line_tokens.truncate(pos);
            in_macdef = lines.peek().is_some();
        }
        tokens.extend(line_tokens);
    }
    Ok(tokens)
}

fn is_keyword(token: &Token, word: &str) -> bool {
    !token.quoted && token.text.eq_ignore_ascii_case(word)
}

/// Finds the credentials for `host` in the netrc text. `login` is the user name the caller
/// already has, if any.
pub fn lookup(text: &str, host: &str, login: Option<&str>) -> Result<Credentials, NetrcError> {
    let tokens = tokenize(text)?;
    let mut i = 0;
    let mut matched_machine = false;
    while i < tokens.len() {
        let matches = if is_keyword(&tokens[i], "machine") {
            let name = tokens.get(i + 1);
            i += 2;
            name.is_some_and(|n| n.text.eq_ignore_ascii_case(host))
        } else if is_keyword(&tokens[i], "default") {
            i += 1;
            !matched_machine
        } else {
            i += 1;
            continue;
        };
        let (entry, next) = read_entry(&tokens, i);
        i = next;
        if !matches {
            continue;
        }
        matched_machine = true;
        match login {
            Some(want) if entry.login.as_deref() == Some(want) => return Ok(entry),
            Some(_) => continue,
            None => return Ok(entry),
        }
    }
    Ok(Credentials::default())
}

/// Reads `login`/`password` pairs up to the next `machine` or `default`.
fn read_entry(tokens: &[Token], mut i: usize) -> (Credentials, usize) {
    let mut entry = Credentials::default();
    while i < tokens.len() {
        let token = &tokens[i];
        if is_keyword(token, "machine") || is_keyword(token, "default") {
            break;
        }
        let value = tokens.get(i + 1).map(|t| t.text.clone());
        if is_keyword(token, "login") {
            entry.login = entry.login.or(value);
            i += 2;
        } else if is_keyword(token, "password") {
            entry.password = entry.password.or(value);
            i += 2;
        } else {
            // `account VALUE` and unknown words carry nothing curl uses.
            i += 1;
        }
    }
    (entry, i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(login: &str, password: &str) -> Credentials {
        Credentials {
            login: Some(login.into()),
            password: Some(password.into()),
        }
    }

    #[test]
    fn single_line_and_multi_line_entries() {
        let text = "machine a.example login alice password s3cret\n\
                    machine b.example\n  login bob\n  password \"two words\"\n";
        assert_eq!(
            lookup(text, "a.example", None).unwrap(),
            creds("alice", "s3cret")
        );
        assert_eq!(
            lookup(text, "B.Example", None).unwrap(),
            creds("bob", "two words")
        );
        assert_eq!(
            lookup(text, "c.example", None).unwrap(),
            Credentials::default()
        );
    }

    #[test]
    fn default_applies_only_when_no_machine_matched() {
        let text = "machine a login x password y\ndefault login anon password guest\n";
        assert_eq!(lookup(text, "a", None).unwrap(), creds("x", "y"));
        assert_eq!(lookup(text, "other", None).unwrap(), creds("anon", "guest"));
    }

    #[test]
    fn specific_login_selects_its_entry() {
        let text = "machine h login one password p1\nmachine h login two password p2\n";
        assert_eq!(lookup(text, "h", Some("two")).unwrap(), creds("two", "p2"));
        assert_eq!(
            lookup(text, "h", Some("three")).unwrap(),
            Credentials::default()
        );
        assert_eq!(lookup(text, "h", None).unwrap(), creds("one", "p1"));
    }

    #[test]
    fn quoting_escapes_comments_and_macdef() {
        let text = "# a comment line\n\
                    macdef init\nmachine evil login bad password bad\n\n\
                    machine h login \"a b\" password \"q\\\"uote\\\\\\tx\" # trailing\n";
        assert_eq!(lookup(text, "evil", None).unwrap(), Credentials::default());
        assert_eq!(
            lookup(text, "h", None).unwrap(),
            creds("a b", "q\"uote\\\tx")
        );
        assert_eq!(
            lookup("machine h password \"open", "h", None),
            Err(NetrcError { line: 1 })
        );
    }

    #[test]
    fn keywords_are_case_insensitive_and_quoted_keywords_are_values() {
        let text = "MACHINE h LOGIN u PASSWORD \"machine\"\r\n";
        assert_eq!(lookup(text, "h", None).unwrap(), creds("u", "machine"));
    }

    #[test]
    fn password_without_login() {
        assert_eq!(
            lookup("machine h password p", "h", None).unwrap(),
            Credentials {
                login: None,
                password: Some("p".into())
            }
        );
    }
}
