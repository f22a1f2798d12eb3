//! `letterpress serve`: one-click unsubscribe and the web archive over HTTP, until stopped.

use std::net::SocketAddr;
use std::process::ExitCode;

use crate::serve::limit::DEFAULT_RATE;
use crate::serve::{Config, Server};

use super::Context;

pub fn run(context: &Context, listen: SocketAddr) -> anyhow::Result<ExitCode> {
    super::run::init_logging();
    let workspace = &context.workspace;
    let secret = workspace.secret()?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let config = Config {
            workspace: workspace.clone(),
            clock: context.clock.clone(),
            secret,
            listen,
            rate: DEFAULT_RATE,
        };
        let server = Server::bind(config)
            .await?
            .map_err(|error| super::invalid(&error.what, error.diagnostics))?;
        let address = server.local_addr()?;
        let newsletter = server.newsletter();
        // Tests and scripts read the address (the port may have been 0) from this first line.
        println!("Serving {} on http://{address}/", newsletter.name);
        match &newsletter.site_url {
            Some(site) => println!(
                "Unsubscribe links ({}) work for {} addresses; the archive is at {}. Ctrl-C stops.",
                site.join("unsubscribe/..."),
                super::grouped(server.address_count() as u64),
                site.join("")
            ),
            None => eprintln!(
                "warning: newsletter.yaml has no site_url, so emails carry only the mailto unsubscribe link; set site_url to the public https address of this server (through a TLS reverse proxy)"
            ),
        }
        if !address.ip().is_loopback() {
            eprintln!(
                "note: listening on {address}, beyond this machine: serve it to the internet only through a TLS reverse proxy"
            );
        }
        server.run(shutdown_signal()).await;
        tracing::info!("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
}
