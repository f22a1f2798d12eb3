use std::process::ExitCode;

use clap::Parser;

use letterpress::cli::{Cli, Command};
use letterpress::cmd::{self, Context};
use letterpress::config::Settings;
use letterpress::diagnostic::Invalid;
use letterpress::workspace::Workspace;

fn main() -> ExitCode {
    restore_default_sigpipe();
    let cli = Cli::parse();
    // The environment is read here, once; everything below takes what it needs from these.
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let context = Context::new(Workspace::new(cli.dir), settings);
    let result = match &cli.command {
        Command::Init {
            folder,
            name,
            from,
            timezone,
        } => cmd::init::run(
            &context,
            folder.as_deref(),
            &letterpress::scaffold::init::InitOptions {
                name: name.clone(),
                from: from.clone(),
                timezone: timezone.clone(),
            },
        ),
        Command::New { date, from } => cmd::new::run(&context, *date, from.as_deref()),
        Command::Check { issues } => cmd::check::run(&context, issues),
        Command::Render { issue, out, site } => {
            cmd::render::run(&context, issue.as_deref(), out, site.as_deref())
        }
        Command::Test { issue, to } => cmd::test::run(&context, issue, to),
        Command::Send {
            issue,
            yes,
            dry_run,
            list,
            resend_uncertain,
            retry_failed,
        } => cmd::send::run(
            &context,
            cmd::send::SendArgs {
                issue,
                yes: *yes,
                dry_run: *dry_run,
                list: *list,
                resend_uncertain: *resend_uncertain,
                retry_failed: *retry_failed,
            },
        ),
        Command::Run { once, outbox } => cmd::run::run(&context, *once, *outbox),
        Command::Serve { listen } => cmd::serve::run(&context, *listen),
        Command::Preview {
            issue,
            listen,
            reader,
            allow_remote,
        } => cmd::preview::run(
            &context,
            cmd::preview::PreviewArgs {
                issue: issue.as_deref(),
                listen: *listen,
                reader: reader.as_deref(),
                allow_remote: *allow_remote,
            },
        ),
        Command::Status { issue, json } => cmd::status::run(&context, issue.as_deref(), *json),
        Command::Subscribers { command } => cmd::subscribers::run(&context, command),
        Command::Backup { file } => cmd::backup::run(&context, file),
        Command::Completions { shell } => cmd::manual::completions(*shell),
        Command::Manpage { dir } => cmd::manual::manpage(dir),
        Command::Bounces { command } => cmd::bounces::run(&context, command),
        Command::Dkim { command } => cmd::dkim::run(&context, command),
    };
    result.unwrap_or_else(report)
}

/// `letterpress check | head -1` should end quietly, as `grep` would, not panic on the closed
/// pipe: Rust ignores SIGPIPE by default. No command writes to stdout while it holds work
/// that is not yet in the ledger, so dying of it loses nothing.
fn restore_default_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists; it only resets a signal
    // disposition to the default.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Invalid input is listed problem by problem (exit 2); anything else is shown with its
/// causes (exit 1).
fn report(error: anyhow::Error) -> ExitCode {
    if let Some(invalid) = error.downcast_ref::<Invalid>() {
        for diagnostic in invalid.diagnostics.iter() {
            eprintln!("{diagnostic}");
        }
        eprintln!("error: {}", invalid.summary);
        return ExitCode::from(2);
    }
    eprintln!("error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("Caused by: {cause}");
    }
    ExitCode::from(1)
}
