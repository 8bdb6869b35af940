//! Content that designers edit ships as data files under `handlers/data/<svc>/`, embedded at
//! build time; an operator may point a service at their own file instead. Whatever the source,
//! a file is validated when loaded, and every error names the file and the line.

use std::ops::Range;
use std::path::Path;

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
