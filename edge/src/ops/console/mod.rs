//! The operators' console on the admin listener (`/console`): server-rendered pages with their
//! stylesheet embedded and a strict Content-Security-Policy (the one script, the Events page's
//! live tail, is an embedded asset too: no inline script).
//!
//! The admin guard still checks the `Host` of every console request (DNS rebinding), but a
//! browser cannot send the admin bearer token, so the console has its own guard: the login page
//! is open; everything else takes a session cookie ([`session`]), and every form post the
//! session's CSRF token and an `Origin` equal to this listener. Workers have no console.

mod audit_page;
mod calls;
mod content;
mod events;
mod explorer;
mod keys;
mod overview;
mod pages;
mod players;
mod players_actions;
mod players_view;
mod refusals;
pub mod session;
pub mod settings;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use handlers::kit::context::Principal;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use maud::Markup;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::state::AppState;
use pages::Frame;
use session::{Session, Sessions};

pub use handlers::kit::api_keys::CONSOLE_SCOPE;
pub use players::prune_applied;

/// The operator name of a login with the admin token.
pub const ADMIN_OPERATOR: &str = "admin-token";

/// What the console's handlers share.
struct Console {
    state: AppState,
    sessions: Sessions,
    started: Instant,
    replica: String,
    /// Refusals by reason over the last minutes.
    refusals: Arc<refusals::History>,
    /// SHA-256 of the admin token, if one is configured (compared in constant time).
    admin_token: Option<[u8; 32]>,
    /// The Events page's open live tails.
    tails: Arc<events::Tails>,
    /// The public listener's routes and layers, which the API explorer calls in-process.
    public: Router,
}

type Shared = State<Arc<Console>>;

/// The console's routes, for the admin listener bound to `admin_port`.
pub fn app(state: AppState, admin_port: u16) -> Router {
    let c = &state.config.console;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let replica = if host.is_empty() {
        format!("admin :{admin_port}")
    } else {
        format!("{host} (admin :{admin_port})")
    };
    let console = Arc::new(Console {
        sessions: Sessions::new(admin_port, c.idle_timeout, c.max_age, c.logins_per_minute),
        started: Instant::now(),
        replica,
        refusals: Arc::new(refusals::History::default()),
        admin_token: state
            .config
            .admin_token
            .as_ref()
            .map(|t| Sha256::digest(t.expose().as_bytes()).into()),
        tails: Arc::default(),
        public: crate::app(state.clone()),
        state,
    });
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(refusals::sample(Arc::downgrade(&console.refusals)));
    }
    Router::new()
        .route("/console", get(overview::page))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/keys", get(keys::page).post(keys::create))
        .route("/console/audit", get(audit_page::page))
        .route("/console/keys/revoke", post(keys::revoke))
        .route("/console/players", get(players::page))
        .route("/console/players/act", post(players::act))
        .route("/console/assets/console.css", get(css))
        .route("/console/events", get(events::page))
        .route("/console/events/tail", get(events::tail))
        .route("/console/assets/events.js", get(script))
        .route("/console/content", get(content::page))
        .route(
            "/console/explorer",
            get(explorer::page).post(explorer::call),
        )
        .with_state(console)
        .layer(axum::middleware::map_response(secure_headers))
}

/// Every console answer: no framing, no script but the console's own assets, nothing cached, no
/// referrer to other sites.
async fn secure_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; \
             img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        // Not `no-referrer`: under it a browser sends `Origin: null` on the page's own form
        // posts, which the Origin check must refuse. `same-origin` tells other sites nothing.
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        pages::CSS,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        events::SCRIPT,
    )
        .into_response()
}

/// What an operator is told of a failure: the message of a refusal, never an internal error's.
fn shown(status: &handlers::Status) -> String {
    match status.code() {
        handlers::kit::status::Code::Internal | handlers::kit::status::Code::Unavailable => {
            tracing::warn!(error = %status.message(), "console action failed");
            "The store did not answer; this replica's log says why.".to_owned()
        }
        _ => status.message().to_owned(),
    }
}

fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

impl Console {
    fn frame<'a>(&'a self, session: &'a Session, current: &'a str) -> Frame<'a> {
        Frame {
            replica: &self.replica,
            operator: Some((&session.operator, &session.csrf)),
            current,
        }
    }

    /// Whether any credential could log in: an admin token, or an active console key.
    async fn can_log_in(&self) -> bool {
        if self.admin_token.is_some() {
            return true;
        }
        self.state.keys.list().await.is_ok_and(|keys| {
            keys.iter()
                .any(|k| k.revoked_ms.is_none() && k.scopes.iter().any(|s| s == CONSOLE_SCOPE))
        })
    }

    /// The operator `credential` names, if it is the admin token or an active console key.
    async fn verify(&self, credential: &str) -> Option<String> {
        if let Some(want) = &self.admin_token {
            let given = Sha256::digest(credential.as_bytes());
            if bool::from(given.as_slice().ct_eq(want)) {
                return Some(ADMIN_OPERATOR.to_owned());
            }
        }
        match self.state.keys.verify(credential).await {
            Ok(Principal::Service { name, scopes })
                if scopes.iter().any(|s| s == CONSOLE_SCOPE) =>
            {
                Some(name)
            }
            _ => None,
        }
    }

    /// Whether the key a session was opened with is still active (revoking a console key ends
    /// its sessions on the next request).
    async fn still_allowed(&self, session: &Session) -> bool {
        if session.operator == ADMIN_OPERATOR {
            return self.admin_token.is_some();
        }
        self.state.keys.list().await.is_ok_and(|keys| {
            keys.iter().any(|k| {
                k.name == session.operator
                    && k.revoked_ms.is_none()
                    && k.scopes.iter().any(|s| s == CONSOLE_SCOPE)
            })
        })
    }

    /// The session of a page request; without one, the answer sends to the login page.
    async fn viewer(&self, headers: &HeaderMap) -> Result<Session, Response> {
        let id = self.sessions.id_from(headers);
        let session = id.as_deref().and_then(|id| self.sessions.get(id));
        match (id, session) {
            (Some(id), Some(s)) => {
                if self.still_allowed(&s).await {
                    Ok(s)
                } else {
                    self.sessions.end(&id);
                    Err(Redirect::to("/console/login").into_response())
                }
            }
            _ => Err(Redirect::to("/console/login").into_response()),
        }
    }

    /// The session of a form post, which must come from this listener's own page (`Origin`) and
    /// carry the session's CSRF token; anything else is refused with 403.
    async fn actor(&self, headers: &HeaderMap, csrf: &str) -> Result<Session, Response> {
        let refuse = |why: &str| {
            tracing::warn!(reason = why, "console post refused");
            html(
                StatusCode::FORBIDDEN,
                pages::login(&self.replica, true, Some(why)),
            )
        };
        if !session::same_origin(headers) {
            tracing::warn!(origin = ?headers.get(header::ORIGIN), host = ?headers.get(header::HOST), "console post from another origin");
            return Err(refuse("refused: this form was not sent from this console"));
        }
        let Ok(s) = self.viewer(headers).await else {
            return Err(refuse("refused: log in first"));
        };
        if !session::csrf_ok(&s, csrf) {
            return Err(refuse(
                "refused: the form's token does not match your session",
            ));
        }
        Ok(s)
    }
}

async fn login_page(State(c): Shared, headers: HeaderMap) -> Response {
    if c.viewer(&headers).await.is_ok() {
        return Redirect::to("/console").into_response();
    }
    let can = c.can_log_in().await;
    html(StatusCode::OK, pages::login(&c.replica, can, None))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    credential: String,
}

async fn login(
    State(c): Shared,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    // A login from another page would sign the operator in as someone else (login CSRF).
    if !session::same_origin(&headers) {
        tracing::warn!(origin = ?headers.get(header::ORIGIN), host = ?headers.get(header::HOST), "console login from another origin");
        let page = pages::login(
            &c.replica,
            true,
            Some("refused: this form was not sent from this console"),
        );
        return html(StatusCode::FORBIDDEN, page);
    }
    if !c.sessions.login_allowed() {
        tracing::warn!("console login refused: too many attempts");
        let page = pages::login(
            &c.replica,
            true,
            Some("Too many login attempts on this replica; wait a minute and try again."),
        );
        return html(StatusCode::TOO_MANY_REQUESTS, page);
    }
    let Some(operator) = c.verify(form.credential.trim()).await else {
        tracing::warn!("console login refused: credential not accepted");
        let can = c.can_log_in().await;
        let page = pages::login(
            &c.replica,
            can,
            Some("Not accepted: use a key with the console scope, or the admin token."),
        );
        return html(StatusCode::UNAUTHORIZED, page);
    };
    let (id, _) = c.sessions.start(&operator);
    tracing::info!(operator = %operator, "console login");
    let mut res = Redirect::to("/console").into_response();
    if let Ok(v) = HeaderValue::from_str(&c.sessions.set_cookie(&id)) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(c): Shared,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let session = match c.actor(&headers, &form.csrf).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    if let Some(id) = c.sessions.id_from(&headers) {
        c.sessions.end(&id);
    }
    tracing::info!(operator = %session.operator, "console logout");
    let mut res = Redirect::to("/console/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&c.sessions.clear_cookie()) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}
