//! The live route table as the router service reports it: the same endpoints `/admin/routes`
//! reads, so `ListRoutes`, `Resolve` and the admin page never disagree.

use handlers::services::router::RouteTable;
use proto::aicore::router::v1::{Method, Route};

use super::{ServiceRouter, WeakRouter};
use crate::nats::RoutesConfig;

/// [`RouteTable`] over the router, held weakly (the router holds the router service).
pub struct LiveTable {
    router: WeakRouter,
    routes: RoutesConfig,
}

impl LiveTable {
    /// The table of `router`, with subjects from `routes`.
    pub fn new(router: &ServiceRouter, routes: &RoutesConfig) -> Self {
        LiveTable {
            router: router.downgrade(),
            routes: routes.clone(),
        }
    }
}

impl RouteTable for LiveTable {
    fn routes(&self) -> Vec<Route> {
        let router = self.router.upgrade();
        proto::SERVICES
            .iter()
            .map(|s| {
                let endpoint = router.as_ref().and_then(|r| r.endpoint(s.index));
                Route {
                    service: s.short.to_owned(),
                    full_name: s.full_name.to_owned(),
                    target: endpoint.map_or("none", |e| e.kind()).to_owned(),
                    healthy: endpoint.is_some_and(|e| e.healthy()),
                    methods: s
                        .methods
                        .iter()
                        .map(|m| Method {
                            name: m.name.to_owned(),
                            path: m.path.to_owned(),
                            subject: self.routes.subject(m),
                            server_streaming: m.server_streaming,
                            access: m.access.as_str().to_owned(),
                            mutates: m.mutates,
                        })
                        .collect(),
                }
            })
            .collect()
    }
}
