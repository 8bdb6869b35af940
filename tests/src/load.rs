//! A closed-loop load generator: N connections, each sending its next request as soon as the last
//! answered, for a fixed time. Reports throughput and latency percentiles.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;

use crate::Client;

/// One request shape, sent over and over.
#[derive(Clone)]
pub struct Shape {
    /// Method.
    pub method: Method,
    /// Path.
    pub path: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Bytes,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Requests answered 2xx.
    pub ok: u64,
    /// Anything else (non-2xx or transport errors).
    pub errors: u64,
    /// Requests per second (2xx only).
    pub rps: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// CPU time the measured processes spent per 2xx answer over the measured window, if
    /// processes were given.
    pub cpu_per_req: Option<Duration>,
}

/// Runs `conns` connections for `warmup` (discarded) then `measure`.
pub async fn run(
    client: &Client,
    shape: &Shape,
    conns: usize,
    warmup: Duration,
    measure: Duration,
) -> Stats {
    run_measuring(client, shape, conns, warmup, measure, &[]).await
}

/// [`run`], also taking the CPU time of `pids` (the servers under test) over the measured window
/// from `/proc/<pid>/stat`.
pub async fn run_measuring(
    client: &Client,
    shape: &Shape,
    conns: usize,
    warmup: Duration,
    measure: Duration,
    pids: &[u32],
) -> Stats {
    run_expecting(client, shape, conns, warmup, measure, pids, None).await
}

/// [`run_measuring`] where answers with status `expect` (an error the benchmark asks for: a 401,
/// a 404) count as answered, like 2xx.
pub async fn run_expecting(
    client: &Client,
    shape: &Shape,
    conns: usize,
    warmup: Duration,
    measure: Duration,
    pids: &[u32],
    expect: Option<u16>,
) -> Stats {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + measure;
    let sampler = {
        let pids = pids.to_vec();
        tokio::spawn(async move {
            if pids.is_empty() {
                return None;
            }
            tokio::time::sleep_until(measure_from.into()).await;
            let before = cpu_time(&pids)?;
            tokio::time::sleep_until(end.into()).await;
            let after = cpu_time(&pids)?;
            Some(after.saturating_sub(before))
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let client = client.clone();
        let shape = shape.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(64 * 1024);
            let (mut ok, mut errors) = (0u64, 0u64);
            let headers: Vec<(&str, &str)> = shape
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let mut conn = None;
            while Instant::now() < end {
                if conn.is_none() {
                    conn = client.connect(false).await.ok();
                    if conn.is_none() {
                        errors += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                }
                let Some(c) = conn.as_mut() else { continue };
                let t0 = Instant::now();
                let res = c
                    .send(
                        shape.method.clone(),
                        &shape.path,
                        &headers,
                        shape.body.clone(),
                    )
                    .await;
                let t1 = Instant::now();
                if t0 < measure_from {
                    continue;
                }
                match res {
                    Ok(r) if r.status.is_success() || Some(r.status.as_u16()) == expect => {
                        ok += 1;
                        lat.push(u32::try_from((t1 - t0).as_micros()).unwrap_or(u32::MAX));
                    }
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        conn = None;
                    }
                }
            }
            (ok, errors, lat)
        }));
    }
    let (mut ok, mut errors, mut lat) = (0, 0, Vec::new());
    for t in tasks {
        if let Ok((o, e, l)) = t.await {
            ok += o;
            errors += e;
            lat.extend(l);
        }
    }
    let cpu = sampler.await.ok().flatten();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(Duration::ZERO, |&us| Duration::from_micros(u64::from(us)))
    };
    Stats {
        ok,
        errors,
        rps: ok as f64 / measure.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        cpu_per_req: cpu
            .filter(|_| ok > 0)
            .map(|c| c / u32::try_from(ok).unwrap_or(u32::MAX)),
    }
}

/// Clock ticks per second, for `/proc/<pid>/stat`.
fn ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// User plus system CPU time of `pids` so far.
pub fn cpu_time(pids: &[u32]) -> Option<std::time::Duration> {
    let mut ticks = 0u64;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces) start at field 3 (state).
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        ticks += f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    }
    Some(std::time::Duration::from_nanos(
        ticks * 1_000_000_000 / ticks_per_second(),
    ))
}
