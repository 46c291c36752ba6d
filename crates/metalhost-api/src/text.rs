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
