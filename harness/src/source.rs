//! Source files of the spec tables, the clause inventory and the rigs: their text, and
//! errors that point at a file, line and key. A leaf module, so `spec`, `rig` and the
//! vocabularies they parse (`peers`) can share it without depending on each other.

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// A problem in a spec, inventory, rig or expectations file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is the file as a whole.
    pub line: usize,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A loaded TOML file: its path and text, for turning byte offsets into lines.
#[derive(Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn read(path: &Path) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| SpecError {
            file: path.to_path_buf(),
            line: 0,
            key: None,
            message: format!("cannot read: {e}"),
        })?;
        Ok(Self { path: path.to_path_buf(), text })
    }

    pub fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())].matches('\n').count() + 1
    }

    pub fn error(&self, offset: usize, key: Option<&str>, message: impl Into<String>) -> SpecError {
        SpecError {
            file: self.path.clone(),
            line: self.line_of(offset),
            key: key.map(str::to_string),
            message: message.into(),
        }
    }

    /// The key assigned on the line holding `offset` (`baud = "fast"` → `baud`).
    fn key_at(&self, offset: usize) -> Option<String> {
        let start = self.text[..offset.min(self.text.len())].rfind('\n').map_or(0, |i| i + 1);
        let line = self.text[start..].lines().next()?;
        let (key, _) = line.split_once('=')?;
        let key = key.trim().trim_matches('"');
        (!key.is_empty() && !key.contains(['[', '{', ' '])).then(|| key.to_string())
    }

    /// Deserializes the whole file, mapping TOML and schema errors to file:line.
    pub fn parse<T: for<'de> Deserialize<'de>>(&self) -> Result<T, SpecError> {
        toml::from_str(&self.text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let message = e.message().trim().to_string();
            let key = unknown_key(&message).or_else(|| self.key_at(offset));
            self.error(offset, key.as_deref(), message)
        })
    }
}

/// Picks the key name out of serde's "unknown field `x`" messages.
pub(crate) fn unknown_key(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next().map(str::to_string)
}
