//! Turns an issue into its HTML and plain-text parts.
//!
//! Pure: the model and theme in, the parts out; no clock, no files, no randomness, so the same
//! input always gives the same bytes and rendered issues diff cleanly in review.

pub mod confirm;
mod html;
pub mod markdown;
pub mod template;
mod text;
pub mod web;

use crate::model::issue::Issue;
use crate::model::newsletter::Newsletter;
use crate::theme::{SplitCss, Texts, Theme};
use template::{Escape, Slot, Template};

pub use text::WIDTH as TEXT_WIDTH;

/// Gmail clips messages whose HTML is larger than this, hiding the footer and its
/// unsubscribe link behind "[Message clipped]".
pub const GMAIL_CLIP_BYTES: usize = 102 * 1024;

/// An issue rendered once, ready to be filled in per recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedIssue {
    pub html: Template,
    pub text: Template,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot inline the theme's CSS: {0}")]
    InlineCss(String),
}

/// What the layout needs beyond the model: texts already formatted once for the issue.
pub struct View<'a> {
    pub newsletter: &'a Newsletter,
    pub issue: &'a Issue,
    pub theme: &'a Theme,
    pub texts: &'a Texts,
    pub web_url: Option<String>,
    pub issue_label: Option<String>,
    pub date_label: String,
    pub why_you_get_this: String,
    /// With a hole for the recipient's address.
    pub sent_to: String,
    pub css: SplitCss,
}

impl<'a> View<'a> {
    pub fn new(newsletter: &'a Newsletter, issue: &'a Issue, theme: &'a Theme) -> Self {
        let texts = &theme.texts;
        View {
            newsletter,
            issue,
            theme,
            texts,
            web_url: web_url(newsletter, issue),
            issue_label: issue
                .number
                .map(|number| texts.issue_label.replace("{number}", &number.to_string())),
            date_label: issue.date.format(&texts.date_format).to_string(),
            why_you_get_this: texts
                .why_you_get_this
                .replace("{newsletter}", newsletter.name.as_str()),
            sent_to: texts
                .sent_to
                .replace("{email}", &Slot::RecipientEmail.marker_str()),
            css: theme.split_css(),
        }
    }
}

/// Where the issue's web version lives, when the newsletter has a site.
pub fn web_url(newsletter: &Newsletter, issue: &Issue) -> Option<String> {
    newsletter
        .site_url
        .as_ref()
        .map(|site| site.join(&format!("issues/{}/", issue.id)))
}

pub fn render(
    newsletter: &Newsletter,
    issue: &Issue,
    theme: &Theme,
) -> Result<RenderedIssue, RenderError> {
    let view = View::new(newsletter, issue, theme);
    let page = html::email(&view).into_string();
    // The page's own <style> holds only the at-rules, which stay as they are; the rest of the
    // theme is inlined into the elements, since many clients drop <style> altogether.
    let inlined = css_inline::CSSInliner::options()
        .inline_style_tags(false)
        .keep_style_tags(true)
        .load_remote_stylesheets(false)
        .extra_css(Some(view.css.inline.as_str().into()))
        .build()
        .inline(&page)
        .map_err(|error| RenderError::InlineCss(error.to_string()))?;
    Ok(RenderedIssue {
        html: Template::from_marked(&inlined, Escape::Html),
        text: Template::from_marked(&text::email(&view), Escape::None),
    })
}

/// The web version of an issue, as a whole HTML page: the email's layout and content, with
/// nothing personal in it (no greeting by name, no address, no unsubscribe link, no "view in
/// your browser", no hidden preheader) and nothing that tracks. Styled by the site's
/// `style.css` (see `web::stylesheet`).
pub fn render_web_page(newsletter: &Newsletter, issue: &Issue, theme: &Theme) -> String {
    let view = View {
        web_url: None,
        ..View::new(newsletter, issue, theme)
    };
    web::issue_page(&view).into_string()
}
