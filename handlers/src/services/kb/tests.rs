use proto::aicore::kb::v1::SearchHit;

use super::index::tokenize;
use super::*;
use crate::kit::status::Code;

fn three() -> Index {
    let mut i = Index::default();
    i.upsert("a", "Red Fox", "the fox runs", &["beasts".into()], 1);
    i.upsert(
        "b",
        "Blue Bird",
        "a bird and a fox",
        &["beasts".into(), "sky".into()],
        2,
    );
    i.upsert("c", "Green Tree", "tall tree", &[], 3);
    i
}

fn scores(i: &Index, q: &str, tags: &[String]) -> Vec<(String, f64)> {
    i.search(q, tags, 10)
        .into_iter()
        .map(|s| (i.entry(s.slot).unwrap().id.clone(), s.score))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn bm25_on_three_documents_matches_the_hand_computed_scores() {
    // Title terms count 3 times: a = {red 3, fox 3+1, the 1, runs 1}, length 9; b = {blue 3,
    // bird 3+1, a 2, and 1, fox 1}, length 11; c = {green 3, tree 3+1, tall 1}, length 8.
    // N = 3, average length 28/3, k1 = 1.2, b = 0.75, idf = ln(1 + (N - n + 0.5) / (n + 0.5)).
    // fox (n = 2): a = ln(1.6) * 4 * 2.2 / (4 + 1.2 * (0.25 + 0.75 * 9 / (28/3))) = 0.80033790...
    let i = three();
    let fox = scores(&i, "fox", &[]);
    assert_eq!(fox.len(), 2);
    assert_eq!(fox[0].0, "a", "the title match ranks first");
    assert!(close(fox[0].1, 0.800_337_900_802_690_2), "{fox:?}");
    assert!(close(fox[1].1, 0.438_006_407_890_125_8), "{fox:?}");
    let tree = scores(&i, "TREE", &[]);
    assert!(close(tree[0].1, 1.701_945_971_423_164_6), "{tree:?}");
    let both = scores(&i, "fox bird bird", &[]);
    assert_eq!(both[0].0, "b");
    assert!(close(both[0].1, 2.048_108_526_091_920_3), "{both:?}");
    // Tags filter, all of them.
    assert_eq!(scores(&i, "fox", &["sky".into()]).len(), 1);
    assert!(scores(&i, "fox", &["sky".into(), "sea".into()]).is_empty());
    assert_eq!(i.search("fox", &[], 1).len(), 1, "limit");
}

#[test]
fn removing_and_replacing_keeps_the_statistics_exact() {
    let mut i = three();
    i.upsert("d", "Fox Den", "fox fox fox", &[], 4);
    assert!(i.remove("d"));
    assert!(!i.remove("d"));
    let again = scores(&i, "fox", &[]);
    assert!(close(again[0].1, 0.800_337_900_802_690_2), "{again:?}");
    // An older version never replaces a newer one.
    i.upsert("a", "Stale", "old", &[], 0);
    assert_eq!(i.get("a").unwrap().title, "Red Fox");
    i.upsert("a", "Grey Wolf", "wolf", &[], 9);
    assert!(scores(&i, "red", &[]).is_empty());
    assert_eq!(scores(&i, "wolf", &[])[0].0, "a");
}

#[test]
fn tokens_fold_case_and_accents_and_any_input_is_fine() {
    assert_eq!(
        tokenize("Saint-Éloi, WEISSFEUER und Weißfeuer; Ølskær"),
        [
            "saint",
            "eloi",
            "weissfeuer",
            "und",
            "weissfeuer",
            "olskaer"
        ]
    );
    assert_eq!(tokenize("氷の塔"), ["氷", "の", "塔"]);
    for nasty in [
        "",
        "\u{0}\u{202e}",
        "ﷺ",
        "🦊🦊",
        &"x".repeat(10_000),
        "a\u{301}\u{301}\u{301}",
    ] {
        let _ = tokenize(nasty);
        let _ = snippet(nasty, nasty, 50);
        let _ = three().search(nasty, &[], 5);
    }
}

#[test]
fn snippets_show_the_match_with_whole_words() {
    let body = "Long before the harbour was built, the herring fleets beached their boats on \
                the shingle below the chalk. The lantern on the mole was lit by the widows of \
                Gull's Rest every night the boats were out, and it is lit by them still.";
    let s = snippet(body, "LANTERN", 60);
    assert!(s.contains("lantern"), "{s}");
    assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
    assert!(s.chars().count() <= 90, "{s}");
    let start = snippet(body, "nothing-matches", 40);
    assert!(start.starts_with("Long before"), "{start}");
}

/// The first `snippet_at`, which collected the window's characters: the one in use must cut
/// exactly where it did.
fn snippet_reference(body: &str, at: Option<usize>, width: usize) -> String {
    let at = at.unwrap_or(0).min(body.len());
    let mut lo = at.saturating_sub(width * 2);
    while !body.is_char_boundary(lo) {
        lo -= 1;
    }
    let mut hi = (at + width * 3).min(body.len());
    while !body.is_char_boundary(hi) {
        hi += 1;
    }
    let window = &body[lo..hi];
    let chars: Vec<(usize, char)> = window.char_indices().collect();
    let total = chars.len();
    let at = chars.partition_point(|(i, _)| *i < at - lo);
    let mut from = at.saturating_sub(width / 3);
    let mut to = (from + width).min(total);
    while from > 0 && from < total && !chars[from - 1].1.is_whitespace() {
        from -= 1;
        if at - from > width / 2 {
            break;
        }
    }
    while to < total && !chars[to].1.is_whitespace() && to - from < width + 20 {
        to += 1;
    }
    let byte = |i: usize| chars.get(i).map_or(window.len(), |(b, _)| *b);
    let mut out = String::new();
    if from > 0 || lo > 0 {
        out.push('…');
    }
    out.push_str(window[byte(from)..byte(to)].trim());
    if to < total || hi < body.len() {
        out.push('…');
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn snippets_cut_where_they_always_did() {
    use proptest::prelude::*;
    proptest!(|(
        words in proptest::collection::vec("[a-zé氷🦊]{0,12}", 0..120),
        gaps in proptest::collection::vec("[ \t\n\u{3000}]{1,3}", 120),
        hit in proptest::option::of(0usize..2000),
        width in 0usize..200,
    )| {
        let mut body = String::new();
        for (w, g) in words.iter().zip(&gaps) {
            body.push_str(w);
            body.push_str(g);
        }
        // A hit is a token's first byte: on a character boundary.
        let hit = hit.map(|h| {
            let mut h = h.min(body.len());
            while !body.is_char_boundary(h) {
                h -= 1;
            }
            h
        });
        prop_assert_eq!(snippet_at(&body, hit, width), snippet_reference(&body, hit, width));
    });
}

/// BM25 the plain way, from the documents themselves: every document scored; best first, ties
/// by id. What `Index::search` must equal exactly: so the shares are summed in its order, by
/// each term's bound (its largest term frequency in its shortest document), largest first.
fn search_reference(
    docs: &std::collections::BTreeMap<String, (String, String, Vec<String>)>,
    query: &str,
    tags: &[String],
    limit: usize,
) -> Vec<(String, f64, Option<usize>)> {
    use super::index::{B, K1, MAX_QUERY_TERMS, TITLE_WEIGHT, tokens_at};
    // Per document: term -> (weighted tf, first body offset), and the weighted length.
    let mut stats = Vec::new();
    for (id, (title, body, doc_tags)) in docs {
        let mut tf: std::collections::HashMap<String, (u32, Option<usize>)> = Default::default();
        let mut len = 0u32;
        for t in tokenize(title) {
            tf.entry(t).or_insert((0, None)).0 += TITLE_WEIGHT;
            len += TITLE_WEIGHT;
        }
        for (at, t) in tokens_at(body) {
            let e = tf.entry(t).or_insert((0, None));
            e.0 += 1;
            e.1 = Some(e.1.map_or(at, |f| f.min(at)));
            len += 1;
        }
        stats.push((id, doc_tags, tf, len));
    }
    let n = stats.len().max(1) as f64;
    let avg = stats.iter().map(|s| u64::from(s.3)).sum::<u64>() as f64 / n;
    let (base, per_len) = (K1 * (1.0 - B), K1 * B / avg);
    let share = |idf: f64, tf: u32, norm: f64| {
        let tf = f64::from(tf);
        idf * tf * (K1 + 1.0) / (tf + norm)
    };
    let mut seen = std::collections::HashSet::new();
    let mut terms = Vec::new();
    for t in tokenize(query) {
        if seen.len() == MAX_QUERY_TERMS {
            break;
        }
        if !seen.insert(t.clone()) {
            continue;
        }
        let holders: Vec<_> = stats.iter().filter(|s| s.2.contains_key(&t)).collect();
        if holders.is_empty() {
            continue;
        }
        let df = holders.len() as f64;
        let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
        let max_tf = holders.iter().map(|s| s.2[&t].0).max().unwrap();
        let min_len = holders.iter().map(|s| s.3).min().unwrap();
        let bound = share(idf, max_tf, base + per_len * f64::from(min_len));
        terms.push((t, idf, bound));
    }
    terms.sort_by(|a, b| b.2.total_cmp(&a.2));
    let mut hits = Vec::new();
    for (id, doc_tags, tf, len) in &stats {
        if !tags.iter().all(|t| doc_tags.contains(t)) {
            continue;
        }
        let norm = base + per_len * f64::from(*len);
        let (mut score, mut first, mut matched) = (0.0, None::<usize>, false);
        for (t, idf, _) in &terms {
            let Some((f, at)) = tf.get(t) else { continue };
            score += share(*idf, *f, norm);
            first = match (first, at) {
                (Some(a), Some(b)) => Some(a.min(*b)),
                (a, b) => a.or(*b),
            };
            matched = true;
        }
        if matched {
            hits.push(((*id).clone(), score, first));
        }
    }
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    hits.truncate(limit);
    hits
}

#[test]
fn pruned_search_equals_scoring_every_document() {
    use proptest::prelude::*;
    // Common, middling and rare words: rare ones weigh more (idf), which is what pruning bets on.
    let word = || {
        proptest::prop_oneof![
            6 => proptest::sample::select(vec!["ember", "frost", "vale", "ash"]),
            3 => proptest::sample::select(vec!["crown", "tide", "wyrm", "moss"]),
            1 => proptest::sample::select(vec!["iron", "veil", "oath", "gale"]),
        ]
    };
    // Writes (some replace, some remove), then one query: the index after those writes must
    // answer it as the reference does over the documents left.
    let write = (
        0usize..48,
        proptest::collection::vec(word(), 0..4),
        proptest::collection::vec(word(), 0..30),
        proptest::collection::vec(proptest::sample::select(vec!["lore", "map"]), 0..2),
        proptest::bool::weighted(0.15),
    );
    proptest!(ProptestConfig::with_cases(600), |(
        writes in proptest::collection::vec(write, 1..90),
        query in proptest::collection::vec(proptest::prop_oneof![word(), Just("nowhere")], 1..6),
        tags in proptest::collection::vec(proptest::sample::select(vec!["lore", "map"]), 0..2),
        limit in 1usize..14,
    )| {
        let writes = writes
            .into_iter()
            .map(|(n, title, body, tags, remove)| (n, title.join(" "), body.join(" "), tags, remove));
        check_search(writes, &query.join(" "), &tags, limit)?;
    });
}

#[test]
fn pruned_search_equals_scoring_every_document_at_the_edge() {
    use proptest::prelude::*;
    // Bounds are exact here: every document is the same length and holds each word at most once,
    // so a term's bound is its share in every document holding it, and a document the pruning
    // passes over can score exactly what the pruning bet it could not exceed.
    let words = [
        "ember", "frost", "vale", "ash", "crown", "tide", "iron", "oath",
    ];
    let doc = proptest::collection::vec(proptest::bool::weighted(0.35), words.len());
    proptest!(ProptestConfig::with_cases(600), |(
        docs in proptest::collection::vec(doc, 1..40),
        query in proptest::sample::subsequence(words.to_vec(), 2..6),
        limit in 1usize..8,
    )| {
        let writes = docs.into_iter().enumerate().map(|(n, held)| {
            let mut body: Vec<String> = words
                .iter()
                .zip(&held)
                .filter(|(_, h)| **h)
                .map(|(w, _)| (*w).to_owned())
                .collect();
            // Padding no query holds, each token once, to the same length.
            let pad = words.len() - body.len();
            body.extend((0..pad).map(|i| format!("pad{i}")));
            (n, String::new(), body.join(" "), Vec::new(), false)
        });
        check_search(writes, &query.join(" "), &[], limit)?;
    });
}

/// Applies `writes` (id number, title, body, tags, whether it is a removal) to an index and to
/// the plain documents, then asks both the same question.
fn check_search(
    writes: impl Iterator<Item = (usize, String, String, Vec<&'static str>, bool)>,
    query: &str,
    tags: &[&str],
    limit: usize,
) -> Result<(), proptest::test_runner::TestCaseError> {
    let mut index = Index::default();
    let mut docs = std::collections::BTreeMap::new();
    for (v, (n, title, body, doc_tags, remove)) in writes.enumerate() {
        let id = format!("doc-{n:02}");
        let doc_tags: Vec<String> = doc_tags.iter().map(|t| (*t).to_owned()).collect();
        if remove {
            index.remove(&id);
            docs.remove(&id);
        } else {
            index.upsert(&id, &title, &body, &doc_tags, v as u64);
            docs.insert(id, (title, body, doc_tags));
        }
    }
    let tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
    let got: Vec<(String, f64, Option<usize>)> = index
        .search(query, &tags, limit)
        .into_iter()
        .map(|s| (index.entry(s.slot).unwrap().id.clone(), s.score, s.first))
        .collect();
    proptest::prop_assert_eq!(got, search_reference(&docs, query, &tags, limit));
    Ok(())
}

#[test]
fn the_shipped_lore_loads() {
    let lore = Lore::embedded().unwrap();
    assert!(lore.documents.len() >= 40);
    let bad = Lore::SHIPPED.text.replacen("id = \"", "id = \"Bad ", 1);
    let e = Lore::parse(&Source::embedded("lore.toml", &bad)).unwrap_err();
    assert!(e.line > 20, "{e}");
}

fn library(store: &Arc<dyn Store>) -> KbService {
    KbService::new(Arc::new(Library::new(
        Arc::clone(store),
        Arc::new(Lore::embedded().unwrap()),
    )))
}

/// A replica's library: one of several sharing `store`, as on JetStream (here in one process,
/// where redb could not otherwise know it has company).
fn replica(store: &Arc<dyn Store>) -> KbService {
    KbService::new(Arc::new(
        Library::new(Arc::clone(store), Arc::new(Lore::embedded().unwrap())).checking_hits(true),
    ))
}

fn doc(id: &str, title: &str, body: &str) -> Document {
    Document {
        id: id.into(),
        title: title.into(),
        body: body.into(),
        tags: vec!["test".into()],
        version: 0,
    }
}

async fn search(kb: &KbService, q: &str) -> Vec<SearchHit> {
    kb.search(
        Context::default(),
        SearchRequest {
            query: q.into(),
            tags: vec![],
            limit: 10,
        },
    )
    .await
    .unwrap()
    .hits
}

#[tokio::test]
async fn replicas_never_answer_a_deleted_document_or_an_old_title() {
    let (_dir, store) = crate::kit::testing::temp_store();
    let (a, b) = (replica(&store), replica(&store));
    // The lore is there from the first start, once.
    assert!(!search(&a, "lantern").await.is_empty());
    assert!(!search(&b, "lantern").await.is_empty());
    let seeded = store.list(PREFIX, None, 500).await.unwrap().entries.len();
    assert!(seeded >= 40);
    async fn up(
        kb: &KbService,
        d: Document,
        expected: Option<u64>,
    ) -> Result<UpsertResponse, Status> {
        kb.upsert(
            Context::default(),
            UpsertRequest {
                document: Some(d),
                expected_version: expected,
            },
        )
        .await
    }
    let v = up(
        &a,
        doc("quillback", "The Quillback Eel", "an eel of the zqx fen"),
        Some(0),
    )
    .await
    .unwrap()
    .document
    .unwrap()
    .version;
    assert_eq!(
        search(&b, "zqx").await.len(),
        0,
        "b indexed before it was written"
    );
    // b renames it: a answers the new title although its index is older.
    up(
        &b,
        doc("quillback", "The Spined Eel", "an eel of the zqx fen"),
        Some(v),
    )
    .await
    .unwrap();
    let hits = search(&a, "zqx").await;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].title, "The Spined Eel");
    // A stale version is refused.
    let e = up(&a, doc("quillback", "x", "y"), Some(v))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
    // b deletes it: a never answers it again.
    b.delete(
        Context::default(),
        DeleteRequest {
            id: "quillback".into(),
            expected_version: None,
        },
    )
    .await
    .unwrap();
    assert!(search(&a, "zqx").await.is_empty());
    assert!(search(&a, "spined").await.is_empty());
    let e = a
        .get(
            Context::default(),
            GetRequest {
                id: "quillback".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // Deleting everything does not bring the lore back at the next start.
    drop((a, b));
    let mut after = None;
    loop {
        let page = store.list(PREFIX, after.as_deref(), 500).await.unwrap();
        for (k, _) in &page.entries {
            store.delete(k, None).await.unwrap();
        }
        match page.next_after {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert!(search(&library(&store), "lantern").await.is_empty());
}

/// The sole writer of a redb store whose writes come back late, after committing (a thread slow
/// to hand back its result, a task descheduled before it updates the index).
struct SlowWrites(Arc<dyn Store>);

#[async_trait::async_trait]
impl Store for SlowWrites {
    async fn get(&self, key: &str) -> Result<Option<crate::kit::store::Versioned>, StoreError> {
        self.0.get(key).await
    }
    async fn put(&self, key: &str, value: Bytes, expected: Option<u64>) -> Result<u64, StoreError> {
        let put = self.0.put(key, value, expected).await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        put
    }
    async fn delete(&self, key: &str, expected: Option<u64>) -> Result<bool, StoreError> {
        let deleted = self.0.delete(key, expected).await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        deleted
    }
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<crate::kit::store::Page, StoreError> {
        self.0.list(prefix, after, limit).await
    }
    async fn check(&self) -> Result<(), StoreError> {
        self.0.check().await
    }
    fn sole_writer(&self) -> bool {
        self.0.sole_writer()
    }
    fn backend(&self) -> &'static str {
        "slow-writes"
    }
}

#[tokio::test]
async fn the_sole_writer_s_index_ends_as_its_store_after_racing_writes() {
    let (_dir, redb) = crate::kit::testing::temp_store();
    let store: Arc<dyn Store> = Arc::new(SlowWrites(redb));
    assert!(store.sole_writer(), "searches trust the index");
    let kb = Arc::new(library(&store));
    let up = |title: &'static str| {
        let kb = Arc::clone(&kb);
        async move {
            let req = UpsertRequest {
                document: Some(doc("gull", title, "a gull of the qzv cliffs")),
                expected_version: None,
            };
            kb.upsert(Context::default(), req).await.unwrap();
        }
    };
    up("Grey Gull").await;
    // A delete commits, and before it reaches the index an upsert writes the document again.
    let deleting = tokio::spawn({
        let kb = Arc::clone(&kb);
        async move {
            let req = DeleteRequest {
                id: "gull".into(),
                expected_version: None,
            };
            kb.delete(Context::default(), req).await.unwrap();
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    up("Storm Gull").await;
    deleting.await.unwrap();
    // The store holds the upsert, and so must the index.
    let stored = store.get(&doc_key("gull")).await.unwrap().unwrap();
    let stored = Document::decode(stored.value.as_ref()).unwrap();
    assert_eq!(stored.title, "Storm Gull");
    let hits = search(&kb, "qzv").await;
    assert_eq!(hits.len(), 1, "the index lost what the store holds");
    assert_eq!(hits[0].title, "Storm Gull");
}

#[tokio::test]
async fn a_write_its_caller_stopped_waiting_for_still_reaches_the_index() {
    let (_dir, redb) = crate::kit::testing::temp_store();
    let store: Arc<dyn Store> = Arc::new(SlowWrites(redb));
    let kb = library(&store);
    let short = std::time::Duration::from_millis(30);
    let settle = std::time::Duration::from_millis(300);
    assert!(search(&kb, "vqz").await.is_empty(), "seeded and indexed");
    // The client's deadline passes (or it goes away) after the store committed.
    let req = UpsertRequest {
        document: Some(doc("heron", "The Ash Heron", "a heron of the vqz marsh")),
        expected_version: None,
    };
    assert!(
        tokio::time::timeout(short, kb.upsert(Context::default(), req))
            .await
            .is_err()
    );
    tokio::time::sleep(settle).await;
    assert!(store.get(&doc_key("heron")).await.unwrap().is_some());
    let hits = search(&kb, "vqz").await;
    assert_eq!(hits.len(), 1, "the store holds it, so the index must");
    let req = DeleteRequest {
        id: "heron".into(),
        expected_version: None,
    };
    assert!(
        tokio::time::timeout(short, kb.delete(Context::default(), req))
            .await
            .is_err()
    );
    tokio::time::sleep(settle).await;
    assert!(store.get(&doc_key("heron")).await.unwrap().is_none());
    assert!(
        search(&kb, "vqz").await.is_empty(),
        "gone from the store, so from the index"
    );
}

#[tokio::test]
async fn bad_requests_are_refused() {
    let (_dir, store) = crate::kit::testing::temp_store();
    let kb = library(&store);
    for (d, what) in [
        (doc("Bad Id", "t", "b"), "id"),
        (doc("ok", "", "b"), "title"),
        (doc("ok", "t", &"x".repeat(MAX_BODY + 1)), "body"),
    ] {
        let e = kb
            .upsert(
                Context::default(),
                UpsertRequest {
                    document: Some(d),
                    expected_version: None,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{what}");
    }
    let e = kb
        .search(
            Context::default(),
            SearchRequest {
                query: "x".into(),
                tags: vec![],
                limit: 51,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn on_jetstream_a_replica_sees_another_s_upsert_within_a_second() {
    let nats = crate::kit::store::jetstream::tests::TestNats::start();
    let store_a: Arc<dyn Store> = Arc::new(nats.store().await);
    let store_b: Arc<dyn Store> = Arc::new(nats.store().await);
    let lore = Arc::new(Lore::embedded().unwrap());
    let a = Arc::new(Library::new(Arc::clone(&store_a), Arc::clone(&lore)));
    let b = Arc::new(Library::new(store_b, lore));
    let stop = tokio_util::sync::CancellationToken::new();
    let following = tokio::spawn(Arc::clone(&a).follow(stop.clone()));
    let kb_a = KbService::new(Arc::clone(&a));
    let kb_b = KbService::new(b);
    assert!(search(&kb_a, "wyvernsbane").await.is_empty());
    kb_b.upsert(
        Context::default(),
        UpsertRequest {
            document: Some(doc("wyvernsbane", "Wyvernsbane", "a herb against wyverns")),
            expected_version: None,
        },
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    loop {
        if a.read().get("wyvernsbane").is_some() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not within a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(search(&kb_a, "wyvernsbane").await.len(), 1);
    stop.cancel();
    following.await.unwrap();
}

/// At shutdown, following stops only after the writes whose callers went away have ended, so
/// none is cut between its store commit and its index entry.
#[tokio::test]
async fn stopping_waits_for_writes_whose_callers_went_away() {
    let (_dir, redb) = crate::kit::testing::temp_store();
    let store: Arc<dyn Store> = Arc::new(SlowWrites(redb));
    let lib = Arc::new(Library::new(
        Arc::clone(&store),
        Arc::new(Lore::embedded().unwrap()),
    ));
    let kb = KbService::new(Arc::clone(&lib));
    assert!(search(&kb, "vqz").await.is_empty(), "seeded and indexed");
    let req = UpsertRequest {
        document: Some(doc("heron", "The Ash Heron", "a heron of the vqz marsh")),
        expected_version: None,
    };
    let short = std::time::Duration::from_millis(30);
    assert!(
        tokio::time::timeout(short, kb.upsert(Context::default(), req))
            .await
            .is_err()
    );
    let stop = tokio_util::sync::CancellationToken::new();
    stop.cancel();
    lib.follow(stop).await;
    assert_eq!(search(&kb, "vqz").await.len(), 1, "the write ended first");
}
