//! URL parsing with the semantics of Go's `net/url`, which upstream's admission rules are built
//! on: which BMC addresses and image URLs upstream accepts, how it splits them, and the wording
//! of its parse errors (`parse "…": missing ']' in host`) all follow from it. Only what those
//! rules use is here: scheme, opaque part, authority host, path, query, `Hostname()`/`Port()`.

/// The parts of a URL as Go's `url.URL` holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GoUrl {
    /// Lower-cased scheme, empty when none.
    pub scheme: String,
    /// Rootless text after `scheme:` (e.g. `192.168.0.1` of `ipmi:192.168.0.1`).
    pub opaque: String,
    /// The authority's host with its port (`[fd00::1]:623`), unescaped.
    pub host: String,
    /// The unescaped path.
    pub path: String,
    /// The query without `?`, as written.
    pub raw_query: String,
}

/// Go's `strconv.Quote` for the texts that can appear in a URL error.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `quote` for bytes that may end inside a character: Go shows the stray bytes as `\xNN`.
fn quote_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => quote(text),
        Err(_) => {
            let mut out = String::from("\"");
            for &b in bytes {
                if b.is_ascii() {
                    let quoted = quote(&(b as char).to_string());
                    out.push_str(&quoted[1..quoted.len() - 1]);
                } else {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
            out.push('"');
            out
        }
    }
}

fn wrap(url: &str, reason: &str) -> String {
    format!("parse {}: {reason}", quote(url))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Host,
    Zone,
    Path,
    UserPassword,
    Fragment,
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn unhex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// Whether Go would refuse `c` unescaped in a host (its `shouldEscape` in host mode).
fn bad_in_host(c: u8) -> bool {
    !(c.is_ascii_alphanumeric() || b"!$&'()*+,;=:[]<>\"".contains(&c) || b"-_.~".contains(&c))
}

/// Go's `unescape`: decodes `%XX`, refusing bad escapes and, in a host, characters Go refuses.
fn unescape(s: &str, mode: Mode) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                if i + 2 >= b.len() || !is_hex(b[i + 1]) || !is_hex(b[i + 2]) {
                    let end = (i + 3).min(b.len());
                    return Err(format!("invalid URL escape {}", quote_bytes(&b[i..end])));
                }
                if mode == Mode::Host && unhex(b[i + 1]) < 8 && &s[i..i + 3] != "%25" {
                    return Err(format!("invalid URL escape {}", quote(&s[i..i + 3])));
                }
                if mode == Mode::Zone {
                    let v = unhex(b[i + 1]) << 4 | unhex(b[i + 2]);
                    if &s[i..i + 3] != "%25" && v != b' ' && bad_in_host(v) {
                        return Err(format!("invalid URL escape {}", quote(&s[i..i + 3])));
                    }
                }
                out.push(unhex(b[i + 1]) << 4 | unhex(b[i + 2]));
                i += 3;
            }
            c => {
                if matches!(mode, Mode::Host | Mode::Zone) && c < 0x80 && bad_in_host(c) {
                    return Err(format!("invalid character {} in host name", quote(&s[i..i + 1])));
                }
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn valid_optional_port(port: &str) -> bool {
    port.is_empty() || port.strip_prefix(':').is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_host(host: &str) -> Result<String, String> {
    if host.starts_with('[') {
        let Some(i) = host.rfind(']') else { return Err("missing ']' in host".into()) };
        let colon_port = &host[i + 1..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", quote(colon_port)));
        }
        if let Some(zone) = host[..i].find("%25") {
            return Ok(unescape(&host[..zone], Mode::Host)?
                + &unescape(&host[zone..i], Mode::Zone)?
                + &unescape(&host[i..], Mode::Host)?);
        }
    } else if let Some(i) = host.rfind(':') {
        let colon_port = &host[i..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", quote(colon_port)));
        }
    }
    unescape(host, Mode::Host)
}

fn valid_userinfo(s: &str) -> bool {
    s.bytes().all(|c| c.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(&c))
}

fn parse_authority(authority: &str) -> Result<String, String> {
    let at = authority.rfind('@');
    let host = parse_host(at.map_or(authority, |i| &authority[i + 1..]))?;
    if let Some(i) = at {
        let userinfo = &authority[..i];
        if !valid_userinfo(userinfo) {
            return Err("net/url: invalid userinfo".into());
        }
        for part in userinfo.splitn(2, ':') {
            unescape(part, Mode::UserPassword)?;
        }
    }
    Ok(host)
}

fn get_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("missing protocol scheme".into()),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// Go's internal `parse` (errors unwrapped).
fn parse_inner(raw: &str, via_request: bool) -> Result<GoUrl, String> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    if raw.is_empty() && via_request {
        return Err("empty url".into());
    }
    let mut url = GoUrl::default();
    if raw == "*" {
        url.path = "*".into();
        return Ok(url);
    }
    let (scheme, rest) = get_scheme(raw)?;
    url.scheme = scheme.to_ascii_lowercase();
    let mut rest = rest;
    if rest.ends_with('?') && rest.matches('?').count() == 1 {
        rest = &rest[..rest.len() - 1];
    } else if let Some((before, query)) = rest.split_once('?') {
        url.raw_query = query.to_string();
        rest = before;
    }
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            url.opaque = rest.to_string();
            return Ok(url);
        }
        if via_request {
            return Err("invalid URI for request".into());
        }
        if rest.split('/').next().unwrap_or("").contains(':') {
            return Err("first path segment in URL cannot contain colon".into());
        }
    }
    if (!url.scheme.is_empty() || !via_request && !rest.starts_with("///")) && rest.starts_with("//") {
        let after = &rest[2..];
        let (authority, path) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        url.host = parse_authority(authority)?;
        rest = path;
    }
    url.path = unescape(rest, Mode::Path)?;
    Ok(url)
}

/// Go's `url.Parse`; the error reads as Go's (`parse "URL": reason`).
pub(crate) fn parse(raw: &str) -> Result<GoUrl, String> {
    let (before, fragment) = match raw.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (raw, None),
    };
    let url = parse_inner(before, false).map_err(|e| wrap(before, &e))?;
    if let Some(fragment) = fragment {
        unescape(fragment, Mode::Fragment).map_err(|e| wrap(raw, &e))?;
    }
    Ok(url)
}

/// Go's `url.ParseRequestURI` (no fragment, absolute URL or path required).
pub(crate) fn parse_request_uri(raw: &str) -> Result<GoUrl, String> {
    parse_inner(raw, true).map_err(|e| wrap(raw, &e))
}

impl GoUrl {
    /// Go's internal `splitHostPort` on the host: (hostname without brackets, port).
    fn split_host_port(&self) -> (&str, &str) {
        let mut host = self.host.as_str();
        let mut port = "";
        if let Some(colon) = host.rfind(':')
            && valid_optional_port(&host[colon..])
        {
            port = &host[colon + 1..];
            host = &host[..colon];
        }
        if host.starts_with('[') && host.ends_with(']') && host.len() >= 2 {
            host = &host[1..host.len() - 1];
        }
        (host, port)
    }

    /// `URL.Hostname()`.
    pub fn hostname(&self) -> &str {
        self.split_host_port().0
    }

    /// `URL.Port()` (empty when none).
    pub fn port(&self) -> &str {
        self.split_host_port().1
    }
}

/// Whether Go's `net.SplitHostPort` accepts `hostport`.
pub(crate) fn net_split_host_port_ok(hostport: &str) -> bool {
    let Some(i) = hostport.rfind(':') else { return false };
    let (j, k);
    if hostport.starts_with('[') {
        let Some(end) = hostport.find(']') else { return false };
        if end + 1 == hostport.len() || end + 1 != i {
            return false;
        }
        (j, k) = (1, end + 1);
    } else {
        if hostport[..i].contains(':') {
            return false;
        }
        (j, k) = (0, 0);
    }
    !hostport[j..].contains('[') && !hostport[k..].contains(']')
}

/// Go's `url.ParseQuery` as upstream uses it: the first value of `key`, or None when the query
/// has no such key or does not parse.
pub(crate) fn query_value(raw_query: &str, key: &str) -> Option<String> {
    let mut found = None;
    for part in raw_query.split('&') {
        if part.contains(';') {
            return None;
        }
        if part.is_empty() {
            continue;
        }
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let k = query_unescape(k)?;
        let v = query_unescape(v)?;
        if k == key && found.is_none() {
            found = Some(v);
        }
    }
    found
}

fn query_unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() && is_hex(b[i + 1]) && is_hex(b[i + 2]) => {
                out.push(unhex(b[i + 1]) << 4 | unhex(b[i + 2]));
                i += 3;
            }
            b'%' => return None,
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}
