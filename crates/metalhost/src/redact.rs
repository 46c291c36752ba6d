//! Removing URL userinfo (`user:password@`) from text before it is shown or stored: a BMC address
//! or an Ironic URL may carry credentials, and no secret may reach a terminal, log or event.

/// `text` with the userinfo of every `scheme://user:password@host` in it replaced by `***@`.
pub fn userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // the authority ends at the first character that cannot be in it
        let end =
            tail.find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace()).unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***@");
                rest = &tail[at + 1..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_removed_everywhere_and_nothing_else_changes() {
        assert_eq!(
            userinfo("redfish://admin:s3cret@10.0.0.1/redfish/v1"),
            "redfish://***@10.0.0.1/redfish/v1"
        );
        assert_eq!(
            userinfo("ipmi://u@h:623 then http://a:b@c?d=e@f and http://x/y@z"),
            "ipmi://***@h:623 then http://***@c?d=e@f and http://x/y@z"
        );
        assert_eq!(userinfo("no url here, just a@b"), "no url here, just a@b");
        assert_eq!(userinfo("é://ü:p@ß"), "é://***@ß");
    }
}
