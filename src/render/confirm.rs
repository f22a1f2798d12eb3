//! The email that asks a reader who signed up on the web to confirm: one link, what it is
//! for, and what happens if they ignore it. Pure, like the rest of `render`.

use maud::html;

use crate::model::newsletter::Newsletter;

/// The email's subject.
pub fn subject(newsletter: &Newsletter) -> String {
    format!("Confirm your subscription to {}", newsletter.name)
}

/// The HTML and plain-text bodies, for `link` (the confirmation URL).
pub fn bodies(newsletter: &Newsletter, link: &str) -> (String, String) {
    let name = newsletter.name.as_str();
    let days = crate::secret::CONFIRMATION_VALIDITY.num_days();
    let ignore = "If you did not ask for it, ignore this email: without a click nobody is subscribed, and we will not write again.";
    let text = format!(
        "Someone, probably you, asked to get {name} at this address.\n\nTo confirm, open this link (it works for {days} days):\n\n{link}\n\n{ignore}\n\n-- \n{}\n",
        newsletter
            .postal_address
            .lines()
            .iter()
            .map(|line| line.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Inline styles only: mail apps drop stylesheets.
    let html = html! {
        (maud::DOCTYPE)
        html lang=(newsletter.language.as_str()) dir=(newsletter.language.direction()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (subject(newsletter)) }
            }
            body style="margin:0;padding:24px 12px;background-color:#f0f4f8;font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#102a43" {
                table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" {
                    tr { td align="center" {
                        table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="max-width:480px;background-color:#ffffff;border-radius:8px" {
                            tr { td style="padding:28px 28px 8px 28px;font-size:15px;font-weight:600;color:#52606d" { (name) } }
                            tr { td style="padding:0 28px 8px 28px" {
                                h1 style="margin:8px 0 12px 0;font-size:24px;line-height:30px" { "Confirm your subscription" }
                                p style="margin:0 0 20px 0;font-size:16px;line-height:24px" {
                                    "Someone, probably you, asked to get " (name) " at this address. Press the button to confirm; the link works for " (days) " days."
                                }
                                p style="margin:0 0 24px 0" {
                                    a href=(link) style="display:inline-block;padding:12px 24px;background-color:#0b5cad;color:#ffffff;text-decoration:none;font-weight:600;border-radius:6px" { "Confirm my subscription" }
                                }
                                p style="margin:0 0 20px 0;font-size:14px;line-height:22px;color:#52606d" { (ignore) }
                            } }
                            tr { td style="padding:16px 28px 24px 28px;font-size:12px;line-height:18px;color:#829ab1;border-top:1px solid #e4e9ef" {
                                @for (index, line) in newsletter.postal_address.lines().iter().enumerate() {
                                    @if index > 0 { br; }
                                    (line)
                                }
                            } }
                        }
                    } }
                }
            }
        }
    };
    (html.into_string(), text)
}
