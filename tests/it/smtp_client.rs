//! letterpress's SMTP client against the testkit server: what arrives, byte for byte, with and
//! without pipelining, and what a refusal leaves behind.

use letterpress::delivery::smtp::{Session, SmtpError, Step, TlsSettings};
use letterpress::delivery::smtp_url::SmtpUrl;
use letterpress_testkit::{Behaviour, IncidentKind, Reply, SmtpServer};

fn tls() -> TlsSettings {
    TlsSettings::with_extra_roots(&[]).unwrap()
}

async fn open(server: &SmtpServer) -> Session {
    Session::open(
        &SmtpUrl::parse(&server.url()).unwrap(),
        "client.example",
        &tls(),
    )
    .await
    .unwrap()
}

const MESSAGE: &[u8] = b"Subject: dots\r\n\r\n.leading dot\r\nmiddle\r\n.\r\n..two\r\nend\r\n";

#[tokio::test]
async fn lines_starting_with_a_dot_arrive_intact_with_and_without_pipelining() {
    for behaviour in [Behaviour::new(), Behaviour::new().without_pipelining()] {
        let server = SmtpServer::start(behaviour).await;
        let mut session = open(&server).await;
        let reply = session
            .send("from@example.com", "to@example.com", MESSAGE)
            .await
            .unwrap();
        assert_eq!(reply.code, 250);
        let received = &server.messages()[0];
        assert_eq!(received.mail_from, "from@example.com");
        assert_eq!(received.rcpt_to, ["to@example.com"]);
        assert_eq!(received.data, MESSAGE);
    }
}

#[tokio::test]
async fn a_refused_recipient_leaves_the_session_ready_for_the_next_message() {
    let server =
        SmtpServer::start(Behaviour::new().rcpt_reply("gone@example.com", Reply::user_unknown()))
            .await;
    let mut session = open(&server).await;
    match session
        .send("from@example.com", "gone@example.com", MESSAGE)
        .await
    {
        Err(SmtpError::Rejected(reply, Step::Rcpt)) => {
            assert_eq!(reply.to_string(), "550 5.1.1 User unknown");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    session
        .send("from@example.com", "here@example.com", MESSAGE)
        .await
        .unwrap();
    assert_eq!(server.message_count(), 1);
    assert_eq!(server.connections_opened(), 1);
    assert_eq!(server.messages()[0].rcpt_to, ["here@example.com"]);
    let incidents = server.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(
        incidents[0].kind,
        IncidentKind::RcptRefused(Reply::user_unknown())
    );
    assert_eq!(incidents[0].rcpt_to, ["gone@example.com"]);
}

#[tokio::test]
async fn a_message_not_ending_in_a_line_break_gets_one_before_the_final_dot() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let mut session = open(&server).await;
    session
        .send(
            "from@example.com",
            "to@example.com",
            b"Subject: x\r\n\r\nno newline",
        )
        .await
        .unwrap();
    assert_eq!(
        server.messages()[0].data,
        b"Subject: x\r\n\r\nno newline\r\n"
    );
}

#[tokio::test]
async fn credentials_are_sent_with_auth_plain_and_a_wrong_password_is_an_auth_refusal() {
    let server = SmtpServer::start(Behaviour::new().auth("editor", "right")).await;
    let url = |password: &str| {
        SmtpUrl::parse(&format!(
            "smtp://editor:{password}@127.0.0.1:{}",
            server.port()
        ))
        .unwrap()
    };
    let mut session = Session::open(&url("right"), "client.example", &tls())
        .await
        .unwrap();
    session
        .send("from@example.com", "to@example.com", MESSAGE)
        .await
        .unwrap();
    match Session::open(&url("wrong"), "client.example", &tls()).await {
        Err(SmtpError::Rejected(reply, Step::Auth)) => assert_eq!(reply.code, 535),
        Err(other) => panic!("expected an AUTH refusal, got {other}"),
        Ok(_) => panic!("a wrong password was accepted"),
    }
    let attempts = server.auth_attempts();
    assert_eq!(attempts.len(), 2);
    assert_eq!(
        (attempts[0].mechanism.as_str(), attempts[0].accepted),
        ("PLAIN", true)
    );
}
