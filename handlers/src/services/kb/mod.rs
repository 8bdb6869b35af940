//! `aicore.kb.v1.KnowledgeBaseService`: lore documents in the store (`kb.doc.<id>`, versioned,
//! compare-and-set), and a ranked full-text index derived from them ([`index`]).
//!
//! The index is rebuilt from the store when the service is first used, and updated on every
//! upsert and delete made here. Where several processes share the store (JetStream), each one
//! also follows the bucket's changes ([`Library::follow`]), so an upsert on one replica is
//! searchable on the others within a second. A hit is checked against the store before it is
//! answered, so none shows a deleted document or an old title even inside that second. The
//! shipped lore (`handlers/data/kb/lore.toml`) is written to the store at first start.
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

pub mod index;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use proto::aicore::kb::v1::{
    DeleteRequest, DeleteResponse, Document, GetRequest, GetResponse, KnowledgeBaseServiceHandler,
    SearchHit, SearchRequest, SearchResponse, UpsertRequest, UpsertResponse,
};
use serde::Deserialize;
use toml::Spanned;

use self::index::{Index, snippet, snippet_at};
use crate::kit::content::{Content, DataError, Embedded, Source, valid_slug};
use crate::kit::context::Context;
use crate::kit::status::Status;
use crate::kit::store::{Store, StoreError};

const PREFIX: &str = "kb.doc.";
/// Written once the shipped lore is in the store, so deleting it all does not bring it back.
const SEEDED: &str = "kb.seeded";

/// Bounds on documents.
pub const MAX_DOCUMENTS: usize = 100_000;
const MAX_TITLE: usize = 200;
const MAX_BODY: usize = 64 * 1024;
const MAX_TAGS: usize = 10;
const MAX_QUERY: usize = 500;
const SNIPPET: usize = 160;

fn doc_key(id: &str) -> String {
    format!("{PREFIX}{id}")
}

/// What a document must be: the same for shipped lore and for `Upsert`.
fn check(doc: &Document) -> Result<(), String> {
    if !valid_slug(&doc.id, 64) {
        return Err(format!(
            "id {:?} must be 1 to 64 lowercase letters, digits or '-'",
            doc.id
        ));
    }
    if doc.title.trim().is_empty() || doc.title.chars().count() > MAX_TITLE {
        return Err(format!("title must be 1 to {MAX_TITLE} characters"));
    }
    if doc.body.len() > MAX_BODY {
        return Err(format!("body must be at most {MAX_BODY} bytes"));
    }
    if doc.tags.len() > MAX_TAGS || !doc.tags.iter().all(|t| valid_slug(t, 32)) {
        return Err(format!(
            "at most {MAX_TAGS} tags of 1 to 32 lowercase letters, digits or '-'"
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoreFile {
    document: Vec<Spanned<LoreEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoreEntry {
    id: String,
    title: String,
    tags: Vec<String>,
    body: String,
    #[serde(default)]
    about: Vec<String>,
}

/// The shipped lore corpus.
#[derive(Debug, Clone)]
pub struct Lore {
    /// Its documents, in file order.
    pub documents: Vec<Document>,
    /// What each document is about (canon ids), and its line, in the documents' order.
    pub about: Vec<(Vec<String>, usize)>,
    file: String,
}

impl Lore {
    /// Checks that what every document is `about` is in the canon (`is_canon`). The error
    /// names the document's line.
    pub fn check_canon(&self, is_canon: impl Fn(&str) -> bool) -> Result<(), DataError> {
        for (doc, (about, line)) in self.documents.iter().zip(&self.about) {
            if let Some(id) = about.iter().find(|id| !is_canon(id)) {
                return Err(DataError {
                    file: self.file.clone(),
                    line: *line,
                    message: format!(
                        "document {}: about {id:?}, which the canon lacks (handlers/data/canon.toml)",
                        doc.id
                    ),
                });
            }
        }
        Ok(())
    }
}

impl Content for Lore {
    const SHIPPED: Embedded = crate::embedded!("kb/lore.toml");

    /// Parses and validates one file.
    fn parse(src: &Source) -> Result<Lore, DataError> {
        let file: LoreFile = src.toml()?;
        let mut documents: Vec<Document> = Vec::new();
        let mut about = Vec::new();
        for entry in &file.document {
            let e = entry.get_ref();
            let doc = Document {
                id: e.id.clone(),
                title: e.title.clone(),
                body: e.body.trim().to_owned(),
                tags: e.tags.clone(),
                version: 0,
            };
            check(&doc).map_err(|m| src.error(Some(entry.span()), format!("document: {m}")))?;
            if documents.iter().any(|d| d.id == doc.id) {
                return Err(src.error(
                    Some(entry.span()),
                    format!("document {} appears twice", doc.id),
                ));
            }
            documents.push(doc);
            about.push((e.about.clone(), src.error(Some(entry.span()), "").line));
        }
        Ok(Lore {
            documents,
            about,
            file: src.file.clone(),
        })
    }
}

/// The documents' index, shared by the service and the task that follows other replicas.
pub struct Library {
    store: Arc<dyn Store>,
    lore: Arc<Lore>,
    index: RwLock<Index>,
    ready: tokio::sync::OnceCell<()>,
    /// One write at a time, store and index together: concurrent writes of one document then
    /// reach the index in the order they reached the store.
    writing: tokio::sync::Mutex<()>,
    /// Whether a search confirms its hits against the store: where other processes write it,
    /// the index may lag their writes by the change feed's delay.
    check_hits: bool,
    /// Writes whose callers stopped waiting run here to their end; `follow` waits for them
    /// when it stops.
    writes: tokio_util::task::TaskTracker,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library").finish_non_exhaustive()
    }
}

impl Library {
    /// A library over `store`; the shipped `lore` seeds an empty store.
    pub fn new(store: Arc<dyn Store>, lore: Arc<Lore>) -> Self {
        Library {
            writes: tokio_util::task::TaskTracker::new(),
            check_hits: !store.sole_writer(),
            store,
            lore,
            index: RwLock::new(Index::default()),
            ready: tokio::sync::OnceCell::new(),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// Confirms each search's hits against the store, or not (by default only where other
    /// processes write it). Tests of replicas sharing one store in one process turn it on.
    #[must_use]
    pub fn checking_hits(mut self, on: bool) -> Self {
        self.check_hits = on;
        self
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Seeds the store at first start, then builds the index from it (once per process).
    pub async fn ready(&self) -> Result<(), Status> {
        self.ready
            .get_or_try_init(|| async {
                self.seed().await?;
                self.rebuild().await
            })
            .await
            .map(|_| ())
    }

    async fn seed(&self) -> Result<(), Status> {
        if self.store.get(SEEDED).await?.is_some() {
            return Ok(());
        }
        for doc in &self.lore.documents {
            match self
                .store
                .put(&doc_key(&doc.id), Bytes::from(doc.encode_to_vec()), Some(0))
                .await
            {
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match self
            .store
            .put(SEEDED, Bytes::from_static(b"1"), Some(0))
            .await
        {
            Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads every document from the store into a fresh index.
    async fn rebuild(&self) -> Result<(), Status> {
        let mut fresh = Index::default();
        let mut after = None;
        loop {
            let page = self.store.list(PREFIX, after.as_deref(), 500).await?;
            for (_, v) in &page.entries {
                let doc = Document::decode(v.value.as_ref())
                    .map_err(|e| Status::internal(format!("kb document: {e}")))?;
                fresh.upsert(&doc.id, &doc.title, &doc.body, &doc.tags, v.version);
            }
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        *self.write() = fresh;
        Ok(())
    }

    /// Follows the store's changes made by other processes, until `stop` (where the backend
    /// can tell them; with one process owning the store there is nothing to follow). A task
    /// the server owns.
    pub async fn follow(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        Arc::clone(&self).follow_until(stop).await;
        // At shutdown: the writes in flight end (a store commit and its index entry) first.
        self.writes.close();
        self.writes.wait().await;
    }

    async fn follow_until(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        use futures_util::StreamExt as _;
        loop {
            let watched = tokio::select! {
                () = stop.cancelled() => return,
                w = self.store.watch(PREFIX) => w,
            };
            match watched {
                Ok(None) => return,
                Ok(Some(mut changes)) => {
                    // Whatever changed before the watch began is read once more.
                    if let Err(e) = self.rebuild().await {
                        tracing::warn!(error = %e, "kb index rebuild failed");
                    }
                    loop {
                        let next = tokio::select! {
                            () = stop.cancelled() => return,
                            n = changes.next() => n,
                        };
                        match next {
                            Some(Ok((key, value))) => self.apply(&key, value),
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "kb change feed failed; following again");
                                break;
                            }
                            None => break,
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot follow kb changes; retrying"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    fn apply(&self, key: &str, value: Option<crate::kit::store::Versioned>) {
        let Some(id) = key.strip_prefix(PREFIX) else {
            return;
        };
        match value {
            Some(v) => match Document::decode(v.value.as_ref()) {
                Ok(doc) => {
                    self.write()
                        .upsert(&doc.id, &doc.title, &doc.body, &doc.tags, v.version);
                }
                Err(e) => tracing::warn!(key, error = %e, "undecodable kb document"),
            },
            None => {
                self.write().remove(id);
            }
        }
    }
}

/// A write of one document, to the store and then the index.
enum Write {
    Put {
        doc: Document,
        expected: Option<u64>,
    },
    Delete {
        id: String,
        expected: Option<u64>,
    },
}

impl Library {
    /// Runs `write` to its end even if the caller stops waiting (a client's deadline or its
    /// disconnect): the store commits on a thread of its own, and an index left behind it would
    /// answer wrongly until a restart where searches trust it. Returns the document's new
    /// version (0 for a delete).
    async fn write_through(self: &Arc<Self>, write: Write) -> Result<u64, Status> {
        let library = Arc::clone(self);
        self.writes
            .spawn(async move { library.write_now(write).await })
            .await
            .map_err(|e| Status::internal(format!("kb write: {e}")))?
    }

    async fn write_now(&self, write: Write) -> Result<u64, Status> {
        // One at a time, from the count to the index: the limit holds against concurrent
        // upserts, and the index sees writes in the store's order.
        let _writing = self.writing.lock().await;
        let conflict = |id: &str, current: Option<u64>| {
            Status::aborted(format!(
                "version mismatch on document {id}: it is at {}",
                current.unwrap_or(0)
            ))
        };
        match write {
            Write::Put { doc, expected } => {
                let exists = self.read().get(&doc.id).is_some();
                if !exists && self.read().len() >= MAX_DOCUMENTS {
                    return Err(Status::new(
                        crate::kit::status::Code::ResourceExhausted,
                        format!(
                            "the knowledge base holds its maximum of {MAX_DOCUMENTS} documents"
                        ),
                    ));
                }
                let value = Bytes::from(doc.encode_to_vec());
                let version = match self.store.put(&doc_key(&doc.id), value, expected).await {
                    Ok(v) => v,
                    Err(StoreError::Conflict { current }) => {
                        return Err(conflict(&doc.id, current));
                    }
                    Err(e) => return Err(e.into()),
                };
                self.write()
                    .upsert(&doc.id, &doc.title, &doc.body, &doc.tags, version);
                Ok(version)
            }
            Write::Delete { id, expected } => {
                match self.store.delete(&doc_key(&id), expected).await {
                    Ok(true) => {}
                    Ok(false) => return Err(Status::not_found(format!("no document {id:?}"))),
                    Err(StoreError::Conflict { current }) => return Err(conflict(&id, current)),
                    Err(e) => return Err(e.into()),
                }
                self.write().remove(&id);
                Ok(0)
            }
        }
    }
}

/// The service.
pub struct KbService {
    library: Arc<Library>,
}

impl KbService {
    /// The service over `library`.
    pub fn new(library: Arc<Library>) -> Self {
        KbService { library }
    }

    async fn get_doc(&self, id: &str) -> Result<Option<Document>, Status> {
        Ok(match self.library.store.get(&doc_key(id)).await? {
            Some(v) => {
                let mut doc = Document::decode(v.value.as_ref())
                    .map_err(|e| Status::internal(format!("kb document: {e}")))?;
                doc.version = v.version;
                Some(doc)
            }
            None => None,
        })
    }
}

impl KnowledgeBaseServiceHandler for KbService {
    type Context = Context;
    type Error = Status;

    async fn upsert(&self, _ctx: Context, req: UpsertRequest) -> Result<UpsertResponse, Status> {
        let mut doc = req
            .document
            .ok_or_else(|| Status::invalid_argument("document is required"))?;
        check(&doc).map_err(Status::invalid_argument)?;
        self.library.ready().await?;
        doc.version = 0;
        doc.version = self
            .library
            .write_through(Write::Put {
                doc: doc.clone(),
                expected: req.expected_version,
            })
            .await?;
        Ok(UpsertResponse {
            document: Some(doc),
        })
    }

    async fn get(&self, _ctx: Context, req: GetRequest) -> Result<GetResponse, Status> {
        if !valid_slug(&req.id, 64) {
            return Err(Status::invalid_argument("id is not a document id"));
        }
        self.library.ready().await?;
        match self.get_doc(&req.id).await? {
            Some(doc) => Ok(GetResponse {
                document: Some(doc),
            }),
            None => Err(Status::not_found(format!("no document {:?}", req.id))),
        }
    }

    async fn delete(&self, _ctx: Context, req: DeleteRequest) -> Result<DeleteResponse, Status> {
        if !valid_slug(&req.id, 64) {
            return Err(Status::invalid_argument("id is not a document id"));
        }
        self.library.ready().await?;
        self.library
            .write_through(Write::Delete {
                id: req.id,
                expected: req.expected_version,
            })
            .await?;
        Ok(DeleteResponse {})
    }

    async fn search(&self, _ctx: Context, req: SearchRequest) -> Result<SearchResponse, Status> {
        let limit = match req.limit {
            0 => 10,
            n @ 1..=50 => n as usize,
            n => {
                return Err(Status::invalid_argument(format!(
                    "limit must be 1 to 50, got {n}"
                )));
            }
        };
        if req.query.chars().count() > MAX_QUERY {
            return Err(Status::invalid_argument(format!(
                "query must be at most {MAX_QUERY} characters"
            )));
        }
        if req.tags.len() > MAX_TAGS || !req.tags.iter().all(|t| valid_slug(t, 32)) {
            return Err(Status::invalid_argument(
                "tags are lowercase letters, digits or '-'",
            ));
        }
        self.library.ready().await?;
        if !self.library.check_hits {
            // The index is the store as this process, its only writer, left it.
            let index = self.library.read();
            let hits = index
                .search(&req.query, &req.tags, limit)
                .into_iter()
                .filter_map(|s| {
                    index.entry(s.slot).map(|e| SearchHit {
                        id: e.id.clone(),
                        title: e.title.clone(),
                        score: s.score,
                        snippet: snippet_at(&e.body, s.first, SNIPPET),
                    })
                })
                .collect();
            return Ok(SearchResponse { hits });
        }
        // Two more than asked, in case some went since they were indexed.
        let candidates: Vec<(String, u64, f64, Option<usize>)> = {
            let index = self.library.read();
            index
                .search(&req.query, &req.tags, limit + 2)
                .into_iter()
                .filter_map(|s| {
                    index
                        .entry(s.slot)
                        .map(|e| (e.id.clone(), e.version, s.score, s.first))
                })
                .collect()
        };
        let keys: Vec<String> = candidates.iter().map(|(id, ..)| doc_key(id)).collect();
        let stored = self.library.store.get_many(&keys).await?;
        let mut hits = Vec::with_capacity(limit);
        for ((id, version, score, first), now) in candidates.into_iter().zip(stored) {
            let Some(now) = now else {
                // Deleted on another replica: gone from here too.
                self.library.write().remove(&id);
                continue;
            };
            let (title, body) = if now.version == version {
                let index = self.library.read();
                let Some(e) = index.get(&id) else { continue };
                (e.title.clone(), snippet_at(&e.body, first, SNIPPET))
            } else {
                // Changed on another replica: answer what it is now, and index that.
                let doc = Document::decode(now.value.as_ref())
                    .map_err(|e| Status::internal(format!("kb document: {e}")))?;
                self.library
                    .write()
                    .upsert(&doc.id, &doc.title, &doc.body, &doc.tags, now.version);
                if !req.tags.iter().all(|t| doc.tags.contains(t)) {
                    continue;
                }
                (doc.title, snippet(&doc.body, &req.query, SNIPPET))
            };
            hits.push(SearchHit {
                id,
                title,
                score,
                snippet: body,
            });
            if hits.len() == limit {
                break;
            }
        }
        Ok(SearchResponse { hits })
    }
}

#[cfg(test)]
mod tests;
