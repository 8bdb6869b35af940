//! End-to-end scenarios run the same way against every deployment shape (services in-process, on
//! an `edge worker` over NATS, on the JetStream store), so "works remotely" means exactly what
//! "works locally" means.

use http::Method;
use prost::Message as _;
use proto::aicore::state::v1 as state;
use proto::rpc;
use serde_json::json;

use crate::Client;

const REGISTER: &str = rpc::auth::REGISTER.path;
const LOGIN: &str = rpc::auth::LOGIN.path;
const PUT: &str = rpc::state::PUT.path;
const GET: &str = rpc::state::GET.path;

/// A logged-in player.
#[derive(Debug, Clone)]
pub struct Session {
    /// The access token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
    /// The player id.
    pub player_id: String,
}

/// Registers `user` (password "correct-horse") and logs in.
pub async fn login(c: &Client, user: &str) -> Session {
    let r = c
        .call(
            REGISTER,
            None,
            json!({"username": user, "password": "correct-horse"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    login_again(c, user).await
}

/// Logs `user` in (registered by [`login`]).
pub async fn login_again(c: &Client, user: &str) -> Session {
    let r = c
        .call(
            LOGIN,
            None,
            json!({"username": user, "password": "correct-horse"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let v = r.json();
    assert_eq!(v["tokenType"], "Bearer");
    assert!(v["expiresInSeconds"].as_u64().unwrap_or(0) > 0);
    Session {
        access: v["accessToken"].as_str().expect("accessToken").to_owned(),
        refresh: v["refreshToken"].as_str().expect("refreshToken").to_owned(),
        player_id: v["playerId"].as_str().expect("playerId").to_owned(),
    }
}

fn pbjson_value(v: serde_json::Value) -> pbjson_types::Value {
    serde_json::from_value(v).expect("a JSON value")
}

/// State: protobuf and JSON round trips, compare-and-set conflicts naming the current version.
pub async fn state_round_trips_and_cas(c: &Client, access: &str) {
    let auth = format!("Bearer {access}");
    // Put with protobuf, read back with JSON and with protobuf.
    let value = pbjson_value(json!({"hp": 42, "items": ["sword"]}));
    let req = state::PutRequest {
        key: "save.slot1".into(),
        value: Some(value),
        expected_version: Some(0),
        player_id: String::new(),
    };
    let r = c
        .request(
            Method::POST,
            PUT,
            &[
                ("content-type", "application/proto"),
                ("authorization", &auth),
            ],
            req.encode_to_vec(),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.headers["content-type"], "application/proto");
    let v1 = state::PutResponse::decode(r.body).unwrap().version;
    assert!(v1 > 0);

    let r = c
        .call(GET, Some(access), json!({"key": "save.slot1"}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    let entry = &r.json()["entry"];
    assert_eq!(entry["value"]["items"][0], "sword");
    assert_eq!(entry["value"]["hp"].as_f64(), Some(42.0));
    assert_eq!(entry["version"], v1.to_string());

    let get = state::GetRequest {
        key: "save.slot1".into(),
        player_id: String::new(),
    };
    let r = c
        .request(
            Method::POST,
            GET,
            &[
                ("content-type", "application/proto"),
                ("authorization", &auth),
            ],
            get.encode_to_vec(),
        )
        .await;
    let entry = state::GetResponse::decode(r.body).unwrap().entry.unwrap();
    assert_eq!(entry.version, v1);

    // Compare-and-set: creating again and writing at a stale version are 409 aborted, naming the
    // current version.
    let again = c
        .call(
            PUT,
            Some(access),
            json!({"key": "save.slot1", "value": 1, "expectedVersion": "0"}),
        )
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["code"], "aborted");
    assert!(
        again.json()["message"]
            .as_str()
            .unwrap()
            .contains(&format!("version {v1}"))
    );
    let next = c
        .call(
            PUT,
            Some(access),
            json!({"key": "save.slot1", "value": 2, "expectedVersion": v1.to_string()}),
        )
        .await;
    assert_eq!(next.status, 200);
    let stale = c
        .call(
            PUT,
            Some(access),
            json!({"key": "save.slot1", "value": 3, "expectedVersion": v1.to_string()}),
        )
        .await;
    assert_eq!(stale.status, 409);
}

/// Settings: validated (every broken rule named), versioned, unknown fields refused.
pub async fn settings_validated_and_versioned(c: &Client, access: &str) {
    // Settings: validated, versioned, unknown fields refused.
    let r = c
        .call(rpc::settings::GET.path, Some(access), json!({}))
        .await
        .json();
    assert_eq!(r["settings"]["fieldOfView"], 90);
    let r = c
        .call(
            rpc::settings::UPDATE.path,
            Some(access),
            json!({"patch": {"fieldOfView": 200}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("fieldOfView")
    );
    let r = c
        .call(
            rpc::settings::UPDATE.path,
            Some(access),
            json!({"patch": {"fov": 100}}),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = c
        .call(rpc::settings::UPDATE.path, Some(access), json!({"patch": {"fieldOfView": 100, "difficulty": "DIFFICULTY_HARD"}, "expectedVersion": "0"}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json()["settings"]["difficulty"], "DIFFICULTY_HARD");
    let r = c
        .call(
            rpc::settings::UPDATE.path,
            Some(access),
            json!({"patch": {"sfxVolume": 1}, "expectedVersion": "0"}),
        )
        .await;
    assert_eq!(r.status, 409);
}
