//! `edge keys create|list|revoke`, and the admin endpoints behind them.
//!
//! The command opens the configured store itself (the redb file in `--data-dir`, or the JetStream
//! bucket). A running edge holds its redb file, so then the command asks that edge instead, over
//! the admin listener it recorded in the data directory (`admin-address`; never the command's own
//! `--admin-listen`, which may be another edge's): `POST /admin/keys`, `GET /admin/keys`,
//! `POST /admin/keys/{name}/revoke`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use handlers::Status;
use handlers::kit::api_keys::ApiKeys;
use handlers::kit::api_keys::KeyInfo;
use http_body_util::{BodyExt as _, Full};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cli::KeysCommand;
use crate::config::Config;
use crate::error::BoxError;
use crate::error::status_response;
use crate::ops::audit::Entry;
use crate::state::AppState;
use crate::store::{OpenError, open_store};

/// `POST /admin/keys` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateBody {
    /// Key name.
    pub name: String,
    /// Scopes.
    pub scopes: Vec<String>,
}

/// `POST /admin/keys` answer: the only time the key is shown.
#[derive(Debug, Serialize, Deserialize)]
pub struct Created {
    /// The key's record.
    #[serde(flatten)]
    pub info: KeyInfo,
    /// The key itself.
    pub key: String,
}

/// Who changes keys through `/admin/keys` (the bearer names no person; `edge keys` and scripts).
pub const ADMIN_API: &str = "admin-api";
/// Who changes keys with `edge keys` on the store itself.
pub const CLI: &str = "cli";

/// Records a key's creation in the audit.
pub async fn audit_created(
    store: &std::sync::Arc<dyn handlers::kit::store::Store>,
    events: Option<&std::sync::Arc<dyn handlers::kit::event_log::EventLog>>,
    who: &str,
    info: &KeyInfo,
) -> Result<(), Status> {
    let after = serde_json::to_value(info).map_err(Status::internal)?;
    let entry = Entry::now(who, "admin.key_created", &info.name, Value::Null, after);
    crate::ops::audit::record(store, events, &entry).await
}

/// Records a key's revocation in the audit (`before` is the key as it was).
pub async fn audit_revoked(
    store: &std::sync::Arc<dyn handlers::kit::store::Store>,
    events: Option<&std::sync::Arc<dyn handlers::kit::event_log::EventLog>>,
    who: &str,
    before: Option<&KeyInfo>,
    after: &KeyInfo,
) -> Result<(), Status> {
    let target = after.name.clone();
    let before = serde_json::to_value(before).map_err(Status::internal)?;
    let after = serde_json::to_value(after).map_err(Status::internal)?;
    let entry = Entry::now(who, "admin.key_revoked", &target, before, after);
    crate::ops::audit::record(store, events, &entry).await
}

/// The key named `name` as it is now, for an audit's `before`.
pub async fn find(keys: &ApiKeys, name: &str) -> Option<KeyInfo> {
    keys.list()
        .await
        .ok()
        .and_then(|all| all.into_iter().find(|k| k.name == name))
}

/// `POST /admin/keys`
pub async fn admin_create(State(state): State<AppState>, Json(body): Json<CreateBody>) -> Response {
    match state.keys.create(&body.name, &body.scopes).await {
        Ok((info, key)) => {
            tracing::info!(name = %info.name, prefix = %info.prefix, scopes = ?info.scopes, "API key created");
            if let Err(e) =
                audit_created(&state.store(), Some(&state.events()), ADMIN_API, &info).await
            {
                return status_response(&e);
            }
            Json(Created { info, key }).into_response()
        }
        Err(status) => status_response(&status),
    }
}

/// `GET /admin/keys`
pub async fn admin_list(State(state): State<AppState>) -> Response {
    match state.keys.list().await {
        Ok(keys) => Json(keys).into_response(),
        Err(status) => status_response(&status),
    }
}

/// `POST /admin/keys/{name}/revoke`
pub async fn admin_revoke(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    let before = find(&state.keys, &name).await;
    match state.keys.revoke(&name).await {
        Ok(info) => {
            tracing::info!(name = %info.name, prefix = %info.prefix, "API key revoked");
            if let Err(e) = audit_revoked(
                &state.store(),
                Some(&state.events()),
                ADMIN_API,
                before.as_ref(),
                &info,
            )
            .await
            {
                return status_response(&e);
            }
            Json(info).into_response()
        }
        Err(status) => status_response(&status),
    }
}

/// Where the command's keys are: the store, or a running edge that holds it.
enum Keys {
    /// The keys, and the store for the audit (no live feed: no edge runs here).
    Store(ApiKeys, Arc<dyn handlers::kit::store::Store>),
    Admin(SocketAddr),
}

/// Runs `edge keys ...`.
pub async fn run(cmd: KeysCommand) -> Result<(), BoxError> {
    let serve = match &cmd {
        KeysCommand::Create(a) => &a.serve,
        KeysCommand::List(a) => &a.serve,
        KeysCommand::Revoke(a) => &a.serve,
    };
    let config = Config::load(serve)?;
    let keys = match open_store(&config.store, &config.nats, &config.data_dir).await {
        Ok((store, _nats)) => Keys::Store(ApiKeys::new(Arc::clone(&store)), store),
        Err(OpenError::InUse(path)) => {
            let recorded = crate::store::recorded_admin_address(&config.data_dir)?;
            let addr = match recorded {
                // The admin token goes there: only to loopback, or to the operator's own address.
                Some(a) if a.ip().is_loopback() || a == config.admin_listen => a,
                Some(a) => {
                    return Err(format!(
                        "the edge holding {} recorded the admin address {a}, which is not \
                         loopback; pass it as --admin-listen {a} to confirm it",
                        path.display()
                    )
                    .into());
                }
                None => {
                    return Err(format!(
                        "{} is held by a running process that has not recorded an admin \
                         address in {} (an edge still starting, or an `edge worker`, which has \
                         no key admin); retry once the edge is up, or stop the worker",
                        path.display(),
                        config.data_dir.display()
                    )
                    .into());
                }
            };
            eprintln!(
                "{} is held by a running edge; asking it at http://{addr}/admin/keys",
                path.display()
            );
            Keys::Admin(addr)
        }
        Err(e) => return Err(e.into()),
    };
    let token = config.admin_token.as_ref();
    match cmd {
        KeysCommand::Create(a) => {
            let scopes: Vec<String> = a.scopes.iter().filter(|s| !s.is_empty()).cloned().collect();
            let created = match keys {
                Keys::Store(k, store) => {
                    let (info, key) = k.create(&a.name, &scopes).await.map_err(message)?;
                    audit_created(&store, None, CLI, &info)
                        .await
                        .map_err(message)?;
                    Created { info, key }
                }
                Keys::Admin(addr) => {
                    let body = serde_json::to_vec(&CreateBody {
                        name: a.name,
                        scopes,
                    })?;
                    admin(addr, token, http::Method::POST, "/admin/keys", body).await?
                }
            };
            eprintln!(
                "created key {:?} (prefix {}, scopes {}); it is shown once, below:",
                created.info.name,
                created.info.prefix,
                created.info.scopes.join(",")
            );
            println!("{}", created.key);
        }
        KeysCommand::List(_) => {
            let list: Vec<KeyInfo> = match keys {
                Keys::Store(k, _) => k.list().await.map_err(message)?,
                Keys::Admin(addr) => {
                    admin(addr, token, http::Method::GET, "/admin/keys", Vec::new()).await?
                }
            };
            let mut table = format!("{:<24} {:<14} {:<10} SCOPES\n", "NAME", "PREFIX", "STATE");
            for k in list {
                let state = if k.revoked_ms.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                table.push_str(&format!(
                    "{:<24} {:<14} {:<10} {}\n",
                    k.name,
                    k.prefix,
                    state,
                    k.scopes.join(",")
                ));
            }
            crate::cli::print_out(table)?;
        }
        KeysCommand::Revoke(a) => {
            let info: KeyInfo = match keys {
                Keys::Store(k, store) => {
                    let before = find(&k, &a.name).await;
                    let info = k.revoke(&a.name).await.map_err(message)?;
                    audit_revoked(&store, None, CLI, before.as_ref(), &info)
                        .await
                        .map_err(message)?;
                    info
                }
                Keys::Admin(addr) => {
                    let path = format!("/admin/keys/{}/revoke", a.name);
                    admin(addr, token, http::Method::POST, &path, Vec::new()).await?
                }
            };
            println!("revoked key {:?} (prefix {})", info.name, info.prefix);
        }
    }
    Ok(())
}

fn message(status: Status) -> BoxError {
    status.message().to_owned().into()
}

/// One request to the admin listener; the JSON answer, or its error message.
async fn admin<T: serde::de::DeserializeOwned>(
    addr: SocketAddr,
    token: Option<&crate::ops::admin_guard::Secret>,
    method: http::Method,
    path: &str,
    body: Vec<u8>,
) -> Result<T, BoxError> {
    let run = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot reach the admin listener at {addr}: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
        let driver = tokio::spawn(conn);
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, "localhost")
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(crate::ops::admin_guard::ADMIN_HEADER, "1");
        if let Some(t) = token {
            req = req.header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", t.expose()),
            );
        }
        let req = req.body(Full::new(Bytes::from(body)))?;
        let res = sender.send_request(req).await?;
        let status = res.status();
        let bytes = res.into_body().collect().await?.to_bytes();
        driver.abort();
        if !status.is_success() {
            let msg = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or_else(|| format!("the edge answered {status}"));
            return Err(msg.into());
        }
        Ok::<T, BoxError>(serde_json::from_slice(&bytes)?)
    };
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .map_err(|_| format!("no answer from the admin listener at {addr}"))?
}
