//! The business logic of Edge's services, the store they share, and the status every call ends
//! with. Nothing here knows about HTTP or NATS: handlers take a [`Context`] and a typed request.
//!
//! Layout, bottom up (each level imports only from the levels below it; `tests/layout.rs` checks):
//! - [`kit`]: what every service uses (context, status, clock, store, event log, calls, content
//!   files, token and key verification, small tools). Imports no service.
//! - [`services`]: the 22 services, one folder each, the same shape for all.
//! - [`content`]: every service's data files loaded together, with the checks between files.
//! - this file: [`Deps`] and the registry of services ([`local_services`]).

pub mod content;
pub mod kit;
pub mod services;

use std::collections::HashMap;
use std::sync::Arc;

pub use kit::context::{Context, Principal, SessionId};
pub use kit::status::{Code, Hint, Status};

/// A service dispatcher as the router holds it.
pub type LocalService = Arc<dyn proto::Dispatch<Context, Status>>;

/// Everything the services share.
#[derive(Clone)]
pub struct Deps {
    /// The store.
    pub store: Arc<dyn kit::store::Store>,
    /// Auth (also verifies tokens for the edge).
    pub auth: Arc<services::auth::AuthService>,
    /// LLM providers by the catalog's provider name ("grammar", "openai", "nats").
    pub providers: HashMap<String, Arc<dyn services::llm::Provider>>,
    /// The daily LLM spend caps, shared through the store.
    pub llm_spend: services::llm::spend::SpendCaps,
    /// Tokens of retrieved lore in one Narrate or Talk prompt (charged to the player).
    pub lore_budget: u32,
    /// Where the event bus keeps its events.
    pub events: Arc<dyn kit::event_log::EventLog>,
    /// What players can buy, at what price.
    pub prices: Arc<services::payment::Catalog>,
    /// What one player may keep in the state service.
    pub state_limits: services::state::StateLimits,
    /// Calls to other services, through the router (connected once it is built).
    pub calls: kit::calls::Calls,
    /// The regions of the world.
    pub regions: Arc<services::world::Regions>,
    /// Each biome's weather chain and climate.
    pub climate: Arc<services::weather::Climate>,
    /// The weather's seed.
    pub weather: services::weather::WeatherSettings,
    /// NPCs, archetypes, stimuli and actions.
    pub npcs: Arc<services::npc::Catalog>,
    /// The device tier table.
    pub perf: Arc<services::perf::Table>,
    /// The quests.
    pub quests: Arc<services::quest::Quests>,
    /// The narrative's phrase tables.
    pub phrases: Arc<services::narrative::Phrases>,
    /// The locales' messages.
    pub locales: Arc<services::language::Locales>,
    /// The lore documents' index.
    pub library: Arc<services::kb::Library>,
    /// The story arcs.
    pub arcs: Arc<services::story::Arcs>,
    /// How the game clock starts.
    pub clock: services::time::ClockSettings,
    /// Wakes the time scheduler when an event is scheduled in this process.
    pub schedule_wake: Arc<tokio::sync::Notify>,
    /// The live route table, connected by the edge once its router is built.
    pub routes: kit::late_bound::LateBound<dyn services::router::RouteTable>,
    /// NATS micro services the edge discovers, connected by the edge when it has NATS.
    pub discovery: kit::late_bound::LateBound<dyn services::capability::Discovery>,
    /// Worker registrations' lease.
    pub capability: services::capability::CapabilitySettings,
    /// The game-event routing table.
    pub game_events: Arc<services::bodybroker::GameEvents>,
    /// The workflow engine (one per process: it owns the runs it drives).
    pub orchestration: Arc<services::orchestration::Engine>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("store", &self.store.backend())
            .finish_non_exhaustive()
    }
}

/// Every service, implemented in this process: a [`proto::Registry`] literal, so a service left
/// out does not compile. In the order of [`proto::SERVICES`].
pub fn local_services(deps: &Deps) -> Vec<LocalService> {
    use proto::aicore::{
        airouter, auth, bodybroker, capability, events, kb, language, llm, models, narrative, npc,
        orchestration, payment, perf, quest, router, settings, state, story, time, weather, world,
    };
    let catalog = crate::services::models::Catalog::new(Arc::clone(&deps.store));
    proto::Registry {
        auth: auth::v1::auth_service_dispatch(Arc::clone(&deps.auth)),
        state: state::v1::state_service_dispatch(Arc::new(
            crate::services::state::StateService::new(Arc::clone(&deps.store), deps.state_limits),
        )),
        settings: settings::v1::settings_service_dispatch(Arc::new(
            crate::services::settings::SettingsService::new(
                Arc::clone(&deps.store),
                deps.locales.list(),
            ),
        )),
        payment: payment::v1::payment_service_dispatch(Arc::new(
            crate::services::payment::PaymentService::new(
                Arc::clone(&deps.store),
                Arc::clone(&deps.prices),
            )
            .with_calls(deps.calls.from(payment::v1::PAYMENT_SERVICE))
            .with_texts(deps.locales.texts()),
        )),
        models: models::v1::model_service_dispatch(Arc::new(
            crate::services::models::ModelService::new(catalog.clone()),
        )),
        airouter: airouter::v1::ai_router_service_dispatch(Arc::new(
            crate::services::airouter::AiRouterService::new(catalog.clone()),
        )),
        llm: llm::v1::llm_service_dispatch(Arc::new(crate::services::llm::LlmService::new(
            catalog,
            deps.providers.clone(),
            crate::services::llm::spend::Spend::new(Arc::clone(&deps.store), deps.llm_spend),
        ))),
        events: events::v1::event_bus_service_dispatch(Arc::new(
            crate::services::events::EventsService::new(Arc::clone(&deps.events)),
        )),
        world: world::v1::world_service_dispatch(Arc::new(
            crate::services::world::WorldService::new(
                Arc::clone(&deps.store),
                Arc::clone(&deps.regions),
                deps.calls.from(world::v1::WORLD_SERVICE),
            )
            .with_placed(deps.npcs.bodies())
            .with_texts(deps.locales.texts()),
        )),
        weather: weather::v1::weather_service_dispatch(Arc::new(weather_service(deps))),
        npc: npc::v1::npc_service_dispatch(Arc::new(
            crate::services::npc::NpcService::new(
                Arc::clone(&deps.store),
                Arc::clone(&deps.npcs),
                deps.calls.from(npc::v1::NPC_SERVICE),
            )
            .with_lore_budget(deps.lore_budget)
            .with_texts(deps.locales.texts()),
        )),
        perf: perf::v1::performance_service_dispatch(Arc::new(
            crate::services::perf::PerfService::new(
                Arc::clone(&deps.store),
                Arc::clone(&deps.perf),
            ),
        )),
        kb: kb::v1::knowledge_base_service_dispatch(Arc::new(crate::services::kb::KbService::new(
            Arc::clone(&deps.library),
        ))),
        language: language::v1::language_service_dispatch(Arc::new(
            crate::services::language::LanguageService::new(
                Arc::clone(&deps.locales),
                Arc::clone(&deps.store),
                deps.calls.from(language::v1::LANGUAGE_SERVICE),
            ),
        )),
        narrative: narrative::v1::narrative_service_dispatch(Arc::new(
            crate::services::narrative::NarrativeService::new(
                Arc::clone(&deps.phrases),
                deps.calls.from(narrative::v1::NARRATIVE_SERVICE),
            ),
        )),
        quest: quest::v1::quest_service_dispatch(Arc::new(
            crate::services::quest::QuestService::new(
                Arc::clone(&deps.store),
                Arc::clone(&deps.quests),
                deps.calls.from(quest::v1::QUEST_SERVICE),
            )
            .with_texts(deps.locales.texts()),
        )),
        story: story::v1::story_service_dispatch(Arc::new(
            crate::services::story::StoryService::new(
                Arc::clone(&deps.store),
                Arc::clone(&deps.arcs),
                Arc::clone(&deps.quests),
                deps.calls.from(story::v1::STORY_SERVICE),
            )
            .with_lore_budget(deps.lore_budget),
        )),
        router: router::v1::router_service_dispatch(Arc::new(
            crate::services::router::RouterService::new(deps.routes.clone()),
        )),
        capability: capability::v1::capability_service_dispatch(Arc::new(
            crate::services::capability::CapabilityService::new(
                Arc::clone(&deps.store),
                deps.capability,
                deps.discovery.clone(),
            ),
        )),
        bodybroker: bodybroker::v1::body_broker_service_dispatch(Arc::new(
            crate::services::bodybroker::BodyBrokerService::new(
                Arc::clone(&deps.game_events),
                deps.calls.from(bodybroker::v1::BODY_BROKER_SERVICE),
            ),
        )),
        orchestration: orchestration::v1::orchestration_service_dispatch(Arc::new(
            crate::services::orchestration::OrchestrationService::new(Arc::clone(
                &deps.orchestration,
            )),
        )),
        time: time::v1::time_service_dispatch(Arc::new(crate::services::time::TimeService::new(
            Arc::clone(&deps.store),
            deps.clock.clone(),
            Arc::clone(&deps.schedule_wake),
        ))),
    }
    .into_vec()
}

/// The time service's scheduler, for the process that hosts the time service to run.
pub fn time_scheduler(deps: &Deps) -> services::time::scheduler::Scheduler {
    services::time::scheduler::Scheduler::new(
        Arc::clone(&deps.store),
        deps.clock.clone(),
        deps.calls.from(proto::aicore::time::v1::TIME_SERVICE),
        Arc::clone(&deps.schedule_wake),
    )
}

fn weather_service(deps: &Deps) -> services::weather::WeatherService {
    services::weather::WeatherService::new(
        Arc::clone(&deps.store),
        Arc::clone(&deps.climate),
        &deps.weather,
        deps.calls.from(proto::aicore::weather::v1::WEATHER_SERVICE),
    )
}

/// The weather service, for the process that hosts it to run its herald (it pushes weather
/// changes as game hours begin).
pub fn weather_herald(deps: &Deps) -> services::weather::WeatherService {
    weather_service(deps)
}

/// The world service's janitor: finishes changes that a process left unfinished.
pub fn world_janitor(deps: &Deps) -> services::world::WorldService {
    services::world::WorldService::new(
        Arc::clone(&deps.store),
        Arc::clone(&deps.regions),
        deps.calls.from(proto::aicore::world::v1::WORLD_SERVICE),
    )
}
