//! The business logic of Edge's services, the store they share, and the status every call ends
//! with. Nothing here knows about HTTP or NATS: handlers take a [`Context`] and a typed request.

pub mod airouter;
pub mod auth;
pub mod bodybroker;
pub mod calls;
pub mod capability;
pub mod context;
pub mod data;
pub mod events;
pub mod kb;
pub mod language;
pub mod late;
pub mod leaky;
pub mod llm;
pub mod models;
pub mod narrative;
pub mod npc;
pub mod orchestration;
pub mod payment;
pub mod perf;
pub mod quest;
pub mod router;
pub mod settings;
pub mod shares;
pub mod state;
pub mod status;
pub mod store;
pub mod story;
pub mod time;
pub mod weather;
pub mod world;

use std::collections::HashMap;
use std::sync::Arc;

pub use context::{Context, Principal, SessionId};
pub use status::{Code, Hint, Status};

/// A service dispatcher as the router holds it.
pub type LocalService = Arc<dyn proto::Dispatch<Context, Status>>;

/// Everything the services share.
#[derive(Clone)]
pub struct Deps {
    /// The store.
    pub store: Arc<dyn store::Store>,
    /// Auth (also verifies tokens for the edge).
    pub auth: Arc<auth::AuthService>,
    /// LLM providers by the catalog's provider name ("grammar", "openai", "nats").
    pub providers: HashMap<String, Arc<dyn llm::Provider>>,
    /// Where the event bus keeps its events.
    pub events: Arc<dyn events::EventLog>,
    /// What players can buy, at what price.
    pub prices: Arc<payment::Catalog>,
    /// What one player may keep in the state service.
    pub state_limits: state::StateLimits,
    /// Calls to other services, through the router (connected once it is built).
    pub calls: calls::Calls,
    /// The regions of the world.
    pub regions: Arc<world::Regions>,
    /// Each biome's weather chain and climate.
    pub climate: Arc<weather::Climate>,
    /// The weather's seed.
    pub weather: weather::WeatherSettings,
    /// NPCs, archetypes, stimuli and actions.
    pub npcs: Arc<npc::Catalog>,
    /// The device tier table.
    pub perf: Arc<perf::Table>,
    /// The quests.
    pub quests: Arc<quest::Quests>,
    /// The narrative's phrase tables.
    pub phrases: Arc<narrative::Phrases>,
    /// The locales' messages.
    pub locales: Arc<language::Locales>,
    /// The lore documents' index.
    pub library: Arc<kb::Library>,
    /// The story arcs.
    pub arcs: Arc<story::Arcs>,
    /// How the game clock starts.
    pub clock: time::ClockSettings,
    /// Wakes the time scheduler when an event is scheduled in this process.
    pub schedule_wake: Arc<tokio::sync::Notify>,
    /// The live route table, connected by the edge once its router is built.
    pub routes: late::Late<dyn router::RouteTable>,
    /// NATS micro services the edge discovers, connected by the edge when it has NATS.
    pub discovery: late::Late<dyn capability::Discovery>,
    /// Worker registrations' lease.
    pub capability: capability::CapabilitySettings,
    /// The game-event routing table.
    pub game_events: Arc<bodybroker::GameEvents>,
    /// The workflow engine (one per process: it owns the runs it drives).
    pub orchestration: Arc<orchestration::Engine>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("store", &self.store.backend())
            .finish_non_exhaustive()
    }
}

/// The services implemented in this process. Services of the catalog missing here answer
/// `unimplemented` from the router.
pub fn local_services(deps: &Deps) -> Vec<LocalService> {
    use proto::aicore::{
        airouter, auth, bodybroker, capability, events, kb, language, llm, models, narrative, npc,
        orchestration, payment, perf, quest, router, settings, state, story, time, weather, world,
    };
    let catalog = crate::models::Catalog::new(Arc::clone(&deps.store));
    vec![
        auth::v1::auth_service_dispatch(Arc::clone(&deps.auth)),
        state::v1::state_service_dispatch(Arc::new(crate::state::StateService::new(
            Arc::clone(&deps.store),
            deps.state_limits,
        ))),
        settings::v1::settings_service_dispatch(Arc::new(crate::settings::SettingsService::new(
            Arc::clone(&deps.store),
        ))),
        payment::v1::payment_service_dispatch(Arc::new(crate::payment::PaymentService::new(
            Arc::clone(&deps.store),
            Arc::clone(&deps.prices),
        ))),
        models::v1::model_service_dispatch(Arc::new(crate::models::ModelService::new(
            catalog.clone(),
        ))),
        airouter::v1::ai_router_service_dispatch(Arc::new(crate::airouter::AiRouterService::new(
            catalog.clone(),
        ))),
        llm::v1::llm_service_dispatch(Arc::new(crate::llm::LlmService::new(
            catalog,
            deps.providers.clone(),
        ))),
        events::v1::event_bus_service_dispatch(Arc::new(crate::events::EventsService::new(
            Arc::clone(&deps.events),
        ))),
        world::v1::world_service_dispatch(Arc::new(crate::world::WorldService::new(
            Arc::clone(&deps.store),
            Arc::clone(&deps.regions),
            deps.calls.from(world::v1::WORLD_SERVICE),
        ))),
        weather::v1::weather_service_dispatch(Arc::new(crate::weather::WeatherService::new(
            Arc::clone(&deps.store),
            Arc::clone(&deps.climate),
            &deps.weather,
            deps.calls.from(weather::v1::WEATHER_SERVICE),
        ))),
        npc::v1::npc_service_dispatch(Arc::new(crate::npc::NpcService::new(
            Arc::clone(&deps.store),
            Arc::clone(&deps.npcs),
            deps.calls.from(npc::v1::NPC_SERVICE),
        ))),
        perf::v1::performance_service_dispatch(Arc::new(crate::perf::PerfService::new(
            Arc::clone(&deps.store),
            Arc::clone(&deps.perf),
        ))),
        kb::v1::knowledge_base_service_dispatch(Arc::new(crate::kb::KbService::new(Arc::clone(
            &deps.library,
        )))),
        language::v1::language_service_dispatch(Arc::new(crate::language::LanguageService::new(
            Arc::clone(&deps.locales),
            Arc::clone(&deps.store),
            deps.calls.from(language::v1::LANGUAGE_SERVICE),
        ))),
        narrative::v1::narrative_service_dispatch(Arc::new(
            crate::narrative::NarrativeService::new(
                Arc::clone(&deps.phrases),
                deps.calls.from(narrative::v1::NARRATIVE_SERVICE),
            ),
        )),
        quest::v1::quest_service_dispatch(Arc::new(crate::quest::QuestService::new(
            Arc::clone(&deps.store),
            Arc::clone(&deps.quests),
            deps.calls.from(quest::v1::QUEST_SERVICE),
        ))),
        story::v1::story_service_dispatch(Arc::new(crate::story::StoryService::new(
            Arc::clone(&deps.store),
            Arc::clone(&deps.arcs),
            Arc::clone(&deps.quests),
            deps.calls.from(story::v1::STORY_SERVICE),
        ))),
        router::v1::router_service_dispatch(Arc::new(crate::router::RouterService::new(
            deps.routes.clone(),
        ))),
        capability::v1::capability_service_dispatch(Arc::new(
            crate::capability::CapabilityService::new(
                Arc::clone(&deps.store),
                deps.capability,
                deps.discovery.clone(),
            ),
        )),
        bodybroker::v1::body_broker_service_dispatch(Arc::new(
            crate::bodybroker::BodyBrokerService::new(
                Arc::clone(&deps.game_events),
                deps.calls.from(bodybroker::v1::BODY_BROKER_SERVICE),
            ),
        )),
        orchestration::v1::orchestration_service_dispatch(Arc::new(
            crate::orchestration::OrchestrationService::new(Arc::clone(&deps.orchestration)),
        )),
        time::v1::time_service_dispatch(Arc::new(crate::time::TimeService::new(
            Arc::clone(&deps.store),
            deps.clock.clone(),
            Arc::clone(&deps.schedule_wake),
        ))),
    ]
}

/// The time service's scheduler, for the process that hosts the time service to run.
pub fn time_scheduler(deps: &Deps) -> time::scheduler::Scheduler {
    time::scheduler::Scheduler::new(
        Arc::clone(&deps.store),
        deps.clock.clone(),
        deps.calls.from(proto::aicore::time::v1::TIME_SERVICE),
        Arc::clone(&deps.schedule_wake),
    )
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The world service's janitor: finishes changes that a process left unfinished.
pub fn world_janitor(deps: &Deps) -> world::WorldService {
    world::WorldService::new(
        Arc::clone(&deps.store),
        Arc::clone(&deps.regions),
        deps.calls.from(proto::aicore::world::v1::WORLD_SERVICE),
    )
}
