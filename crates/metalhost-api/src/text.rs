//! Text from outside (Ironic's answers, manifests, serde's errors quoting them) made fit for where
//! metalhost shows or keeps it: [`bounded`] before it reaches a status, an Event or a log line
//! (a 3 MB field quoted in an error made a status file too large to read back), and
//! [`terminal_safe`] before it is printed (control characters from a hostile manifest or Ironic
//! cleared the screen, set the title or wrote the clipboard).

use std::borrow::Cow;
use std::fmt::Write;

/// The most characters of an error message metalhost keeps in a status.
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// `text` cut to [`MAX_MESSAGE_CHARS`] characters, saying how much was cut.
pub fn bounded(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        None => Cow::Borrowed(text),
        Some((end, _)) => {
            Cow::Owned(format!("{}… [{} more bytes cut by metalhost]", &text[..end], text.len() - end))
        }
    }
}

/// `text` cut to at most `max` bytes on a character boundary, with `…` marking the cut.
pub fn truncate_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let marker = "…";
    let mut end = max.saturating_sub(marker.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{marker}", &text[..end])
}

/// Text fit to show a user in a status message or an Event note: URL userinfo hidden
/// ([`crate::redact::redact_url_userinfo`]) and cut to [`MAX_MESSAGE_CHARS`]. Status errors and
/// event notes are made of it, so that none can be written without going through here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redacted(String);

impl Redacted {
    /// `text` with its URL userinfo hidden, bounded.
    pub fn new(text: &str) -> Self {
        Redacted(bounded(&crate::redact::redact_url_userinfo(text)).into_owned())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Cut to at most `max` bytes (see [`truncate_bytes`]); still redacted.
    pub fn truncated(self, max: usize) -> Self {
        Redacted(truncate_bytes(&self.0, max))
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `text` with every C0 and C1 control character (but none of the printable ones) written as an
/// escape, `\u{1b}` for ESC: nothing a terminal acts on reaches it. Tabs and newlines are escaped
/// too: one host's cell or line stays one.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_control(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_control(c: char) -> bool {
    matches!(c as u32, 0x00..=0x1f | 0x7f..=0x9f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_cut_to_the_limit_on_a_character_boundary() {
        assert_eq!(truncate_bytes("short", 1024), "short");
        let long = "é".repeat(2000);
        let cut = truncate_bytes(&long, 1024);
        assert!(cut.len() <= 1024, "{}", cut.len());
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn redacted_text_hides_userinfo_and_is_bounded() {
        let text = Redacted::new(&format!("cannot reach redfish://admin:s3cr3t@bmc/x {}", "x".repeat(9000)));
        assert!(text.as_str().starts_with("cannot reach redfish://***@bmc/x"));
        assert!(text.as_str().chars().count() < 4200, "bounded");
        assert!(Redacted::new("a://u:p@h").truncated(6).as_str().len() <= 6);
    }

    #[test]
    fn long_text_is_cut_with_a_marker() {
        assert_eq!(bounded("short"), "short");
        let long = "é".repeat(3 * 1024 * 1024);
        let cut = bounded(&long);
        assert!(cut.chars().count() < MAX_MESSAGE_CHARS + 60, "{}", cut.len());
        assert!(cut.ends_with("more bytes cut by metalhost]"));
    }

    #[test]
    fn controls_are_escaped_and_the_rest_kept() {
        assert_eq!(terminal_safe("plain ü 日本"), "plain ü 日本");
        assert_eq!(terminal_safe("\x1b]52;c;aGk=\x07x"), "\\u{1b}]52;c;aGk=\\u{7}x");
        assert_eq!(terminal_safe("a\u{9b}2Jb\nc"), "a\\u{9b}2Jb\\u{a}c");
    }
}
