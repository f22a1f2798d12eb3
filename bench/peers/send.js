// nodemailer's pooled SMTP transport sending N newsletter messages to an SMTP sink, the way
// its documentation does bulk mail: `pool: true`, a fixed number of connections, and the
// pool's 'idle' event to feed it from a queue.
//
//   node send.js N PORT WORKSPACE [--eml FILE]
//
// The message is pre-built before the clock starts, so this measures the transport alone:
// we build ONE message and vary only the To header and the SMTP envelope per recipient (the
// rest of a newsletter message is the same for everyone; build.js measures the per-recipient
// build separately). A recipient's copy (To line + the shared bytes) is made as the pool
// takes it, so memory holds only the messages in flight, not N copies. The one message is, by default, built with MailComposer exactly as
// build.js builds it (the MJML issue, HTML + text, List-Unsubscribe...), without its To
// header; with --eml FILE it is that file's bytes instead (bench/run passes letterpress's own
// sample.eml, so both send exactly the same bytes per message), again minus its To line.
//
// Prints one line of JSON: messages, seconds, messages_per_second, bytes_per_message.

import nodemailer from 'nodemailer';
import { readFileSync } from 'node:fs';

import { buildMessage, loadWorkspace, messageContext, renderHtml, renderIssue } from './build.js';

async function baseMessage(ws, eml) {
  let raw;
  if (eml) {
    raw = readFileSync(eml);
  } else {
    const rendered = renderIssue(ws);
    const ctx = messageContext(ws, await renderHtml(rendered.mjml), rendered.text);
    raw = await buildMessage(ctx, ws.subscribers[0], ws.issue, ws.texts);
  }
  // Drop the To header (and any folded continuation lines) from the header block.
  const text = raw.toString('latin1');
  const headerEnd = text.indexOf('\r\n\r\n');
  const head = text.slice(0, headerEnd + 2).replace(/^To:.*\r\n(?:[ \t].*\r\n)*/im, '');
  return Buffer.concat([Buffer.from(head, 'latin1'), raw.subarray(headerEnd + 2)]);
}

async function main() {
  const args = process.argv.slice(2);
  const emlAt = args.indexOf('--eml');
  const eml = emlAt >= 0 ? args.splice(emlAt, 2)[1] : null;
  const [countArg, portArg, workspace] = args;
  const count = Number(countArg);
  const port = Number(portArg);
  if (!Number.isInteger(count) || count < 1 || !port || !workspace) {
    console.error('usage: node send.js N PORT WORKSPACE [--eml FILE]');
    process.exit(2);
  }
  const ws = loadWorkspace(workspace);
  if (ws.subscribers.length < count) {
    throw new Error(`${workspace} has ${ws.subscribers.length} active subscribers, fewer than ${count}`);
  }
  const base = await baseMessage(ws, eml);
  const sender = String(ws.newsletter.from).replace(/^.*<|>.*$/g, '');
  // The bench list's names are plain ASCII, so a To header needs no encoded-words here.
  // Each recipient's copy is made when the pool takes it, so only those in flight are held.
  const recipients = ws.subscribers.slice(0, count);
  const toHeader = (s) => Buffer.from(`To: ${s.name ? `${s.name} <${s.email}>` : s.email}\r\n`);
  let bytes = 0;
  const message = (s) => {
    const raw = Buffer.concat([toHeader(s), base]);
    bytes += raw.length;
    return { envelope: { from: sender, to: s.email }, raw };
  };

  const transporter = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    ignoreTLS: true,
    pool: true,
    maxConnections: 8,
    maxMessages: Infinity,
  });

  const started = process.hrtime.bigint();
  let next = 0;
  let done = 0;
  let failed = 0;
  let firstError = null;
  await new Promise((resolve) => {
    const finished = (error) => {
      if (error) {
        failed++;
        firstError ??= error;
      }
      if (++done === count) resolve();
    };
    const feed = () => {
      while (transporter.isIdle() && next < count) {
        transporter.sendMail(message(recipients[next++]), finished);
      }
    };
    transporter.on('idle', feed);
    feed();
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  transporter.close();
  if (failed) {
    console.error(`send.js: ${failed} of ${count} failed; first: ${firstError && firstError.message}`);
    process.exit(1);
  }
  console.log(JSON.stringify({
    messages: count,
    seconds,
    messages_per_second: count / seconds,
    bytes_per_message: Math.round(bytes / count),
  }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
