//! Soak benchmark (not in CI): mixed traffic at a fixed rate below saturation for a long time,
//! against the release binary: logins, state reads and writes, purchases, LLM streams, event
//! publishes, and event subscriptions held open (reopened now and then). Reports each minute's
//! p50/p99 and errors, and the edge's resident memory at the end of each minute.
//! Goals: memory flat (< 5% growth after the first minute), p99 flat, 0 errors.
//! Run: `cargo build --release -p edge && cargo bench -p edge-e2e --bench soak`.
//! `SOAK_SECS` (default 600), `SOAK_RATE` (requests per second, default 300) and `SOAK_MINUTE`
//! (the reporting period in seconds, default 60) change the run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use proto::rpc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edge_e2e::bench::pinned_edge;
use edge_e2e::sse::Sse;
use edge_e2e::{Client, scenarios};
use serde_json::json;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Period {
    latencies: Vec<Duration>,
    errors: Vec<String>,
    streams: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Player {
    name: String,
    access: String,
    id: String,
}

/// One operation of the mix, by a number from 0 to 99.
async fn operation(c: &Client, p: &Player, roll: u64, n: u64) -> Result<(), String> {
    let check = |what: &str, r: edge_e2e::Response| {
        if r.status == 200 {
            Ok(())
        } else {
            Err(format!("{what}: {} {}", r.status, r.text()))
        }
    };
    let token = Some(p.access.as_str());
    match roll {
        0..=39 => check(
            "state Get",
            c.call(
                rpc::state::GET.path,
                token,
                json!({"key": "save.slot1"}),
            )
            .await,
        ),
        40..=64 => check(
            "state Put",
            c.call(
                rpc::state::PUT.path,
                token,
                json!({"key": "save.slot1", "value": {"hp": n % 100, "gold": n}}),
            )
            .await,
        ),
        65..=74 => {
            let key = format!("soak-{n}");
            check(
                "purchase",
                c.call_with(
                    rpc::payment::PURCHASE.path,
                    token,
                    &[("idempotency-key", &key)],
                    json!({"sku": "minor_healing_draught", "quantity": 1}),
                )
                .await,
            )
        }
        75..=84 => check(
            "publish",
            c.call(
                rpc::events::PUBLISH.path,
                token,
                json!({"topic": format!("player.{}", p.id), "type": "soak.tick", "payload": {"n": n}}),
            )
            .await,
        ),
        85..=94 => {
            let mut s = Sse::post(
                c,
                rpc::llm::INFER_STREAM.path,
                token,
                json!({"messages": [{"role": "user", "content": "Tell of the mill"}], "maxTokens": 24, "seed": n.to_string()}),
            )
            .await;
            if s.status != 200 {
                return Err(format!("stream: {}", s.status));
            }
            let mut last = None;
            while let Some(e) = s.next().await {
                last = e.event.clone();
            }
            match last.as_deref() {
                Some("end") => Ok(()),
                other => Err(format!("stream ended with {other:?}")),
            }
        }
        _ => {
            // Like a real client: a 429 with Retry-After (every login here comes from one
            // address, and password checks per address are bounded) is retried once, after it.
            let login = || {
                c.call(
                    rpc::auth::LOGIN.path,
                    None,
                    json!({"username": p.name, "password": "correct-horse"}),
                )
            };
            let r = login().await;
            let wait = r
                .headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            match (r.status.as_u16(), wait) {
                (429, Some(secs)) => {
                    tokio::time::sleep(Duration::from_secs(secs)).await;
                    check("login (retried)", login().await)
                }
                _ => check("login", r),
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let secs = env("SOAK_SECS", 600);
    let rate = env("SOAK_RATE", 300).max(1);
    let minute = env("SOAK_MINUTE", 60).max(1);
    let tmp = tempfile::tempdir().unwrap();
    let (edge, c) = pinned_edge(tmp.path(), None);
    let key = edge.service_key("soak", "payment");
    let mut players = Vec::new();
    for i in 0..50 {
        let name = format!("soak{i}");
        let s = scenarios::login(&c, &name).await;
        let r = c
            .call_with(
                rpc::payment::CREDIT.path,
                Some(&key),
                &[("idempotency-key", &format!("soak-credit-{i}"))],
                json!({"playerId": s.player_id, "amount": "1000000000", "reason": "soak"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let r = c
            .call(
                rpc::state::PUT.path,
                Some(&s.access),
                json!({"key": "save.slot1", "value": {"hp": 100, "gold": 0}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        players.push(Player {
            name,
            access: s.access,
            id: s.player_id,
        });
    }
    let players = Arc::new(players);
    println!(
        "\nsoak: {secs} s at {rate} req/s (40% state Get, 25% Put, 10% purchase, 10% publish, 10% LLM stream, 5% login), 20 subscriptions held; per {minute} s:"
    );

    let periods: Arc<Mutex<Vec<Period>>> = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let period_of = move |t: Instant| (t.duration_since(started).as_secs() / minute) as usize;
    // Subscriptions held open, each reopened every 30 s (a client's reconnect).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut subs = Vec::new();
    for p in players.iter().take(20) {
        let (c, access, topic, stop, periods) = (
            c.clone(),
            p.access.clone(),
            format!("player.{}", p.id),
            stop.clone(),
            periods.clone(),
        );
        subs.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut s = Sse::get(
                    &c,
                    &format!("/v1/events?topics={topic}"),
                    Some(&access),
                    &[],
                )
                .await;
                let opened = Instant::now();
                let idx = period_of(opened);
                if s.status != 200 {
                    {
                        let mut ps = periods.lock().unwrap();
                        while ps.len() <= idx {
                            ps.push(Period::default());
                        }
                        ps[idx].errors.push(format!("subscribe: {}", s.status));
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                while opened.elapsed() < Duration::from_secs(30)
                    && !stop.load(std::sync::atomic::Ordering::Relaxed)
                {
                    if s.next_within(Duration::from_secs(1)).await.is_none() && s.status != 200 {
                        break;
                    }
                }
            }
        }));
    }

    // Open loop at a fixed rate: one task per operation, so a slow answer never slows the rate.
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut n = 0u64;
    // Resident memory moves with allocator page churn; each period reports the median of one
    // sample a second.
    let mut rss = Vec::new();
    let mut samples: Vec<u64> = Vec::new();
    let mut next_sample = started;
    let mut next_report = started + Duration::from_secs(minute);
    let mut inflight = tokio::task::JoinSet::new();
    while started.elapsed() < Duration::from_secs(secs) {
        interval.tick().await;
        n += 1;
        let (c, players, periods) = (c.clone(), players.clone(), periods.clone());
        inflight.spawn(async move {
            let p = &players[(n % players.len() as u64) as usize];
            let roll = (n * 37) % 100;
            let t = Instant::now();
            let result = operation(&c, p, roll, n).await;
            let took = t.elapsed();
            let mut ps = periods.lock().unwrap();
            let idx = period_of(t);
            while ps.len() <= idx {
                ps.push(Period::default());
            }
            match result {
                Ok(()) if (85..=94).contains(&roll) => ps[idx].streams += 1,
                Ok(()) => ps[idx].latencies.push(took),
                Err(e) => ps[idx].errors.push(e),
            }
        });
        while inflight.try_join_next().is_some() {}
        if Instant::now() >= next_sample {
            samples.push(edge.rss_kib());
            next_sample += Duration::from_secs(1);
        }
        if Instant::now() >= next_report {
            samples.sort_unstable();
            rss.push(samples.get(samples.len() / 2).copied().unwrap_or(0));
            samples.clear();
            next_report += Duration::from_secs(minute);
        }
    }
    while inflight.join_next().await.is_some() {}
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in subs {
        let _ = s.await;
    }
    if rss.len() < (secs / minute) as usize {
        samples.push(edge.rss_kib());
        samples.sort_unstable();
        rss.push(samples[samples.len() / 2]);
    }

    let mut ps = std::mem::take(&mut *periods.lock().unwrap());
    let mut p99s = Vec::new();
    let mut errors = 0;
    for (i, p) in ps.iter_mut().enumerate().take(rss.len()) {
        p.latencies.sort();
        let (p50, p99) = (
            percentile(&p.latencies, 0.5),
            percentile(&p.latencies, 0.99),
        );
        p99s.push(p99);
        errors += p.errors.len();
        println!(
            "  period {:>2}: {:>6} unary, {:>5} streams, p50 {:>6.2} ms, p99 {:>6.2} ms, errors {:>3}, RSS median {:>7} KiB{}",
            i + 1,
            p.latencies.len(),
            p.streams,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            p.errors.len(),
            rss[i],
            p.errors
                .first()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
    }
    // The first third of the periods (after warm-up) against the last third.
    let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
    let k = (rss.len() / 3).max(1);
    let first = mean(&rss[..k.min(rss.len())]);
    let last = mean(&rss[rss.len().saturating_sub(k)..]);
    let growth = if first > 0.0 { last / first - 1.0 } else { 0.0 };
    let first_p99 = p99s.get(1).or(p99s.first()).copied().unwrap_or_default();
    let worst_p99 = p99s.iter().skip(1).max().copied().unwrap_or_default();
    println!(
        "memory, last third of the run against the first: {:+.1}% (goal < 5%: {}); p99 second period {:.2} ms, worst later {:.2} ms (goal flat, < 2x: {}); errors {errors} (goal 0: {})",
        growth * 100.0,
        edge_e2e::bench::verdict(growth < 0.05),
        first_p99.as_secs_f64() * 1e3,
        worst_p99.as_secs_f64() * 1e3,
        edge_e2e::bench::verdict(worst_p99 <= first_p99 * 2),
        edge_e2e::bench::verdict(errors == 0),
    );
}
