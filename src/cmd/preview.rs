//! `letterpress preview`: the issue being written, in a browser on this machine, shown again
//! each time a file is saved, until Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use super::Context;
use crate::diagnostic::Invalid;
use crate::model::address::EmailAddress;
use crate::preview::{Level, Options, Preview, PreviewServer, Sources};
use crate::signals::{Announce, Signals};
use crate::units::plural;

pub struct PreviewArgs<'a> {
    pub issue: Option<&'a str>,
    pub listen: SocketAddr,
    pub reader: Option<&'a str>,
    pub allow_remote: bool,
}

pub fn run(context: &Context, args: PreviewArgs) -> anyhow::Result<ExitCode> {
    let workspace = &context.workspace;
    // The page shows a reader's address and their unsubscribe link.
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        return Err(Invalid::usage(format!(
            "--listen {}: other machines could reach the preview, which shows a reader's address and unsubscribe link; add --allow-remote if that is what you want",
            args.listen
        ))
        .into());
    }
    let reader = args
        .reader
        .map(|text| {
            EmailAddress::parse(text)
                .map_err(|error| Invalid::usage(format!("--as `{text}`: {error}")))
        })
        .transpose()?;
    if let Some(issue) = args.issue {
        let path = workspace.issue_path(issue);
        if !path.is_file() {
            return Err(Invalid::usage(format!(
                "no issue file `{}`: name one in issues/ (2021-08-23) or give its path",
                workspace.display(&path)
            ))
            .into());
        }
    }
    crate::logging::init(&context.settings.log);
    let secret = context
        .state
        .secret_or_ephemeral(context.settings.secret.as_ref())?;
    let preview = Arc::new(Preview::open(Sources {
        workspace: workspace.clone(),
        state: context.state.clone(),
        secret,
        clock: context.clock.clone(),
        options: Options {
            issue: args.issue.map(String::from),
            reader,
        },
    }));
    super::runtime()?.block_on(async {
        let server = PreviewServer::bind(preview.clone(), args.listen).await?;
        let address = server.local_addr()?;
        // Tests and scripts read the address (the port may have been 0) from this first line.
        println!("Previewing on http://{address}/ (Ctrl-C stops it)");
        let snapshot = preview.snapshot();
        match (&snapshot.issue_file, &snapshot.shown) {
            (Some(file), Some(shown)) => {
                let (errors, warnings) = (
                    snapshot.count(Level::Error) as u64,
                    snapshot.count(Level::Warning) as u64,
                );
                println!(
                    "{file} as {} gets it: {errors} error{}, {warnings} warning{}; saving any file of the workspace shows it again",
                    shown.reader,
                    plural(errors),
                    plural(warnings)
                );
            }
            _ => {
                for problem in &snapshot.problems {
                    eprintln!("{}", problem.text);
                }
            }
        }
        if !address.ip().is_loopback() {
            eprintln!(
                "warning: listening on {address}, beyond this machine: anyone who can reach it sees the reader's address and unsubscribe link"
            );
        }
        let mut signals = Signals::listen(Announce::server());
        server.run(async move { signals.stopped().await }).await;
        tracing::info!("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
