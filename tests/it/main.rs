//! The integration tests, as one test binary (one link instead of ten): each module runs the
//! real `letterpress` binary, or its library against real servers, in a temp folder per test.

mod bounce_imap;
mod bounces;
mod browser;
mod check;
mod dkim;
mod dovecot;
mod hostile;
mod init;
mod interrupt;
mod local_images;
mod long_running;
mod lost_or_twice;
mod new;
mod preview;
mod render;
mod schedule;
mod send;
mod serve;
mod signup;
mod smtp_client;
mod smtp_tls;
mod spam;
mod subscribers;
mod support;
mod testkit_server;
