//! The Content page (read-only): the game content this replica serves, loaded again from the
//! same paths its services loaded it from (`[content]`), with the canon and the findings of the
//! same checks `edge content check` runs. The edge refuses to start on any finding, so a running
//! replica shows none unless its files changed under it since (a restart would then refuse them).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use handlers::content::{ContentPaths, GameContent};
use http::{HeaderMap, StatusCode};
use maud::{Markup, html};

use super::{Shared, html, pages};

/// Where the content comes from, in a sentence.
fn source(paths: &ContentPaths) -> String {
    match &paths.pack {
        Some(p) => format!(
            "the pack {} ({:?} over the shipped content)",
            p.display(),
            paths.mode
        )
        .replace("Extend", "extending")
        .replace("Replace", "replacing"),
        None => "the shipped files, and any per-file options in [content]".to_owned(),
    }
}

/// `GET /console/content`
pub(super) async fn page(State(c): Shared, headers: HeaderMap) -> Response {
    let session = match c.viewer(&headers).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let frame = c.frame(&session, "content");
    let paths = c.state.config.content.clone();
    let from = source(&paths);
    // Reading and checking every file is blocking work: off the async threads.
    let loaded = tokio::task::spawn_blocking(move || GameContent::load(&paths)).await;
    let body = match loaded {
        Ok(Ok(content)) => html! {
            p.note { "Loaded from " (from) ". " (content.summary()) "." }
            h2 { "Findings" }
            p.ok { "None: the content check finds nothing in these files." }
            (view(&content))
        },
        Ok(Err(problems)) => html! {
            p.note { "Loaded from " (from) "." }
            h2 { "Findings" }
            p.error role="alert" {
                (problems.0.len()) " finding(s): a restart with these files would be refused. "
                "The running services keep what they loaded at start."
            }
            ul { @for p in &problems.0 { li { code { (p.to_string()) } } } }
        },
        Err(e) => {
            tracing::warn!(error = %e, "console content load failed");
            return html(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::message(
                    &frame,
                    "Content",
                    "The content could not be read; this replica's log says why.",
                ),
            );
        }
    };
    html(StatusCode::OK, pages::page(&frame, "Content", body))
}

fn view(g: &GameContent) -> Markup {
    let mut by_kind: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for e in g.canon.entries() {
        by_kind
            .entry(format!("{:?}", e.kind).to_lowercase())
            .or_default()
            .push(e);
    }
    html! {
        h2 { "Quests (" (g.quests.list.len()) ")" }
        div.scroll { table {
            thead { tr { th scope="col" { "Id" } th scope="col" { "Title" } th scope="col" { "Chain" } th scope="col" { "Region" } th scope="col" { "Giver" } th scope="col" { "Objectives" } } }
            tbody { @for q in &g.quests.list { tr {
                th scope="row" { code { (q.definition.id) } }
                td { (q.definition.title) } td { (q.chain) } td { (q.region) } td { (q.giver) }
                td { (q.definition.objectives.len()) }
            } } }
        } }
        h2 { "Regions (" (g.regions.list.len()) ")" }
        div.scroll { table {
            thead { tr { th scope="col" { "Id" } th scope="col" { "Name" } th scope="col" { "Biome" } th scope="col" { "Canon" } } }
            tbody { @for r in &g.regions.list { tr {
                th scope="row" { code { (r.region.id) } }
                td { (r.region.name) } td { (r.region.biome) } td { (r.canon) }
            } } }
        } }
        h2 { "NPCs (" (g.npcs.npcs.len()) ")" }
        div.scroll { table {
            thead { tr { th scope="col" { "Id" } th scope="col" { "Name" } th scope="col" { "Archetype" } } }
            tbody { @for (_, n) in &g.npcs.npcs { tr {
                th scope="row" { code { (n.id) } } td { (n.name) } td { (n.archetype) }
            } } }
        } }
        h2 { "Story arcs (" (g.arcs.list.len()) ")" }
        div.scroll { table {
            thead { tr { th scope="col" { "Id" } th scope="col" { "Title" } th scope="col" { "Region" } th scope="col" { "Beats" } } }
            tbody { @for a in &g.arcs.list { tr {
                th scope="row" { code { (a.id) } } td { (a.title) } td { (a.region) } td { (a.beats.len()) }
            } } }
        } }
        h2 { "Lore (" (g.lore.documents.len()) ")" }
        ul { @for d in &g.lore.documents { li { code { (d.id) } " · " (d.title) } } }
        h2 { "Catalog (" (g.prices.items().count()) ")" }
        div.scroll { table {
            thead { tr { th scope="col" { "SKU" } th scope="col" { "Name" } th scope="col" { "Price (minor units)" } th scope="col" { "Most per purchase" } } }
            tbody { @for i in g.prices.items() { tr {
                th scope="row" { code { (i.sku) } } td { (i.name) } td { (i.price) } td { (i.max_quantity) }
            } } }
        } }
        h2 { "Locales (" (g.locales.list().len()) ")" }
        div.scroll { table {
            thead { tr { th scope="col" { "Locale" } th scope="col" { "Messages missing (shown in the default)" } } }
            tbody { @for (l, missing) in g.locales.details() { tr {
                th scope="row" { code { (l) } }
                td { @if missing == 0 { span.ok { "complete" } } @else { (missing) } }
            } } }
        } }
        h2 { "Canon" }
        p.note { "The world's named things, which the other files refer to (" (g.canon.file) ")." }
        @for (kind, entries) in &by_kind {
            h3 { (kind) " (" (entries.len()) ")" }
            div.scroll { table {
                thead { tr { th scope="col" { "Id" } th scope="col" { "Name" } th scope="col" { "Region" } th scope="col" { "Also called" } } }
                tbody { @for e in entries { tr {
                    th scope="row" { code { (e.id) } } td { (e.name) }
                    td { (e.region.as_deref().unwrap_or("")) } td { (e.aliases.join(", ")) }
                } } }
            } }
        }
        h3 { "Names from another world (" (g.canon.wrong.len()) ")" }
        div.scroll { table {
            thead { tr { th scope="col" { "Names" } th scope="col" { "Where" } th scope="col" { "Unless in" } th scope="col" { "Instead" } } }
            tbody { @for w in &g.canon.wrong { tr {
                td { (w.names.join(", ")) @if w.exact_case { " (this case only)" } }
                td { (w.region.as_deref().unwrap_or("everywhere")) }
                td { (w.unless.join(", ")) }
                td { (w.why) }
            } } }
        } }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_shipped_content_is_listed_with_its_canon() {
        let g = GameContent::load(&ContentPaths::default()).unwrap();
        let out = view(&g).into_string();
        for q in &g.quests.list {
            assert!(out.contains(&q.definition.id), "{}", q.definition.id);
        }
        assert!(out.contains("Names from another world"));
        assert!(out.contains("<h3>region ("), "canon grouped by kind");
        assert!(!out.contains("<script"));
    }

    #[test]
    fn the_source_is_said_in_words() {
        assert!(source(&ContentPaths::default()).starts_with("the shipped files"));
        let p = ContentPaths {
            pack: Some("/srv/pack".into()),
            ..ContentPaths::default()
        };
        assert!(source(&p).contains("/srv/pack"), "{}", source(&p));
    }
}
