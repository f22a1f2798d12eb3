//! The SMTP dialogue at the byte level, with a hand-written client, for what
//! no well-behaved client does (bad command order, AUTH with and without an
//! initial response, hanging up mid-message) and for pipelining and
//! dot-unstuffing independent of any client's own escaping. The server
//! driven by letterpress's own client is tested in letterpress's
//! `tests/it/testkit_server.rs`.

use std::time::Duration;

use letterpress_testkit::{Behaviour, IncidentKind, SmtpServer, Stage, Target};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct RawClient {
    stream: BufReader<TcpStream>,
}

impl RawClient {
    async fn connect(server: &SmtpServer) -> RawClient {
        let stream = TcpStream::connect(server.addr()).await.expect("connect");
        RawClient {
            stream: BufReader::new(stream),
        }
    }

    async fn send(&mut self, text: &str) {
        self.stream
            .get_mut()
            .write_all(text.as_bytes())
            .await
            .expect("write");
    }

    /// Reads one (possibly multi-line) reply: its code and its lines' text.
    async fn reply(&mut self) -> (u16, Vec<String>) {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read =
                tokio::time::timeout(Duration::from_secs(5), self.stream.read_line(&mut line))
                    .await
                    .expect("a reply in time")
                    .expect("read");
            assert!(read > 0, "connection closed; got {lines:?}");
            let line = line.trim_end_matches(['\r', '\n']);
            let code = line[..3].parse().expect("reply code");
            lines.push(line[4..].to_owned());
            if line.as_bytes()[3] == b' ' {
                return (code, lines);
            }
        }
    }

    async fn command(&mut self, text: &str) -> u16 {
        self.send(&format!("{text}\r\n")).await;
        self.reply().await.0
    }

    async fn is_closed(&mut self) -> bool {
        let mut rest = String::new();
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.stream.read_line(&mut rest)).await,
            Ok(Ok(0))
        )
    }
}

#[tokio::test]
async fn the_greeting_and_ehlo_advertise_the_extensions_a_client_needs() {
    let server = SmtpServer::start(Behaviour::new().hostname("mx.test").auth("u", "p")).await;
    let mut client = RawClient::connect(&server).await;
    assert_eq!(
        client.reply().await,
        (220, vec!["mx.test ESMTP letterpress-testkit".to_owned()])
    );
    client.send("EHLO client.test\r\n").await;
    let (code, lines) = client.reply().await;
    assert_eq!(code, 250);
    assert_eq!(
        lines,
        [
            "mx.test greets client.test",
            "PIPELINING",
            "8BITMIME",
            "SIZE 36700160",
            "SMTPUTF8",
            "ENHANCEDSTATUSCODES",
            "AUTH PLAIN LOGIN",
        ]
    );
    assert_eq!(client.command("HELO client.test").await, 250);
    assert_eq!(client.command("NOOP").await, 250);
    assert_eq!(client.command("VRFY someone").await, 252);
    assert_eq!(client.command("BOGUS").await, 500);
    assert_eq!(client.command("QUIT").await, 221);
    assert!(client.is_closed().await);
    let commands = server.commands();
    assert_eq!(
        (commands.ehlo, commands.helo, commands.noop, commands.quit),
        (1, 1, 1, 1)
    );
    assert_eq!(commands.other, 2);
}

#[tokio::test]
async fn commands_out_of_order_get_503_and_rset_clears_the_transaction() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let mut client = RawClient::connect(&server).await;
    client.reply().await;
    assert_eq!(client.command("EHLO c").await, 250);
    assert_eq!(client.command("RCPT TO:<a@example.com>").await, 503);
    assert_eq!(client.command("DATA").await, 503);
    assert_eq!(client.command("MAIL FROM:<s@example.com>").await, 250);
    assert_eq!(client.command("MAIL FROM:<s@example.com>").await, 503);
    assert_eq!(client.command("DATA").await, 554);
    assert_eq!(client.command("MAIL TO:<oops@example.com>").await, 501);
    assert_eq!(client.command("RSET").await, 250);
    assert_eq!(
        client
            .command("MAIL FROM:<s@example.com> SIZE=999999999999")
            .await,
        552
    );
    assert_eq!(client.command("MAIL FROM:<> SIZE=10").await, 250);
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order_and_data_is_unstuffed_exactly() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let mut client = RawClient::connect(&server).await;
    client.reply().await;
    client
        .send("EHLO c\r\nMAIL FROM:<s@example.com> BODY=8BITMIME\r\nRCPT TO:<a@example.com>\r\nRCPT TO:<B@Example.com>\r\nDATA\r\n")
        .await;
    for expected in [250, 250, 250, 250, 354] {
        assert_eq!(client.reply().await.0, expected);
    }
    client
        .send("Subject: dots\r\n\r\n..\r\n..leading\r\n...\r\nno.stuffing\r\n.\r\n")
        .await;
    assert_eq!(client.reply().await.0, 250);

    let message = &server
        .wait_for_messages(1, Duration::from_secs(5))
        .await
        .expect("one")[0];
    assert_eq!(
        message.data,
        b"Subject: dots\r\n\r\n.\r\n.leading\r\n..\r\nno.stuffing\r\n"
    );
    assert_eq!(message.mail_params, ["BODY=8BITMIME"]);
    assert_eq!(message.rcpt_to, ["a@example.com", "B@Example.com"]);
    assert_eq!(message.helo.as_deref(), Some("c"));

    // A second message on the same connection.
    client
        .send("MAIL FROM:<s@example.com>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n")
        .await;
    for expected in [250, 250, 354] {
        assert_eq!(client.reply().await.0, expected);
    }
    client.send("second\r\n.\r\n").await;
    assert_eq!(client.reply().await.0, 250);
    let messages = server
        .wait_for_messages(2, Duration::from_secs(5))
        .await
        .expect("two");
    assert_eq!(messages[1].data, b"second\r\n");
    assert_eq!(messages[1].connection, messages[0].connection);
    // MAIL, both RCPTs and DATA came before EHLO's reply; RCPT and DATA
    // before MAIL's the second time.
    assert_eq!(server.commands().pipelined, 4 + 2);
}

#[tokio::test]
async fn auth_login_and_plain_work_with_and_without_initial_responses() {
    let server = SmtpServer::start(Behaviour::new().auth("user", "pass")).await;
    let mut client = RawClient::connect(&server).await;
    client.reply().await;
    client.command("EHLO c").await;
    assert_eq!(client.command("MAIL FROM:<s@example.com>").await, 530);

    // AUTH LOGIN with the username as initial response ("dXNlcg==" = "user").
    client.send("AUTH LOGIN dXNlcg==\r\n").await;
    assert_eq!(client.reply().await, (334, vec!["UGFzc3dvcmQ6".to_owned()]));
    assert_eq!(client.command("d3Jvbmc=").await, 535); // "wrong"

    // AUTH PLAIN without initial response: empty 334 challenge first.
    assert_eq!(client.command("AUTH PLAIN").await, 334);
    assert_eq!(client.command("AHVzZXIAcGFzcw==").await, 235); // "\0user\0pass"
    assert_eq!(client.command("AUTH PLAIN AHVzZXIAcGFzcw==").await, 503);
    assert_eq!(client.command("MAIL FROM:<s@example.com>").await, 250);

    let mut other = RawClient::connect(&server).await;
    other.reply().await;
    other.command("EHLO c").await;
    assert_eq!(other.command("AUTH PLAIN !!!").await, 501);
    assert_eq!(other.command("AUTH CRAM-MD5").await, 504);

    let login_only = SmtpServer::start(
        Behaviour::new()
            .auth("user", "pass")
            .auth_mechanisms(["login"]),
    )
    .await;
    let mut third = RawClient::connect(&login_only).await;
    third.reply().await;
    third.send("EHLO c\r\n").await;
    assert_eq!(third.reply().await.1.last().unwrap(), "AUTH LOGIN");
    assert_eq!(third.command("AUTH PLAIN AHVzZXIAcGFzcw==").await, 504);
    assert!(login_only.auth_attempts().is_empty());

    let attempts: Vec<_> = server
        .auth_attempts()
        .into_iter()
        .map(|a| (a.mechanism, a.username, a.password, a.accepted))
        .collect();
    assert_eq!(
        attempts,
        [
            ("LOGIN".into(), "user".into(), "wrong".into(), false),
            ("PLAIN".into(), "user".into(), "pass".into(), true),
        ]
    );
}

#[tokio::test]
async fn a_client_vanishing_mid_data_is_recorded_as_abandoned() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let mut client = RawClient::connect(&server).await;
    client.reply().await;
    client
        .send("EHLO c\r\nMAIL FROM:<s@example.com>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n")
        .await;
    for _ in 0..4 {
        client.reply().await;
    }
    client.send("Subject: half\r\n\r\nthe first ha").await;
    drop(client);

    for _ in 0..100 {
        if !server.incidents().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let incidents = server.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].kind, IncidentKind::Abandoned);
    assert_eq!(incidents[0].data, b"Subject: half\r\n\r\nthe first ha");
    assert_eq!(server.message_count(), 0);
}

#[tokio::test]
async fn a_broken_connection_does_not_disturb_the_server() {
    let server = SmtpServer::start(Behaviour::new()).await;
    for _ in 0..5 {
        let stream = TcpStream::connect(server.addr()).await.expect("connect");
        // Reset immediately, before even reading the greeting.
        stream.set_zero_linger().expect("linger");
        drop(stream);
    }
    let mut client = RawClient::connect(&server).await;
    assert_eq!(client.reply().await.0, 220);
    assert_eq!(client.command("EHLO still-alive").await, 250);
    assert_eq!(server.connections_opened(), 6);
}

#[tokio::test]
async fn waiting_for_messages_that_never_come_times_out_with_a_clear_error() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let error = server
        .wait_for_messages(1, Duration::from_millis(50))
        .await
        .expect_err("nothing was sent");
    assert_eq!((error.wanted, error.received), (1, 0));
    assert_eq!(
        error.to_string(),
        "waited 50ms for 1 message(s) but the SMTP server received 0"
    );
}

#[tokio::test]
async fn what_a_client_pipelines_during_a_stall_is_answered_after_it() {
    let server = SmtpServer::start(Behaviour::new().stall(
        Stage::Mail,
        Target::Any,
        Duration::from_millis(100),
    ))
    .await;
    let mut client = RawClient::connect(&server).await;
    client.reply().await;
    client.command("EHLO c").await;
    client
        .send("MAIL FROM:<s@example.com>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n")
        .await;
    for expected in [250, 250, 354] {
        assert_eq!(client.reply().await.0, expected);
    }
    client.send("late but whole\r\n.\r\n").await;
    assert_eq!(client.reply().await.0, 250);
    assert_eq!(server.messages()[0].data, b"late but whole\r\n");
}

#[tokio::test]
async fn a_whole_message_is_kept_when_the_client_leaves_during_a_stall_before_its_reply() {
    let server = SmtpServer::start(Behaviour::new().stall(
        Stage::DataEnd,
        Target::Any,
        Duration::from_secs(60),
    ))
    .await;
    let mut client = RawClient::connect(&server).await;
    client.reply().await;
    client
        .send("EHLO c\r\nMAIL FROM:<s@example.com>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n")
        .await;
    for _ in 0..4 {
        client.reply().await;
    }
    client.send("Subject: timed out\r\n\r\nbody\r\n.\r\n").await;
    // The client gives up on the reply, as one with a timeout does.
    drop(client);

    let received = server
        .wait_for_messages(1, Duration::from_secs(5))
        .await
        .expect("kept although nobody heard the reply");
    assert_eq!(received[0].data, b"Subject: timed out\r\n\r\nbody\r\n");
    let kinds: Vec<_> = server.incidents().into_iter().map(|i| i.kind).collect();
    assert_eq!(
        kinds,
        [IncidentKind::Stalled {
            stage: Stage::DataEnd,
            duration: Duration::from_secs(60)
        }]
    );
}
