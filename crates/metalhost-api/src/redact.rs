//! Redaction of URL userinfo (`scheme://user:password@host`) from any text that is printed,
//! logged, stored in a status or sent in an Event or webhook answer. BMC addresses and the Ironic
//! URL may carry credentials there; messages that echo them must go through here first.

/// The marker that replaces userinfo.
pub const REDACTED: &str = "***";

fn ends_token(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>')
}

/// Replaces the userinfo of every URL in `text` (what lies between `://` and the last `@` of the
/// URL) with `***`: `redfish://admin:pw@10.0.0.1/x` → `redfish://***@10.0.0.1/x`. Works on whole
/// messages, not only on a bare URL. Errs on the side of hiding: an `@` anywhere in the URL (up to
/// white space or a quote) hides everything before it, so a password holding an unescaped `/`
/// does not leak either.
pub fn redact_url_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after.find(ends_token).unwrap_or(after.len());
        let token = &after[..end];
        match token.rfind('@') {
            Some(userinfo_end) => {
                out.push_str(REDACTED);
                out.push_str(&token[userinfo_end..]);
            }
            None => out.push_str(token),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_hidden_everywhere_in_a_message() {
        assert_eq!(redact_url_userinfo("http://user:pass@host:6385/v1"), "http://***@host:6385/v1");
        assert_eq!(
            redact_url_userinfo("error sending request for url (https://u:p@ironic/) and redfish://a@b/c"),
            "error sending request for url (https://***@ironic/) and redfish://***@b/c"
        );
        assert_eq!(
            redact_url_userinfo("\"idrac-virtualmedia://root:calvin@[fd00::1]/x\""),
            "\"idrac-virtualmedia://***@[fd00::1]/x\""
        );
    }

    #[test]
    fn text_without_userinfo_is_unchanged() {
        for text in ["http://host/a", "plain text", "", "ipmi://10.0.0.1:623", "x://", "mail me@home"] {
            assert_eq!(redact_url_userinfo(text), text);
        }
    }

    #[test]
    fn a_password_with_a_raw_slash_or_at_still_does_not_leak() {
        let out = redact_url_userinfo("redfish://admin:pa/ss@w0rd@10.0.0.1/redfish/v1");
        assert_eq!(out, "redfish://***@10.0.0.1/redfish/v1");
        assert!(!out.contains("pa/ss") && !out.contains("w0rd"));
    }
}
