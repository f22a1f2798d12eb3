// The common Node.js way to build a personalised newsletter, as the peer letterpress is
// measured against: js-yaml reads the same files, marked turns the Markdown into HTML, MJML
// renders the issue ONCE (with merge tags for the per-recipient values), and nodemailer's
// MailComposer builds one multipart/alternative message (HTML + text) per recipient.
//
//   node build.js N WORKSPACE [ISSUE]
//
// Prints one line of JSON: messages, seconds (the per-recipient build loop only, as
// letterpress's `send --dry-run` reports), messages_per_second, average_bytes, largest_bytes,
// plus load_seconds and render_seconds (read the YAML; render the MJML once).
//
// send.js imports the same functions, so both peers send what this builds.

import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { load } from 'js-yaml';
import { marked } from 'marked';
import mjml2html from 'mjml';
import MailComposer from 'nodemailer/lib/mail-composer';

// Merge tags: left in the rendered HTML and text, filled in per recipient.
const TAG = /%%(GREETING|UNSUBSCRIBE_URL|EMAIL)%%/g;

const escapeHtml = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

const fill = (template, placeholders) => template.replace(TAG, (_, key) => placeholders[key]);

/** Reads newsletter.yaml, the issue, the theme's texts and the subscriber list. */
export function loadWorkspace(workspace, issueName = '2021-08-23') {
  const read = (file) => load(readFileSync(join(workspace, file), 'utf8'));
  const newsletter = read('newsletter.yaml');
  const issue = read(join('issues', `${issueName}.yaml`));
  let texts = {};
  try {
    texts = read(join('templates', newsletter.theme || 'default', 'theme.yaml')) || {};
  } catch {
    // no theme folder: the defaults below
  }
  texts = {
    greeting: 'Hi {name},',
    greeting_without_name: 'Hi there,',
    issue_label: 'Issue {number}',
    read_more: 'Read more',
    view_online: 'View in your browser',
    why_you_get_this: 'You are receiving this email because you subscribed to {newsletter}.',
    sent_to: 'This email was sent to {email}.',
    unsubscribe: 'Unsubscribe',
    ...texts,
  };
  const subscribers = (read(newsletter.subscribers || 'subscribers.yaml') || []).filter(
    (s) => (s.status || 'active') === 'active',
  );
  return { newsletter, issue, issueName, texts, subscribers };
}

/** Renders the issue once: MJML for the HTML, a plain-text version from the same data. */
export function renderIssue({ newsletter, issue, issueName, texts }) {
  const site = (newsletter.site_url || '').replace(/\/$/, '');
  const webUrl = site ? `${site}/issues/${issueName}/` : null;
  const date = new Date(`${issue.date}T12:00:00Z`).toLocaleDateString('en-US', {
    year: 'numeric', month: 'long', day: 'numeric', timeZone: 'UTC',
  });
  const label = issue.number ? texts.issue_label.replace('{number}', issue.number) : null;
  const meta = label ? `${label} · ${date}` : date;
  const whyYou = texts.why_you_get_this.replace('{newsletter}', newsletter.name);
  const sentTo = texts.sent_to.replace('{email}', '%%EMAIL%%');
  const md = (s) => marked.parse(s || '');

  const card = (a) => `
      <mj-section padding="0 32px" background-color="#ffffff">
        <mj-column border="1px solid #d9e2ec" border-radius="8px" padding="16px 0">
          ${a.image ? `<mj-image href="${escapeHtml(a.url)}" src="${escapeHtml(a.image.src)}" alt="${escapeHtml(a.image.alt)}" width="${a.image.width}px" height="${a.image.height}px" padding="0 16px 12px" />` : ''}
          <mj-text css-class="card-title" font-size="18px" line-height="24px" font-weight="700" padding="0 16px 4px"><a href="${escapeHtml(a.url)}" style="color:#102a43;text-decoration:none;">${escapeHtml(a.title)}</a></mj-text>
          ${a.source || a.author ? `<mj-text font-size="13px" line-height="18px" color="#52606d" padding="0 16px 8px">${escapeHtml([a.source, a.author].filter(Boolean).join(' · '))}</mj-text>` : ''}
          <mj-text css-class="prose" padding="0 16px">${md(a.excerpt)}</mj-text>
          <mj-text padding="4px 16px 0"><a href="${escapeHtml(a.url)}" style="color:#0b5cad;font-weight:600;">${escapeHtml(texts.read_more)} →</a></mj-text>
        </mj-column>
      </mj-section>
      <mj-section padding="0" background-color="#ffffff"><mj-column><mj-spacer height="16px" /></mj-column></mj-section>`;

  const section = (s) => `
      <mj-section padding="16px 32px 8px" background-color="#ffffff">
        <mj-column><mj-text font-size="20px" line-height="26px" font-weight="700" color="#102a43" padding="0">${escapeHtml(s.heading)}</mj-text></mj-column>
      </mj-section>
      ${s.articles.map(card).join('')}`;

  const source = `<mjml lang="${escapeHtml(newsletter.language || 'en')}">
  <mj-head>
    <mj-title>${escapeHtml(issue.subject)}</mj-title>
    ${issue.preheader ? `<mj-preview>${escapeHtml(issue.preheader)}</mj-preview>` : ''}
    <mj-attributes>
      <mj-all font-family="-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif" />
      <mj-text font-size="16px" line-height="26px" color="#243b53" />
    </mj-attributes>
    <mj-style inline="inline">
      .prose p { margin: 0 0 14px 0; }
      .prose a { color: #0b5cad; text-decoration: underline; }
      .card-title a { color: #102a43; }
    </mj-style>
    <mj-style>
      @media (prefers-color-scheme: dark) { .prose { color: #d9e2ec !important; } }
    </mj-style>
  </mj-head>
  <mj-body background-color="#eef1f5" width="600px">
    <mj-section padding="28px 32px 8px" background-color="#ffffff" border-radius="8px 8px 0 0">
      <mj-column>
        ${webUrl ? `<mj-text align="right" font-size="12px" line-height="18px" color="#52606d" padding="0 0 16px"><a href="${escapeHtml(webUrl)}" style="color:#52606d;">${escapeHtml(texts.view_online)}</a></mj-text>` : ''}
        <mj-text font-size="28px" line-height="34px" font-weight="700" color="#102a43" padding="0">${escapeHtml(newsletter.name)}</mj-text>
        <mj-text font-size="14px" line-height="20px" color="#52606d" padding="6px 0 0">${escapeHtml(meta)}</mj-text>
      </mj-column>
    </mj-section>
    <mj-section padding="8px 32px" background-color="#ffffff">
      <mj-column>
        <mj-text font-weight="600" padding="16px 0 8px">%%GREETING%%</mj-text>
        <mj-text css-class="prose" padding="0">${md(issue.intro)}</mj-text>
      </mj-column>
    </mj-section>
    ${issue.sections.map(section).join('')}
    <mj-section padding="8px 32px" background-color="#ffffff">
      <mj-column><mj-text css-class="prose" padding="0">${md(issue.outro)}</mj-text></mj-column>
    </mj-section>
    <mj-section padding="24px 32px 28px" background-color="#f5f7fa" border-radius="0 0 8px 8px">
      <mj-column>
        <mj-text font-size="12px" line-height="18px" color="#52606d" padding="0 0 8px">${escapeHtml(whyYou)} ${escapeHtml(sentTo)}</mj-text>
        <mj-text font-size="12px" line-height="18px" color="#52606d" padding="0 0 8px">${escapeHtml(newsletter.postal_address)}</mj-text>
        <mj-text font-size="12px" line-height="18px" color="#52606d" padding="0">${webUrl ? `<a href="${escapeHtml(webUrl)}" style="color:#52606d;">${escapeHtml(texts.view_online)}</a> · ` : ''}<a href="%%UNSUBSCRIBE_URL%%" style="color:#52606d;">${escapeHtml(texts.unsubscribe)}</a></mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>`;

  // The plain-text part from the same data; Markdown reads well as plain text.
  const lines = [newsletter.name, meta];
  if (webUrl) lines.push(`${texts.view_online}: ${webUrl}`);
  lines.push('', '%%GREETING%%', '');
  if (issue.intro) lines.push(issue.intro.trim(), '');
  for (const s of issue.sections) {
    const heading = s.heading.toUpperCase();
    lines.push('', heading, '='.repeat(heading.length), '');
    for (const a of s.articles) {
      lines.push(a.title);
      if (a.source || a.author) lines.push([a.source, a.author].filter(Boolean).join(' · '));
      lines.push('', a.excerpt.trim(), `${texts.read_more}: ${a.url}`, '');
    }
  }
  if (issue.outro) lines.push('', issue.outro.trim());
  lines.push('', '--', whyYou, sentTo, '', newsletter.postal_address, '');
  if (webUrl) lines.push(`${texts.view_online}: ${webUrl}`);
  lines.push(`${texts.unsubscribe}: %%UNSUBSCRIBE_URL%%`, '');
  return { mjml: source, text: lines.join('\n') };
}

/** MJML 5's mjml2html returns a promise; the errors are reported, not thrown, by default. */
export async function renderHtml(mjmlSource) {
  const { html, errors } = await mjml2html(mjmlSource, { validationLevel: 'soft' });
  if (errors && errors.length) {
    throw new Error(`MJML: ${errors.map((e) => e.formattedMessage || e.message).join('; ')}`);
  }
  return html;
}

/** What every message shares; unsubscribe tokens are HMACs of the address, as usual. */
export function messageContext({ newsletter }, html, text, secret = process.env.LETTERPRESS_SECRET) {
  const site = (newsletter.site_url || '').replace(/\/$/, '');
  const listHost = site ? new URL(site).host : newsletter.from.split('@').pop().replace('>', '');
  const slug = newsletter.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return {
    newsletter, html, text, site,
    listId: `${slug}.${listHost}`,
    key: secret || randomBytes(32).toString('hex'),
    replyAddress: newsletter.reply_to || newsletter.from,
  };
}

/** One personalised message as the raw RFC 5322 bytes (a Buffer). */
export function buildMessage(ctx, subscriber, issue, texts) {
  const email = subscriber.email;
  const token = createHmac('sha256', ctx.key)
    .update(`unsubscribe\0${ctx.listId}\0${email.toLowerCase()}`)
    .digest()
    .subarray(0, 16)
    .toString('base64url');
  const unsubscribeUrl = ctx.site ? `${ctx.site}/unsubscribe/${token}` : null;
  const mailto = `mailto:${String(ctx.replyAddress).replace(/^.*<|>.*$/g, '')}?subject=unsubscribe%20${token}`;
  const greeting = subscriber.name ? texts.greeting.replace('{name}', subscriber.name) : texts.greeting_without_name;
  const bodyLink = unsubscribeUrl || mailto;

  const composer = new MailComposer({
    from: ctx.newsletter.from,
    replyTo: ctx.newsletter.reply_to,
    to: subscriber.name ? { name: subscriber.name, address: email } : email,
    subject: issue.subject,
    text: fill(ctx.text, { GREETING: greeting, UNSUBSCRIBE_URL: bodyLink, EMAIL: email }),
    html: fill(ctx.html, {
      GREETING: escapeHtml(greeting),
      UNSUBSCRIBE_URL: escapeHtml(bodyLink),
      EMAIL: escapeHtml(email),
    }),
    headers: {
      'List-Id': `${ctx.newsletter.name} <${ctx.listId}>`,
      'List-Unsubscribe': [unsubscribeUrl, mailto].filter(Boolean).map((u) => `<${u}>`).join(', '),
      ...(unsubscribeUrl ? { 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' } : {}),
    },
  });
  return composer.compile().build(); // a Promise of the Buffer
}

async function main() {
  const [countArg, workspace, issueName = '2021-08-23'] = process.argv.slice(2);
  const count = Number(countArg);
  if (!Number.isInteger(count) || count < 1 || !workspace) {
    console.error('usage: node build.js N WORKSPACE [ISSUE]');
    process.exit(2);
  }
  let t = process.hrtime.bigint();
  const lap = () => {
    const now = process.hrtime.bigint();
    const seconds = Number(now - t) / 1e9;
    t = now;
    return seconds;
  };
  const ws = loadWorkspace(workspace, issueName);
  if (ws.subscribers.length < count) {
    throw new Error(`${workspace} has ${ws.subscribers.length} active subscribers, fewer than ${count}`);
  }
  const loadSeconds = lap();
  const rendered = renderIssue(ws);
  const html = await renderHtml(rendered.mjml);
  const ctx = messageContext(ws, html, rendered.text);
  const renderSeconds = lap();

  let bytes = 0;
  let largest = 0;
  for (let i = 0; i < count; i++) {
    const message = await buildMessage(ctx, ws.subscribers[i], ws.issue, ws.texts);
    bytes += message.length;
    if (message.length > largest) largest = message.length;
  }
  const seconds = lap();
  console.log(JSON.stringify({
    messages: count,
    seconds,
    messages_per_second: count / seconds,
    average_bytes: Math.round(bytes / count),
    largest_bytes: largest,
    load_seconds: loadSeconds,
    render_seconds: renderSeconds,
  }));
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
