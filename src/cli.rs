//! The command line: what each command takes, and the help that teaches it.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "letterpress",
    version,
    about = "Build a newsletter from YAML files and deliver it over SMTP, once per subscriber.",
    long_about = "Build a newsletter from YAML files and deliver it over SMTP, once per subscriber.\n\n\
An editor keeps one YAML file per issue in issues/, the newsletter's settings in newsletter.yaml \
and the list in subscribers.yaml. letterpress checks them, renders each issue to an HTML email \
with a plain-text part, and sends it.",
    after_help = "A week with letterpress:\n  \
letterpress init deep-signal               a new newsletter: settings, a list, a first draft\n  \
letterpress new                            start next week's issue from a skeleton\n  \
letterpress check                          every problem, as file:line:col: field: message\n  \
letterpress render issues/2021-08-23.yaml  write the HTML, the text and a sample .eml to out/\n  \
letterpress test 2021-08-23 --to me@example.com   a test in your own inbox\n  \
letterpress send 2021-08-23                send to every active subscriber, once each\n  \
letterpress status 2021-08-23              sent, failed, deferred, uncertain\n  \
letterpress serve                          one-click unsubscribe, sign-up and the web archive\n  \
letterpress subscribers list               who is on the list, who signed up, who left and why\n\n\
Exit status: 0 ok, 1 problems found or the work failed, 2 bad usage or invalid input."
)]
pub struct Cli {
    /// Run in DIR instead of the current directory (the folder holding newsletter.yaml).
    #[arg(
        short = 'C',
        long = "dir",
        value_name = "DIR",
        global = true,
        default_value = "."
    )]
    pub dir: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a newsletter's workspace: settings, a subscriber list, a first draft.
    #[command(
        long_about = "Create a newsletter's workspace: settings, a subscriber list, a first draft.\n\n\
Writes newsletter.yaml (every field explained, the optional ones commented out), \
subscribers.yaml with one example entry, issues/<date>.yaml (a first draft dated the next \
weekly slot) and a .gitignore that keeps the ledger, the secret, the readers and out/ out \
of git. `letterpress check` passes on it at once. Never overwrites a file: run it again in \
a half-made workspace to add what is missing.",
        after_help = "Examples:\n  letterpress init\n  letterpress init deep-signal --name \"Deep Signal\" \\\n      --from \"Deep Signal <editor@deepsignal.example>\" --timezone Asia/Shanghai"
    )]
    Init {
        /// The folder to set up (created if missing); the current one when omitted.
        // Not `dir`: that id is the global `-C/--dir`, and clap would fill both.
        #[arg(value_name = "DIR")]
        folder: Option<PathBuf>,
        /// The newsletter's name [default: the folder's name, "deep-signal" -> "Deep Signal"].
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// The sender, "Name <address>" or an address [default: a placeholder to replace].
        #[arg(long, value_name = "MAILBOX")]
        from: Option<String>,
        /// The schedule's IANA time zone, like Europe/Berlin [default: this machine's].
        #[arg(long, value_name = "ZONE")]
        timezone: Option<String>,
    },

    /// Start the next issue from a commented skeleton.
    #[command(
        long_about = "Start the next issue from a commented skeleton.\n\n\
Writes issues/<date>.yaml for the next weekly slot that has no issue yet (or for --date), \
numbered one past the highest number in issues/, as a draft. With --from, it keeps the \
sections and headings of an earlier issue (the latest when none is named), each with one \
empty article to fill in. Never overwrites a file.",
        after_help = "Examples:\n  letterpress new\n  letterpress new --from            # the latest issue's sections\n  \
letterpress new --from 2021-08-23 --date 2026-12-24"
    )]
    New {
        /// The issue's date instead of the next free weekly slot (YYYY-MM-DD).
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<NaiveDate>,
        /// Start from this issue's sections and headings (a file or a name like 2021-08-23);
        /// the latest issue when given without a value.
        #[arg(long, value_name = "ISSUE", num_args = 0..=1, default_missing_value = "")]
        from: Option<String>,
    },

    /// Validate the settings, the subscriber list and the issues.
    #[command(
        long_about = "Validate the settings, the subscriber list and the issues.\n\n\
Reports every problem it can find in one run, each as `file:line:col: field: message`. \
Warnings (a long subject, no preheader, HTML that Gmail would clip, a past issue still in \
draft) are printed but do not fail the check.",
        after_help = "Examples:\n  letterpress check\n  letterpress check issues/2021-08-23.yaml\n\n\
Exit status: 0 no errors (warnings allowed), 1 errors found, 2 bad usage."
    )]
    Check {
        /// Issue files (or names like 2021-08-23) to check; all of issues/ when omitted.
        #[arg(value_name = "ISSUE")]
        issues: Vec<String>,
    },

    /// Render an issue to HTML, plain text and a sample .eml.
    #[command(
        long_about = "Render an issue to HTML, plain text and a sample .eml.\n\n\
Writes DIR/<issue>/email.html, email.txt and sample.eml: the full MIME message as the first \
active subscriber would receive it. Open the .eml in a mail client to see it as a reader will.\n\n\
With --site DIR it writes the web archive instead (or as well, given an ISSUE): DIR/index.html \
listing every issue the ledger shows as sent, newest first, DIR/issues/<date>/index.html with \
each one's web version, DIR/feed.xml (Atom) and DIR/style.css; the same pages `letterpress \
serve` answers with, for any static host. Unsubscribe links still need `letterpress serve`.",
        after_help = "Examples:\n  letterpress render issues/2021-08-23.yaml\n  letterpress render 2021-08-23 --out /tmp/preview\n  \
letterpress render --site public/"
    )]
    Render {
        /// The issue file, or its name (2021-08-23); optional with --site.
        #[arg(value_name = "ISSUE", required_unless_present = "site")]
        issue: Option<String>,
        /// Where to write the files.
        #[arg(long, value_name = "DIR", default_value = "out")]
        out: PathBuf,
        /// Also (or only) write the web archive of the sent issues to DIR as static files.
        #[arg(long, value_name = "DIR")]
        site: Option<PathBuf>,
    },

    /// Send the issue to yourself, marked as a test.
    #[command(
        long_about = "Send the issue to yourself, marked as a test.\n\n\
The subject starts with [TEST]. It goes only to the --to addresses, or to test_recipients in \
newsletter.yaml. Drafts can be tested. Tests are logged in the ledger but never count as \
deliveries.",
        after_help = "Examples:\n  letterpress test issues/2021-08-23.yaml --to me@example.com\n  \
LETTERPRESS_SMTP_URL=smtps://user:pass@smtp.example.com:465 letterpress test 2021-08-23"
    )]
    Test {
        /// The issue file, or its name (2021-08-23).
        #[arg(value_name = "ISSUE")]
        issue: String,
        /// Who gets the test (repeatable); test_recipients from newsletter.yaml by default.
        #[arg(long, value_name = "ADDRESS")]
        to: Vec<String>,
    },

    /// Deliver the issue to every active subscriber, exactly once each.
    #[command(
        long_about = "Deliver the issue to every active subscriber, exactly once each.\n\n\
Every recipient's outcome is kept in the ledger (.letterpress/ledger.sqlite3), so running send \
again after a crash, Ctrl-C or a relay outage sends only to those who have not got it yet. \
Temporary failures (4xx, timeouts, dropped connections) are retried with backoff and left \
deferred for the next run; a 5xx to a recipient is recorded and not retried (--retry-failed \
tries them again). A relay that refuses the session, the password or the sender stops the run \
and fails nobody. Recipients whose message was handed over but not confirmed (the relay's \
answer never came, or a send died) are uncertain and are not sent again unless you ask.\n\n\
Without LETTERPRESS_SMTP_URL the messages are written to .letterpress/outbox/<issue>/ and \
recorded as outbox copies: a later send through a relay still delivers them.",
        after_help = "Examples:\n  letterpress send issues/2021-08-23.yaml\n  letterpress send 2021-08-23 --yes\n  \
letterpress send 2021-08-23 --dry-run --list   # who would get it, one per line; works on drafts\n  \
LETTERPRESS_SMTP_URL='smtp://relay.internal:587?tls=required' letterpress send 2021-08-23\n\n\
Environment:\n  LETTERPRESS_SMTP_URL   smtp://host:port (STARTTLS when offered), smtp://host:587?tls=required,\n                         smtps://user:pass@host:465, or ?tls=none for a relay on loopback\n  \
LETTERPRESS_SECRET     signs unsubscribe links (else generated into .letterpress/secret)\n\n\
Exit status: 0 everyone has it, 1 some failed, stayed deferred or are uncertain, 2 invalid input, 130 interrupted."
    )]
    Send {
        /// The issue file, or its name (2021-08-23).
        #[arg(value_name = "ISSUE")]
        issue: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Build every message and report counts and sizes; send nothing, change nothing.
        /// Works on a draft too.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: print each address that would get it (tab, then the name).
        #[arg(long, requires = "dry_run")]
        list: bool,
        /// Also send to recipients left uncertain by an interrupted send (they may get it twice).
        #[arg(long)]
        resend_uncertain: bool,
        /// Send again to recipients the relay refused for good (after fixing what made it refuse).
        #[arg(long)]
        retry_failed: bool,
    },

    /// The scheduler: send each ready issue in its weekly slot.
    #[command(
        long_about = "The scheduler: send each ready issue in its weekly slot.\n\n\
Runs until stopped, sleeping until the next slot. An issue goes out at schedule.day and \
schedule.time in schedule.timezone on its date (or at its send_at), if it is `status: ready` and \
passes check when its time comes. Files are re-read before every slot and whenever one changes; \
SIGHUP re-reads them at once. A slot missed while the scheduler was down is sent late within \
schedule.grace (default 6h), and otherwise recorded as missed and never sent by surprise. \
SIGTERM or Ctrl-C lets a send in flight finish, then exits. Only one scheduler runs per \
workspace.\n\n\
It needs a relay (LETTERPRESS_SMTP_URL): a scheduler that wrote the issue to the outbox \
would have sent it to no one. --outbox runs it without one, to try it out.",
        after_help = "Examples:\n  letterpress run                  # as a service (see contrib/letterpress.service)\n  \
letterpress run --once           # from cron or a systemd timer: send what is due, then exit\n  \
letterpress run --outbox         # try it without a relay: messages go to .letterpress/outbox/\n\n\
Logs go to stderr, one line per event; LETTERPRESS_LOG=debug shows more."
    )]
    Run {
        /// Send whatever is due now and exit.
        #[arg(long)]
        once: bool,
        /// Run without a relay, writing the messages to the outbox (for trying it out; they
        /// reach no one).
        #[arg(long)]
        outbox: bool,
    },

    /// Serve one-click unsubscribe links, the sign-up form and the web archive over HTTP.
    #[command(
        long_about = "Serve one-click unsubscribe links, the sign-up form and the web archive over HTTP.\n\n\
The other end of the unsubscribe link in every email ({site_url}/unsubscribe/<token>): a POST \
(what Gmail's and Apple Mail's unsubscribe buttons send, RFC 8058) unsubscribes at once; a GET \
shows a page with one button, and never unsubscribes by itself. The address goes on the \
ledger's suppression list, which every send and the scheduler honour; the page then offers to \
resubscribe. Also serves the sign-up form (/subscribe: double opt-in, a confirmation email \
with a link to /confirm/<token> that works for 7 days, sent through LETTERPRESS_SMTP_URL or to \
the outbox), the archive of sent issues (/), each one's web version (/issues/<date>/) and an \
Atom feed (/feed.xml).\n\n\
Listens on loopback by default: put a TLS reverse proxy (Caddy, nginx) in front of it and set \
site_url in newsletter.yaml to its public address. Picks up edits to the settings, the list \
and the issues without a restart.",
        after_help = "Examples:\n  letterpress serve                          # http://127.0.0.1:8080\n  \
letterpress serve --listen 127.0.0.1:9000\n  \
letterpress serve --listen 0.0.0.0:8080    # reachable from other machines: only behind a proxy\n\n\
Environment:\n  LETTERPRESS_SECRET   the secret the links were signed with (else .letterpress/secret)\n  \
LETTERPRESS_LOG      log filter (info by default; debug for more)\n\n\
Stops on Ctrl-C or SIGTERM."
    )]
    Serve {
        /// The address and port to listen on.
        #[arg(long, value_name = "ADDR:PORT", default_value = crate::serve::DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
    },

    /// The readers: the file's, the web's, and who left and why.
    #[command(
        long_about = "The readers: the file's, the web's, and who left and why.\n\n\
Who gets an issue: the active entries of the subscriber list, plus confirmed web sign-ups, \
minus every address marked unsubscribed or suppressed (one-click, mailto, bounce, complaint, \
manual, import); addresses compared without case.",
        after_help = "Examples:\n  letterpress subscribers list --status suppressed\n  \
letterpress subscribers show ada@example.com\n  \
letterpress subscribers add ada@example.com --name 'Ada Okafor' --tag research\n  \
letterpress subscribers remove ada@example.com\n  \
letterpress subscribers import mailchimp-subscribed.csv --dry-run\n  \
letterpress subscribers export --format csv > readers.csv\n  \
letterpress subscribers form > signup.html"
    )]
    Subscribers {
        #[command(subcommand)]
        command: SubscribersCommand,
    },

    /// A consistent copy of the ledger, while `run` or `serve` are running.
    #[command(
        long_about = "A consistent copy of the ledger, while `run` or `serve` are running.\n\n\
Uses SQLite's online backup, so the copy is the ledger as of one moment even while a send \
or an unsubscribe writes to it. The ledger is what keeps unsubscribed readers unsubscribed, \
web sign-ups subscribed and readers from getting an issue twice: back it up, and restore a \
copy by stopping `run` and `serve` and copying it to .letterpress/ledger.sqlite3.",
        after_help = "Examples:\n  letterpress backup /var/backups/letterpress/ledger.sqlite3"
    )]
    Backup {
        /// Where to write the copy (replaced if it exists).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },

    /// Show the issue being written in a browser, as it will arrive, again at every save.
    #[command(
        long_about = "Show the issue being written in a browser, as it will arrive, again at every save.\n\n\
A local page with the email at a phone's width (375 px) and a desktop's (700 px) side by side, \
a light/dark switch (the theme's dark-mode rules applied), the plain-text part, and the inbox \
line (From name, subject and preheader) cut where Gmail cuts them. Above it, the problems \
`letterpress check` finds in the issue and the files around it; while the issue does not \
render, the last version that did stays below them. It shows the issue again within a second \
of any file of the workspace being saved (the issue, the settings, the list, the theme, \
images).\n\n\
It is shown for the first reader `send` would mail (or --as ADDR), with their greeting and \
unsubscribe link. Without ISSUE it follows the issue file saved last. Nothing is written: no \
ledger, no secret.",
        after_help = "Examples:\n  letterpress preview                         # http://127.0.0.1:4000/\n  \
letterpress preview 2021-08-23 --as ada@example.com\n  \
letterpress preview --listen 127.0.0.1:4100\n\n\
Stops on Ctrl-C."
    )]
    Preview {
        /// The issue file, or its name (2021-08-23); the issue file saved last when omitted.
        #[arg(value_name = "ISSUE")]
        issue: Option<String>,
        /// The address and port to listen on (loopback unless --allow-remote).
        #[arg(long, value_name = "ADDR:PORT", default_value = crate::preview::DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
        /// Show the issue as this reader gets it (their name and link when on the list).
        #[arg(long = "as", value_name = "ADDR")]
        reader: Option<String>,
        /// Allow a --listen address other machines can reach (they would see a reader's
        /// address and unsubscribe link).
        #[arg(long)]
        allow_remote: bool,
    },

    /// What was sent, failed, deferred or left uncertain.
    #[command(
        after_help = "Examples:\n  letterpress status 2021-08-23\n  letterpress status 2021-08-23 --json"
    )]
    Status {
        /// The issue file or name; every issue in the ledger when omitted.
        #[arg(value_name = "ISSUE")]
        issue: Option<String>,
        /// One JSON object (pending, sent, deferred, failed, uncertain, ... and the problems).
        #[arg(long)]
        json: bool,
    },

    /// Print a shell completion script.
    #[command(
        long_about = "Print a completion script for SHELL on standard output, generated from the \
same definitions as --help, so it always knows every command and option of this version.",
        after_help = "Where to put it:\n  \
bash:  letterpress completions bash > ~/.local/share/bash-completion/completions/letterpress\n  \
zsh:   letterpress completions zsh > ~/.zfunc/_letterpress   (with fpath+=~/.zfunc before compinit)\n  \
fish:  letterpress completions fish > ~/.config/fish/completions/letterpress.fish\n  \
elvish, powershell: add the output to your shell's startup file"
    )]
    Completions {
        /// The shell to complete for.
        #[arg(value_name = "SHELL")]
        shell: crate::manual::Shell,
    },

    /// Write the man pages: letterpress.1 and one per command.
    #[command(
        long_about = "Write letterpress.1 and one page per command (letterpress-send.1, ...) to DIR, \
generated from the same definitions as --help.",
        after_help = "Examples:\n  letterpress manpage /usr/local/share/man/man1\n  \
letterpress manpage out/man && man -l out/man/letterpress.1"
    )]
    Manpage {
        /// The folder to write the pages to (created if missing).
        #[arg(value_name = "DIR", default_value = ".")]
        dir: std::path::PathBuf,
    },

    /// Read bounces and complaints, and take addresses that no longer take mail off the list.
    #[command(
        long_about = "Read bounces and complaints, and take addresses that no longer take mail off the list.\n\n\
Recognises delivery status notifications (RFC 3464), abuse feedback reports (ARF, RFC 5965) \
and the common non-standard bounces of the big receivers; ignores automatic replies and \
anything it cannot tie to one of your readers. A report is tied to a reader by the VERP tag \
of the message's envelope sender (set bounce_address in newsletter.yaml), else by the \
Message-ID of the message it returns. Every report tied to a reader is kept in the ledger, \
raw, with what it did.\n\n\
Policy: a hard bounce (a 5.x.x status) takes the address off the list at once; soft bounces \
do once the last bounces.soft_limit issues (default 3) sent to it all bounced; a complaint \
does at once. `letterpress subscribers lift ADDRESS` puts one back.",
        after_help = "Examples:\n  letterpress bounces ingest bounces.mbox ~/Maildir/.Bounces\n  \
letterpress bounces ingest -          # one message on stdin (a Postfix pipe, procmail)\n  \
LETTERPRESS_BOUNCE_IMAP_URL='imaps://bounces:secret@imap.example.com/INBOX' letterpress bounces fetch"
    )]
    Bounces {
        #[command(subcommand)]
        command: BouncesCommand,
    },

    /// Make a DKIM key and print the DNS record to publish.
    Dkim {
        #[command(subcommand)]
        command: DkimCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Every known address: where it comes from, where it stands, since when, and why.
    List {
        /// One JSON array, for scripts.
        #[arg(long)]
        json: bool,
        /// Only addresses that stand so.
        #[arg(long, value_enum)]
        status: Option<crate::list::Standing>,
    },
    /// One reader: where they come from, their consent, the issues they got, suppressions.
    Show {
        #[arg(value_name = "ADDRESS")]
        address: String,
    },
    /// Append an entry to the subscriber list, leaving the rest of the file as it is.
    Add {
        #[arg(value_name = "ADDRESS")]
        address: String,
        /// Their name, for the greeting and the To header.
        #[arg(long)]
        name: Option<String>,
        /// A tag (repeatable).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
    },
    /// Suppress an address (source `manual`): it gets no mail, and the form never re-adds it.
    Remove {
        #[arg(value_name = "ADDRESS")]
        address: String,
    },
    /// Lift an address's suppression, whatever set it (recorded in its history).
    Lift {
        #[arg(value_name = "ADDRESS")]
        address: String,
    },
    /// Import a CSV export from Mailchimp, Substack, Buttondown or listmonk (or any CSV with
    /// an email column).
    Import {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Say what it would do, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The readers an issue would go to now, to stdout.
    Export {
        #[arg(long, value_enum, default_value = "csv")]
        format: ExportFormat,
    },
    /// An HTML sign-up form to paste into another site.
    Form,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum BouncesCommand {
    /// Read bounce mail from files (.eml, mbox, Maildir folders) or standard input.
    #[command(
        long_about = "Read bounce mail from files (.eml, mbox, Maildir folders) or standard input.\n\n\
With no PATH, or `-`, one message is read from standard input, so a mail server can hand \
bounces over as they arrive (a Postfix pipe transport, a procmail or Sieve rule). Reading \
the same message again changes nothing.",
        after_help = "Examples:\n  letterpress bounces ingest bounce.eml\n  letterpress bounces ingest /var/mail/bounces\n  \
letterpress -C /srv/newsletter bounces ingest -"
    )]
    Ingest {
        /// Files, mbox files or Maildir folders; `-` (or nothing) for standard input.
        #[arg(value_name = "PATH")]
        paths: Vec<String>,
    },

    /// Read the bounce mailbox over IMAP (LETTERPRESS_BOUNCE_IMAP_URL).
    #[command(
        long_about = "Read the bounce mailbox over IMAP (LETTERPRESS_BOUNCE_IMAP_URL).\n\n\
Each message that is a report about one of your readers is recorded, then moved to the \
folder letterpress-processed (created if missing). Every other message is left exactly as \
it was: not read, not flagged, not moved, never deleted. The server's certificate is \
verified as the relay's is (LETTERPRESS_SMTP_CA adds certificate authorities).",
        after_help = "Environment:\n  LETTERPRESS_BOUNCE_IMAP_URL   imaps://user:password@imap.example.com/INBOX (TLS),\n                                \
imap://user:password@host/Bounces (STARTTLS), or ?tls=none for a server on loopback"
    )]
    Fetch,
}

#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Make a DKIM key (never overwriting one) and print the DNS TXT record that publishes it.
    #[command(
        long_about = "Make a DKIM key (never overwriting one) and print the DNS TXT record that publishes it.\n\n\
The key is written to .letterpress/dkim/<selector>.pem, readable by you alone (or to the \
file LETTERPRESS_DKIM_KEY or LETTERPRESS_DKIM_ED25519_KEY names). RSA keys are 2048 bits. \
Publish the record at <selector>._domainkey.<domain>, add the selector to newsletter.yaml's \
dkim: block, and every message is signed. Receivers that verify Ed25519 (RFC 8463) are \
still few: use it beside an RSA key, under ed25519_selector.",
        after_help = "Examples:\n  letterpress dkim keygen --selector lp2026\n  \
letterpress dkim keygen --algorithm ed25519 --selector lp2026e\n  \
letterpress dkim keygen --selector news --domain mail.example.com"
    )]
    Keygen {
        /// The key's selector (its DNS name's first part); the one newsletter.yaml names, else lp<year>.
        #[arg(long, value_name = "SELECTOR")]
        selector: Option<String>,
        /// rsa (rsa-sha256, 2048 bits; every receiver verifies it) or ed25519 (ed25519-sha256).
        #[arg(long, value_enum, default_value = "rsa")]
        algorithm: KeyAlgorithm,
        /// The signing domain (d=); dkim.domain from newsletter.yaml, else the From address's domain.
        #[arg(long, value_name = "DOMAIN")]
        domain: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyAlgorithm {
    Rsa,
    Ed25519,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
