//! A dependency the edge connects after the services are built: the router is built from the
//! services, so what reads the router (its route table, NATS discovery) is handed over later.

use std::sync::{Arc, OnceLock};

/// Empty until [`LateBound::connect`]; cheap to clone, every clone sees the connection.
pub struct LateBound<T: ?Sized>(Arc<OnceLock<Arc<T>>>);

impl<T: ?Sized> Clone for LateBound<T> {
    fn clone(&self) -> Self {
        LateBound(Arc::clone(&self.0))
    }
}

impl<T: ?Sized> Default for LateBound<T> {
    fn default() -> Self {
        LateBound(Arc::new(OnceLock::new()))
    }
}

impl<T: ?Sized> std::fmt::Debug for LateBound<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LateBound")
            .field("connected", &self.0.get().is_some())
            .finish()
    }
}

impl<T: ?Sized> LateBound<T> {
    /// Not connected yet.
    pub fn new() -> Self {
        LateBound::default()
    }

    /// Connects it; `false` if it was connected already.
    pub fn connect(&self, value: Arc<T>) -> bool {
        self.0.set(value).is_ok()
    }

    /// What was connected, if anything yet.
    pub fn get(&self) -> Option<Arc<T>> {
        self.0.get().cloned()
    }
}
