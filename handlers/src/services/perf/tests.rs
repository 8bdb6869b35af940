use super::*;
use crate::kit::content::Content as _;
use crate::kit::content::Source;
use crate::kit::status::Code;

const ME: &str = "0123456789abcdef0123456789abcdef";

fn perf() -> (tempfile::TempDir, PerfService) {
    let (dir, store) = crate::kit::testing::temp_store();
    (
        dir,
        PerfService::new(store, Arc::new(Table::embedded().unwrap())),
    )
}

fn player() -> Context {
    crate::kit::testing::player(ME)
}

fn laptop() -> Device {
    Device {
        model: "Contoso Book 14".into(),
        gpu: "Intel Iris Xe Graphics".into(),
        gpu_memory_mb: 2048,
        cpu_cores: 8,
        memory_mb: 16384,
        display_width: 1920,
        display_height: 1080,
        refresh_rate_hz: 60,
    }
}

fn desktop() -> Device {
    Device {
        model: "Custom Tower".into(),
        gpu: "Unknown Accelerator 9000".into(),
        gpu_memory_mb: 8192,
        cpu_cores: 12,
        memory_mb: 32768,
        display_width: 2560,
        display_height: 1440,
        refresh_rate_hz: 144,
    }
}

async fn report(svc: &PerfService, d: &Device, p95: f64) -> ReportFrameStatsResponse {
    svc.report_frame_stats(
        player(),
        ReportFrameStatsRequest {
            device: Some(d.clone()),
            current_tier: 0,
            average_frame_ms: p95 * 0.8,
            p95_frame_ms: p95,
            sample_count: 600,
            player_id: String::new(),
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn tiers_come_from_known_gpus_then_capabilities() {
    let (_d, svc) = perf();
    let r = svc
        .recommend(
            Context::default(),
            RecommendRequest {
                device: Some(laptop()),
                target_fps: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(r.tier, ProtoTier::Low as i32, "{}", r.reason);
    assert!(r.reason.contains("iris xe"));
    assert_eq!(r.target_fps, 30, "low tiers cap at 30");
    let r = svc
        .recommend(
            Context::default(),
            RecommendRequest {
                device: Some(desktop()),
                target_fps: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(r.tier, ProtoTier::High as i32, "{}", r.reason);
    assert_eq!(
        r.render_scale_percent, 100,
        "1440p is within high's native pixels"
    );
    assert_eq!(r.target_fps, 120, "the 144 Hz display, capped by the tier");
    // 4K on a high tier renders below native: sqrt(3.7M / 8.29M) = 0.668, floored to 65%.
    let mut uhd = desktop();
    (uhd.display_width, uhd.display_height) = (3840, 2160);
    let r = svc
        .recommend(
            Context::default(),
            RecommendRequest {
                device: Some(uhd),
                target_fps: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(r.render_scale_percent, 65);
    let err = svc
        .recommend(
            Context::default(),
            RecommendRequest {
                device: None,
                target_fps: 0,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[test]
fn hysteresis_steps_scale_then_tier_and_never_oscillates() {
    let a = Table::embedded().unwrap().adapt;
    let mut s = Adaptive {
        tier: 2,
        scale: 100,
        max_tier: 2,
        full_scale: [100; 4],
        target_fps: 60,
        over: 0,
        headroom: 0,
        cooldown: 0,
    };
    let budget = 1000.0 / 60.0;
    let (slow, fast, fine) = (budget * 1.5, budget * 0.5, budget);
    // Two slow reports: nothing; the third steps the scale down.
    assert!(s.report(slow, &a).is_none());
    assert!(s.report(slow, &a).is_none());
    assert!(
        s.report(slow, &a)
            .unwrap()
            .contains("render scale lowered to 90%")
    );
    // Cooldown: five more slow reports change nothing.
    for _ in 0..a.cooldown_reports {
        assert!(s.report(slow, &a).is_none());
    }
    // Down to the floor of scale, then the tier.
    let mut steps = Vec::new();
    for _ in 0..40 {
        if let Some(r) = s.report(slow, &a) {
            steps.push((s.tier, s.scale, r));
        }
    }
    assert_eq!((steps[0].0, steps[0].1), (2, 80));
    assert_eq!((steps[1].0, steps[1].1), (2, 70));
    assert_eq!((steps[2].0, steps[2].1), (1, 100), "{:?}", steps[2].2);
    assert!(steps.iter().all(|(_, scale, _)| (50..=100).contains(scale)));
    // At the lowest tier it keeps to 50% at least.
    let mut s2 = Adaptive {
        tier: 0,
        scale: 60,
        ..s.clone()
    };
    s2.cooldown = 0;
    for _ in 0..100 {
        s2.report(slow, &a);
    }
    assert_eq!(s2.scale, 50);

    // Alternating slow and fast reports: never a change.
    let before = s.clone();
    let mut calm = s.clone();
    calm.cooldown = 0;
    for i in 0..200 {
        assert!(
            calm.report(if i % 2 == 0 { slow } else { fast }, &a)
                .is_none(),
            "report {i}"
        );
    }
    assert_eq!((calm.tier, calm.scale), (before.tier, before.scale));
    // Reports within budget reset both counts.
    let mut mixed = calm.clone();
    for _ in 0..100 {
        mixed.report(slow, &a);
        mixed.report(slow, &a);
        assert!(mixed.report(fine, &a).is_none());
    }
    assert_eq!((mixed.tier, mixed.scale), (calm.tier, calm.scale));
    // Ten fast in a row step up; never above the device's tier.
    let mut up = Adaptive {
        tier: 1,
        scale: 100,
        max_tier: 2,
        full_scale: [100; 4],
        target_fps: 60,
        over: 0,
        headroom: 0,
        cooldown: 0,
    };
    for _ in 0..9 {
        assert!(up.report(fast, &a).is_none());
    }
    assert!(
        up.report(fast, &a)
            .unwrap()
            .contains("tier raised to high at 70%")
    );
    for _ in 0..500 {
        up.report(fast, &a);
    }
    assert_eq!((up.tier, up.scale), (2, 100));
}

#[tokio::test]
async fn reports_adapt_per_player_and_device_and_are_kept() {
    let (_d, svc) = perf();
    let d = desktop();
    let slow = 1000.0 / 120.0 * 2.0;
    let mut last = None;
    for _ in 0..3 {
        last = Some(report(&svc, &d, slow).await);
    }
    let r = last.unwrap();
    assert!(r.adjusted);
    assert_eq!(r.render_scale_percent, 90);
    let rec = svc
        .recommend(
            player(),
            RecommendRequest {
                device: Some(d.clone()),
                target_fps: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(rec.render_scale_percent, 90, "{}", rec.reason);
    // Another player on the same model starts fresh.
    let other = svc
        .recommend(
            Context::default(),
            RecommendRequest {
                device: Some(d),
                target_fps: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(other.render_scale_percent, 100);
    // A service must name the player.
    let svc_ctx = Context {
        principal: Some(Principal::Service {
            name: "gs".into(),
            scopes: vec!["*".into()].into(),
        }),
        ..Context::default()
    };
    let err = svc
        .report_frame_stats(
            svc_ctx,
            ReportFrameStatsRequest {
                device: Some(laptop()),
                p95_frame_ms: 10.0,
                average_frame_ms: 8.0,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn an_override_wins_until_removed() {
    let (_d, svc) = perf();
    let set = |tier: ProtoTier| SetOverrideRequest {
        device_model: "Custom Tower".into(),
        tier: tier as i32,
    };
    svc.set_override(Context::default(), set(ProtoTier::Low))
        .await
        .unwrap();
    let r = svc
        .recommend(
            player(),
            RecommendRequest {
                device: Some(desktop()),
                target_fps: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(r.tier, ProtoTier::Low as i32);
    assert!(r.reason.contains("override"));
    let rep = report(&svc, &desktop(), 1.0).await;
    assert_eq!(rep.tier, ProtoTier::Low as i32);
    assert!(!rep.adjusted);
    svc.set_override(Context::default(), set(ProtoTier::Unspecified))
        .await
        .unwrap();
    let r = svc
        .recommend(
            player(),
            RecommendRequest {
                device: Some(desktop()),
                target_fps: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(r.tier, ProtoTier::High as i32);
}

#[test]
fn a_bad_table_names_the_line() {
    let text =
        crate::embedded!("perf/tiers.toml")
            .text
            .replacen("tier = \"low\"", "tier = \"potato\"", 1);
    let err = Table::parse(&Source::embedded("tiers.toml", &text)).unwrap_err();
    assert!(err.to_string().contains("no tier \"potato\""), "{err}");
    assert!(err.line > 1);
}

#[tokio::test]
async fn a_player_keeps_records_for_a_few_device_models_only() {
    let (_dir, svc) = perf();
    // The laptop is reported first, then again after others: it stays, the oldest go.
    report(&svc, &laptop(), 16.0).await;
    for n in 0..20 {
        let d = Device {
            model: format!("Forged Phone {n}"),
            ..desktop()
        };
        report(&svc, &d, 16.0).await;
        if n == 15 {
            report(&svc, &laptop(), 16.0).await;
        }
    }
    let held = svc
        .store
        .list(&format!("perf.state.{ME}."), None, 100)
        .await
        .unwrap()
        .entries;
    assert_eq!(held.len(), MAX_DEVICES);
    let laptop_key = PerfService::state_key(ME, &laptop().model);
    assert!(
        held.iter().any(|(k, _)| *k == laptop_key),
        "a model reported recently is kept"
    );
    assert!(
        !held
            .iter()
            .any(|(k, _)| *k == PerfService::state_key(ME, "Forged Phone 0")),
        "the least recent went"
    );
}
