//! Diagnostics: every failure names the file, the YAML path and what was expected.

use std::fmt;

/// One thing wrong with the input. The variant says which layer found it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text is not YAML/JSON, or a document is not an object we know.
    #[error("{file}: {path}: {message}")]
    Parse {
        file: String,
        path: String,
        message: String,
    },
    /// A field is unknown or has the wrong type (checked against the CRD schema).
    #[error("{file}: {path}: {message}")]
    Schema {
        file: String,
        path: String,
        message: String,
    },
    /// A value is well-typed but not allowed (names, handler, durations, bounds…).
    #[error("{file}: {path}: {message}")]
    Invalid {
        file: String,
        path: String,
        message: String,
    },
    /// Flavor resolution failed: missing flavor, conflict between two flavors, forbidden field.
    #[error("{file}: {path}: {message}")]
    Flavor {
        file: String,
        path: String,
        message: String,
    },
    /// The platform configuration is unusable for this actor (unknown transport…).
    #[error("{file}: {path}: {message}")]
    Platform {
        file: String,
        path: String,
        message: String,
    },
    /// A composition template failed to compile or render, or produced a bad object.
    #[error("{file}: {path}: {message}")]
    Template {
        file: String,
        path: String,
        message: String,
    },
}

impl Error {
    pub fn file(&self) -> &str {
        match self {
            Error::Parse { file, .. }
            | Error::Schema { file, .. }
            | Error::Invalid { file, .. }
            | Error::Flavor { file, .. }
            | Error::Platform { file, .. }
            | Error::Template { file, .. } => file,
        }
    }
    pub fn path(&self) -> &str {
        match self {
            Error::Parse { path, .. }
            | Error::Schema { path, .. }
            | Error::Invalid { path, .. }
            | Error::Flavor { path, .. }
            | Error::Platform { path, .. }
            | Error::Template { path, .. } => path,
        }
    }
    pub fn message(&self) -> &str {
        match self {
            Error::Parse { message, .. }
            | Error::Schema { message, .. }
            | Error::Invalid { message, .. }
            | Error::Flavor { message, .. }
            | Error::Platform { message, .. }
            | Error::Template { message, .. } => message,
        }
    }
}

pub(crate) fn parse(file: &str, path: &str, message: impl Into<String>) -> Error {
    Error::Parse {
        file: file.into(),
        path: path.into(),
        message: message.into(),
    }
}
pub(crate) fn schema(file: &str, path: &str, message: impl Into<String>) -> Error {
    Error::Schema {
        file: file.into(),
        path: path.into(),
        message: message.into(),
    }
}
pub(crate) fn invalid(file: &str, path: &str, message: impl Into<String>) -> Error {
    Error::Invalid {
        file: file.into(),
        path: path.into(),
        message: message.into(),
    }
}
pub(crate) fn flavor(file: &str, path: &str, message: impl Into<String>) -> Error {
    Error::Flavor {
        file: file.into(),
        path: path.into(),
        message: message.into(),
    }
}
pub(crate) fn platform(file: &str, path: &str, message: impl Into<String>) -> Error {
    Error::Platform {
        file: file.into(),
        path: path.into(),
        message: message.into(),
    }
}
pub(crate) fn template(file: &str, path: &str, message: impl Into<String>) -> Error {
    Error::Template {
        file: file.into(),
        path: path.into(),
        message: message.into(),
    }
}

/// All problems found in one run; rendering reports every one it can find, not just the first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Error>);

impl Diagnostics {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn push(&mut self, e: Error) {
        self.0.push(e)
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0)
    }
    pub fn iter(&self) -> impl Iterator<Item = &Error> {
        self.0.iter()
    }
    /// `Ok(())` when nothing was reported.
    pub fn into_result(self) -> Result<(), Diagnostics> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl From<Error> for Diagnostics {
    fn from(e: Error) -> Self {
        Diagnostics(vec![e])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
