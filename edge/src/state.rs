//! [`AppState`]: what the process builds once at start (store, services, router, limits) and
//! every request shares. The composition root beside `config.rs`: it may import any module.

use std::sync::Arc;

use handlers::Deps;
use handlers::kit::api_keys::ApiKeys;
use handlers::kit::store::Store;
use handlers::services::auth::AuthService;

use crate::config::Config;
use crate::error::BoxError;
use crate::http::{Api, events, sse};
use crate::layers::{admission, ratelimit};
use crate::nats;
use crate::ops::health;
use crate::router::{ServiceRouter, llm};
use crate::store::{StoreBackend, open_store};

/// What every request handler shares: one `Arc`, so a request clones one pointer.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The contents of [`AppState`].
pub struct Shared {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// The service router (its route table).
    pub router: ServiceRouter,
    /// What the protocol adapters share: where calls go, open streams, HTTP limits.
    pub api: Api,
    /// Token verification.
    pub auth: Arc<AuthService>,
    /// Service API keys.
    pub keys: Arc<ApiKeys>,
    /// Readiness.
    pub health: Arc<health::Health>,
    /// The NATS connection, when one is configured.
    pub nats: Option<async_nats::Client>,
    /// In-flight limits and bulkheads.
    pub admission: Arc<admission::Admission>,
    /// Rate limiters (shared by every connection).
    pub limits: Arc<ratelimit::RateLimits>,
    /// 401s per client address (see auth.rs).
    pub bad_credentials: Arc<handlers::kit::leaky_bucket::LeakyBuckets<std::net::IpAddr>>,
    /// Replays of spent stream tickets per client address (see auth.rs).
    pub spent_tickets: Arc<handlers::kit::leaky_bucket::LeakyBuckets<std::net::IpAddr>>,
    /// Remote services and their responder counters, for the prober.
    pub probes: Vec<(&'static str, nats::probe::Responders)>,
    /// What NATS service discovery found, for the worker registry (with NATS).
    pub discovered: Option<Arc<nats::discovery::Discovered>>,
    deps: Deps,
}

/// Events per client address, counted as `q` allows: its burst, refilled at its rate.
fn per_address(
    q: ratelimit::ClassQuota,
) -> handlers::kit::leaky_bucket::LeakyBuckets<std::net::IpAddr> {
    handlers::kit::leaky_bucket::LeakyBuckets::new(
        q.burst,
        std::time::Duration::from_secs_f64(60.0 * f64::from(q.burst) / f64::from(q.per_minute)),
    )
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("router", &self.router)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Connects to NATS (if configured), opens the configured store and builds the services.
    pub async fn open(config: Config) -> Result<AppState, BoxError> {
        let (store, nats) = open_store(&config.store, &config.nats, &config.data_dir)
            .await
            .map_err(|e| e.to_string())?;
        AppState::build(config, store, nats).await
    }

    /// Builds the services over an existing store and NATS connection.
    pub async fn build(
        config: Config,
        store: Arc<dyn Store>,
        nats: Option<nats::Nats>,
    ) -> Result<AppState, BoxError> {
        let auth = Arc::new(
            AuthService::new(Arc::clone(&store), config.auth.clone())
                .await
                .map_err(|e| format!("cannot load token signing keys: {e}"))?,
        );
        let jetstream = match (config.store.backend, &nats) {
            (StoreBackend::Jetstream, Some(n)) => Some((&n.client, config.store.replicas)),
            _ => None,
        };
        let events = events::open_log(&config.events, &store, jetstream).await?;
        let content = handlers::content::GameContent::load(&config.content)?;
        let calls = handlers::kit::calls::Calls::new();
        let deps = Deps {
            orchestration: Arc::new(handlers::services::orchestration::Engine::new(
                Arc::clone(&store),
                Arc::new(content.workflows),
                calls.from(proto::aicore::orchestration::v1::ORCHESTRATION_SERVICE),
                config.orchestration,
            )),
            game_events: Arc::new(content.game_events),
            routes: handlers::kit::late_bound::LateBound::new(),
            discovery: handlers::kit::late_bound::LateBound::new(),
            capability: config.capability,
            perf: Arc::new(content.perf),
            quests: Arc::new(content.quests),
            phrases: Arc::new(content.phrases),
            locales: Arc::new(content.locales),
            arcs: Arc::new(content.arcs),
            library: Arc::new(handlers::services::kb::Library::new(
                Arc::clone(&store),
                Arc::new(content.lore),
            )),
            npcs: Arc::new(content.npcs),
            regions: Arc::new(content.regions),
            climate: Arc::new(content.climate),
            weather: config.weather.clone(),
            store: Arc::clone(&store),
            events,
            prices: Arc::new(content.prices),
            state_limits: config.state.limits(),
            calls,
            clock: config.time.clone(),
            schedule_wake: Arc::new(tokio::sync::Notify::new()),
            auth: Arc::clone(&auth),
            llm_spend: config.llm.spend,
            lore_budget: config.llm.lore_budget,
            providers: llm::providers(
                &config.llm,
                nats.as_ref().map(|n| {
                    Arc::new(llm::NatsProvider::new(
                        n.clone(),
                        config.nats.request_timeout,
                    )) as Arc<dyn handlers::services::llm::Provider>
                }),
            )?,
        };
        llm::seed_catalog(
            &handlers::services::models::Catalog::new(Arc::clone(&store)),
            &config.llm,
        )
        .await?;
        let limits = Arc::new(ratelimit::RateLimits::new(&config.rate_limit));
        let mut router = ServiceRouter::new(handlers::local_services(&deps));
        let mut probes = Vec::new();
        if let Some(client) = &nats {
            for short in &config.routes.remote {
                let desc = proto::ServiceDesc::by_short(short)
                    .ok_or_else(|| format!("unknown service {short}"))?;
                let endpoint = crate::router::nats::NatsEndpoint::new(
                    client.clone(),
                    desc,
                    &config.routes,
                    config.nats.request_timeout,
                );
                probes.push((desc.short, endpoint.responders()));
                router = router
                    .with_endpoint(short, Arc::new(endpoint))
                    .ok_or_else(|| format!("unknown service {short}"))?;
            }
        }
        let stack = crate::router::stack::call_stack(
            router,
            &config.faults,
            Arc::clone(&deps.store),
            &config.idempotency,
            config
                .rate_limit
                .enabled
                .then(|| Arc::clone(&limits.tokens)),
        );
        let router = stack.router;
        // The router service reports this router's table.
        deps.routes
            .connect(Arc::new(crate::router::table::LiveTable::new(
                &router,
                &config.routes,
            )));
        let discovered = nats.as_ref().map(|_| {
            let found = Arc::new(nats::discovery::Discovered::default());
            deps.discovery
                .connect(Arc::clone(&found) as Arc<dyn handlers::services::capability::Discovery>);
            found
        });
        // Services call each other through this router, wherever each one runs.
        deps.calls.connect(Arc::new(stack.between_services));
        let nats = nats.map(|n| n.client);
        let config_rate = config.rate_limit.clone();
        let admission = admission::Admission::new(config.http.max_in_flight, &config.bulkheads);
        Ok(AppState(Arc::new(Shared {
            health: Arc::new(health::Health::new(store, nats.clone())),
            api: Api {
                calls: stack.client,
                streams: Arc::new(
                    sse::Streams::new(config.streams.clone()).ending_on_logout(Arc::clone(&auth)),
                ),
                http: Arc::new(config.http.clone()),
                llm_timeout: config.llm.request_timeout,
            },
            config: Arc::new(config),
            router,
            auth,
            keys: Arc::new(ApiKeys::new(Arc::clone(&deps.store))),
            nats,
            limits,
            bad_credentials: Arc::new(per_address(config_rate.bad_credentials)),
            spent_tickets: Arc::new(per_address(config_rate.spent_tickets)),
            admission,
            probes,
            discovered,
            deps,
        })))
    }

    /// The JetStream streams this process keeps its data in (the store's bucket and the event
    /// stream, on `--store jetstream`), whose replication the cluster watch reports.
    pub fn replicated_streams(&self) -> Vec<String> {
        if self.config.store.backend != StoreBackend::Jetstream {
            return Vec::new();
        }
        vec![
            format!("KV_{}", self.config.store.bucket),
            self.config.events.stream.clone(),
        ]
    }

    /// Starts the cluster watch (`nats::quorum`) on `tracker`, with NATS.
    pub fn watch_cluster(
        &self,
        tracker: &tokio_util::task::TaskTracker,
        stop: tokio_util::sync::CancellationToken,
    ) {
        if let Some(client) = &self.nats {
            tracker.spawn(nats::quorum::run(
                client.clone(),
                self.replicated_streams(),
                self.health.cluster(),
                stop,
            ));
        }
    }

    /// The store.
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.deps.store)
    }

    /// The event log (the audit appends its reserved topic straight to it).
    pub fn events(&self) -> Arc<dyn handlers::kit::event_log::EventLog> {
        Arc::clone(&self.deps.events)
    }

    /// The time service's scheduler, if this process hosts the time service (it then owns
    /// the task that runs it).
    pub fn time_scheduler(&self) -> Option<handlers::services::time::scheduler::Scheduler> {
        self.hosts("time")
            .then(|| handlers::time_scheduler(&self.deps))
    }

    /// The weather service, to run its herald, if this process hosts weather.
    pub fn weather_herald(&self) -> Option<handlers::services::weather::WeatherService> {
        self.hosts("weather")
            .then(|| handlers::weather_herald(&self.deps))
    }

    /// The lore index, to follow other replicas' changes, if this process hosts kb.
    pub fn kb_library(&self) -> Option<Arc<handlers::services::kb::Library>> {
        self.hosts("kb").then(|| Arc::clone(&self.deps.library))
    }

    /// The world service's janitor, if this process hosts the world service.
    pub fn world_janitor(&self) -> Option<handlers::services::world::WorldService> {
        self.hosts("world")
            .then(|| handlers::world_janitor(&self.deps))
    }

    /// The workflow engine, if this process hosts orchestration (it then owns the task that
    /// resumes and drives runs).
    pub fn orchestration(&self) -> Option<Arc<handlers::services::orchestration::Engine>> {
        self.hosts("orchestration")
            .then(|| Arc::clone(&self.deps.orchestration))
    }

    /// A caller acting as `service`, through this process's router (for benchmarks and tools).
    pub fn caller(&self, service: &'static proto::ServiceDesc) -> handlers::kit::calls::Caller {
        self.deps.calls.from(service)
    }

    /// Whether this process serves service `short` in-process (so it owns its background tasks).
    fn hosts(&self, short: &str) -> bool {
        self.router
            .local_services()
            .iter()
            .any(|s| s.descriptor().short == short)
    }

    /// The services this build implements.
    pub fn implemented(&self) -> Vec<&'static str> {
        handlers::local_services(&self.deps)
            .iter()
            .map(|s| s.descriptor().short)
            .collect()
    }

    /// The services this process hosts: those its router serves in-process.
    pub fn local_services(&self) -> Vec<handlers::LocalService> {
        self.router.local_services()
    }
}

impl axum::extract::FromRef<AppState> for Api {
    fn from_ref(state: &AppState) -> Api {
        state.api.clone()
    }
}
