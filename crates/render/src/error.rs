//! Diagnostics: every failure names the file, the YAML path and what was expected.

use std::fmt;

/// Which layer found a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The text is not YAML/JSON, or a document is not an object we know.
    Parse,
    /// A field is unknown or has the wrong type (checked against the CRD schema).
    Schema,
    /// A value is well-typed but not allowed (names, handler, durations, bounds…).
    Invalid,
    /// Flavor resolution failed: missing flavor, conflict between two flavors, forbidden field.
    Flavor,
    /// The platform configuration is unusable for this actor (unknown transport…).
    Platform,
    /// A composition template failed to compile or render, or produced a bad object.
    Template,
}

/// A line and column in an input file, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// One thing wrong with the input: `file:line:column: field.path: what was expected, what
/// was found`. The position is filled from the file's [`crate::api::yaml::SourceMap`] when
/// the error is found on a value rather than on text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub file: String,
    pub path: String,
    pub message: String,
    pub at: Option<Pos>,
}

impl Error {
    pub fn new(kind: ErrorKind, file: &str, path: &str, message: impl Into<String>) -> Self {
        Error {
            kind,
            file: file.into(),
            path: path.into(),
            message: message.into(),
            at: None,
        }
    }
    pub fn file(&self) -> &str {
        &self.file
    }
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn set_pos(&mut self, at: Pos) {
        self.at = Some(at);
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(p) = self.at {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for Error {}

pub(crate) fn parse(file: &str, path: &str, message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Parse, file, path, message)
}
pub(crate) fn schema(file: &str, path: &str, message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Schema, file, path, message)
}
pub(crate) fn invalid(file: &str, path: &str, message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Invalid, file, path, message)
}
pub(crate) fn flavor(file: &str, path: &str, message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Flavor, file, path, message)
}
pub(crate) fn platform(file: &str, path: &str, message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Platform, file, path, message)
}
pub(crate) fn template(file: &str, path: &str, message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Template, file, path, message)
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
    /// Fills each error's position from `sources` where the error has none.
    pub fn locate(&mut self, sources: &crate::api::yaml::SourceMap) {
        for e in &mut self.0 {
            if e.at.is_none() {
                e.at = sources.find(&e.file, &e.path);
            }
        }
    }
    /// Drops errors on a path (or below a path) that an earlier error already covers, so
    /// one mistake is reported once even when several checks trip over it.
    pub fn dedup(&mut self) {
        let mut kept: Vec<Error> = Vec::new();
        for e in std::mem::take(&mut self.0) {
            let covered = kept.iter().any(|k| {
                k.file == e.file
                    && !k.path.is_empty()
                    && (e.path == k.path
                        || e.path.starts_with(&format!("{}.", k.path))
                        || e.path.starts_with(&format!("{}[", k.path)))
            });
            if !covered {
                kept.push(e);
            }
        }
        self.0 = kept;
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
