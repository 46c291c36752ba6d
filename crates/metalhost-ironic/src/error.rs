//! The one error type of the Ironic client.

/// What can go wrong talking to Ironic.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No HTTP answer at all: connection refused, DNS, TLS, or a time-out.
    #[error("Ironic unreachable at {url}: {reason}")]
    Unreachable {
        /// The URL that was called.
        url: String,
        /// What the HTTP stack said.
        reason: String,
    },
    /// Ironic answered with an error status; `message` is Ironic's `faultstring`.
    #[error("Ironic refused {method} {path}: HTTP {status}: {message}")]
    Api {
        /// HTTP method.
        method: String,
        /// Path called, e.g. /v1/nodes/abc.
        path: String,
        /// HTTP status code.
        status: u16,
        /// Ironic's explanation (the `faultstring`, else the raw body), cut to
        /// [`MAX_ERROR_CHARS`].
        message: String,
        /// The response body, for logs, cut to [`MAX_ERROR_CHARS`].
        body: String,
    },
    /// The server's newest API version is older than what metalhost needs.
    #[error("Ironic at {url} supports API versions up to {max}, metalhost needs at least {min}")]
    VersionTooOld {
        /// The server.
        url: String,
        /// The newest version it offers.
        max: String,
        /// What metalhost needs.
        min: String,
    },
    /// Ironic's answer did not have the expected shape.
    #[error("unexpected answer from Ironic to {what}: {reason}")]
    Decode {
        /// What was asked.
        what: String,
        /// Why it did not parse.
        reason: String,
    },
    /// The client could not be built (bad URL, CA file).
    #[error("Ironic client configuration: {0}")]
    Config(String),
    /// Ironic's answer was larger than metalhost reads ([`crate::MAX_RESPONSE_BYTES`]); it was
    /// not read further.
    #[error("Ironic's answer to {what} is over the {limit}-byte limit; not read")]
    TooLarge {
        /// What was asked, e.g. `GET /v1/nodes`.
        what: String,
        /// The limit.
        limit: u64,
    },
}

impl Error {
    /// The HTTP status, when Ironic answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the same call may succeed later unchanged: no answer, 409 (node locked) or 503 (busy).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unreachable { .. }) || matches!(self.status(), Some(409 | 503))
    }

    /// Whether the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// The most characters of an error text from Ironic (a faultstring, a body, a node's
/// `last_error`) that metalhost keeps: they end up in host statuses and logs.
pub const MAX_ERROR_CHARS: usize = 4096;

/// Cuts `text` to [`MAX_ERROR_CHARS`] characters, saying so when it does.
pub(crate) fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_CHARS) {
        None => text.to_string(),
        Some((end, _)) => format!("{}… [{} more bytes cut by metalhost]", &text[..end], text.len() - end),
    }
}

/// Pulls Ironic's `faultstring` out of an error body (cut to [`MAX_ERROR_CHARS`]). Ironic nests it as a JSON string inside
/// `error_message`; fall back to the raw body.
pub(crate) fn fault_string(body: &str) -> String {
    let outer: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let inner = outer.as_ref().and_then(|v| v.get("error_message"));
    let nested = match inner {
        Some(serde_json::Value::String(s)) => serde_json::from_str::<serde_json::Value>(s).ok(),
        Some(v) => Some(v.clone()),
        None => None,
    };
    nested
        .as_ref()
        .and_then(|v| v.get("faultstring"))
        .and_then(|v| v.as_str())
        .map(truncate)
        .unwrap_or_else(|| body.trim().chars().take(500).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_string_unwraps_the_nested_json() {
        let body = r#"{"error_message": "{\"faultstring\": \"Node abc could not be found.\", \"debuginfo\": null, \"faultcode\": \"Client\"}"}"#;
        assert_eq!(fault_string(body), "Node abc could not be found.");
        assert_eq!(fault_string(r#"{"error_message": {"faultstring": "x"}}"#), "x");
        assert_eq!(fault_string("plain text\n"), "plain text");
    }

    #[test]
    fn long_error_texts_are_cut_with_a_marker() {
        let long = "e".repeat(100_000);
        let body = serde_json::json!({"error_message": serde_json::json!({"faultstring": long}).to_string()});
        let cut = fault_string(&body.to_string());
        assert!(cut.starts_with(&"e".repeat(MAX_ERROR_CHARS)), "{}", &cut[..50]);
        assert!(cut.ends_with("… [95904 more bytes cut by metalhost]"), "{}", &cut[cut.len() - 60..]);
        assert_eq!(truncate("short"), "short");
        // never cut inside a character
        assert_eq!(
            truncate(&"é".repeat(MAX_ERROR_CHARS + 1)).chars().filter(|c| *c == 'é').count(),
            MAX_ERROR_CHARS
        );
        let node: crate::Node =
            serde_json::from_value(serde_json::json!({"uuid": "u", "last_error": long})).unwrap();
        assert!(node.last_error.unwrap().len() < MAX_ERROR_CHARS + 100);
    }

    #[test]
    fn transient_errors_are_409_503_and_no_answer() {
        let api = |status| Error::Api {
            method: "GET".into(),
            path: "/".into(),
            status,
            message: String::new(),
            body: String::new(),
        };
        assert!(api(409).is_transient() && api(503).is_transient());
        assert!(!api(400).is_transient() && !api(404).is_transient());
        assert!(api(404).is_not_found());
        assert!(Error::Unreachable { url: "u".into(), reason: "r".into() }.is_transient());
    }
}
