//! The preview page: the inbox line, the banner of problems, the email at a phone's and a
//! desktop's width side by side (light or dark), and the plain-text part.
//!
//! The page is whole without its script; `preview.js` then asks for the state a few times a
//! second and swaps in what changed without reloading the page, so the scroll position
//! stays. The email itself is never part of the page: each frame loads it from a route of
//! its own, byte for byte as sent.

use maud::{DOCTYPE, Markup, html};

use super::inbox::{Cut, Inbox};
use super::{Level, Snapshot};

/// The page's script: polls `/state.json` and updates the page in place.
pub const SCRIPT: &str = include_str!("preview.js");
/// The page's own stylesheet (the email brings its own).
pub const STYLE: &str = include_str!("preview.css");

/// The widths the email is shown at: a phone's (an iPhone's 375 CSS pixels), and a
/// desktop mail client's reading pane, a little wider than the email's 600px column.
pub const PHONE_WIDTH: u32 = 375;
pub const DESKTOP_WIDTH: u32 = 700;

/// The whole page for `snapshot`.
pub fn page(snapshot: &Snapshot) -> Markup {
    let shown = snapshot.shown.as_deref();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { "Preview: " (snapshot.issue_file.as_deref().unwrap_or("no issue yet")) }
                link rel="stylesheet" href="/preview.css";
                link rel="icon" href="data:,";
                script src="/preview.js" defer {}
            }
            body.pv data-version=(snapshot.version) data-shown-version=(snapshot.shown_version) {
                header.pv-bar {
                    p.pv-what {
                        strong { "letterpress preview" }
                        " · "
                        span #issue-file { (snapshot.issue_file.as_deref().unwrap_or("no issue yet")) }
                        " · for "
                        span #reader { (shown.map_or("", |shown| shown.reader.as_str())) }
                    }
                    p #status.pv-status role="status" { "Up to date" }
                }
                (banner(snapshot))
                (inbox(shown.map(|shown| &shown.inbox)))
                nav.pv-tabs aria-label="What to show" {
                    span.pv-group {
                        button #tab-html type="button" aria-pressed="true" { "Email" }
                        button #tab-text type="button" aria-pressed="false" { "Plain text" }
                    }
                    span.pv-group #modes {
                        button #mode-light type="button" aria-pressed="true" title="The email as sent" { "Light" }
                        button #mode-dark type="button" aria-pressed="false" title="With the theme's dark-mode rules applied, as Apple Mail and Outlook show it to a reader in dark mode" { "Dark" }
                    }
                }
                main {
                    div #pane-html.pv-frames {
                        (frame("phone", "Phone", PHONE_WIDTH, snapshot.shown_version, shown.is_some()))
                        (frame("desktop", "Desktop", DESKTOP_WIDTH, snapshot.shown_version, shown.is_some()))
                    }
                    div #pane-text.pv-text hidden {
                        pre #text { (shown.map_or("", |shown| shown.text.as_str())) }
                    }
                }
            }
        }
    }
}

fn frame(id: &str, label: &str, width: u32, version: u64, rendered: bool) -> Markup {
    html! {
        figure.pv-frame {
            figcaption { (label) " · " (width) " px" }
            // No scripts may run in it, and its links stay inside it; same origin, so the
            // page can size it to the email's height.
            iframe id={ "frame-" (id) } title={ "The email at a " (label.to_lowercase()) "'s width" }
                width=(width) height="900"
                sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"
                src=[rendered.then(|| format!("/email.html?v={version}"))] {}
        }
    }
}

/// The problems `check` reports for the issue and the files around it; hidden when there
/// are none.
fn banner(snapshot: &Snapshot) -> Markup {
    let errors = snapshot.count(Level::Error);
    html! {
        section #banner.pv-banner.pv-has-errors[errors > 0] hidden[snapshot.problems.is_empty()] aria-live="polite" {
            p #banner-summary.pv-summary { (summary(snapshot)) }
            p #stale.pv-stale hidden[!snapshot.is_stale()] {
                "The files do not render as they are: below is the last version that did."
            }
            ul #problems {
                @for problem in &snapshot.problems {
                    li class=(level_class(problem.level)) { (problem.text) }
                }
            }
        }
    }
}

/// "2 errors, 1 warning", as `check` counts them.
pub fn summary(snapshot: &Snapshot) -> String {
    let mut parts = Vec::new();
    for (level, name) in [
        (Level::Error, "error"),
        (Level::Warning, "warning"),
        (Level::Note, "note"),
    ] {
        let count = snapshot.count(level);
        if count > 0 {
            parts.push(format!(
                "{count} {name}{}",
                if count == 1 { "" } else { "s" }
            ));
        }
    }
    parts.join(", ")
}

fn level_class(level: Level) -> &'static str {
    match level {
        Level::Error => "pv-error",
        Level::Warning => "pv-warning",
        Level::Note => "pv-note",
    }
}

/// The inbox line as Gmail shows it on a desktop and on a phone; what is cut off is shown
/// faded after an ellipsis. Empty and hidden until there is a render.
fn inbox(inbox: Option<&Inbox>) -> Markup {
    let empty = Cut::at("", 0);
    let pick = |field: fn(&Inbox) -> &Cut| inbox.map_or(&empty, field);
    html! {
        section #inbox.pv-inbox aria-label="In the inbox" hidden[inbox.is_none()] {
            div.pv-inbox-desktop {
                h2 { "Gmail, desktop" }
                p.pv-row {
                    span.pv-from { (cut("from-desktop", pick(|inbox| &inbox.from))) }
                    span.pv-line {
                        strong { (cut("subject-desktop", pick(|inbox| &inbox.desktop_subject))) }
                        span.pv-snippet { " - " (cut("snippet-desktop", pick(|inbox| &inbox.desktop_snippet))) }
                    }
                }
            }
            div.pv-inbox-phone {
                h2 { "Gmail app, phone" }
                p.pv-row.pv-stacked {
                    strong.pv-from { (cut("from-phone", pick(|inbox| &inbox.from))) }
                    strong { (cut("subject-phone", pick(|inbox| &inbox.phone_subject))) }
                    span.pv-snippet { (cut("snippet-phone", pick(|inbox| &inbox.phone_snippet))) }
                }
                p #snippet-source.pv-note hidden[inbox.is_none_or(|inbox| inbox.snippet_is_preheader)] {
                    "No preheader: Gmail shows the email's first words instead."
                }
            }
        }
    }
}

fn cut(id: &str, cut: &Cut) -> Markup {
    html! {
        span id=(id) { (cut.shown) }
        span.pv-cut id={ (id) "-cut" } { (cut.hidden) }
    }
}
