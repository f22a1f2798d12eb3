//! The email as a dark-mode client shows it: the theme's `@media (prefers-color-scheme: dark)`
//! rules made unconditional (and any `light` ones never true), so the preview's switch shows
//! dark mode whatever the editor's own system is set to.
//!
//! Only the media queries in the `<style>` blocks change; the rest of the message is the
//! same bytes as sent. Clients that honour these rules (Apple Mail, Outlook on the Mac and on
//! phones) show this; Gmail's apps ignore them and invert colours their own way, which no
//! preview can reproduce.

/// Always true in any viewport, and valid inside `and` chains (`all` is not).
const ALWAYS: &str = "(min-width: 0px)";
/// Never true.
const NEVER: &str = "(max-width: -1px)";

/// `html` with every `prefers-color-scheme` feature in its `<style>` blocks' media queries
/// replaced: `dark` by one that always holds, `light` by one that never does.
pub fn dark_variant(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = find_ascii_case_insensitive(rest, "<style") {
        let Some(body_start) = rest[open..].find('>').map(|end| open + end + 1) else {
            break;
        };
        let body_end = find_ascii_case_insensitive(&rest[body_start..], "</style")
            .map_or(rest.len(), |end| body_start + end);
        out.push_str(&rest[..body_start]);
        out.push_str(&force_dark(&rest[body_start..body_end]));
        rest = &rest[body_end..];
    }
    out.push_str(rest);
    out
}

/// A stylesheet's `(prefers-color-scheme: ...)` features, written with any spacing and
/// case, replaced.
fn force_dark(css: &str) -> String {
    let mut out = String::with_capacity(css.len());
    let mut rest = css;
    while let Some(open) = rest.find('(') {
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        let Some(close) = rest.find(')') else { break };
        let feature: String = rest[1..close]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        let replacement = match feature.as_str() {
            "prefers-color-scheme:dark" => Some(ALWAYS),
            "prefers-color-scheme:light" => Some(NEVER),
            _ => None,
        };
        match replacement {
            Some(replacement) => {
                out.push_str(replacement);
                rest = &rest[close + 1..];
            }
            None => {
                out.push('(');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn find_ascii_case_insensitive(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dark_rules_apply_everywhere_and_light_ones_nowhere_and_nothing_else_changes() {
        let html = "<html><head><style>\n@media only screen and (max-width: 620px) { .a { color: red } }\n\
            @media (prefers-color-scheme: dark) { .b { color: #fff !important } }\n\
            @media screen and ( Prefers-Color-Scheme :light ) { .c { color: #000 } }\n</style></head>\
            <body><p>(prefers-color-scheme: dark) in the text stays</p></body></html>";
        assert_eq!(
            dark_variant(html),
            "<html><head><style>\n@media only screen and (max-width: 620px) { .a { color: red } }\n\
            @media (min-width: 0px) { .b { color: #fff !important } }\n\
            @media screen and (max-width: -1px) { .c { color: #000 } }\n</style></head>\
            <body><p>(prefers-color-scheme: dark) in the text stays</p></body></html>"
        );
    }

    #[test]
    fn an_email_without_styles_is_left_as_it_is() {
        let html = "<p>Plain</p><STYLE>";
        assert_eq!(dark_variant(html), html);
    }
}
