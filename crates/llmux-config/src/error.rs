//! [`ConfigError`]: one problem found while loading or validating a configuration.

/// One configuration problem, located by `path`.
///
/// `path` is a position in the configuration such as `models[3]` or `credentials[0].base_url`, a
/// file name for problems that concern a whole file (unreadable, unparsable), or empty. The
/// message never contains a credential value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{}", .path, if .path.is_empty() { "" } else { ": " }, .message)]
pub struct ConfigError {
    /// Where the problem is: `models[3]`, `credentials[0].base_url`, a file name, or empty.
    pub path: String,
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
}

impl ConfigError {
    /// A problem at `path` (may be empty).
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Sets `path` when it is still empty; used to name the file a parse error came from.
    pub(crate) fn in_file(mut self, file: &str) -> Self {
        if self.path.is_empty() {
            self.path = file.to_owned();
        }
        self
    }
}
