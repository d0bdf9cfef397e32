//! One error type for every crate of CORTEX.
//!
//! Errors are for operations that could not be carried out (bad input, I/O, a missing key).
//! Integrity violations found by `verify` are *values* in its report, never errors.

use std::fmt;

/// What kind of failure happened; callers branch on this, humans read the message.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The thing asked for does not exist (an entry index past the end, a missing checkpoint).
    NotFound,
    /// A concurrent change or an existing state forbids the operation.
    Conflict,
    /// Stored data failed a cryptographic or structural check while serving a request.
    Integrity,
    /// The caller's input is malformed or out of range.
    InvalidInput,
    /// The operation or plugin is not available in this build or on this backend.
    Unsupported,
    /// Configuration is missing or contradictory (a key name that does not match the origin).
    Config,
    /// The storage backend failed (I/O, SQL error, corrupt file).
    Backend,
    /// A remote peer could not be reached; the operation may be retried.
    Unavailable,
    /// The caller did not prove who it is (no API key, or a wrong, unknown or revoked one).
    Unauthorized,
    /// The caller is known but its role does not allow the operation.
    Forbidden,
}

impl ErrorKind {
    /// A stable lowercase name, used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Integrity => "integrity",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Config => "config",
            ErrorKind::Backend => "backend",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
        }
    }
}

/// The error type of CORTEX: a kind, a message, context pairs and an optional source.
pub struct Error {
    kind: ErrorKind,
    message: String,
    context: Vec<(&'static str, String)>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Result alias used across CORTEX.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a human message that names the problem.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            context: Vec::new(),
            source: None,
        }
    }
    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }
    /// Shorthand for [`ErrorKind::Backend`].
    pub fn backend(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Backend, message)
    }
    /// Shorthand for [`ErrorKind::Config`].
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }
    /// Shorthand for [`ErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    /// Shorthand for [`ErrorKind::Integrity`].
    pub fn integrity(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Integrity, message)
    }
    /// Shorthand for [`ErrorKind::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    /// Shorthand for [`ErrorKind::Unauthorized`].
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, message)
    }
    /// Shorthand for [`ErrorKind::Forbidden`].
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }
    /// Adds a context pair (`key = value`) shown after the message.
    pub fn with_context(mut self, key: &'static str, value: impl fmt::Display) -> Self {
        self.context.push((key, value.to_string()));
        self
    }
    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The message without context or source.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The context pairs.
    pub fn context(&self) -> &[(&'static str, String)] {
        &self.context
    }
}

/// `e`'s message followed by those of its sources, each after `: `, leaving out a source whose
/// message the text already holds. An HTTP client's error says only "error sending request";
/// the cause (a refused connection, an untrusted certificate) is a few sources down.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    push_sources(&mut text, e.source());
    text
}

fn push_sources(text: &mut String, mut next: Option<&(dyn std::error::Error + 'static)>) {
    while let Some(e) = next {
        let m = e.to_string();
        if !m.is_empty() && !text.contains(&m) {
            text.push_str(": ");
            text.push_str(&m);
        }
        next = e.source();
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.message.clone();
        if !self.context.is_empty() {
            text.push_str(" (");
            for (i, (k, v)) in self.context.iter().enumerate() {
                if i > 0 {
                    text.push_str(", ");
                }
                text.push_str(&format!("{k}: {v}"));
            }
            text.push(')');
        }
        push_sources(&mut text, std::error::Error::source(self));
        f.write_str(&text)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            _ => ErrorKind::Backend,
        };
        Error::new(kind, "I/O error").with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error like an HTTP client's: a vague message, the cause a source down.
    #[derive(Debug)]
    struct Sending(std::io::Error);

    impl fmt::Display for Sending {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("error sending request")
        }
    }

    impl std::error::Error for Sending {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    fn untrusted() -> Sending {
        Sending(std::io::Error::other(
            "invalid peer certificate: UnknownIssuer",
        ))
    }

    #[test]
    fn an_error_names_every_cause_down_its_sources_once() {
        let e = Error::new(ErrorKind::Unavailable, "witness w is unreachable")
            .with_context("tsa", "t")
            .with_source(untrusted());
        assert_eq!(
            e.to_string(),
            "witness w is unreachable (tsa: t): error sending request: invalid peer \
             certificate: UnknownIssuer"
        );
        // A message that already quotes its source does not repeat it.
        let e = Error::new(
            ErrorKind::Unavailable,
            "Rekor is unreachable: error sending request",
        )
        .with_source(untrusted());
        assert_eq!(
            e.to_string(),
            "Rekor is unreachable: error sending request: invalid peer certificate: UnknownIssuer"
        );
        assert_eq!(
            error_chain(&untrusted()),
            "error sending request: invalid peer certificate: UnknownIssuer"
        );
        // Nested CORTEX errors: each message once.
        let inner = Error::backend("disk full").with_source(std::io::Error::other("ENOSPC"));
        let outer = Error::new(ErrorKind::Unavailable, "append failed").with_source(inner);
        assert_eq!(outer.to_string(), "append failed: disk full: ENOSPC");
    }
}
