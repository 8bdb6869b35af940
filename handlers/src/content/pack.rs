//! Where each data file comes from: the shipped one, an operator's own file (the per-file
//! options), or a content pack (a directory laid out as `handlers/data/`), merged over the
//! shipped file by id or replacing it. Every problem is kept, traced to the file and line it
//! came from, so one run reports them all.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::merge::{Kind, Merged, merge};
use super::{ContentPaths, PackMode};
use crate::kit::content::{Content, DataError, Embedded, Source};

/// Deepest directory a pack's files sit in (`language/en.ftl` is 2).
const MAX_DEPTH: usize = 3;

/// The sources of one load, and the problems found so far.
pub(super) struct Files<'a> {
    paths: &'a ContentPaths,
    merged: Vec<Merged>,
    /// Files under the pack that were asked for, relative (`quest/quests.toml`).
    asked: BTreeSet<String>,
    /// Every problem, in the order found.
    pub problems: Vec<DataError>,
    /// The pack is no directory: said once, and nothing more is looked for in it.
    no_pack: bool,
    /// Every text loaded, and whether it is an operator's per-file option: the prose the canon
    /// checks.
    pub prose: Vec<(Source, bool)>,
}

impl<'a> Files<'a> {
    pub fn new(paths: &'a ContentPaths) -> Self {
        let mut files = Files {
            paths,
            merged: Vec::new(),
            asked: BTreeSet::new(),
            problems: Vec::new(),
            no_pack: false,
            prose: Vec::new(),
        };
        match &paths.pack {
            Some(dir) if !dir.is_dir() => {
                files.no_pack = true;
                files.problems.push(DataError {
                    file: dir.display().to_string(),
                    line: 1,
                    message: "the content pack is not a directory".into(),
                });
            }
            None if paths.mode == PackMode::Replace => files.problems.push(DataError {
                file: "[content]".into(),
                line: 1,
                message: "mode = \"replace\" needs a pack to replace the shipped content with"
                    .into(),
            }),
            _ => {}
        }
        files
    }

    /// Keeps `r`'s error, traced to its file.
    pub fn check<T>(&mut self, r: Result<T, DataError>) -> Option<T> {
        r.map_err(|e| self.problem(e)).ok()
    }

    /// Keeps a problem, traced to its file.
    pub fn problem(&mut self, e: DataError) {
        let e = self.merged.iter().fold(e, |e, m| m.locate(e));
        if !self.problems.contains(&e) {
            self.problems.push(e);
        }
    }

    /// Loads `T` from where its file comes from; `own` is its per-file option.
    pub fn load<T: Content>(&mut self, own: Option<&Path>) -> Option<T> {
        let src = self.source(T::SHIPPED, own)?;
        self.check(T::parse(&src))
    }

    /// The pack's path of a shipped file (`handlers/data/quest/quests.toml` is
    /// `quest/quests.toml`).
    fn relative(shipped: &Embedded) -> &'static str {
        shipped
            .name
            .strip_prefix("handlers/data/")
            .unwrap_or(shipped.name)
    }

    /// Whether a file is not the shipped one (an operator's own file or the pack's).
    pub fn own(&self, shipped: &Embedded, own: Option<&Path>) -> bool {
        own.is_some()
            || self.paths.pack.as_ref().is_some_and(|p| {
                self.paths.mode == PackMode::Replace || p.join(Self::relative(shipped)).is_file()
            })
    }

    /// The text of one file: `own` if given, else the pack's (over the shipped one in extend
    /// mode), else the shipped one. `None` when it does not load (the problem is kept).
    pub fn source(&mut self, shipped: Embedded, own: Option<&Path>) -> Option<Source> {
        let src = self.resolve(shipped, own)?;
        self.prose.push((src.clone(), own.is_some()));
        Some(src)
    }

    fn resolve(&mut self, shipped: Embedded, own: Option<&Path>) -> Option<Source> {
        let rel = Self::relative(&shipped);
        self.asked.insert(rel.to_owned());
        if let Some(own) = own {
            return self.check(Source::read(own));
        }
        let Some(pack) = &self.paths.pack else {
            return Some(shipped.source());
        };
        if self.no_pack {
            return None;
        }
        let path = pack.join(rel);
        match (self.paths.mode, path.is_file()) {
            (PackMode::Replace, false) => {
                self.problem(DataError {
                    file: path.display().to_string(),
                    line: 1,
                    message: "missing: a pack that replaces the shipped content has every file"
                        .into(),
                });
                None
            }
            (PackMode::Extend, false) => Some(shipped.source()),
            (PackMode::Replace, true) => self.check(Source::read(&path)),
            (PackMode::Extend, true) => {
                let theirs = self.check(Source::read(&path))?;
                let kind = if rel.ends_with(".ftl") {
                    Kind::Fluent
                } else {
                    Kind::Toml
                };
                let merged = merge(&shipped.source(), &theirs, kind);
                let src = merged.source.clone();
                self.merged.push(merged);
                Some(src)
            }
        }
    }

    /// Every locale's file: `own` (a directory of `<locale>.ftl`) if given, else the pack's
    /// `language/` (in extend mode each over the shipped locale of its name, new locales
    /// added), else the shipped ones.
    pub fn locales(
        &mut self,
        shipped: &[(&str, Embedded)],
        own: Option<&Path>,
    ) -> Option<Vec<(String, Source)>> {
        self.locale_files("language", shipped, own)
    }

    /// Every locale's translations of content text (`language/content/<locale>.ftl`), found as
    /// [`Files::locales`] finds the messages; none at all is English only.
    pub fn content_locales(
        &mut self,
        shipped: &[(&str, Embedded)],
        own: Option<&Path>,
    ) -> Option<Vec<(String, Source)>> {
        let own = own.map(|d| d.join("content"));
        self.locale_files("language/content", shipped, own.as_deref())
    }

    fn locale_files(
        &mut self,
        sub: &str,
        shipped: &[(&str, Embedded)],
        own: Option<&Path>,
    ) -> Option<Vec<(String, Source)>> {
        // Messages are required (English at least); content translations are not.
        let required = sub == "language";
        let dir = match (own, &self.paths.pack) {
            (Some(dir), _) => Some((dir.to_path_buf(), PackMode::Replace)),
            (None, Some(pack)) => Some((pack.join(sub), self.paths.mode)),
            (None, None) => None,
        };
        if self.no_pack && own.is_none() {
            return None;
        }
        let mut out: Vec<(String, Source)> = Vec::new();
        let mut theirs = Vec::new();
        if let Some((dir, mode)) = &dir {
            if dir.is_dir() || (*mode == PackMode::Replace && required) {
                theirs = self.check(ftl_files(dir))?;
            }
            if *mode == PackMode::Replace && theirs.is_empty() && required {
                self.problem(DataError {
                    file: dir.display().to_string(),
                    line: 1,
                    message: "no <locale>.ftl files".into(),
                });
                return None;
            }
        }
        if dir.as_ref().is_none_or(|(_, m)| *m == PackMode::Extend) {
            for (locale, file) in shipped {
                let source = match theirs.iter().any(|(l, _)| l == locale) {
                    true => self.resolve(*file, None)?,
                    false => file.source(),
                };
                out.push(((*locale).to_owned(), source));
            }
        }
        // The default locale (the shipped first) first, as the shipped list has it.
        let default = shipped.first().map_or("", |(l, _)| *l);
        theirs.sort_by_key(|(l, _)| (l != default, l.clone()));
        for (locale, path) in theirs {
            if !out.iter().any(|(l, _)| *l == locale) {
                self.asked.insert(format!("{sub}/{locale}.ftl"));
                out.push((locale, self.check(Source::read(&path))?));
            }
        }
        for (_, src) in &out {
            self.prose.push((src.clone(), own.is_some()));
        }
        Some(out)
    }

    /// A problem for each `.toml` or `.ftl` file in the pack that no service reads (a misspelt
    /// name would otherwise be silently ignored).
    pub fn unread(&mut self) {
        let Some(pack) = self.paths.pack.clone() else {
            return;
        };
        let mut found = Vec::new();
        walk(&pack, &pack, 0, &mut found);
        let known: Vec<String> = self
            .asked
            .iter()
            .filter(|f| !f.starts_with("language/"))
            .cloned()
            .chain([
                "language/<locale>.ftl".to_owned(),
                "language/content/<locale>.ftl".to_owned(),
            ])
            .collect();
        for rel in found {
            let locale_file = |dir: &str| {
                rel.strip_prefix(dir)
                    .is_some_and(|f| f.ends_with(".ftl") && !f.contains('/'))
            };
            let read = self.asked.contains(&rel)
                || locale_file("language/")
                || locale_file("language/content/");
            if !read {
                self.problems.push(DataError {
                    file: pack.join(&rel).display().to_string(),
                    line: 1,
                    message: format!(
                        "no service reads this file; a pack holds {}",
                        known.join(", ")
                    ),
                });
            }
        }
    }
}

/// The `<locale>.ftl` files of `dir`, by locale.
fn ftl_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError {
        file: dir.display().to_string(),
        line: 1,
        message: format!("cannot read the directory: {e}"),
    })?;
    let mut out: Vec<(String, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("ftl"))
        .filter_map(|p| Some((p.file_stem()?.to_str()?.to_owned(), p.clone())))
        .collect();
    out.sort();
    Ok(out)
}

/// The data files under `dir`, relative to `root` with `/`; hidden entries skipped.
fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() && depth < MAX_DEPTH {
            walk(root, &path, depth + 1, out);
        } else if name.ends_with(".toml") || name.ends_with(".ftl") {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
    out.sort();
}
