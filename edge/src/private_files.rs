//! The data directory holds the store, and the store holds the token signing key: it is created
//! private (0700, files 0600), and a start on looser existing permissions says so.

use std::path::Path;

/// Creates `dir` (and missing parents) readable by this user only.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The permission bits of `path` that let others than its owner in, if any (unix only).
pub fn loose_bits(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        let open = mode & 0o077;
        (open != 0).then_some(mode & 0o777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Logs a warning for each of `paths` that group or others can read, write or enter.
pub fn warn_if_loose(paths: &[&Path]) {
    for path in paths {
        if let Some(mode) = loose_bits(path) {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "holds secrets (the store keeps the token signing key) but others may access it; chmod it to 700 (directory) or 600 (file)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn created_private_and_looseness_seen() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_dir(&dir).unwrap();
        assert_eq!(loose_bits(&dir), None);
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(loose_bits(&dir), Some(0o755));
    }
}
