use std::sync::Arc;

use proto::aicore::router::v1::Method;

use super::*;

struct Fixed;

impl RouteTable for Fixed {
    fn routes(&self) -> Vec<Route> {
        proto::SERVICES
            .iter()
            .map(|s| Route {
                service: s.short.into(),
                full_name: s.full_name.into(),
                target: if s.short == "weather" {
                    "nats"
                } else {
                    "local"
                }
                .into(),
                healthy: s.short != "weather",
                methods: s
                    .methods
                    .iter()
                    .map(|m| Method {
                        name: m.name.into(),
                        path: m.path.into(),
                        subject: format!("svc.{}.v1.{}", s.short, m.snake),
                        server_streaming: m.server_streaming,
                        access: m.access.as_str().into(),
                        mutates: m.mutates,
                    })
                    .collect(),
            })
            .collect()
    }
}

fn svc(connected: bool) -> RouterService {
    let table = LateBound::<dyn RouteTable>::new();
    if connected {
        table.connect(Arc::new(Fixed));
    }
    RouterService::new(table)
}

#[tokio::test]
async fn resolves_paths_and_short_names_and_refuses_unknown_ones() {
    let svc = svc(true);
    for path in [
        "/aicore.weather.v1.WeatherService/Current",
        "weather/Current",
        "weather.Current",
    ] {
        let r = svc
            .resolve(Context::default(), ResolveRequest { path: path.into() })
            .await
            .unwrap();
        let route = r.route.unwrap();
        assert_eq!((route.target.as_str(), route.healthy), ("nats", false));
        let m = r.method.unwrap();
        assert_eq!(m.subject, "svc.weather.v1.current");
        assert!(!m.mutates);
    }
    for path in ["/nope/Nope", "weather/Nope", "nope", ""] {
        let e = svc
            .resolve(Context::default(), ResolveRequest { path: path.into() })
            .await
            .unwrap_err();
        let want = if path.is_empty() {
            crate::kit::status::Code::InvalidArgument
        } else {
            crate::kit::status::Code::NotFound
        };
        assert_eq!(e.code(), want, "{path}");
    }
    let all = svc
        .list_routes(Context::default(), ListRoutesRequest {})
        .await
        .unwrap();
    assert_eq!(all.routes.len(), 22);
}

#[tokio::test]
async fn an_unconnected_table_is_unavailable_not_empty() {
    let e = svc(false)
        .list_routes(Context::default(), ListRoutesRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), crate::kit::status::Code::Unavailable);
}
