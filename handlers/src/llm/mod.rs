//! Building blocks of the `llm` service (the service itself lands with the streaming issue).

pub mod grammar;
