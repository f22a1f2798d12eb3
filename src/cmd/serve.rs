//! `letterpress serve`: one-click unsubscribe and the web archive over HTTP, until stopped.

use std::net::SocketAddr;
use std::process::ExitCode;

use super::Context;
use crate::delivery::transport::Destination;
use crate::serve::limit::DEFAULT_RATE;
use crate::serve::{Config, Server};
use crate::signals::{Announce, Signals};
use crate::units::grouped;

pub fn run(context: &Context, listen: SocketAddr) -> anyhow::Result<ExitCode> {
    crate::logging::init(&context.settings.log);
    let secret = context.secret()?;
    // Confirmation emails of web sign-ups go where `send` sends. A setting that cannot be
    // used closes sign-ups but must not stop the unsubscribe links, which the law requires.
    let destination = match Destination::from_settings(&context.settings) {
        Ok(destination) => Some(destination),
        Err(error) => {
            eprintln!("warning: sign-ups are closed: {error:#}");
            None
        }
    };
    super::runtime()?.block_on(async {
        let config = Config {
            workspace: context.workspace.clone(),
            state: context.state.clone(),
            clock: context.clock.clone(),
            secret,
            listen,
            rate: DEFAULT_RATE,
            destination,
        };
        let server = Server::bind(config).await?;
        let address = server.local_addr()?;
        let newsletter = server.newsletter();
        // Tests and scripts read the address (the port may have been 0) from this first line.
        println!("Serving {} on http://{address}/", newsletter.name);
        match &newsletter.site_url {
            Some(site) => println!(
                "Unsubscribe links ({}) work for {} addresses; the archive is at {}, the sign-up form at {}. Ctrl-C stops.",
                site.join("unsubscribe/..."),
                grouped(server.address_count() as u64),
                site.join(""),
                site.join("subscribe")
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
        let mut signals = Signals::listen(Announce::server());
        server.run(async move { signals.stopped().await }).await;
        tracing::info!("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
