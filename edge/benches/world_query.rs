//! Where a world box query's time goes, without HTTP: 10,000 entities in hearthvale (through the
//! service, so cells, journals and events are real), then the handler, its store reads, and the
//! reply's encodings, each timed on its own. The end-to-end figure against state Get is
//! `cargo bench -p edge-e2e --bench world`; this says why it is what it is.
//! Run: `cargo bench -p edge --bench world_query`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]
use handlers::Context;
use proto::aicore::world::v1::*;
use std::sync::Arc;
use std::time::Instant;
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let config = edge::Config {
        data_dir: dir.path().to_owned(),
        ..edge::Config::default()
    };
    let state = edge::AppState::open(config).await.unwrap();
    let w = handlers::services::world::WorldService::new(
        state.store(),
        Arc::new(
            <handlers::services::world::Regions as handlers::kit::content::Content>::embedded()
                .unwrap(),
        ),
        state.caller(WORLD_SERVICE),
    );
    let svc = Context {
        principal: Some(handlers::Principal::Service {
            name: "gs".into(),
            scopes: vec!["*".into()].into(),
        }),
        ..Context::default()
    };
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 2_000_000) as f64 / 1000.0
    };
    let t = Instant::now();
    for i in 0..10_000 {
        let (px, pz) = (next(), next());
        w.upsert_entity(
            svc.clone(),
            UpsertEntityRequest {
                entity: Some(Entity {
                    id: format!("e{i}"),
                    region_id: "hearthvale".into(),
                    kind: "npc".into(),
                    position: Some(Vec3 {
                        x: 2000.0 + px,
                        y: 10.0,
                        z: pz,
                    }),
                    ..Entity::default()
                }),
                expected_version: None,
            },
        )
        .await
        .unwrap();
    }
    println!("fill {:?}", t.elapsed());
    let req = QueryEntitiesRequest {
        region_id: "hearthvale".into(),
        within: Some(Box {
            min: Some(Vec3 {
                x: 2900.0,
                y: 0.0,
                z: 900.0,
            }),
            max: Some(Vec3 {
                x: 3100.0,
                y: 100.0,
                z: 1100.0,
            }),
        }),
        kind: String::new(),
        limit: 500,
        page_token: String::new(),
    };
    let n = 2000;
    let t = Instant::now();
    let mut resp = None;
    for _ in 0..n {
        resp = Some(w.query_entities(svc.clone(), req.clone()).await.unwrap());
    }
    println!("handler {:?}/query", t.elapsed() / n);
    let resp = resp.unwrap();
    println!("answer {} scanned {}", resp.entities.len(), resp.scanned);
    let t = Instant::now();
    let mut len = 0;
    for _ in 0..n {
        len = proto::codec::encode(proto::Codec::Json, &resp)
            .unwrap()
            .len();
    }
    println!("json encode {:?}/query ({len} bytes)", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        len = proto::codec::encode(proto::Codec::Proto, &resp)
            .unwrap()
            .len();
    }
    println!("proto encode {:?}/query ({len} bytes)", t.elapsed() / n);
    let prefixes: Vec<String> = (9..12)
        .flat_map(|a| (9..12).map(move |b| format!("world.cell.hearthvale.{a}_{b}.")))
        .collect();
    let store = state.store();
    let t = Instant::now();
    for _ in 0..n {
        store.list_many(&prefixes, 500).await.unwrap();
    }
    println!("list_many {:?}/query", t.elapsed() / n);
    let one = vec![prefixes[4].clone()];
    let t = Instant::now();
    let mut cnt = 0;
    for _ in 0..n {
        cnt = store.list_many(&one, 500).await.unwrap()[0].entries.len();
    }
    println!("list_many one cell ({cnt}) {:?}", t.elapsed() / n);
    let big = vec!["world.ent.hearthvale.e1".to_owned()];
    let t = Instant::now();
    for _ in 0..n {
        cnt = store.list_many(&big, 2000).await.unwrap()[0].entries.len();
    }
    println!("list_many one range of {cnt} {:?}", t.elapsed() / n);
    let empties: Vec<String> = (0..9).map(|i| format!("world.cell.nowhere.{i}.")).collect();
    let t = Instant::now();
    for _ in 0..n {
        store.list_many(&empties, 500).await.unwrap();
    }
    println!("list_many 9 empty ranges {:?}", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        store.get("world.ent.hearthvale.e5").await.unwrap();
    }
    println!("one get {:?}", t.elapsed() / n);
}
