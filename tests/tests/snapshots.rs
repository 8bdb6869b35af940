//! What a refactor must not change, byte for byte: the OpenAPI description (`edge openapi` and
//! `GET /openapi.json`) and the admin route table. On an intended change, rerun with
//! `UPDATE_SNAPSHOTS=1` and review the diff of `tests/snapshots/` in the commit.

#![allow(clippy::expect_used)]

use std::path::PathBuf;

use edge_e2e::{Edge, run_edge};

fn snapshot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("snapshots")
        .join(name)
}

/// Asserts `actual` equals the snapshot `name` (or rewrites it under `UPDATE_SNAPSHOTS=1`).
fn assert_snapshot(name: &str, actual: &str) {
    let path = snapshot(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).expect("read snapshot");
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from tests/snapshots/{name} at line {}:\n  snapshot: {:?}\n  now:      {:?}\n(UPDATE_SNAPSHOTS=1 rewrites it if the change is intended)",
            line + 1,
            expected.lines().nth(line).unwrap_or("<end>"),
            actual.lines().nth(line).unwrap_or("<end>"),
        );
    }
}

#[test]
fn the_openapi_description_is_unchanged() {
    let (code, out, err) = run_edge(&["openapi"]);
    assert_eq!(code, 0, "{err}");
    assert_snapshot("openapi.json", &out);
}

#[tokio::test]
async fn the_served_description_and_the_route_table_are_unchanged() {
    let edge = Edge::start(&[]);
    let served = edge.client().get("/openapi.json").await;
    assert_eq!(served.status, 200);
    assert_snapshot("openapi.json", &format!("{}\n", served.text()));
    assert_snapshot("admin-routes.json", &edge.admin_text("/admin/routes").await);
}
