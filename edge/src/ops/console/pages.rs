//! The console's pages: server-rendered HTML (maud escapes every value it prints, so a player's
//! name or a key's name cannot become markup), styled by one embedded stylesheet; the Events page
//! alone loads a script (its live tail), from `/console/assets/`.

use maud::{DOCTYPE, Markup, html};

/// The stylesheet, served from `/console/assets/console.css` (the CSP allows no inline style).
pub const CSS: &str = include_str!("console.css");

/// What every page shows in its header.
#[derive(Debug)]
pub struct Frame<'a> {
    /// This replica, so an operator behind a load balancer or a tunnel knows which one they see.
    pub replica: &'a str,
    /// The logged-in operator and the session's CSRF token; none on the login page.
    pub operator: Option<(&'a str, &'a str)>,
    /// Which navigation entry is current.
    pub current: &'a str,
}

const NAV: &[(&str, &str, &str)] = &[
    ("overview", "/console", "Overview"),
    ("players", "/console/players", "Players"),
    ("keys", "/console/keys", "Keys"),
    ("audit", "/console/audit", "Audit"),
    ("events", "/console/events", "Events"),
    ("content", "/console/content", "Content"),
    ("explorer", "/console/explorer", "API explorer"),
];

/// A whole page around `body`.
pub fn page(frame: &Frame<'_>, title: &str, body: Markup) -> Markup {
    page_with_script(frame, title, body, None)
}

/// A whole page around `body` that loads `script` (a path under `/console/assets/`; the CSP
/// allows no inline script).
pub fn page_with_script(
    frame: &Frame<'_>,
    title: &str,
    body: Markup,
    script: Option<&str>,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Edge console" }
                link rel="stylesheet" href="/console/assets/console.css";
                @if let Some(src) = script {
                    script src=(src) defer {}
                }
            }
            body {
                header {
                    p.brand { "Edge console" }
                    p.replica { "Replica " strong { (frame.replica) } }
                    @if let Some((operator, csrf)) = frame.operator {
                        nav aria-label="Pages" {
                            ul {
                                @for &(id, href, label) in NAV {
                                    li {
                                        @if id == frame.current {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        form.logout method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            span { "Signed in as " strong { (operator) } }
                            " "
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A hidden CSRF field for a form of this session.
pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// The login page. `can_log_in` is false when neither an admin token nor a console key exists:
/// then it says how to make one and shows no form.
pub fn login(replica: &str, can_log_in: bool, error: Option<&str>) -> Markup {
    let frame = Frame {
        replica,
        operator: None,
        current: "",
    };
    let body = html! {
        @if let Some(e) = error {
            p.error role="alert" { (e) }
        }
        @if can_log_in {
            form method="post" action="/console/login" {
                p {
                    label for="credential" { "Console key or admin token" }
                    input #credential type="password" name="credential" autocomplete="current-password" required autofocus;
                }
                button type="submit" { "Log in" }
            }
            p.note {
                "Sessions live in this replica's memory: a restart or another replica asks for a new login."
            }
        } @else {
            p { "No one can log in yet: this edge has no admin token and no key with the console scope." }
            p { "Create a console key for yourself on the edge's host (the secret is printed once):" }
            pre { code { "edge keys create --name alice --scope console" } }
            p { "or start the edge with " code { "--admin-token" } " for the first login." }
        }
    };
    page(&frame, "Log in", body)
}

/// A page that only says something went wrong, and how to go on.
pub fn message(frame: &Frame<'_>, title: &str, text: &str) -> Markup {
    page(
        frame,
        title,
        html! {
            p.error role="alert" { (text) }
            p { a href="/console" { "Back to the overview" } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_escaped() {
        let evil = "<script>alert(1)</script>\"'&";
        let frame = Frame {
            replica: evil,
            operator: Some((evil, "tok\"en")),
            current: "overview",
        };
        let out = page(&frame, evil, html! { p { (evil) } }).into_string();
        assert!(!out.contains("<script"), "{out}");
        assert!(
            out.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{out}"
        );
        assert!(out.contains(r#"value="tok&quot;en""#), "{out}");
        let login = login(evil, true, Some(evil)).into_string();
        assert!(!login.contains("<script"), "{login}");
    }

    #[test]
    fn the_current_page_is_marked_and_forms_carry_their_token() {
        let frame = Frame {
            replica: "edge-1",
            operator: Some(("alice", "t0ken")),
            current: "keys",
        };
        let out = page(&frame, "Keys", html! {}).into_string();
        assert!(
            out.contains(r#"<a href="/console/keys" aria-current="page">Keys</a>"#),
            "{out}"
        );
        assert!(
            out.contains(r#"<input type="hidden" name="csrf" value="t0ken">"#),
            "{out}"
        );
        assert!(out.contains(r#"<html lang="en">"#));
    }
}
