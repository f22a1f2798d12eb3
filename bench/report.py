#!/usr/bin/env python3
"""Turns bench/run's raw measurements (key<TAB>value, one line per run) into RESULTS.md."""

import statistics
import sys
from collections import defaultdict

values = defaultdict(list)
with open(sys.argv[1], encoding="utf-8") as raw:
    for line in raw:
        key, _, value = line.rstrip("\n").partition("\t")
        values[key].append(value)


def meta(key, default="?"):
    return values.get(f"meta.{key}", [default])[0]


def nums(key):
    return [float(v) for v in values.get(key, [])]


def median(key):
    xs = nums(key)
    if not xs:
        raise SystemExit(f"report.py: no measurements for {key}")
    return statistics.median(xs)


def number(x):
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def seconds(x):
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 100 else f"{x:.0f}"


def mib(kb):
    return f"{kb / 1024:.1f}"


def cell(key, fmt=number, scale=1.0):
    xs = [x * scale for x in nums(key)]
    if not xs:
        raise SystemExit(f"report.py: no measurements for {key}")
    text = fmt(statistics.median(xs))
    if len(xs) > 1:
        text += f" ({fmt(min(xs))}–{fmt(max(xs))})"
    return text


def ratio(a, b):
    r = a / b
    if r >= 100:
        return f"{r:,.0f}×"
    if r >= 10:
        return f"{r:.1f}×"
    return f"{r:.2f}×" if r >= 0.1 else f"{r:.2g}×"


def others(section):
    """A line on how busy the rest of the machine was during a section."""
    share = values.get(f"meta.others.{section}")
    if not share:
        return
    share = float(share[0])
    text = (f"Other processes on the machine used {share:.0%} of its CPU (all cores) while this "
            "section ran")
    if share > 0.10:
        text = f"**Caution: {text[0].lower()}{text[1:]}: its figures are skewed by them.**"
    else:
        text += "."
    w("")
    w(text)


def size(key):
    v = values[key][0]
    try:
        return f"{float(v) / 1024:.1f} KiB"
    except ValueError:
        return v.replace("KB", "KiB").replace("MB", "MiB")  # letterpress prints binary units


n = int(meta("n"))
reps = int(meta("reps"))
out = []
w = out.append

w("# letterpress benchmarks")
w("")
w(f"`bench/run{' quick' if meta('mode') == 'quick' else ''}` on {meta('date')}: "
  + (f"{reps} runs of each measurement; each figure is the median, with the spread (min–max) "
     "in brackets." if reps > 1 else "one run of each measurement (quick mode), so no spread."))
w("")
w("## Machine")
w("")
w("| | |")
w("|---|---|")
for label, key in [
    ("CPU", "cpu"), ("cores (nproc)", "nproc"), ("RAM", "ram"), ("kernel", "kernel"),
    ("load average at start, end", "load"), ("letterpress", "commit"), ("rustc", "rustc"),
    ("Node.js", "node"), ("mjml", "mjml"), ("nodemailer", "nodemailer"), ("marked", "marked"),
    ("js-yaml", "js-yaml"), ("Postfix (smtp-sink, smtp-source)", "postfix"),
]:
    value = meta(key) + (f"; {meta('load_end')}" if key == "load" else "")
    w(f"| {label} | {value} |")
w("")
w("Peak memory is GNU time's \"Maximum resident set size\" of the whole process, in MiB. "
  "CPU is user + system seconds. Wall times are taken by the shell around the command.")

# ------------------------------------------------------------------------------------ build
w("")
w(f"## a. Build: {n:,} personalised messages")
w("")
w("Each message: HTML + text (multipart/alternative), its own To with the name, greeting, "
  "unsubscribe URL (an HMAC token) in both parts, List-Unsubscribe and List-Unsubscribe-Post. "
  "The issue is rendered once; \"building\" is the per-recipient loop alone, as each tool "
  "reports it; the whole command adds start-up, reading the YAML and rendering.")
w("")
w("| Stack | Messages/s building | Whole command, s | Messages/s, whole command | Peak RSS, MiB | Message size |")
w("|---|---|---|---|---|---|")
for label, tool in [("letterpress `send --dry-run`", "letterpress"),
                    ("Node: MJML + marked + MailComposer (`build.js`)", "node")]:
    whole = [n / x for x in nums(f"build.{tool}.wall")]
    values[f"build.{tool}.whole"] = [str(x) for x in whole]
    w(f"| {label} | {cell(f'build.{tool}.rate')} | {cell(f'build.{tool}.wall', seconds)} | "
      f"{cell(f'build.{tool}.whole')} | {cell(f'build.{tool}.rss_kb', mib)} | {size(f'build.{tool}.bytes')} |")
w(f"| **letterpress ÷ Node** | **{ratio(median('build.letterpress.rate'), median('build.node.rate'))}** | "
  f"{ratio(median('build.letterpress.wall'), median('build.node.wall'))} | "
  f"{ratio(median('build.letterpress.whole'), median('build.node.whole'))} | "
  f"{ratio(median('build.letterpress.rss_kb'), median('build.node.rss_kb'))} | |")
w("")
w(f"MJML's render of the issue (once, before the loop) took {seconds(median('build.node.render'))} s "
  "in build.js (median). The messages differ in size because MJML's HTML is larger than "
  "letterpress's; both are quoted-printable.")
others("build")

# ------------------------------------------------------------------------------------- send
w("")
w(f"## b. Send: {n:,} subscribers to smtp-sink on loopback, 8 connections")
w("")
w("smtp-sink (`-c`, no dumping) counted every message: each run had to deliver exactly "
  f"{n:,}. \"Messages/s sending\" is each sender's own figure for its sending phase "
  "(letterpress: its \"This run\" line, timed from when the delivery engine starts, with the "
  "list loaded, the issue rendered and the ledger filled, to the end, per-message ledger "
  "updates included; send.js: from its first sendMail, its message pre-built; smtp-source: the "
  "shell's wall time); "
  "\"whole command\" is the number of messages over the whole process's wall time.")
w("")
w("| Sender | Message size | Messages/s sending | Messages/s, whole command | Wall, s | CPU, s | Peak RSS, MiB |")
w("|---|---|---|---|---|---|---|")
senders = [
    ("letterpress `send` (YAML → render → build → SMTP → SQLite ledger)", "letterpress"),
    ("nodemailer pool, letterpress's message bytes (`send.js --eml`)", "node_eml"),
    ("nodemailer pool, its own MJML message (`send.js`)", "node_mjml"),
    ("smtp-source (Postfix's load generator; the ceiling)", "smtp_source"),
]
for label, tool in senders:
    w(f"| {label} | {size(f'send.{tool}.bytes')} | {cell(f'send.{tool}.rate')} | "
      f"{cell(f'send.{tool}.whole')} | {cell(f'send.{tool}.wall', seconds)} | "
      f"{cell(f'send.{tool}.cpu', seconds)} | {cell(f'send.{tool}.rss_kb', mib)} |")
for label, tool in [("nodemailer, same bytes", "node_eml"), ("nodemailer, MJML message", "node_mjml"),
                    ("smtp-source", "smtp_source")]:
    w(f"| **letterpress ÷ {label}** | | **{ratio(median('send.letterpress.rate'), median(f'send.{tool}.rate'))}** | "
      f"{ratio(median('send.letterpress.whole'), median(f'send.{tool}.whole'))} | "
      f"{ratio(median('send.letterpress.wall'), median(f'send.{tool}.wall'))} | "
      f"{ratio(median('send.letterpress.cpu'), median(f'send.{tool}.cpu'))} | "
      f"{ratio(median('send.letterpress.rss_kb'), median(f'send.{tool}.rss_kb'))} |")
w("")
w("Rates: above 1× letterpress is faster. Wall, CPU and memory: below 1× letterpress uses less. "
  "smtp-sink shares the machine's cores with the sender.")
others("send")

# ------------------------------------------------------------------------------------ scale
counts = sorted({int(k.split(".")[1]) for k in values if k.startswith("scale.")})
w("")
w("## c. Scale: the subscriber list from 1,000 up")
w("")
w("`letterpress check` loads and validates newsletter.yaml, the list and the issue; "
  "`send --dry-run` also builds every message (without keeping them). Growth is the peak RSS "
  "above the 1,000-subscriber run, divided by the extra subscribers.")
w("")
w("| Subscribers | List file | `check` wall, s | `check` peak RSS, MiB | `check` growth, bytes/subscriber "
  "| `--dry-run` wall, s | `--dry-run` building, messages/s | `--dry-run` peak RSS, MiB | `--dry-run` growth, bytes/subscriber |")
w("|---|---|---|---|---|---|---|---|---|")
base = min(counts) if counts else 0
errors = []
for count in counts:
    list_bytes = float(values[f"scale.{count}.list_bytes"][0])
    row = [f"{count:,}", f"{list_bytes / 1048576:.1f} MiB" if list_bytes >= 1048576 else f"{list_bytes / 1024:.0f} KiB"]
    for command in ("check", "dry-run"):
        key = f"scale.{count}.{command}"
        if f"{key}.error" in values or not nums(f"{key}.rss_kb"):
            message = values.get(f"{key}.error", ["no measurement"])[0]
            errors.append(f"- `{command}` on {count:,} subscribers failed: {message}")
            row += ["failed"] * (3 if command == "check" else 4)
            continue
        row.append(cell(f"{key}.wall", seconds))
        if command == "dry-run":
            row.append(cell(f"{key}.rate"))
        row.append(cell(f"{key}.rss_kb", mib))
        if count == base:
            row.append("(baseline)")
        elif nums(f"scale.{base}.{command}.rss_kb"):
            growth = (median(f"{key}.rss_kb") - median(f"scale.{base}.{command}.rss_kb")) * 1024 / (count - base)
            row.append(f"{growth:,.0f}")
        else:
            row.append("?")
    w("| " + " | ".join(row) + " |")
if errors:
    w("")
    w("\n".join(errors))
others("scale")
if meta("mode") == "quick":
    w("")
    w("Quick mode skips 1,000,000 subscribers; `bench/run` measures it.")

# --------------------------------------------------------------------------------- commands
w("")
w("## The commands")
w("")
w(f"`WS` is a temporary workspace: newsletter.yaml (delivery `concurrency: 8`, "
  f"`rate_per_second: 100000`), issues/2021-08-23.yaml, templates/ and a list of `- email: readerI@example.com` / "
  "`name: Reader I` entries; `LETTERPRESS_SECRET` is fixed. Each command runs as "
  "`/usr/bin/time -v -o FILE COMMAND < /dev/null` under `timeout`.")
w("")
w("```sh")
w(f"# a. build ({n:,} subscribers)")
w("letterpress -C WS send 2021-08-23 --dry-run")
w(f"node bench/peers/build.js {n} WS 2021-08-23")
w("# b. send (smtp-sink -u nobody -c 127.0.0.1:PORT 1000, running throughout; WS/.letterpress removed before each letterpress run)")
w("LETTERPRESS_SMTP_URL=smtp://127.0.0.1:PORT letterpress -C WS send 2021-08-23 --yes")
w(f"node bench/peers/send.js {n} PORT WS --eml sample.eml   # sample.eml from `letterpress -C WS render 2021-08-23`")
w(f"node bench/peers/send.js {n} PORT WS")
w(f"smtp-source -s 8 -d -l {values['send.size'][0]} -m {n} 127.0.0.1:PORT   # -l: the size of sample.eml")
w("# c. scale (1,000 ... 1,000,000 subscribers)")
w("letterpress -C WS check")
w("letterpress -C WS send 2021-08-23 --dry-run")
w("```")

# Sections measured by other scripts (bench/audience, the DKIM runs) live in the same file:
# carried over from the previous RESULTS.md (argv[2]) so a new run does not erase them.
OWN = ("Machine", "a. ", "b. ", "c. ", "The commands")
if len(sys.argv) > 2:
    try:
        with open(sys.argv[2], encoding="utf-8") as previous:
            text = previous.read()
    except FileNotFoundError:
        text = ""
    kept, keeping = [], False
    for line in text.splitlines():
        if line.startswith("## "):
            keeping = not line[3:].startswith(OWN)
        if keeping:
            kept.append(line)
    if kept:
        w("")
        w("\n".join(kept).rstrip("\n"))
print("\n".join(out))
