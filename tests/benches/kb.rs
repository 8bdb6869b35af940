//! Benchmark: kb Search over 10,000 documents (two- and three-term queries) against the
//! foundation benchmark's state Get on the same edge, in the same run, 64 connections each,
//! ABBA rounds after a warm-up, the edge on one core and the load generator on the other; and
//! against a bare axum+rustls server sending the very same answer bytes (recorded from the edge).
//! Also the edge's memory per indexed document.
//! Run: `cargo build --release -p edge && cargo bench -p edge-e2e --bench kb`.
//! `BENCH_SECS`, `BENCH_ROUNDS`, `BENCH_DOCS` (default 10000) adjust it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use bytes::Bytes;
use edge_e2e::bench::{
    Side, answering_bare, compare, pin, pinned_edge, record_answer, settings, state_get, verdict,
    warm_up,
};
use edge_e2e::load::Shape;
use http::Method;
use proto::rpc;
use serde_json::json;

const UPSERT: &str = rpc::kb::UPSERT.path;
const SEARCH: &str = rpc::kb::SEARCH.path;
const LORE: &str = include_str!("../../handlers/data/kb/lore.toml");

/// Words of the shipped lore, most frequent first: the vocabulary of the generated documents.
fn vocabulary() -> Vec<String> {
    let mut counts = std::collections::HashMap::<String, usize>::new();
    for w in LORE
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| w.len() > 2)
    {
        *counts.entry(w.to_lowercase()).or_default() += 1;
    }
    let mut words: Vec<(String, usize)> = counts.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    words.into_iter().map(|(w, _)| w).collect()
}

#[tokio::main]
async fn main() {
    let (warmup, measure, rounds) = settings();
    let docs: usize = std::env::var("BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let cpus = pin();
    let tmp = tempfile::tempdir().unwrap();
    let (edge, c) = pinned_edge(tmp.path(), cpus);
    let writer = edge.service_key("lorekeeper", "kb");
    let get = state_get(&c).await;
    let token = get.headers[1].1.clone();

    // The shipped lore is indexed at first use; memory is measured from there.
    let r = c
        .call(
            SEARCH,
            Some(token.trim_start_matches("Bearer ")),
            json!({"query": "x"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let before = edge.rss_kib();

    // Documents of 8 to 14 sentences drawn from the lore's vocabulary with a Zipf-like skew
    // (a fixed pseudo-random sequence), so common words are common and rare ones rare.
    let vocab = vocabulary();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let word = |next: &mut dyn FnMut() -> u64| {
        let u = (next() % 1_000_000) as f64 / 1_000_000.0;
        let rank = ((vocab.len() as f64).powf(u) - 1.0) as usize;
        vocab[rank.min(vocab.len() - 1)].clone()
    };
    let started = std::time::Instant::now();
    let mut bodies = Vec::with_capacity(docs);
    for i in 0..docs {
        let title: Vec<String> = (0..3 + (next() % 3) as usize)
            .map(|_| word(&mut next))
            .collect();
        let body: Vec<String> = (0..(100 + next() % 80) as usize)
            .map(|_| word(&mut next))
            .collect();
        bodies.push((format!("gen-{i}"), title.join(" "), body.join(" ")));
    }
    // Written in two halves, memory measured after each: the second half's growth is what a
    // document costs, free of what the first half reused (the login's argon2id buffer, freed
    // but still resident, would otherwise hide thousands of documents).
    let half = docs / 2;
    let mut middle = before;
    for (i, part) in [&bodies[..half], &bodies[half..]].into_iter().enumerate() {
        let mut tasks = Vec::new();
        for chunk in part
            .chunks(part.len().div_ceil(32).max(1))
            .map(<[_]>::to_vec)
        {
            let (c, writer) = (c.clone(), writer.clone());
            tasks.push(tokio::spawn(async move {
                for (id, title, body) in chunk {
                    let r = c
                        .call(
                            UPSERT,
                            Some(&writer),
                            json!({"document": {"id": id, "title": title, "body": body, "tags": ["generated"]}}),
                        )
                        .await;
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        if i == 0 {
            middle = edge.rss_kib();
        }
    }
    let after = edge.rss_kib();
    println!(
        "\nkb benchmark: {docs} documents indexed (written in {:.0} s) beside the shipped lore; 64 connections, HTTP/1.1 over TLS, {}s x {rounds} rounds",
        started.elapsed().as_secs_f64(),
        measure.as_secs()
    );
    println!(
        "memory: {:.1} KiB of edge RSS per indexed document (the second {} documents: {} KiB -> {} KiB, {} KiB before the first; includes the store's page cache of them)",
        (after.saturating_sub(middle)) as f64 / (docs - half).max(1) as f64,
        docs - half,
        middle,
        after,
        before
    );

    let query = |q: &str| Shape {
        method: Method::POST,
        path: SEARCH.into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("authorization".into(), token.clone()),
        ],
        body: Bytes::from(json!({"query": q, "limit": 10}).to_string()),
    };
    // Two and three mid-frequency words of the vocabulary.
    let vocab = vocabulary();
    let (two, three) = (
        format!("{} {}", vocab[150], vocab[400]),
        format!("{} {} {}", vocab[120], vocab[300], vocab[700]),
    );
    let pids = [edge.pid()];
    // The second baseline: a bare server sending the very bytes of the edge's answer.
    let (bare_proc, bare) = answering_bare(env!("CARGO_BIN_EXE_bare-hello"), tmp.path(), cpus);
    let base_pids = [bare_proc.0.id()];
    let mut ratios = Vec::new();
    for q in [&two, &three] {
        let shape = query(q);
        let hits = c
            .call(
                SEARCH,
                Some(token.trim_start_matches("Bearer ")),
                json!({"query": q}),
            )
            .await
            .json();
        println!(
            "query {q:?}: {} hits in the first page",
            hits["hits"].as_array().map_or(0, Vec::len)
        );
        warm_up(&[(&c, &get), (&c, &shape)]).await;
        let r = compare(
            &format!("kb Search {:?}", q),
            Side {
                client: &c,
                shape: &get,
                pids: &pids,
            },
            Side {
                client: &c,
                shape: &shape,
                pids: &pids,
            },
            rounds,
            warmup,
            measure,
        )
        .await;
        let (base, bytes) = record_answer(&c, &bare, &shape).await;
        warm_up(&[(&bare, &base)]).await;
        let b = compare(
            &format!("kb Search {q:?} vs bare sending its {bytes} bytes"),
            Side {
                client: &bare,
                shape: &base,
                pids: &base_pids,
            },
            Side {
                client: &c,
                shape: &shape,
                pids: &pids,
            },
            rounds,
            warmup,
            measure,
        )
        .await;
        ratios.push((q.clone(), r, b, bytes));
    }
    let x = |c: Option<f64>| c.map_or("n/a".to_owned(), |c| format!("{c:.2}x"));
    for (q, r, b, bytes) in ratios {
        let terms = q.split(' ').count();
        println!(
            "kb Search over {docs} documents, {terms} terms: {:.2}x state Get's req/s (worst round {:.2}x), {} its CPU per request (worst {}), goal >= 0.30x: {}",
            r.rps,
            r.worst_rps,
            x(r.cpu),
            x(r.worst_cpu),
            verdict(r.rps >= 0.30)
        );
        println!(
            "kb Search over {docs} documents, {terms} terms ({bytes} bytes): {:.2}x the req/s of a bare server sending the same bytes (worst round {:.2}x), {} its CPU per request (worst {}); reported",
            b.rps,
            b.worst_rps,
            x(b.cpu),
            x(b.worst_cpu),
        );
    }
}
