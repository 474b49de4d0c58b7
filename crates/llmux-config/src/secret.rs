//! [`Secret`]: a credential value that never prints itself.

use std::fmt;

use zeroize::Zeroizing;

/// A credential value, such as an API key.
///
/// `Debug` and `Display` print `***`, there is deliberately no `Serialize`, and the memory is
/// zeroized on drop. Call [`Secret::expose`] only where the value is sent to the vendor.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a credential value.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The plain value, for building the upstream request's auth header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
