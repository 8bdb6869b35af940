//! A dependency the edge connects after the services are built: the router is built from the
//! services, so what reads the router (its route table, NATS discovery) is handed over later.

use std::sync::{Arc, OnceLock};

/// Empty until [`Late::connect`]; cheap to clone, every clone sees the connection.
pub struct Late<T: ?Sized>(Arc<OnceLock<Arc<T>>>);

impl<T: ?Sized> Clone for Late<T> {
    fn clone(&self) -> Self {
        Late(Arc::clone(&self.0))
    }
}

impl<T: ?Sized> Default for Late<T> {
    fn default() -> Self {
        Late(Arc::new(OnceLock::new()))
    }
}

impl<T: ?Sized> std::fmt::Debug for Late<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Late")
            .field("connected", &self.0.get().is_some())
            .finish()
    }
}

impl<T: ?Sized> Late<T> {
    /// Not connected yet.
    pub fn new() -> Self {
        Late::default()
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
