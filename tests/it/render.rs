//! `letterpress render` end to end: the files it writes, the message they make, and what
//! hostile input turns into.

use crate::support::{SMALL_ISSUE, TestWorkspace, assert_under_gmail_clip, mask_sizes};
use mail_parser::MessageParser;

const SECRET: &str = "a test secret that is long enough to be accepted";

fn render(workspace: &TestWorkspace, issue: &str) -> crate::support::Run {
    let run = crate::support::Run::from(
        workspace
            .command()
            .env("LETTERPRESS_SECRET", SECRET)
            .args(["render", issue])
            .output()
            .unwrap(),
    );
    assert_eq!(run.status, 0, "{run:?}");
    run
}

#[test]
fn render_writes_html_text_and_a_sample_message_that_parses_back_to_them() {
    let workspace = TestWorkspace::example();
    let run = render(&workspace, "issues/2021-08-23.yaml");
    // The sizes are right-aligned: their width changes the spaces before them.
    let (stdout, sizes) = mask_sizes(&run.stdout);
    let mut stdout = stdout;
    while stdout.contains("  ") {
        stdout = stdout.replace("  ", " ");
    }
    assert_eq!(
        stdout,
        "Rendered issues/2021-08-23.yaml: Global AI Weekly #1: Foundation models, Codex API and Tesla's Dojo\n \
         out/2021-08-23/email.html <size>\n \
         out/2021-08-23/email.txt <size>\n \
         out/2021-08-23/sample.eml <size> as sent to ada.okafor@example.com\n"
    );
    assert_under_gmail_clip(&sizes[..1]);
    let html = workspace.read("out/2021-08-23/email.html");
    let text = workspace.read("out/2021-08-23/email.txt");
    let eml = std::fs::read(workspace.path("out/2021-08-23/sample.eml")).unwrap();

    let message = MessageParser::default().parse(&eml).unwrap();
    assert_eq!(
        message.subject(),
        Some("Global AI Weekly #1: Foundation models, Codex API and Tesla's Dojo")
    );
    let from = message.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Global AI Weekly"));
    assert_eq!(from.address(), Some("weekly@example.com"));
    let to = message.to().unwrap().first().unwrap();
    assert_eq!(to.name(), Some("Ada Okafor"));
    assert_eq!(to.address(), Some("ada.okafor@example.com"));
    assert_eq!(
        message.reply_to().unwrap().first().unwrap().address(),
        Some("editors@example.com")
    );
    assert!(message.date().is_some());
    assert!(message.message_id().unwrap().starts_with("2021-08-23."));
    assert_eq!(
        message.header_raw("List-Id").unwrap().trim(),
        "Global AI Weekly <global-ai-weekly.weekly.example.com>"
    );
    let unsubscribe = message.header_raw("List-Unsubscribe").unwrap();
    assert!(
        unsubscribe.contains("<https://weekly.example.com/unsubscribe/"),
        "{unsubscribe}"
    );
    assert!(
        unsubscribe.contains("<mailto:editors@example.com?subject=unsubscribe%20"),
        "{unsubscribe}"
    );
    assert_eq!(
        message.header_raw("List-Unsubscribe-Post").unwrap().trim(),
        "List-Unsubscribe=One-Click"
    );
    // On the wire text lines end in CRLF, as MIME requires; the file uses the local newline.
    assert_eq!(message.body_text(0).unwrap().replace("\r\n", "\n"), text);
    assert_eq!(message.body_html(0).unwrap().replace("\r\n", "\n"), html);

    // The files show what the sample subscriber gets.
    assert!(text.contains("\nHi Ada Okafor,\n"), "{text}");
    assert!(html.contains("Hi Ada Okafor,"));
    assert!(html.contains("This email was sent to ada.okafor@example.com."));
    let token = unsubscribe
        .split("/unsubscribe/")
        .nth(1)
        .unwrap()
        .split('>')
        .next()
        .unwrap();
    assert!(html.contains(&format!(
        "href=\"https://weekly.example.com/unsubscribe/{token}\""
    )));
    assert!(text.contains(&format!(
        "Unsubscribe: https://weekly.example.com/unsubscribe/{token}\n"
    )));

    // Wire format: CRLF everywhere, and no line over the 78 columns RFC 5322 asks for, but
    // for a header carrying a URL, which cannot be folded inside its angle brackets.
    let wire = String::from_utf8(eml).unwrap();
    assert!(!wire.replace("\r\n", "").contains('\n'));
    for line in wire.split("\r\n") {
        let carries_url = line.contains("<https://") || line.contains("<mailto:");
        assert!(
            line.len() <= 78 || carries_url,
            "line of {}: {line}",
            line.len()
        );
        assert!(line.len() <= 998, "line of {}: {line}", line.len());
    }
}

#[test]
fn the_email_meets_the_layout_rules_for_mail_clients() {
    let workspace = TestWorkspace::example();
    render(&workspace, "2021-08-23");
    let html = workspace.read("out/2021-08-23/email.html");
    assert!(html.starts_with("<!DOCTYPE html><html lang=\"en\" dir=\"ltr\""));
    // charset within the first 1024 bytes, where browsers look for it.
    assert!(html[..1024].contains("<meta charset=\"utf-8\">"));
    // The hidden preheader comes right after <body>.
    let body = html.find("<body").unwrap();
    let after_body = &html[body..];
    let preheader_at = after_body.find("class=\"lp-preheader\"").unwrap();
    assert!(!after_body[..preheader_at].contains("<table"));
    assert!(
        after_body[preheader_at..]
            .starts_with("class=\"lp-preheader\" aria-hidden=\"true\" style=\"display: none;")
    );
    // The fixed-width column for Outlook, the fluid one for everybody else.
    assert!(html.contains("<!--[if mso]><table role=\"presentation\" width=\"600\""));
    assert!(html.contains("max-width: 600px"));
    // CSS is inlined; media queries (mobile, dark mode) stay in <style>.
    assert!(html.contains("class=\"lp-card-title\" style=\""));
    assert!(html.contains("@media (prefers-color-scheme: dark)"));
    assert!(html.contains("@media only screen and (max-width: 620px)"));
    // Every image has alt, width and height.
    for image in html.split("<img").skip(1) {
        let tag = &image[..image.find('>').unwrap()];
        for attribute in [" alt=\"", " width=\"", " height=\""] {
            assert!(tag.contains(attribute), "{attribute} missing in <img{tag}>");
        }
    }
    assert_eq!(html.matches("<img").count(), 2);
}

#[test]
fn rendering_is_deterministic() {
    let workspace = TestWorkspace::example();
    render(&workspace, "2021-08-23");
    let first = (
        workspace.read("out/2021-08-23/email.html"),
        workspace.read("out/2021-08-23/email.txt"),
    );
    std::fs::remove_dir_all(workspace.path("out")).unwrap();
    render(&workspace, "2021-08-23");
    let second = (
        workspace.read("out/2021-08-23/email.html"),
        workspace.read("out/2021-08-23/email.txt"),
    );
    assert!(first == second, "two renders of the same issue differ");
}

#[test]
fn hostile_html_script_line_breaks_and_non_latin_text_are_escaped_or_encoded() {
    let workspace = TestWorkspace::example();
    workspace.write(
        "subscribers.example.yaml",
        "- email: eve@example.com\n  name: \"<b>Eve</b> \\\"the \\\\ tester\\\" 🦊\"\n",
    );
    let issue = SMALL_ISSUE
        .replace("subject: \"Small issue\"", "subject: \"週刊 AI ニュース 🎉 — <script>\"")
        .replace("title: First story", "title: \"<script>alert('title')</script>\"")
        .replace(
            "The first excerpt, with a [link](https://news.example.com/more).",
            "<img src=x onerror=alert(1)> <iframe src=\"https://evil.example/\"></iframe> **bold** [x](https://news.example.com/?a=1&b=\"2\")",
        )
        .replace("author: Ann Writer", "author: \"Zoë \\\"O'Brien\\\" & <Co>\"");
    workspace.write("issues/2021-08-30.yaml", &issue);
    let check = workspace.run(&["check", "2021-08-30"]);
    assert!(
        check.stdout.contains(
            "warning: sections[0].articles[0].excerpt: contains raw HTML, which is shown as text"
        ),
        "{}",
        check.stdout
    );
    render(&workspace, "2021-08-30");
    let html = workspace.read("out/2021-08-30/email.html");
    let text = workspace.read("out/2021-08-30/email.txt");

    for raw in ["<script", "<img src=x", "<iframe", "<b>Eve", "<Co>"] {
        assert!(!html.contains(raw), "{raw} reached the HTML");
    }
    assert!(html.contains("&lt;script&gt;alert('title')&lt;/script&gt;"));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("&lt;b&gt;Eve&lt;/b&gt; &quot;the \\ tester&quot; 🦊"));
    assert!(html.contains("Zoë \"O'Brien\" &amp; &lt;Co&gt;"));
    assert!(
        html.contains("href=\"https://news.example.com/?a=1&amp;b=%222%22\""),
        "{html}"
    );
    assert!(html.contains("<title>週刊 AI ニュース 🎉 — &lt;script&gt;</title>"));
    // The text part is text: nothing to escape, everything kept as written.
    assert!(text.contains("Hi <b>Eve</b> \"the \\ tester\" 🦊,"));

    let eml = std::fs::read(workspace.path("out/2021-08-30/sample.eml")).unwrap();
    let wire = String::from_utf8(eml.clone()).unwrap();
    assert!(wire.is_ascii(), "headers and bodies are 7-bit on the wire");
    let message = MessageParser::default().parse(&eml).unwrap();
    assert_eq!(message.subject(), Some("週刊 AI ニュース 🎉 — <script>"));
    let to = message.to().unwrap().first().unwrap();
    assert_eq!(to.name(), Some("<b>Eve</b> \"the \\ tester\" 🦊"));
    assert_eq!(to.address(), Some("eve@example.com"));
    assert_eq!(message.body_html(0).unwrap().replace("\r\n", "\n"), html);
}

#[test]
fn the_rendered_small_issue_is_pinned() {
    let workspace = TestWorkspace::example();
    workspace.write("issues/2021-08-30.yaml", SMALL_ISSUE);
    render(&workspace, "2021-08-30");
    insta::assert_snapshot!(
        "small_issue.txt",
        workspace.read("out/2021-08-30/email.txt")
    );
    // One element per line, so a change to the layout shows as a readable diff.
    let html = workspace
        .read("out/2021-08-30/email.html")
        .replace("><", ">\n<");
    insta::assert_snapshot!("small_issue.html", html);
}

#[test]
fn rendering_without_a_subscriber_list_says_which_file_is_missing() {
    let workspace = TestWorkspace::example();
    std::fs::remove_file(workspace.path("subscribers.example.yaml")).unwrap();
    let run = workspace.run(&["render", "2021-08-23"]);
    assert_eq!(run.status, 2);
    assert_eq!(
        run.stderr,
        "subscribers.example.yaml: file not found\nerror: subscribers.example.yaml: 1 error; `letterpress check` shows every problem\n"
    );
}
