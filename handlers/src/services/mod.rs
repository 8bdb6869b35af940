//! The 22 services, one folder each and the same shape for all: `mod.rs` is the handler (requests
//! to the domain and back, nothing else), `content.rs` loads the data it ships (only when it ships
//! any), other files are named for their domain (a ledger, a journal, cells, an engine), and
//! `tests.rs` holds its tests.
//!
//! May import: `proto`, `crate::kit`, and another service's *types* where one service's content
//! refers to another's (quests to regions). A service never calls another service's code: calls
//! go through `crate::kit::calls` and the router, so they work the same in-process or over NATS.
//! Never `crate::content` or the crate root (a layout test keeps it so).

pub mod airouter;
pub mod auth;
pub mod bodybroker;
pub mod capability;
pub mod events;
pub mod kb;
pub mod language;
pub mod llm;
pub mod models;
pub mod narrative;
pub mod npc;
pub mod orchestration;
pub mod payment;
pub mod perf;
pub mod quest;
pub mod router;
pub mod settings;
pub mod state;
pub mod story;
pub mod time;
pub mod weather;
pub mod world;

#[cfg(test)]
mod prefix_listing_tests;
