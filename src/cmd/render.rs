//! `letterpress render`: the issue's HTML, text and a sample message, written to files; with
//! `--site`, the web archive of the sent issues as static files.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::archive::Archive;
use crate::message::{Kind, MessageTemplate, Recipient};
use crate::render::template::SlotValues;
use crate::workspace::NEWSLETTER_FILE;

use super::{Context, human_size};

pub fn run(
    context: &Context,
    issue_argument: Option<&str>,
    out: &Path,
    site: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    if let Some(issue_argument) = issue_argument {
        render_issue(context, issue_argument, out)?;
    }
    if let Some(site) = site {
        write_site(context, site)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The web archive of the sent issues, as static files: what `serve` answers with.
fn write_site(context: &Context, relative_dir: &Path) -> anyhow::Result<()> {
    let workspace = &context.workspace;
    let newsletter = super::require(workspace.load_newsletter(), NEWSLETTER_FILE)?;
    let theme = super::require(workspace.load_theme(&newsletter), "the theme")?;
    // Read-only: without a ledger nothing was sent, and none is created.
    let ledger_path = workspace.state_dir().join(crate::ledger::LEDGER_FILE);
    let sent = if ledger_path.exists() {
        workspace.open_ledger()?.sent_issues()?
    } else {
        Vec::new()
    };
    let (archive, left_out) = Archive::collect(workspace, newsletter, theme, &sent);
    for line in &left_out {
        eprintln!("warning: {line}");
    }
    let written = archive.write_site(&workspace.path(relative_dir))?;
    let count = archive.issues.len();
    println!(
        "Wrote the archive of {count} sent issue{} to {}",
        if count == 1 { "" } else { "s" },
        relative_dir.display()
    );
    for (file, bytes) in written {
        let shown = relative_dir.join(file).display().to_string();
        println!("  {shown:<34} {:>9}", human_size(bytes));
    }
    Ok(())
}

fn render_issue(context: &Context, issue_argument: &str, out: &Path) -> anyhow::Result<()> {
    let workspace = &context.workspace;
    let edition = super::load_edition(workspace, issue_argument)?;
    let (newsletter, theme, issue) = (&edition.newsletter, &edition.theme, &edition.issue);
    let subscribers = &edition.subscribers;
    let subscribers_path = workspace.display(&workspace.subscribers_path(newsletter));

    let (email, name) = match subscribers.iter().find(|subscriber| subscriber.is_active()) {
        Some(subscriber) => (
            &subscriber.email,
            subscriber.name.as_ref().map(|name| name.as_str()),
        ),
        None => match newsletter.test_recipients.first() {
            Some(address) => (address, None),
            None => anyhow::bail!(
                "no one to render a sample for: {subscribers_path} has no active subscriber and newsletter.yaml no test_recipients"
            ),
        },
    };
    let recipient = Recipient { email, name };

    let rendered = crate::render::render(newsletter, issue, theme)?;
    let secret = workspace.secret()?;
    let template = MessageTemplate::new(newsletter, issue, &rendered, &theme.texts, Kind::Issue);
    let links = template.unsubscribe_links(&secret, email);
    let greeting = theme.texts.greeting_for(name);
    let values = SlotValues {
        greeting: &greeting,
        unsubscribe_url: links.preferred(),
        recipient_email: email.as_str(),
    };
    let html = rendered.html.fill(&values);
    let text = rendered.text.fill(&values);
    let mut eml = Vec::new();
    template.write(
        recipient,
        &secret,
        &context.clock.now().to_rfc2822(),
        &mut eml,
    );

    let relative_dir = out.join(issue.id.as_str());
    let dir = workspace.path(&relative_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let files: [(&str, &[u8]); 3] = [
        ("email.html", html.as_bytes()),
        ("email.txt", text.as_bytes()),
        ("sample.eml", &eml),
    ];
    println!("Rendered {}: {}", edition.issue_file, issue.subject);
    for (name, bytes) in files {
        let file = dir.join(name);
        std::fs::write(&file, bytes)
            .with_context(|| format!("cannot write `{}`", file.display()))?;
        let shown = relative_dir.join(name).display().to_string();
        let note = if name == "sample.eml" {
            format!("   as sent to {email}")
        } else {
            String::new()
        };
        println!("  {shown:<34} {:>9}{note}", human_size(bytes.len()));
    }
    Ok(())
}
