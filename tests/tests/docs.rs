//! README claims that a command can check: every refusal reason the README's metrics table names
//! is one the code counts under `edge_refused_total`, and every reason the code counts is named.
//! (The serve flags are checked the same way in `edge/tests/cli_snapshots.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every string literal in `text` that follows `marker` (e.g. `refused("`).
fn literals_after(text: &str, marker: &str) -> Vec<String> {
    text.match_indices(marker)
        .filter_map(|(at, _)| {
            let rest = &text[at + marker.len()..];
            rest.find('"').map(|end| rest[..end].to_owned())
        })
        .collect()
}

fn sources(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// The reasons the edge counts: each `stats::refused("…")`, and the rate classes' reasons (the
/// arms of `metric_reason` in ratelimit.rs, passed to `refused` through a variable).
fn counted() -> BTreeSet<String> {
    let mut texts = Vec::new();
    sources(&root().join("edge/src"), &mut texts);
    let mut reasons: BTreeSet<String> = texts
        .iter()
        .flat_map(|t| literals_after(t, "refused(\""))
        .collect();
    let ratelimit = std::fs::read_to_string(root().join("edge/src/layers/ratelimit.rs")).unwrap();
    let body = ratelimit
        .split("fn metric_reason(self)")
        .nth(1)
        .and_then(|rest| rest.split("\n    }\n").next())
        .expect("metric_reason in ratelimit.rs");
    reasons.extend(literals_after(body, "=> \""));
    reasons
}

/// The reasons the README's metrics table lists for `edge_refused_total`.
fn documented() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let row = readme
        .lines()
        .find(|l| l.trim_start().starts_with("| `edge_refused_total`"))
        .expect("README's metrics table has edge_refused_total");
    let list = row.split("refused at once:").nth(1).expect("its reasons");
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_refusal_reason_is_documented_and_every_documented_one_is_counted() {
    let counted = counted();
    let documented = documented();
    assert!(
        counted.len() >= 10,
        "the reader finds the reasons: {counted:?}"
    );
    let missing: Vec<_> = counted.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&counted).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "README's edge_refused_total reasons disagree with the code: counted but not named \
         {missing:?}; named but never counted {stale:?}"
    );
}
