//! `aicore.router.v1.RouterService`: the live route table, as the edge's router holds it: each
//! service local, on NATS or unimplemented, healthy or not, and each method with its path,
//! subject, access rule and whether it mutates. The edge provides the table through
//! [`RouteTable`], so this service knows nothing of HTTP or NATS.

use proto::aicore::router::v1::{
    ListRoutesRequest, ListRoutesResponse, ResolveRequest, ResolveResponse, Route,
    RouterServiceHandler,
};
use proto::{MethodDesc, ServiceDesc};

use crate::context::Context;
use crate::late::Late;
use crate::status::Status;

/// The route table as the process routes now.
pub trait RouteTable: Send + Sync + 'static {
    /// One route per service of the catalog, in catalog order.
    fn routes(&self) -> Vec<Route>;
}

/// The service.
#[derive(Debug, Clone)]
pub struct RouterService {
    table: Late<dyn RouteTable>,
}

/// Longest path `Resolve` accepts.
const MAX_PATH: usize = 200;

impl RouterService {
    /// Reads the table the edge connects to `table`.
    pub fn new(table: Late<dyn RouteTable>) -> Self {
        RouterService { table }
    }

    fn routes(&self) -> Result<Vec<Route>, Status> {
        self.table.get().map(|t| t.routes()).ok_or_else(|| {
            Status::unavailable(
                "the route table is not connected yet",
                std::time::Duration::from_secs(1),
            )
        })
    }
}

/// The method `path` names: a Connect path (`/aicore.state.v1.StateService/Get`), or
/// `state/Get`, or `state.Get`.
pub fn method_named(path: &str) -> Option<&'static MethodDesc> {
    if let Some(m) = proto::method_by_path(path) {
        return Some(m);
    }
    let (svc, name) = path.split_once('/').or_else(|| path.split_once('.'))?;
    ServiceDesc::by_short(svc)?
        .methods
        .iter()
        .find(|m| m.name == name)
}

impl RouterServiceHandler for RouterService {
    type Context = Context;
    type Error = Status;

    async fn list_routes(
        &self,
        _: Context,
        _: ListRoutesRequest,
    ) -> Result<ListRoutesResponse, Status> {
        Ok(ListRoutesResponse {
            routes: self.routes()?,
        })
    }

    async fn resolve(&self, _: Context, req: ResolveRequest) -> Result<ResolveResponse, Status> {
        if req.path.is_empty() || req.path.len() > MAX_PATH {
            return Err(Status::invalid_argument(format!(
                "path must be 1 to {MAX_PATH} characters: a Connect path or \"service/Method\""
            )));
        }
        let desc = method_named(&req.path)
            .ok_or_else(|| Status::not_found(format!("no method is served at {:?}", req.path)))?;
        let mut route = self
            .routes()?
            .into_iter()
            .find(|r| r.service == desc.service)
            .ok_or_else(|| Status::not_found(format!("no route for {}", desc.service)))?;
        let method = route
            .methods
            .iter()
            .find(|m| m.name == desc.name)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no route for {}", desc.path)))?;
        route.methods.clear();
        Ok(ResolveResponse {
            route: Some(route),
            method: Some(method),
        })
    }
}

#[cfg(test)]
mod tests {
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
        let table = Late::<dyn RouteTable>::new();
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
                crate::Code::InvalidArgument
            } else {
                crate::Code::NotFound
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
        assert_eq!(e.code(), crate::Code::Unavailable);
    }
}
