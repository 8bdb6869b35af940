use std::sync::Mutex;

use proto::aicore::time::v1::{NowRequest, NowResponse, TIME_SERVICE, TimeServiceClient};
use proto::aicore::weather::v1::WEATHER_SERVICE;
use proto::{Codec, method_by_path};

use super::*;
use crate::kit::status::Code;

/// Records what reaches the router and answers with `reply`.
struct Fake {
    seen: Mutex<Vec<(Context, &'static str)>>,
    reply: Box<dyn Fn(&'static MethodDesc, Bytes) -> Result<Bytes, Status> + Send + Sync>,
}

impl Route for Fake {
    fn call(
        &self,
        ctx: Context,
        method: &'static MethodDesc,
        body: Bytes,
    ) -> BoxFuture<Result<Encoded<Status>, Status>> {
        self.seen.lock().unwrap().push((ctx, method.path));
        let r = (self.reply)(method, body).map(Encoded::Unary);
        Box::pin(async move { r })
    }
}

fn connected(
    reply: impl Fn(&'static MethodDesc, Bytes) -> Result<Bytes, Status> + Send + Sync + 'static,
) -> (Calls, Arc<Fake>) {
    let fake = Arc::new(Fake {
        seen: Mutex::new(Vec::new()),
        reply: Box::new(reply),
    });
    let calls = Calls::new();
    assert!(calls.connect(Arc::clone(&fake) as Arc<dyn Route>));
    (calls, fake)
}

fn player_ctx() -> Context {
    Context {
        principal: Some(Principal::Player {
            player_id: "0123456789abcdef0123456789abcdef".into(),
        }),
        deadline: Some(Instant::now() + Duration::from_secs(3)),
        request_id: "req-1".into(),
        idempotency_key: Some("client-key".into()),
        traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        ..Context::default()
    }
}

fn now_reply(_: &'static MethodDesc, _: Bytes) -> Result<Bytes, Status> {
    proto::codec::encode(
        Codec::Proto,
        &NowResponse {
            game_time_ms: 42,
            ..NowResponse::default()
        },
    )
    .map_err(Status::from)
}

#[tokio::test]
async fn the_callee_sees_the_caller_scoped_to_what_it_declares() {
    let (calls, fake) = connected(now_reply);
    let time = TimeServiceClient(calls.from(WEATHER_SERVICE));
    let parent = player_ctx();
    let got = time.now(parent.outgoing(), NowRequest {}).await.unwrap();
    assert_eq!(got.game_time_ms, 42, "the typed client decodes the reply");

    let seen = fake.seen.lock().unwrap();
    let (ctx, path) = &seen[0];
    assert_eq!(*path, "/aicore.time.v1.TimeService/Now");
    assert_eq!(
        ctx.principal,
        Some(Principal::Service {
            name: "svc:weather".into(),
            scopes: vec![
                "events.Publish".into(),
                "time.Now".into(),
                "world.GetRegion".into(),
                "world.ListRegions".into()
            ]
            .into(),
        })
    );
    assert_eq!(
        ctx.deadline, parent.deadline,
        "the caller's deadline travels"
    );
    assert_eq!(ctx.request_id, "req-1");
    assert_eq!(ctx.traceparent, parent.traceparent);
    assert_eq!(ctx.chain, vec!["weather"]);
    assert_eq!(
        ctx.idempotency_key, None,
        "the client's key is the caller's, never the callee's"
    );
}

#[tokio::test]
async fn a_mutating_call_carries_the_key_its_caller_derived() {
    let (calls, fake) = connected(|_, _| Ok(Bytes::new()));
    let caller = calls.from(proto::aicore::world::v1::WORLD_SERVICE);
    let publish = method_by_path("/aicore.events.v1.EventBusService/Publish").unwrap();
    proto::Transport::unary(
        &caller,
        player_ctx().outgoing().idempotent("world:e1:v3"),
        publish,
        Bytes::new(),
    )
    .await
    .unwrap();
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen[0].0.idempotency_key.as_deref(), Some("world:e1:v3"));
}

#[tokio::test]
async fn an_undeclared_call_is_refused_before_it_is_routed() {
    let (calls, fake) = connected(now_reply);
    let caller = calls.from(WEATHER_SERVICE);
    let credit = method_by_path("/aicore.payment.v1.PaymentService/Credit").unwrap();
    let err = proto::Transport::unary(&caller, player_ctx().outgoing(), credit, Bytes::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("payment.Credit"),
        "{}",
        err.message()
    );
    assert!(fake.seen.lock().unwrap().is_empty(), "nothing was routed");
}

#[tokio::test]
async fn a_cycle_is_refused_at_once() {
    let (calls, fake) = connected(now_reply);
    let time = TimeServiceClient(calls.from(WEATHER_SERVICE));
    // time -> ... -> weather -> time
    let mut parent = player_ctx();
    parent.chain = vec!["time"];
    let err = time
        .now(parent.outgoing(), NowRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("time -> weather"),
        "{}",
        err.message()
    );
    assert!(fake.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_callees_status_reaches_the_caller_unchanged() {
    let (calls, _) = connected(|_, _| Err(Status::not_found("no region \"atlantis\"")));
    let time = TimeServiceClient(calls.from(WEATHER_SERVICE));
    let err = time
        .now(player_ctx().outgoing(), NowRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "no region \"atlantis\"");
}

#[tokio::test]
async fn without_a_deadline_a_call_gets_a_bounded_one_and_a_spent_one_is_not_sent() {
    let (calls, fake) = connected(now_reply);
    let time = TimeServiceClient(calls.from(WEATHER_SERVICE));
    time.now(Context::default().outgoing(), NowRequest {})
        .await
        .unwrap();
    let left = fake.seen.lock().unwrap()[0]
        .0
        .remaining()
        .expect("a deadline");
    assert!(left <= DEFAULT_BUDGET && left > DEFAULT_BUDGET - Duration::from_secs(2));

    let spent = Context {
        deadline: Some(Instant::now()),
        ..Context::default()
    };
    let err = time.now(spent.outgoing(), NowRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert_eq!(fake.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn before_the_router_is_connected_calls_are_unavailable() {
    let time = TimeServiceClient(Calls::new().from(WEATHER_SERVICE));
    let err = time
        .now(player_ctx().outgoing(), NowRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
}

#[test]
fn admit_checks_what_arrives_from_elsewhere() {
    let now = &TIME_SERVICE.methods[0];
    let from = |chain: Vec<&'static str>| Context {
        chain,
        ..Context::default()
    };
    assert!(admit(&from(vec![]), now).is_ok(), "a client's call");
    assert!(admit(&from(vec!["weather"]), now).is_ok());
    assert_eq!(
        admit(&from(vec!["perf"]), now).unwrap_err().code(),
        Code::PermissionDenied,
        "perf declares no call to time"
    );
    assert_eq!(
        admit(&from(vec!["nope"]), now).unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        admit(&from(vec!["time", "weather"]), now)
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    let deep = vec!["perf"; MAX_DEPTH]
        .into_iter()
        .chain(["weather"])
        .collect();
    assert_eq!(
        admit(&from(deep), now).unwrap_err().code(),
        Code::FailedPrecondition
    );
}

#[test]
fn the_declarations_come_from_the_protos() {
    assert_eq!(
        WEATHER_SERVICE.calls,
        [
            "events.Publish",
            "time.Now",
            "world.GetRegion",
            "world.ListRegions"
        ]
    );
    let callers: Vec<&str> = TIME_SERVICE.called_by().map(|s| s.short).collect();
    assert!(
        callers.contains(&"weather") && callers.contains(&"npc"),
        "{callers:?}"
    );
}

#[test]
fn the_payer_follows_the_chain() {
    let (calls, _fake) = connected(now_reply);
    let now = method_by_path("/aicore.time.v1.TimeService/Now").unwrap();
    let weather = calls.from(WEATHER_SERVICE);
    let me = "0123456789abcdef0123456789abcdef";
    let other = "fedcba9876543210fedcba9876543210";
    let player = |id: &str| Principal::Player {
        player_id: id.into(),
    };
    // A player's call: the first hop is charged to the player, and so is every hop after it,
    // whoever it says it acts for.
    let first = weather.context(player_ctx().outgoing(), now).unwrap();
    assert_eq!(first.payer(), Some(&player(me)));
    let second = weather
        .context(first.outgoing().for_player(other), now)
        .unwrap();
    assert_eq!(second.origin, Some(player(me)));
    // A service key's call is charged to the key, or to the player it acts for.
    let key = Principal::Service {
        name: "game-server".into(),
        scopes: vec!["*".into()].into(),
    };
    let by_key = Context {
        principal: Some(key.clone()),
        ..player_ctx()
    };
    let hop = weather.context(by_key.outgoing(), now).unwrap();
    assert_eq!(hop.origin, Some(key.clone()));
    assert_eq!(
        weather
            .context(hop.outgoing().for_player(other), now)
            .unwrap()
            .origin,
        Some(player(other))
    );
    let for_player = weather
        .context(by_key.outgoing().for_player(other), now)
        .unwrap();
    assert_eq!(for_player.payer(), Some(&player(other)));
    // A background task (no principal) charges the service itself.
    let background = weather.context(Context::default().outgoing(), now).unwrap();
    assert_eq!(background.origin, None);
    assert_eq!(background.payer(), background.principal.as_ref());
}
