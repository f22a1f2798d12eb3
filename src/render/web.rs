//! Pages for a browser: the web version of an issue, the archive of past issues, the
//! unsubscribe page, and the sign-up form with its confirmation pages.
//!
//! They share the email's Maud components and theme, so an issue looks the same in the
//! browser as in the inbox, but nothing on them is personalised (no greeting by name, no
//! address, no unsubscribe link) and nothing is tracked. Links between pages are relative, so
//! the same files work behind any path prefix and on any static host; the stylesheet is a
//! separate file because the pages' Content-Security-Policy refuses inline styles.

use maud::{DOCTYPE, Markup, html};

use super::View;
use super::html::{Medium, header, prose, row, section_block};
use crate::model::issue::Issue;
use crate::model::newsletter::Newsletter;
use crate::theme::Theme;

/// What the browser pages need beyond the theme's email stylesheet: centring without tables,
/// a button, the archive list. Dark-mode twins follow the theme's palette.
pub const WEB_CSS: &str = include_str!("web.css");

/// The policy for the archive's pages when a static host cannot send it as a header: no
/// scripts at all, styles from the site's own stylesheet only, images from anywhere (the
/// articles' own), forms only to the site. `frame-ancestors` works only as a header.
pub const PAGE_POLICY: &str = "default-src 'none'; style-src 'self'; img-src https: http: data:; form-action 'self'; base-uri 'none'";

/// Where a page sits below the site's root, as the prefix that leads back up to it: the
/// archive is at the root, an issue at `issues/<id>/`, an unsubscribe page at
/// `unsubscribe/<token>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    Root,
    Issue,
    Unsubscribe,
    /// `confirm/<token>`.
    Confirm,
}

impl Depth {
    fn to_root(self) -> &'static str {
        match self {
            Depth::Root => "./",
            Depth::Issue => "../../",
            Depth::Unsubscribe | Depth::Confirm => "../",
        }
    }

    fn href(self, path: &str) -> String {
        format!("{}{path}", self.to_root())
    }
}

/// The theme's stylesheet followed by the pages' own rules: `style.css` on the site.
pub fn stylesheet(theme: &Theme) -> String {
    format!("{}\n{WEB_CSS}", theme.css)
}

/// The page skeleton every browser page shares.
fn page(newsletter: &Newsletter, title: &str, depth: Depth, policy: bool, body: Markup) -> Markup {
    let language = &newsletter.language;
    html! {
        (DOCTYPE)
        html lang=(language.as_str()) dir=(language.direction()) {
            head {
                meta charset="utf-8";
                @if policy {
                    meta http-equiv="Content-Security-Policy" content=(PAGE_POLICY);
                }
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                meta name="color-scheme" content="light dark";
                title { (title) }
                link rel="stylesheet" href=(depth.href("style.css"));
                link rel="alternate" type="application/atom+xml" title=(newsletter.name) href=(depth.href("feed.xml"));
                // No favicon request to fail: the browser would otherwise ask for /favicon.ico.
                link rel="icon" href="data:,";
            }
            body.lp-body.lp-page { (body) }
        }
    }
}

/// The centred column of the email, as a browser page.
fn column(content: Markup) -> Markup {
    html! {
        table.lp-wrapper role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" {
            tr {
                td.lp-wrapper-cell align="center" {
                    table.lp-container role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" {
                        (content)
                    }
                }
            }
        }
    }
}

/// The postal address, and on an issue's page the way back to the others and the feed.
fn web_footer(newsletter: &Newsletter, depth: Depth, links: bool) -> Markup {
    row(
        "lp-footer",
        html! {
            p.lp-postal-address {
                @for (index, line) in newsletter.postal_address.lines().iter().enumerate() {
                    @if index > 0 { br; }
                    (line)
                }
            }
            @if links {
                p.lp-footer-links {
                    a href=(depth.to_root()) { "All issues" }
                    " · "
                    a href=(depth.href("subscribe")) { "Subscribe by email" }
                    " · "
                    a href=(depth.href("feed.xml")) { "Atom feed" }
                }
            }
        },
    )
}

/// The web version of an issue: the email's content without anything personal.
pub fn issue_page(view: &View) -> Markup {
    let depth = Depth::Issue;
    let title = format!("{} · {}", view.issue.subject, view.newsletter.name);
    page(
        view.newsletter,
        &title,
        depth,
        true,
        column(html! {
            (header(view))
            @if let Some(intro) = &view.issue.intro {
                (row("lp-content lp-prose", prose(intro)))
            }
            @for section in &view.issue.sections {
                (section_block(view, section, Medium::Web))
            }
            @if let Some(outro) = &view.issue.outro {
                (row("lp-outro lp-prose", prose(outro)))
            }
            (web_footer(view.newsletter, depth, true))
        }),
    )
}

/// The archive: every issue that went out, newest first.
pub fn archive_page(newsletter: &Newsletter, theme: &Theme, issues: &[&Issue]) -> Markup {
    let depth = Depth::Root;
    let texts = &theme.texts;
    page(
        newsletter,
        &format!("{} · All issues", newsletter.name),
        depth,
        true,
        column(html! {
            (row("lp-header", html! {
                h1.lp-title { (newsletter.name) }
                @if let Some(description) = &newsletter.description {
                    p.lp-description { (description) }
                }
                p.lp-issue-meta {
                    "All issues · "
                    a.lp-feed-link href=(depth.href("subscribe")) { "Subscribe by email" }
                    " · "
                    a.lp-feed-link href=(depth.href("feed.xml")) { "Atom feed" }
                }
            }))
            (row("lp-section lp-archive", html! {
                @if issues.is_empty() {
                    p.lp-archive-empty { "No issue has been sent yet." }
                }
                @for issue in issues {
                    table.lp-card role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" {
                        tr {
                            td.lp-card-cell {
                                p.lp-card-meta {
                                    @if let Some(number) = issue.number {
                                        (texts.issue_label.replace("{number}", &number.to_string())) " · "
                                    }
                                    time datetime=(issue.date.format("%Y-%m-%d").to_string()) {
                                        (issue.date.format(&texts.date_format).to_string())
                                    }
                                }
                                h2.lp-card-title {
                                    a href=(depth.href(&format!("issues/{}/", issue.id))) { (issue.subject) }
                                }
                                @if let Some(preheader) = &issue.preheader {
                                    div.lp-card-excerpt { p { (preheader) } }
                                }
                            }
                        }
                    }
                }
            }))
            (web_footer(newsletter, depth, false))
        }),
    )
}

/// Where a subscriber stands, as their unsubscribe page tells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// On the list and not suppressed: they get every issue.
    Receiving,
    /// Not suppressed, but not an active subscriber either (marked unsubscribed in the list,
    /// or removed from it).
    NotReceiving,
    /// They unsubscribed with their link, and may undo it.
    UnsubscribedThemselves,
    /// Suppressed by the editor (or after bounces): only the editor can undo it.
    SuppressedByEditor,
}

/// What the subscriber just did on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAction {
    Viewed,
    Unsubscribed,
    Resubscribed,
}

/// The unsubscribe page for one subscriber: a single button that POSTs (a GET never
/// unsubscribes), and after unsubscribing, one that undoes it. `masked` is the address as
/// the page may show it.
pub fn unsubscribe_page(
    newsletter: &Newsletter,
    masked: &str,
    standing: Standing,
    action: LinkAction,
) -> Markup {
    let name = newsletter.name.as_str();
    let contact = newsletter.reply_address().as_str();
    let (heading, message) = match (standing, action) {
        (Standing::Receiving, LinkAction::Resubscribed) => (
            "Welcome back".to_string(),
            format!("{masked} will get {name} again."),
        ),
        (Standing::Receiving, _) => (
            format!("Unsubscribe from {name}?"),
            format!("{masked} gets {name}. One click and it stops: no account, no questions."),
        ),
        (Standing::NotReceiving, _) => (
            format!("Unsubscribe from {name}"),
            format!(
                "{masked} does not get {name} at the moment. Unsubscribe to make sure it never does."
            ),
        ),
        (Standing::UnsubscribedThemselves | Standing::SuppressedByEditor, _) => (
            "You are unsubscribed".to_string(),
            format!("{masked} will not get {name} any more."),
        ),
    };
    page(
        newsletter,
        &format!("{heading} · {name}"),
        Depth::Unsubscribe,
        false,
        panel(
            newsletter,
            html! {
                h1.lp-page-heading { (heading) }
                p { (message) }
                @match standing {
                    Standing::Receiving | Standing::NotReceiving => {
                        // The same body a mail app sends for one-click unsubscribe (RFC 8058).
                        form method="post" {
                            input type="hidden" name="List-Unsubscribe" value="One-Click";
                            button.lp-button type="submit" { "Unsubscribe" }
                        }
                    }
                    Standing::UnsubscribedThemselves => {
                        form.lp-undo method="post" {
                            p { "Unsubscribed by mistake?" }
                            button.lp-button.lp-button-quiet type="submit" name="action" value="resubscribe" { "Resubscribe" }
                        }
                    }
                    Standing::SuppressedByEditor => {
                        p.lp-note {
                            "To be added back, write to "
                            a href=(format!("mailto:{contact}")) { (contact) } "."
                        }
                    }
                }
            },
        ),
    )
}

/// A small page for what went wrong. It never says whether an address is on the list.
pub fn problem_page(
    newsletter: &Newsletter,
    depth: Depth,
    heading: &str,
    message: Markup,
) -> Markup {
    page(
        newsletter,
        &format!("{heading} · {}", newsletter.name),
        depth,
        false,
        panel(
            newsletter,
            html! {
                h1.lp-page-heading { (heading) }
                (message)
            },
        ),
    )
}

/// The page for an unsubscribe link that is not valid, whatever is wrong with it.
pub fn invalid_link_page(newsletter: &Newsletter) -> Markup {
    let contact = newsletter.reply_address().as_str();
    problem_page(
        newsletter,
        Depth::Unsubscribe,
        "This link does not work",
        html! {
            p { "The unsubscribe link may have been cut short when it was copied. Use the link in your latest email, or the unsubscribe button your mail app shows." }
            p.lp-note {
                "Or write to "
                a href=(format!("mailto:{contact}")) { (contact) }
                " and we will take you off the list."
            }
        },
    )
}

/// Where the unsubscribe link of a test email (a proof) leads: it unsubscribes nobody.
pub fn test_link_page(newsletter: &Newsletter) -> Markup {
    problem_page(
        newsletter,
        Depth::Unsubscribe,
        "This link came in a test",
        html! {
            p { "This is the unsubscribe link of a test email of " (newsletter.name) ". In the real issue, each reader's link unsubscribes them with one click." }
            p.lp-note { "Nothing was changed." }
        },
    )
}

/// What the sign-up form shows: what was typed, and what is wrong with it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignupForm<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub problem: Option<&'a str>,
}

/// The name of the field a person leaves empty and a form-filling bot does not.
pub const HONEYPOT_FIELD: &str = "website";

/// The sign-up page: the address and an optional name, and a button; no script. The form
/// posts to itself.
pub fn subscribe_page(newsletter: &Newsletter, form: &SignupForm) -> Markup {
    let name = newsletter.name.as_str();
    page(
        newsletter,
        &format!("Subscribe to {name}"),
        Depth::Root,
        false,
        panel(
            newsletter,
            html! {
                h1.lp-page-heading { "Subscribe to " (name) }
                @if let Some(description) = &newsletter.description {
                    p { (description) }
                }
                form.lp-form method="post" action="subscribe" novalidate[form.problem.is_some()] {
                    @if let Some(problem) = form.problem {
                        p.lp-error id="lp-problem" role="alert" { (problem) }
                    }
                    label.lp-label for="lp-email" { "Email address" }
                    input.lp-input id="lp-email" type="email" name="email" value=(form.email) required autocomplete="email" maxlength="254" aria-describedby=[form.problem.map(|_| "lp-problem")];
                    label.lp-label for="lp-name" { "Name " span.lp-optional { "(optional)" } }
                    input.lp-input id="lp-name" type="text" name="name" value=(form.name) autocomplete="name" maxlength="100";
                    (honeypot(false))
                    button.lp-button.lp-button-go type="submit" { "Subscribe" }
                }
                p.lp-note {
                    "We will email you a link to confirm. Every issue has a link to unsubscribe with one click."
                }
                p.lp-note { a href="./" { "Read past issues" } }
            },
        ),
    )
}

/// The field a person never sees: hidden by the site's stylesheet, or inline in the snippet
/// for other sites (whose stylesheet we do not know).
fn honeypot(inline: bool) -> Markup {
    html! {
        div.lp-hp aria-hidden="true" style=[inline.then_some("position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden")] {
            label { "Leave this empty " input type="text" name=(HONEYPOT_FIELD) tabindex="-1" autocomplete="off"; }
        }
    }
}

/// After a sign-up: the same page whoever the address belongs to, so the form tells nobody
/// who reads the newsletter.
pub fn check_inbox_page(newsletter: &Newsletter, address: &str) -> Markup {
    let days = crate::secret::CONFIRMATION_VALIDITY.num_days();
    page(
        newsletter,
        &format!("Check your inbox · {}", newsletter.name),
        Depth::Root,
        false,
        panel(
            newsletter,
            html! {
                h1.lp-page-heading { "Check your inbox" }
                p { "If " strong { (address) } " can be subscribed, an email is on its way to it with a link to confirm. The link works for " (days) " days." }
                p.lp-note { "Nothing after a few minutes? Look in the spam folder, or " a href="subscribe" { "try again" } "." }
            },
        ),
    )
}

/// Where a confirmation link stands, as its page says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmStanding {
    /// A valid link, not yet used: one button confirms (a GET never does).
    Ask,
    Confirmed,
    /// The address may not be added by the form (the editor's decision).
    Refused,
    /// They unsubscribed after this link was sent.
    Superseded,
    Expired,
    Invalid,
}

/// The pages of a confirmation link. `masked` is the address as the page may show it.
pub fn confirm_page(newsletter: &Newsletter, masked: &str, standing: ConfirmStanding) -> Markup {
    let name = newsletter.name.as_str();
    let contact = newsletter.reply_address().as_str();
    let days = crate::secret::CONFIRMATION_VALIDITY.num_days();
    let sign_up_again = html! {
        p { a.lp-button.lp-button-quiet href="../subscribe" { "Sign up again" } }
    };
    let (heading, body) = match standing {
        ConfirmStanding::Ask => (
            "Confirm your subscription".to_string(),
            html! {
                p { "Press the button and " (masked) " will get " (name) " from the next issue on." }
                form method="post" {
                    button.lp-button.lp-button-go type="submit" { "Confirm subscription" }
                }
            },
        ),
        ConfirmStanding::Confirmed => (
            "You are subscribed".to_string(),
            html! {
                p { (masked) " will get " (name) " from the next issue on. Every issue has a link to unsubscribe with one click." }
                p { a href="../" { "Read past issues" } }
            },
        ),
        ConfirmStanding::Refused => (
            "We could not subscribe you".to_string(),
            html! {
                p { (masked) " cannot be subscribed with this form." }
                p.lp-note { "To be added, write to " a href=(format!("mailto:{contact}")) { (contact) } "." }
            },
        ),
        ConfirmStanding::Superseded => (
            "This link is out of date".to_string(),
            html! {
                p { "You unsubscribed after this link was sent, so it no longer subscribes you. To come back, sign up again." }
                (sign_up_again)
            },
        ),
        ConfirmStanding::Expired => (
            "This link has expired".to_string(),
            html! {
                p { "Confirmation links work for " (days) " days. Sign up again and we will send you a new one." }
                (sign_up_again)
            },
        ),
        ConfirmStanding::Invalid => (
            "This link does not work".to_string(),
            html! {
                p { "The confirmation link may have been cut short when it was copied. Use the whole link from the email, or sign up again." }
                (sign_up_again)
            },
        ),
    };
    page(
        newsletter,
        &format!("{heading} · {name}"),
        Depth::Confirm,
        false,
        panel(
            newsletter,
            html! {
                h1.lp-page-heading { (heading) }
                (body)
            },
        ),
    )
}

/// The sign-up form to paste into another site: a plain form posting to `action`, no
/// script, its honeypot hidden inline.
pub fn signup_snippet(newsletter: &Newsletter, action: &str) -> Markup {
    html! {
        form method="post" action=(action) {
            label for="letterpress-email" { "Email address" }
            " "
            input id="letterpress-email" type="email" name="email" required autocomplete="email";
            " "
            label for="letterpress-name" { "Name (optional)" }
            " "
            input id="letterpress-name" type="text" name="name" autocomplete="name";
            (honeypot(true))
            " "
            button type="submit" { "Subscribe to " (newsletter.name) }
        }
    }
}

/// A narrow card in the theme's look, for the small pages.
fn panel(newsletter: &Newsletter, content: Markup) -> Markup {
    html! {
        main.lp-panel-wrapper {
            div.lp-container.lp-panel {
                div.lp-header { p.lp-title { (newsletter.name) } }
                div.lp-content.lp-panel-content { (content) }
                div.lp-footer {
                    p.lp-postal-address {
                        @for (index, line) in newsletter.postal_address.lines().iter().enumerate() {
                            @if index > 0 { br; }
                            (line)
                        }
                    }
                }
            }
        }
    }
}

/// The issue's content for a feed reader: the web version's body, without the page around
/// it (readers drop the stylesheet, so the markup must read well bare).
pub fn feed_content(view: &View) -> String {
    html! {
        @if let Some(intro) = &view.issue.intro {
            (prose(intro))
        }
        @for section in &view.issue.sections {
            h2 { (section.heading) }
            @for article in &section.articles {
                h3 { a href=(article.url) { (article.title) } }
                @if let Some(image) = &article.image {
                    p {
                        img src=(image.src.url(view.newsletter.site_url.as_ref())) alt=(image.alt)
                            width=(image.display_size().0) height=[image.display_size().1];
                    }
                }
                (prose(&article.excerpt))
            }
        }
        @if let Some(outro) = &view.issue.outro {
            (prose(outro))
        }
    }
    .into_string()
}
