//! Test helpers every service's tests share: a store in a temporary directory, and the contexts
//! of a player and of a service.

use std::sync::Arc;

use crate::kit::context::{Context, Principal};
use crate::kit::store::{RedbStore, Store};

/// A fresh redb store in a temporary directory, removed when the directory is dropped (keep it).
pub fn temp_store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let (dir, store) = temp_redb();
    (dir, store)
}

/// Like [`temp_store`], as the concrete redb store (for tests of redb itself).
pub fn temp_redb() -> (tempfile::TempDir, Arc<RedbStore>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(RedbStore::open(&dir.path().join("test.redb")).expect("a redb store"));
    (dir, store)
}

/// A call by player `id`.
pub fn player(id: &str) -> Context {
    Context {
        principal: Some(Principal::Player {
            player_id: id.into(),
        }),
        ..Context::default()
    }
}

/// A call by a service key named `name` with every scope.
pub fn service(name: &str) -> Context {
    Context {
        principal: Some(Principal::Service {
            name: name.into(),
            scopes: vec!["*".into()].into(),
        }),
        ..Context::default()
    }
}

/// `ctx` with an idempotency key.
pub fn keyed(ctx: Context, key: &str) -> Context {
    Context {
        idempotency_key: Some(key.into()),
        ..ctx
    }
}
