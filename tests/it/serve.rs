//! `letterpress serve` end to end: the real binary on a random loopback port, real HTTP, the
//! real ledger, and sends through testkit's SMTP server around it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::support::{
    SECRET, SMALL_ISSUE, ServeProcess, TestWorkspace, get, http, numbered_subscribers, one_click,
};
use letterpress::ledger::Source;
use letterpress::secret::Secret;
use letterpress_testkit::{Behaviour, SmtpServer};
use mail_parser::MessageParser;

const ISSUE: &str = "2021-08-23";
const NEXT_ISSUE: &str = "2021-08-30";

const FAST: &str = "delivery:\n  concurrency: 4\n  max_attempts: 3\n  timeout_seconds: 2\n";

const THREE: &str = "- email: ada@example.com\n  name: Ada Okafor\n- email: li@example.org\n  name: 李伟\n- email: jonas@example.org\n  name: Jonas Berg\n  status: unsubscribed\n- email: reader@example.com\n";

const LIST_ID: &str = "global-ai-weekly.weekly.example.com";

const POLICY: &str = "default-src 'none'; style-src 'self'; img-src https: http: data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn token(address: &str) -> String {
    Secret::from_passphrase(SECRET)
        .unwrap()
        .unsubscribe_token(LIST_ID, &crate::support::key(address))
}

fn unsubscribe_path(address: &str) -> String {
    format!("/unsubscribe/{}", token(address))
}

/// The example workspace with three subscribers and the next issue ready.
fn workspace() -> TestWorkspace {
    let workspace = TestWorkspace::for_delivery(THREE, FAST);
    workspace.write(&format!("issues/{NEXT_ISSUE}.yaml"), SMALL_ISSUE);
    workspace
}

/// Sends an issue to the outbox at a given time, as if it went out then.
fn send_at(workspace: &TestWorkspace, issue: &str, now: &str) {
    let output = workspace
        .command()
        .env("LETTERPRESS_SECRET", SECRET)
        .env("LETTERPRESS_NOW", now)
        .args(["send", issue, "--yes"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn one_click_unsubscribe_from_the_header_stops_the_next_issue() {
    let smtp = SmtpServer::start_in_background(Behaviour::new());
    let workspace = workspace();
    let run = workspace.send(&smtp.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    let server = ServeProcess::start(&workspace);

    // What Gmail does with the headers of the message Ada received.
    let received = smtp
        .messages()
        .into_iter()
        .find(|message| message.rcpt_to == ["ada@example.com"])
        .unwrap();
    let message = MessageParser::default().parse(&received.data).unwrap();
    let header = message.header_raw("List-Unsubscribe").unwrap();
    let https = header
        .split(['<', '>'])
        .find(|part| part.starts_with("https://"))
        .unwrap();
    assert_eq!(
        message.header_raw("List-Unsubscribe-Post").unwrap().trim(),
        "List-Unsubscribe=One-Click"
    );
    let url = https.replace("https://weekly.example.com", &server.base);
    assert_eq!(url, server.url(&unsubscribe_path("ada@example.com")));

    let reply = one_click(&url);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body.contains("<h1 class=\"lp-page-heading\">You are unsubscribed</h1><p>a***@e***.com will not get Global AI Weekly any more.</p>"), "{}", reply.body);
    // Idempotent: the provider may send it twice.
    let again = one_click(&url);
    assert_eq!((again.status, &again.body), (200, &reply.body));

    let ledger = workspace.ledger();
    let suppression = ledger
        .suppression(&crate::support::key("ada@example.com"))
        .unwrap()
        .unwrap();
    assert_eq!(suppression.source, Source::OneClick);
    assert_eq!(
        suppression.created_at.to_rfc3339(),
        "2021-08-16T12:00:00+00:00"
    );
    assert_eq!(
        ledger.suppression_counts().unwrap(),
        [(Source::OneClick, 1)]
    );

    let run = workspace.send(&smtp.url(), &[NEXT_ISSUE, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    let mut next: Vec<String> = smtp
        .messages()
        .iter()
        .filter(|message| {
            String::from_utf8_lossy(&message.data).contains("Subject: Small issue\r\n")
        })
        .flat_map(|message| message.rcpt_to.clone())
        .collect();
    next.sort();
    assert_eq!(next, ["li@example.org", "reader@example.com"]);
    assert_eq!(smtp.message_count(), 5);

    let status = workspace.run(&["status"]);
    assert_eq!(
        status.stdout,
        "Next slots (America/Toronto):\n  \
         Mon 2021-08-16 09:00 -04:00 -> no issue yet\n  \
         Mon 2021-08-23 09:00 -04:00 -> issues/2021-08-23.yaml (already sent)\n  \
         Mon 2021-08-30 09:00 -04:00 -> issues/2021-08-30.yaml (already sent)\n\
         1 address suppressed (unsubscribed by link)\n\
         Issues in the ledger:\n  \
         2021-08-23  sent 3, failed 0, deferred 0, uncertain 0\n  \
         2021-08-30  sent 2, failed 0, deferred 0, uncertain 0\n"
    );
    let check = workspace.run(&["check"]);
    assert_eq!(check.status, 0, "{check:?}");
    let (stdout, sizes) = crate::support::mask_sizes(&check.stdout);
    assert_eq!(
        stdout,
        format!(
            "{}\n\
             subscribers.example.yaml:1:10: note: [0].email: `ada@example.com` is suppressed (one-click since 2021-08-16): it gets no mail; remove the entry, or `letterpress subscribers lift ada@example.com`\n\
             \n\
             newsletter.yaml           ok, 1 warning\n\
             subscribers.example.yaml  ok  4 subscribers: 3 active, 1 unsubscribed, 1 suppressed\n\
             issues/2021-08-23.yaml    ok  ready, 3 sections, 12 articles, HTML <size>\n\
             issues/2021-08-30.yaml    ok  ready, 1 section, 1 article, HTML <size>\n\
             check passed with 1 warning\n",
            crate::support::DKIM_NOT_SET
        )
    );
    crate::support::assert_under_gmail_clip(&sizes);
}

#[test]
fn a_get_shows_one_button_and_never_unsubscribes() {
    let workspace = workspace();
    let server = ServeProcess::start(&workspace);
    let url = server.url(&unsubscribe_path("ada@example.com"));
    for _ in 0..2 {
        let reply = get(&url);
        assert_eq!(reply.status, 200);
        assert!(
            reply
                .body
                .contains("<title>Unsubscribe from Global AI Weekly? · Global AI Weekly</title>")
        );
        assert!(reply.body.contains(
            "<p>a***@e***.com gets Global AI Weekly. One click and it stops: no account, no questions.</p>\
             <form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button class=\"lp-button\" type=\"submit\">Unsubscribe</button></form>"
        ), "{}", reply.body);
        assert!(
            !reply.body.contains("ada@example.com"),
            "the page shows the address"
        );
        assert!(!reply.body.contains("<script"));
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    assert_eq!(
        workspace
            .ledger()
            .suppression(&crate::support::key("ada@example.com"))
            .unwrap(),
        None
    );
}

#[test]
fn forged_truncated_other_newsletter_and_garbage_tokens_are_refused_alike() {
    let workspace = workspace();
    let server = ServeProcess::start(&workspace);
    let valid = token("ada@example.com");
    let mut forged = valid.clone().into_bytes();
    forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let other_newsletter = Secret::from_passphrase(SECRET).unwrap().unsubscribe_token(
        "other-weekly.news.example.org",
        &crate::support::key("ada@example.com"),
    );
    let other_secret = Secret::from_passphrase("another secret that is long enough, too")
        .unwrap()
        .unsubscribe_token(LIST_ID, &crate::support::key("ada@example.com"));
    let cases = [
        ("forged", forged),
        ("truncated", valid[..21].to_string()),
        ("extended", format!("{valid}A")),
        ("other newsletter", other_newsletter),
        ("other secret", other_secret),
        ("unknown address", token("nobody@example.com")),
        ("garbage", "not-a-token".to_string()),
        ("percent garbage", "%FF%00%3Cscript%3E".to_string()),
        ("long garbage", "x".repeat(600)),
        ("nested path", format!("{valid}/x")),
    ];
    let mut answers = Vec::new();
    for (name, token) in &cases {
        let url = server.url(&format!("/unsubscribe/{token}"));
        let viewed = get(&url);
        let posted = one_click(&url);
        eprintln!(
            "{name}: GET {} / POST {} ({} bytes, {:?})",
            viewed.status,
            posted.status,
            posted.body.len(),
            posted
                .body
                .split("<h1 class=\"lp-page-heading\">")
                .nth(1)
                .and_then(|rest| rest.split("</h1>").next())
        );
        answers.push((name, viewed.status, viewed.body, posted.status, posted.body));
    }
    let (_, status, body, _, _) = &answers[0];
    assert_eq!(*status, 404);
    assert!(body.contains("<h1 class=\"lp-page-heading\">This link does not work</h1>"));
    for (name, get_status, get_body, post_status, post_body) in &answers {
        assert_eq!((*get_status, *post_status), (404, 404), "{name}");
        assert_eq!(get_body, body, "{name}: a different page");
        assert_eq!(post_body, body, "{name}: a different page");
    }
    assert!(workspace.ledger().suppression_counts().unwrap().is_empty());
}

#[test]
fn resubscribing_lifts_only_a_suppression_the_subscriber_caused() {
    let workspace = workspace();
    {
        let mut ledger = workspace.ledger();
        ledger
            .suppress(
                &crate::support::key("li@example.org"),
                &Source::Manual,
                Some("asked by phone"),
                chrono::Utc::now(),
            )
            .unwrap();
    }
    let server = ServeProcess::start(&workspace);

    let ada = server.url(&unsubscribe_path("ada@example.com"));
    assert_eq!(one_click(&ada).status, 200);
    let back = http("POST", &ada, Some("action=resubscribe"));
    assert_eq!(back.status, 200);
    assert!(back.body.contains("<h1 class=\"lp-page-heading\">Welcome back</h1><p>a***@e***.com will get Global AI Weekly again.</p>"), "{}", back.body);
    assert_eq!(
        workspace
            .ledger()
            .suppression(&crate::support::key("ada@example.com"))
            .unwrap(),
        None
    );

    let li = server.url(&unsubscribe_path("li@example.org"));
    let page = get(&li);
    assert!(
        page.body
            .contains("<h1 class=\"lp-page-heading\">You are unsubscribed</h1>")
    );
    assert!(
        !page.body.contains("Resubscribe"),
        "an editor's suppression offers no undo"
    );
    let refused = http("POST", &li, Some("action=resubscribe"));
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains("To be added back, write to <a href=\"mailto:editors@example.com\">editors@example.com</a>."), "{}", refused.body);
    let li = workspace
        .ledger()
        .suppression(&crate::support::key("li@example.org"))
        .unwrap()
        .unwrap();
    assert_eq!(li.source, Source::Manual);
}

#[test]
fn someone_removed_from_the_list_since_the_send_can_still_unsubscribe() {
    let workspace = workspace();
    send_at(&workspace, ISSUE, "2021-08-23T13:00:00Z");
    let server = ServeProcess::start(&workspace);
    // Taken off the file while the server runs: it notices, and still knows them from the
    // ledger.
    workspace.write(
        "subscribers.example.yaml",
        "- email: ada@example.com\n  name: Ada Okafor\n- email: li@example.org\n",
    );
    let url = server.url(&unsubscribe_path("reader@example.com"));
    let page = get(&url);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<p>r***@e***.com does not get Global AI Weekly at the moment. Unsubscribe to make sure it never does.</p>"), "{}", page.body);
    assert_eq!(one_click(&url).status, 200);
    assert!(
        workspace
            .ledger()
            .suppression(&crate::support::key("reader@example.com"))
            .unwrap()
            .is_some()
    );
    // A newcomer added while it runs gets a working link at once.
    workspace.write(
        "subscribers.example.yaml",
        "- email: ada@example.com\n- email: new@example.net\n",
    );
    assert_eq!(
        get(&server.url(&unsubscribe_path("new@example.net"))).status,
        200
    );
}

/// Sends raw bytes and reads the answer until the server closes the connection.
fn raw_exchange(address: &str, request: &[u8]) -> (String, Duration) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    // The server may answer and close before reading everything: that is the point.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn an_oversized_body_is_refused_before_it_is_read() {
    let workspace = workspace();
    let server = ServeProcess::start(&workspace);
    let path = unsubscribe_path("ada@example.com");
    let (answer, _) = raw_exchange(
        &server.address(),
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nList-Unsubscribe=One-Click&"
        )
        .as_bytes(),
    );
    assert!(
        answer.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains(&format!("content-security-policy: {POLICY}\r\n")),
        "{answer}"
    );
    // A body without a length, chunked, is cut off at the limit all the same.
    let chunk = "a".repeat(5000);
    let (answer, _) = raw_exchange(
        &server.address(),
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
            chunk.len()
        )
        .as_bytes(),
    );
    assert!(
        answer.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
        "{answer}"
    );
    assert_eq!(
        workspace
            .ledger()
            .suppression(&crate::support::key("ada@example.com"))
            .unwrap(),
        None
    );
}

#[test]
fn oversized_headers_are_refused() {
    let workspace = workspace();
    let server = ServeProcess::start(&workspace);
    let (answer, _) = raw_exchange(
        &server.address(),
        format!(
            "GET / HTTP/1.1\r\nHost: x\r\nCookie: {}\r\n\r\n",
            "c".repeat(10_000)
        )
        .as_bytes(),
    );
    assert!(
        answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{answer}"
    );
    assert_has_security_headers(&answer);
}

/// Every answer, whoever refuses the request, carries the same headers.
fn assert_has_security_headers(answer: &str) {
    let lower = answer.to_lowercase();
    for header in [
        format!("content-security-policy: {POLICY}\r\n").to_lowercase(),
        "referrer-policy: no-referrer\r\n".to_string(),
        "x-content-type-options: nosniff\r\n".to_string(),
        "x-frame-options: deny\r\n".to_string(),
    ] {
        assert!(lower.contains(&header), "{header:?} missing from {answer}");
    }
    for name in ["\r\ncache-control: ", "\r\ndate: "] {
        assert!(lower.contains(name), "{name:?} missing from {answer}");
    }
}

#[test]
fn a_malformed_or_ambiguous_request_gets_a_400_with_the_security_headers() {
    let workspace = workspace();
    let server = ServeProcess::start(&workspace);
    for request in [
        "NOT A REQUEST\r\n\r\n".to_string(),
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc"
            .to_string(),
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc"
            .to_string(),
    ] {
        let (answer, _) = raw_exchange(&server.address(), request.as_bytes());
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        assert_has_security_headers(&answer);
    }
}

#[test]
fn a_client_sending_its_headers_byte_by_byte_is_cut_off_within_seconds() {
    let workspace = workspace();
    let server = ServeProcess::start(&workspace);
    let mut stream = TcpStream::connect(server.address()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let request =
        b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: a-very-slow-client-that-never-ends\r\nX-More: ";
    let started = Instant::now();
    let mut closed = false;
    for byte in request.iter().cycle().take(60) {
        if stream.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        let mut buffer = [0u8; 256];
        match stream.read(&mut buffer) {
            Ok(_) => {
                closed = true;
                break;
            }
            Err(error)
                if error.kind() == std::io::ErrorKind::WouldBlock
                    || error.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    assert!(closed, "still connected after {elapsed:?}");
    assert!(
        elapsed >= Duration::from_secs(4) && elapsed < Duration::from_secs(8),
        "cut off after {elapsed:?}"
    );
    // And told why, with the same headers as any answer.
    let mut stream = TcpStream::connect(server.address()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert_has_security_headers(&answer);
}

#[test]
fn a_client_that_never_finishes_its_body_is_cut_off_within_seconds() {
    let workspace = workspace();
    let server = ServeProcess::start(&workspace);
    let path = unsubscribe_path("ada@example.com");
    let mut stream = TcpStream::connect(server.address()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    stream
        .write_all(
            format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nList-Unsub")
                .as_bytes(),
        )
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let elapsed = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert!(
        elapsed >= Duration::from_secs(4) && elapsed < Duration::from_secs(8),
        "cut off after {elapsed:?}"
    );
    assert_eq!(
        workspace
            .ledger()
            .suppression(&crate::support::key("ada@example.com"))
            .unwrap(),
        None
    );
}

#[test]
fn a_client_over_its_rate_limit_is_told_to_slow_down() {
    let workspace = workspace();
    let server = ServeProcess::start(&workspace);
    let url = server.url("/style.css");
    let statuses: Vec<u16> = (0..100).map(|_| get(&url).status).collect();
    assert!(
        statuses[..60].iter().all(|&status| status == 200),
        "{statuses:?}"
    );
    let refused = statuses.iter().filter(|&&status| status == 429).count();
    assert!(refused >= 20, "{refused} refused: {statuses:?}");
    let reply = get(&url);
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(reply.header("content-security-policy"), Some(POLICY));
    assert_eq!(reply.body, "Too many requests: try again in a moment.\n");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(get(&url).status, 200, "the allowance comes back");
}

#[test]
fn every_response_carries_the_security_headers() {
    let workspace = workspace();
    send_at(&workspace, ISSUE, "2021-08-23T13:00:00Z");
    let server = ServeProcess::start(&workspace);
    for (path, status) in [
        ("/".to_string(), 200),
        ("/style.css".to_string(), 200),
        ("/feed.xml".to_string(), 200),
        ("/issues/2021-08-23/".to_string(), 200),
        ("/issues/2021-08-23".to_string(), 308),
        ("/issues/2021-09-06/".to_string(), 404),
        ("/nothing-here".to_string(), 404),
        (unsubscribe_path("ada@example.com"), 200),
        ("/unsubscribe/forged".to_string(), 404),
    ] {
        let reply = get(&server.url(&path));
        assert_eq!(reply.status, status, "{path}");
        assert_eq!(
            reply.header("content-security-policy"),
            Some(POLICY),
            "{path}"
        );
        assert_eq!(
            reply.header("referrer-policy"),
            Some("no-referrer"),
            "{path}"
        );
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{path}");
        assert!(!reply.body.contains("<script"), "{path}");
        assert!(reply.header("set-cookie").is_none(), "{path}");
    }
}

#[test]
fn the_archive_lists_the_sent_issues_only_newest_first_and_follows_new_sends() {
    let workspace = workspace();
    workspace.write(
        "issues/2021-09-06.yaml",
        &SMALL_ISSUE
            .replace("date: 2021-08-30", "date: 2021-09-06")
            .replace("status: ready", "status: draft")
            .replace("Small issue", "Draft issue"),
    );
    send_at(&workspace, ISSUE, "2021-08-23T13:00:00Z");
    let server = ServeProcess::start(&workspace);
    let index = get(&server.url("/"));
    assert_eq!(index.status, 200);
    assert_eq!(links_to_issues(&index.body), ["./issues/2021-08-23/"]);

    // Sent while the server runs: the archive shows it on the next request.
    send_at(&workspace, NEXT_ISSUE, "2021-08-30T13:00:00Z");
    let index = get(&server.url("/"));
    assert_eq!(
        links_to_issues(&index.body),
        ["./issues/2021-08-30/", "./issues/2021-08-23/"]
    );
    assert!(
        index.body.contains(
            ">Small issue</a></h2><div class=\"lp-card-excerpt\"><p>A short preview line</p></div>"
        ),
        "{}",
        index.body
    );
    assert!(!index.body.contains("Draft issue"));
    assert_eq!(get(&server.url("/issues/2021-09-06/")).status, 404);

    let redirect = get(&server.url("/issues/2021-08-30"));
    assert_eq!(
        (redirect.status, redirect.header("location")),
        (308, Some("2021-08-30/"))
    );
    let page = get(&server.url("/issues/2021-08-30/"));
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("<title>Small issue · Global AI Weekly</title>")
    );
    assert!(
        page.body
            .contains("<a href=\"https://news.example.com/first\">First story</a>")
    );
    assert!(
        page.body
            .contains("<link rel=\"stylesheet\" href=\"../../style.css\">")
    );
    // Not personalised and nothing that tracks.
    for absent in [
        "Hi there",
        "This email was sent to",
        "Unsubscribe",
        "unsubscribe/",
        "View in your browser",
        "A short preview line",
        "lp-preheader",
        "style=\"",
        "<script",
        "utm_",
        "\u{FDD0}",
    ] {
        assert!(
            !page.body.contains(absent),
            "the web version has {absent:?}"
        );
    }
}

fn links_to_issues(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| href.contains("issues/"))
        .map(String::from)
        .collect()
}

#[test]
fn the_feed_parses_back_with_an_entry_per_sent_issue() {
    let workspace = workspace();
    send_at(&workspace, ISSUE, "2021-08-23T13:00:00Z");
    send_at(&workspace, NEXT_ISSUE, "2021-08-30T13:00:00Z");
    let server = ServeProcess::start(&workspace);
    let reply = get(&server.url("/feed.xml"));
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/atom+xml; charset=utf-8")
    );
    let feed = atom_syndication::Feed::from_str(&reply.body).unwrap();
    assert_eq!(feed.title().as_str(), "Global AI Weekly");
    assert_eq!(feed.id(), "https://weekly.example.com/");
    assert_eq!(feed.updated().to_rfc3339(), "2021-08-30T13:00:00+00:00");
    let self_link = feed
        .links()
        .iter()
        .find(|link| link.rel() == "self")
        .unwrap();
    assert_eq!(self_link.href(), "https://weekly.example.com/feed.xml");
    let entries: Vec<(String, String, String, String)> = feed
        .entries()
        .iter()
        .map(|entry| {
            (
                entry.title().as_str().to_string(),
                entry.id().to_string(),
                entry.links()[0].href().to_string(),
                entry.published().unwrap().to_rfc3339(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (
                "Small issue".to_string(),
                "https://weekly.example.com/issues/2021-08-30/".to_string(),
                "https://weekly.example.com/issues/2021-08-30/".to_string(),
                "2021-08-30T13:00:00+00:00".to_string()
            ),
            (
                "Global AI Weekly #1: Foundation models, Codex API and Tesla's Dojo".to_string(),
                "https://weekly.example.com/issues/2021-08-23/".to_string(),
                "https://weekly.example.com/issues/2021-08-23/".to_string(),
                "2021-08-23T13:00:00+00:00".to_string()
            ),
        ]
    );
    let small = &feed.entries()[0];
    assert_eq!(small.summary().unwrap().as_str(), "A short preview line");
    let content = small.content().unwrap();
    assert_eq!(content.content_type(), Some("html"));
    assert!(
        content
            .value()
            .unwrap()
            .contains("<h3><a href=\"https://news.example.com/first\">First story</a></h3>")
    );
}

#[test]
fn render_site_writes_the_same_archive_as_the_server_answers_with() {
    let workspace = workspace();
    send_at(&workspace, ISSUE, "2021-08-23T13:00:00Z");
    send_at(&workspace, NEXT_ISSUE, "2021-08-30T13:00:00Z");
    let run = workspace.run(&["render", "--site", "public"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stdout
            .starts_with("Wrote the archive of 2 sent issues to public\n  public/index.html "),
        "{}",
        run.stdout
    );
    let server = ServeProcess::start(&workspace);
    for (file, path) in [
        ("public/index.html", "/"),
        ("public/feed.xml", "/feed.xml"),
        ("public/style.css", "/style.css"),
        ("public/issues/2021-08-23/index.html", "/issues/2021-08-23/"),
        ("public/issues/2021-08-30/index.html", "/issues/2021-08-30/"),
    ] {
        assert_eq!(workspace.read(file), get(&server.url(path)).body, "{file}");
    }
    assert!(!workspace.path("public/issues/2021-09-06").exists());
}

#[test]
fn render_without_an_issue_or_site_is_a_usage_error() {
    let workspace = workspace();
    let run = workspace.run(&["render"]);
    assert_eq!(run.status, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("the following required arguments were not provided:\n  <ISSUE>"),
        "{}",
        run.stderr
    );
}

#[test]
fn unsubscribes_during_a_send_are_recorded_and_stop_the_issue_in_progress_too() {
    let smtp = SmtpServer::start_in_background(Behaviour::new());
    let workspace = TestWorkspace::for_delivery(
        &numbered_subscribers(1500),
        "delivery:\n  concurrency: 4\n  rate_per_second: 400\n",
    );
    let server = ServeProcess::start(&workspace);
    let mut send = workspace
        .std_sender(&smtp.url())
        .args(["send", ISSUE, "--yes"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    smtp.wait_for_messages_blocking(100, Duration::from_secs(30))
        .unwrap();
    let leaving: Vec<String> = (1400..1420)
        .map(|index| format!("reader{index}@example.com"))
        .collect();
    for address in &leaving {
        let reply = one_click(&server.url(&unsubscribe_path(address)));
        assert_eq!(reply.status, 200, "{address}: {reply:?}");
    }
    let still_sending = send.try_wait().unwrap().is_none();
    assert!(send.wait().unwrap().success());
    assert!(
        still_sending,
        "the send ended before the unsubscribes: make it longer"
    );
    let ledger = workspace.ledger();
    for address in &leaving {
        assert!(
            ledger
                .suppression(&crate::support::key(address))
                .unwrap()
                .is_some(),
            "{address}"
        );
    }
    // Nothing the send recorded was lost to the server's writes, and the send, which checks
    // the suppression list before each batch, did not reach those who had left.
    let counts = ledger.counts(&crate::support::issue(ISSUE)).unwrap();
    assert_eq!((counts.sent, counts.skipped), (1480, 20));
    assert_eq!(smtp.message_count(), 1480);
    let received: Vec<String> = smtp
        .messages()
        .into_iter()
        .flat_map(|message| message.rcpt_to)
        .collect();
    for address in &leaving {
        assert!(
            !received.contains(address),
            "{address} got the issue after leaving"
        );
        assert_eq!(
            ledger
                .row(&crate::support::issue(ISSUE), &crate::support::key(address))
                .unwrap()
                .unwrap()
                .last_reply
                .as_deref(),
            Some("unsubscribed while the issue was going out")
        );
    }
}
