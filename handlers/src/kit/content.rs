//! Content that designers edit ships as data files under `handlers/data/<svc>/`, embedded at
//! build time with [`embedded!`]; an operator may point a service at their own file instead.
//! Whatever the source, a file is validated when loaded ([`Content`]), and every error names the
//! file and the line.
//!
//! Kit: imports nothing from the services. The aggregate of every service's content (and the
//! checks between files) is `crate::content`, above the services.

use std::ops::Range;
use std::path::Path;

/// A shipped data file: its name in errors (`handlers/data/<svc>/<file>`) and its text.
#[derive(Debug, Clone, Copy)]
pub struct Embedded {
    /// `handlers/data/...`, as errors name it.
    pub name: &'static str,
    /// The file's text, as built into the binary.
    pub text: &'static str,
}

impl Embedded {
    /// As a [`Source`].
    pub fn source(&self) -> Source {
        Source::embedded(self.name, self.text)
    }
}

/// A file under `handlers/data/`, built into the binary: `embedded!("quest/quests.toml")`.
#[macro_export]
macro_rules! embedded {
    ($path:literal) => {
        $crate::kit::content::Embedded {
            name: concat!("handlers/data/", $path),
            text: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/", $path)),
        }
    };
}

/// Content a service loads from one data file: the shipped one, or an operator's.
pub trait Content: Sized {
    /// The file shipped in the binary.
    const SHIPPED: Embedded;

    /// Parses and validates one file; an error names its line.
    fn parse(src: &Source) -> Result<Self, DataError>;

    /// The shipped file.
    fn embedded() -> Result<Self, DataError> {
        Self::parse(&Self::SHIPPED.source())
    }

    /// The operator's file at `path` if given, else the shipped one.
    fn load(path: Option<&Path>) -> Result<Self, DataError> {
        match path {
            Some(p) => Self::parse(&Source::read(p)?),
            None => Self::embedded(),
        }
    }
}

/// A data file that does not load: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct DataError {
    /// The file's name (the embedded path, or the operator's path).
    pub file: String,
    /// 1-based line of the problem (1 when the whole file is at fault).
    pub line: usize,
    /// What is wrong, said for the person editing the file.
    pub message: String,
}

/// One data file's text and name.
#[derive(Debug, Clone)]
pub struct Source {
    /// Its name in errors.
    pub file: String,
    /// Its text.
    pub text: String,
}

impl Source {
    /// An embedded file.
    pub fn embedded(file: &str, text: &str) -> Self {
        Source {
            file: file.to_owned(),
            text: text.to_owned(),
        }
    }

    /// An operator's file from disk.
    pub fn read(path: &Path) -> Result<Self, DataError> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError {
            file: path.display().to_string(),
            line: 1,
            message: format!("cannot read: {e}"),
        })?;
        Ok(Source {
            file: path.display().to_string(),
            text,
        })
    }

    /// Parses the text as TOML into `T`; a syntax or type error names its line.
    pub fn toml<T: serde::de::DeserializeOwned>(&self) -> Result<T, DataError> {
        toml::from_str(&self.text)
            .map_err(|e| self.error(e.span(), e.message().trim_end_matches('\n').to_owned()))
    }

    /// An error at `span` (a byte range of the text).
    pub fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> DataError {
        let line = span.map_or(1, |s| {
            let end = s.start.min(self.text.len());
            self.text.as_bytes()[..end]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1
        });
        DataError {
            file: self.file.clone(),
            line,
            message: message.into(),
        }
    }
}

/// Whether `id` is a content id: 1 to `max` lowercase ASCII letters, digits or '-' (quests, arcs,
/// beats, choices, lore documents and their tags).
pub fn valid_slug(id: &str, max: usize) -> bool {
    !id.is_empty()
        && id.len() <= max
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// FNV-1a over `parts` (each closed by 0xff): a seed that is the same on every machine and
/// build, for content chosen deterministically from its inputs.
pub fn seed(parts: &[&str]) -> u64 {
    parts.iter().fold(0xcbf2_9ce4_8422_2325_u64, |mut h, p| {
        for b in p.bytes().chain([0xff]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h
    })
}

/// The quest event the npc service reports when a player talks to an NPC (target: the NPC's id).
/// It is not a game event: bodybroker refuses it from game servers, so a talked-to objective
/// cannot be forged.
pub const TALKED_TO: &str = "talked_to";

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Doc {
        n: u32,
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let src = Source::embedded("x.toml", "# a comment\n\nn = \"three\"\n");
        let e = src.toml::<Doc>().unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("x.toml", 3), "{e}");
        assert!(e.to_string().starts_with("x.toml:3: "), "{e}");
        let e = Source::embedded("y.toml", "n = 1\nn = 2\n")
            .toml::<Doc>()
            .unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let missing = Source::read(Path::new("/nonexistent/catalog.toml")).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("/nonexistent/catalog.toml:1: cannot read")
        );
    }
}
