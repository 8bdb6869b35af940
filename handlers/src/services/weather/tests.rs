use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use proto::aicore::time::v1::NowResponse;
use proto::aicore::weather::v1::WEATHER_SERVICE;
use proto::aicore::world::v1::{GetRegionRequest, GetRegionResponse};
use proto::{BoxFuture, Codec, Encoded, MethodDesc};

use super::chain::{CONDITIONS, condition, unit};
use super::*;
use crate::kit::calls::{Calls, Route};
use crate::kit::content::Content as _;
use crate::kit::content::Source;
use crate::kit::status::Code;
use crate::services::world::Regions;

/// World and time as weather sees them: the shipped regions, and a clock the test sets.
struct Others {
    regions: Regions,
    game_ms: AtomicI64,
    bus: crate::kit::calls::fake::Bus,
}

impl Route for Others {
    fn call(
        &self,
        _ctx: Context,
        method: &'static MethodDesc,
        body: Bytes,
    ) -> BoxFuture<Result<Encoded<Status>, Status>> {
        let reply = match method.path {
            "/aicore.events.v1.EventBusService/Publish" => {
                return self.bus.call(_ctx, method, body);
            }
            "/aicore.world.v1.WorldService/ListRegions" => proto::codec::encode(
                Codec::Proto,
                &proto::aicore::world::v1::ListRegionsResponse {
                    regions: self.regions.list.iter().map(|r| r.region.clone()).collect(),
                    ..Default::default()
                },
            )
            .map_err(Status::from),
            "/aicore.world.v1.WorldService/GetRegion" => {
                let req: GetRegionRequest = proto::codec::decode(Codec::Proto, &body).unwrap();
                match self.regions.get(&req.region_id) {
                    Some(r) => proto::codec::encode(
                        Codec::Proto,
                        &GetRegionResponse {
                            region: Some(r.region.clone()),
                            entity_count: 0,
                            ..Default::default()
                        },
                    )
                    .map_err(Status::from),
                    None => Err(Status::not_found(format!("no region {:?}", req.region_id))),
                }
            }
            "/aicore.time.v1.TimeService/Now" => proto::codec::encode(
                Codec::Proto,
                &NowResponse {
                    game_time_ms: self.game_ms.load(Ordering::SeqCst),
                    ..NowResponse::default()
                },
            )
            .map_err(Status::from),
            other => panic!("weather called {other}"),
        };
        Box::pin(async move { reply.map(Encoded::Unary) })
    }
}

fn weather() -> (tempfile::TempDir, WeatherService, Arc<Others>) {
    let (dir, store) = crate::kit::testing::temp_store();
    let others = Arc::new(Others {
        regions: Regions::embedded().unwrap(),
        game_ms: AtomicI64::new(400 * 24 * HOUR_MS + 7 * HOUR_MS + 1_234),
        bus: crate::kit::calls::fake::Bus::default(),
    });
    let calls = Calls::new();
    calls.connect(Arc::clone(&others) as Arc<dyn Route>);
    let svc = WeatherService::new(
        store,
        Arc::new(Climate::embedded().unwrap()),
        &WeatherSettings::default(),
        calls.from(WEATHER_SERVICE),
    );
    (dir, svc, others)
}

fn ctx() -> Context {
    Context::default()
}

/// The fields a forecast promises (not the instant it was read).
fn promised(w: &Weather) -> (i32, f64, f64, f64, bool) {
    (
        w.condition,
        w.temperature_c,
        w.wind_mps,
        w.precipitation,
        w.overridden,
    )
}

#[test]
fn every_shipped_region_has_weather() {
    let climate = Climate::embedded().unwrap();
    for r in &Regions::embedded().unwrap().list {
        assert!(
            climate.biomes.contains_key(&r.region.biome),
            "region {} has biome {} without weather",
            r.region.id,
            r.region.biome
        );
    }
}

#[test]
fn a_row_that_does_not_sum_to_one_is_refused_with_its_line() {
    let text = crate::embedded!("weather/biomes.toml").text.replacen(
        "[0.82, 0.12, 0.03, 0.00, 0.00, 0.03], # clear",
        "[0.82, 0.12, 0.03, 0.00, 0.00, 0.13], # clear",
        1,
    );
    let line = text
        .lines()
        .position(|l| l.contains("0.00, 0.13], # clear"))
        .unwrap()
        + 1;
    let err = Climate::parse(&Source::embedded("biomes.toml", &text)).unwrap_err();
    assert_eq!(err.line, line, "{err}");
    assert!(err.to_string().contains("sums to 1.1"), "{err}");
}

#[test]
fn the_chain_is_a_markov_chain_in_every_hour() {
    let climate = Climate::embedded().unwrap();
    let biome = &climate.biomes["temperate_forest"];
    let seed = 42;
    let mut prev = condition(seed, "thornwood", biome, -500);
    for h in -499..3000 {
        let next = condition(seed, "thornwood", biome, h);
        // One step from the hour before, on this hour's draw.
        let u = unit(seed, "thornwood", h, 0);
        let mut acc = 0.0;
        let expected = (0..CONDITIONS.len())
            .find(|to| {
                acc += biome_row(&climate, "temperate_forest", prev)[*to];
                u < acc
            })
            .unwrap_or(CONDITIONS.len() - 1);
        assert_eq!(next, expected, "hour {h}");
        prev = next;
    }
}

fn biome_row(climate: &Climate, biome: &str, from: usize) -> Vec<f64> {
    // Re-derive the row from the data file, independent of the model's tables.
    let _ = climate;
    let text = crate::embedded!("weather/biomes.toml").text;
    let section = text.split(&format!("[biome.{biome}]")).nth(1).unwrap();
    let rows: Vec<Vec<f64>> = section
        .lines()
        .filter(|l| l.trim_start().starts_with('[') && l.contains(','))
        .take(6)
        .map(|l| {
            l.split(']')
                .next()
                .unwrap()
                .trim_start()
                .trim_start_matches('[')
                .split(',')
                .map(|v| v.trim().parse::<f64>().unwrap())
                .collect()
        })
        .collect();
    rows[from].clone()
}

#[test]
fn biomes_shape_the_weather() {
    let climate = Climate::embedded().unwrap();
    let count = |biome: &str, region: &str| {
        let b = &climate.biomes[biome];
        let mut n = [0usize; 6];
        for h in 0..5000 {
            n[climate.hour(9, region, b, h).condition] += 1;
        }
        n
    };
    let desert = count("desert", "dunmar");
    assert_eq!(desert[4], 0, "no snow in the desert");
    assert!(desert[0] > 3500, "mostly clear: {desert:?}");
    let tundra = count("tundra", "frostholm");
    assert!(tundra[4] > 500, "snow in the tundra: {tundra:?}");
    // Same inputs, same weather; another seed, another sky.
    let b = &climate.biomes["coastal"];
    assert_eq!(
        climate.hour(1, "saltmere", b, 77),
        climate.hour(1, "saltmere", b, 77)
    );
    let differ = (0..200)
        .filter(|h| climate.hour(1, "saltmere", b, *h) != climate.hour(2, "saltmere", b, *h))
        .count();
    assert!(differ > 100);
}

#[tokio::test]
async fn the_forecast_is_what_current_says_when_the_hour_comes() {
    let (_d, svc, others) = weather();
    let forecast = svc
        .forecast(
            ctx(),
            ForecastRequest {
                region_id: "saltmere".into(),
                hours: 48,
            },
        )
        .await
        .unwrap()
        .hourly;
    assert_eq!(forecast.len(), 48);
    for entry in &forecast {
        for into_hour in [0, 59 * 60_000] {
            others
                .game_ms
                .store(entry.game_time_ms + into_hour, Ordering::SeqCst);
            let now = svc
                .current(
                    ctx(),
                    CurrentRequest {
                        region_id: "saltmere".into(),
                    },
                )
                .await
                .unwrap()
                .weather
                .unwrap();
            assert_eq!(promised(&now), promised(entry), "at {}", now.game_time_ms);
        }
    }
}

#[tokio::test]
async fn an_override_holds_then_the_region_returns_to_its_own_weather() {
    let (_d, svc, others) = weather();
    let start = others.game_ms.load(Ordering::SeqCst);
    let before = svc
        .forecast(
            ctx(),
            ForecastRequest {
                region_id: "hearthvale".into(),
                hours: 6,
            },
        )
        .await
        .unwrap()
        .hourly;
    let held = svc
        .r#override(
            ctx(),
            OverrideRequest {
                region_id: "hearthvale".into(),
                condition: Condition::Storm as i32,
                duration_minutes: 150,
            },
        )
        .await
        .unwrap()
        .weather
        .unwrap();
    assert_eq!(held.condition, Condition::Storm as i32);
    assert!(held.overridden);
    // Two game hours in: still a storm.
    others.game_ms.store(start + 120 * 60_000, Ordering::SeqCst);
    let during = svc
        .current(
            ctx(),
            CurrentRequest {
                region_id: "hearthvale".into(),
            },
        )
        .await
        .unwrap()
        .weather
        .unwrap();
    assert!(during.overridden);
    assert_eq!(during.condition, Condition::Storm as i32);
    // After it: exactly what the forecast said before the override.
    let after_hour = before
        .iter()
        .find(|w| w.game_time_ms >= start + 150 * 60_000)
        .unwrap();
    others
        .game_ms
        .store(after_hour.game_time_ms, Ordering::SeqCst);
    let after = svc
        .current(
            ctx(),
            CurrentRequest {
                region_id: "hearthvale".into(),
            },
        )
        .await
        .unwrap()
        .weather
        .unwrap();
    assert_eq!(promised(&after), promised(after_hour));
    assert!(!after.overridden);

    let bad = svc
        .r#override(
            ctx(),
            OverrideRequest {
                region_id: "hearthvale".into(),
                condition: 0,
                duration_minutes: 10,
            },
        )
        .await;
    assert_eq!(bad.unwrap_err().code(), Code::InvalidArgument);
}

#[tokio::test]
async fn errors_keep_their_codes() {
    let (_d, svc, _) = weather();
    let err = svc
        .current(
            ctx(),
            CurrentRequest {
                region_id: "atlantis".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "world's not_found, unchanged");
    assert_eq!(err.message(), "no region \"atlantis\"");
    for hours in [0, MAX_FORECAST_HOURS + 1] {
        let err = svc
            .forecast(
                ctx(),
                ForecastRequest {
                    region_id: "saltmere".into(),
                    hours,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }
}

#[test]
fn the_generator_never_changes() {
    // Golden values: if these move, every world's weather moves with them.
    let got: Vec<u64> = [
        (0, "saltmere", 0, 0),
        (1, "hearthvale", 1234, 2),
        (u64::MAX, "dunmar", -5, 3),
    ]
    .iter()
    .map(|&(seed, region, hour, stream)| (unit(seed, region, hour, stream) * 1e12) as u64)
    .collect();
    assert_eq!(got, GOLDEN);
}

const GOLDEN: [u64; 3] = [746_825_719_080, 813_026_981_853, 849_607_925_196];

#[tokio::test]
async fn each_change_of_condition_is_pushed_once_as_its_hour_begins() {
    let (_d, svc, others) = weather();
    let regions: Vec<_> = others
        .regions
        .list
        .iter()
        .map(|r| r.region.clone())
        .collect();
    let start = 400 * 24;
    let mut expected = 0;
    for hour in start..start + 48 {
        let changed = svc.announce_hour(&ctx(), &regions, hour).await.unwrap();
        for r in &regions {
            let biome = svc.climate.biomes.get(&r.biome).unwrap();
            let a = svc
                .weather(&r.id, biome, (hour - 1) * HOUR_MS, None)
                .condition;
            let b = svc.weather(&r.id, biome, hour * HOUR_MS, None).condition;
            assert_eq!(changed.contains(&r.id), a != b, "{} at hour {hour}", r.id);
        }
        expected += changed.len();
    }
    assert!(expected > 0, "two game days and no weather change anywhere");
    let published = others.bus.published.lock().unwrap().clone();
    assert_eq!(published.len(), expected);
    for i in 0..published.len() {
        let _: Weather = others.bus.payload(i);
    }
    for (topic, kind, payload, key) in &published {
        assert_eq!(kind, "weather.changed");
        let region = payload["regionId"].as_str().unwrap();
        assert_eq!(topic, &format!("world.{region}"));
        // The payload is the API's Weather: the condition as its enum name, game time as a string.
        assert!(
            payload["condition"]
                .as_str()
                .unwrap()
                .starts_with("CONDITION_"),
            "{payload}"
        );
        assert!(payload["gameTimeMs"].is_string(), "{payload}");
        assert!(key.starts_with(&format!("weather:{region}:")), "{key}");
    }
    // A replica that redoes an hour publishes nothing new.
    for hour in start..start + 48 {
        svc.announce_hour(&ctx(), &regions, hour).await.unwrap();
    }
    assert_eq!(others.bus.published.lock().unwrap().len(), expected);
}

#[tokio::test]
async fn the_herald_follows_the_clock_and_an_override_is_pushed_at_once() {
    let (_d, svc, others) = weather();
    let cursor = crate::kit::hours::HourCursor::new(Arc::clone(&svc.store), "t.weather");
    svc.herald_pass(&cursor).await.unwrap();
    assert!(
        others.bus.published.lock().unwrap().is_empty(),
        "nothing before the first hour"
    );
    // A game day passes: the changes of those hours (and only those) are announced.
    others.game_ms.fetch_add(24 * HOUR_MS, Ordering::SeqCst);
    svc.herald_pass(&cursor).await.unwrap();
    let after_a_day = others.bus.published.lock().unwrap().len();
    assert!(after_a_day > 0);
    svc.herald_pass(&cursor).await.unwrap();
    assert_eq!(others.bus.published.lock().unwrap().len(), after_a_day);

    svc.r#override(
        ctx(),
        OverrideRequest {
            region_id: "hearthvale".into(),
            condition: Condition::Storm as i32,
            duration_minutes: 90,
        },
    )
    .await
    .unwrap();
    let published = others.bus.published.lock().unwrap().clone();
    let (topic, kind, payload, _) = published.last().unwrap();
    assert_eq!(
        (topic.as_str(), kind.as_str()),
        ("world.hearthvale", "weather.changed")
    );
    assert_eq!(payload["condition"], "CONDITION_STORM");
    assert_eq!(payload["overridden"], true);
}
