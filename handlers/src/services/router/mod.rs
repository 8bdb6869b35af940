//! `aicore.router.v1.RouterService`: the live route table, as the edge's router holds it: each
//! service local, on NATS or unimplemented, healthy or not, and each method with its path,
//! subject, access rule and whether it mutates. The edge provides the table through
//! [`RouteTable`], so this service knows nothing of HTTP or NATS.
//!
//! May import: `proto`, `crate::kit` (see `crate::services`).

use proto::aicore::router::v1::{
    ListRoutesRequest, ListRoutesResponse, ResolveRequest, ResolveResponse, Route,
    RouterServiceHandler,
};
use proto::{MethodDesc, ServiceDesc};

use crate::kit::context::Context;
use crate::kit::late_bound::LateBound;
use crate::kit::status::Status;

/// The route table as the process routes now.
pub trait RouteTable: Send + Sync + 'static {
    /// One route per service of the catalog, in catalog order.
    fn routes(&self) -> Vec<Route>;
}

/// The service.
#[derive(Debug, Clone)]
pub struct RouterService {
    table: LateBound<dyn RouteTable>,
}

/// Longest path `Resolve` accepts.
const MAX_PATH: usize = 200;

impl RouterService {
    /// Reads the table the edge connects to `table`.
    pub fn new(table: LateBound<dyn RouteTable>) -> Self {
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
mod tests;
