//! `letterpress render`: the issue's HTML, text and a sample message, written to files; with
//! `--site`, the web archive of the sent issues as static files.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use super::{Context, require};
use crate::archive::Archive;
use crate::message::{Kind, Recipient};
use crate::units::human_size;

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
    let newsletter = require(workspace.load_newsletter())?;
    let theme = require(workspace.load_theme(&newsletter))?;
    // Without a ledger nothing was sent, and none is created.
    let sent = match context.state.open_existing_ledger()? {
        Some(ledger) => ledger.sent_issues()?,
        None => Vec::new(),
    };
    let (archive, left_out) = Archive::collect(workspace, newsletter, theme, &sent);
    for line in &left_out {
        eprintln!("warning: {line}");
    }
    let written = archive.write_site(workspace, &workspace.path(relative_dir))?;
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
    let edition = context.load_edition(issue_argument)?;
    let (newsletter, theme, issue) = (&edition.newsletter, &edition.theme, &edition.issue);
    let subscribers_path = workspace.display(&workspace.subscribers_path(newsletter));

    // The first reader of the list: the sample is nobody's in particular, so the ledger's
    // sign-ups and suppressions are not asked.
    let mut first = None;
    crate::delivery::for_each_reader(&edition.list, None, |reader| {
        first = Some(reader);
        std::ops::ControlFlow::Break(())
    })?;
    let recipient = match &first {
        Some(reader) => Recipient {
            email: &reader.email,
            name: reader.name.as_deref(),
        },
        None => match newsletter.test_recipients.first() {
            Some(address) => Recipient {
                email: address,
                name: None,
            },
            None => anyhow::bail!(
                "no one to render a sample for: {subscribers_path} has no active subscriber and newsletter.yaml no test_recipients"
            ),
        },
    };

    let rendered = crate::render::render(newsletter, issue, theme)?;
    let secret = context.secret()?;
    let mut template = crate::message::MessageTemplate::new(
        newsletter,
        issue,
        &rendered,
        &theme.texts,
        Kind::Issue,
    );
    // The sample carries the links a reader would get, signed as the ledger signs them.
    if let Some(ledger) = context.state.open_existing_ledger()?
        && let Some(list_key) = ledger.stored_list_key()?
    {
        template = template.keyed(list_key);
    }
    let personal = template.personal(recipient, &secret);
    let html = rendered.html.fill(&personal.values());
    let text = rendered.text.fill(&personal.values());
    let mut eml = Vec::new();
    template.write(
        recipient,
        &secret,
        &context.clock.now().to_rfc2822(),
        &mut eml,
    );
    // Signed as a send would sign it; without its key the sample is still worth having.
    match crate::delivery::transport::signer_for(newsletter, &context.state) {
        Ok(Some(signer)) => signer.prepend_signatures(&mut eml)?,
        Ok(None) => {}
        Err(error) => eprintln!("warning: sample.eml is not DKIM-signed: {error:#}"),
    }

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
            format!("   as sent to {}", recipient.email)
        } else {
            String::new()
        };
        println!("  {shown:<34} {:>9}{note}", human_size(bytes.len()));
    }
    Ok(())
}
