//! End-to-end in a real browser (Chromium over the DevTools pipe): the console's Events page
//! tails a topic and shows a published event as text, never as markup (stored XSS); the pages
//! pass our checks of labels, headings, keyboard use and width at 1280x800 and 390x844.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use edge_e2e::Edge;
use serde_json::json;

const PUBLISH: &str = proto::rpc::events::PUBLISH.path;
/// Runs only if a browser's script runs it: the stored-XSS probe.
const XSS: &str = r#"<img src=x onerror="window.__xss=1">"#;

/// A real browser: tail a topic, publish, see the event arrive; its payload does not run; labels,
/// one heading, keyboard; at 1280x800 and 390x844.
#[tokio::test]
async fn a_browser_tails_a_topic_and_no_payload_runs() {
    let edge = Edge::start(&[]);
    let game = edge.service_key("game", "*");
    let token = edge.service_key("alice", "console");
    let base = format!("http://{}", edge.admin);
    let c = edge.client();
    for (i, (w, h)) in [(1280, 800), (390, 844)].into_iter().enumerate() {
        let r = c
            .call(
                PUBLISH,
                Some(&game),
                json!({"topic": "world", "type": format!("old{i}"), "payload": {"note": XSS}}),
            )
            .await;
        assert_eq!(r.status, 200);
        let (base, token) = (base.clone(), token.clone());
        let mut b = tokio::task::spawn_blocking(move || {
            let mut b = edge_e2e::browser::Browser::start(w, h);
            b.goto(&format!("{base}/console/login"));
            b.wait_for("document.querySelector('#credential')");
            b.eval(&format!(
                "document.querySelector('#credential').value = '{token}'; \
                 document.querySelector('form').requestSubmit(); true"
            ));
            b.wait_for("location.pathname === '/console'");
            b.goto(&format!("{base}/console/events?topic=world"));
            b.wait_for("document.querySelector('#tail-toggle')");
            // By keyboard: focus the button and press Enter, as an operator without a mouse.
            b.eval("document.querySelector('#tail-toggle').focus(); true");
            for kind in ["keyDown", "keyUp"] {
                b.page_call(
                    "Input.dispatchKeyEvent",
                    serde_json::json!({"type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": if kind == "keyDown" { "\r" } else { "" }}),
                );
            }
            b.wait_for("document.querySelector('#tail').dataset.live === 'true'");
            b
        })
        .await
        .unwrap();
        let r = c
            .call(
                PUBLISH,
                Some(&game),
                json!({"topic": "world", "type": format!("live{i}"), "payload": {"note": XSS}}),
            )
            .await;
        assert_eq!(r.status, 200);
        let base = format!("http://{}", edge.admin);
        tokio::task::spawn_blocking(move || {
            b.wait_for(&format!("document.querySelector('#tail-events').innerText.includes('live{i}')"));
            let shown = b.eval("document.querySelector('#tail-events').innerText");
            assert!(shown.as_str().unwrap().contains("onerror"), "shown as text: {shown}");
            assert_eq!(b.eval("document.querySelectorAll('#tail-events img, main img').length"), 0);
            assert_eq!(b.eval("window.__xss === undefined"), true, "no payload ran");
            assert_eq!(b.eval("document.querySelectorAll('h1').length"), 1);
            let named = b.eval(
                "[...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea')]\
                 .every(e => (e.innerText || e.getAttribute('aria-label') || (e.id && document.querySelector('label[for=' + e.id + ']'))))",
            );
            assert_eq!(named, true, "every control has a name");
            let wide = "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth).map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 5).join(' ')";
            assert_eq!(b.eval("document.documentElement.scrollWidth <= window.innerWidth"), true, "{w}x{h}: {}", b.eval(wide));
            // The explorer and content pages render at this size too.
            for page in ["/console/explorer?method=/aicore.state.v1.StateService/Put", "/console/content"] {
                b.goto(&format!("{base}{page}"));
                b.wait_for("document.querySelector('h1')");
                assert_eq!(b.eval("document.querySelectorAll('h1').length"), 1, "{page}");
                assert_eq!(b.eval("document.documentElement.scrollWidth <= window.innerWidth"), true, "{page} {w}x{h}: {}", b.eval(wide));
            }
        })
        .await
        .unwrap();
    }
}
