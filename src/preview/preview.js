// The preview page's script: asks the server a few times a second whether the files
// changed, and swaps in what did without reloading the page, so the scroll position stays.
// It only reads from this server (its Content-Security-Policy allows nothing else).
"use strict";

(function () {
  const POLL_MS = 250;
  const $ = (id) => document.getElementById(id);
  const body = document.body;
  let version = Number(body.dataset.version);
  let shownVersion = Number(body.dataset.shownVersion);
  let mode = "light";
  const frames = [$("frame-phone"), $("frame-desktop")];

  function emailUrl() {
    return (mode === "dark" ? "/email-dark.html" : "/email.html") + "?v=" + shownVersion;
  }

  // The frames are as tall as the email, so the page scrolls and not the frames: a new
  // render then keeps the reader where they were.
  function fit(frame) {
    try {
      const root = frame.contentDocument && frame.contentDocument.documentElement;
      if (root && root.scrollHeight > 0) {
        frame.style.height = root.scrollHeight + "px";
      }
    } catch (error) {
      // Not ours to measure (the reader followed a link inside the frame).
    }
  }

  function loadFrames() {
    for (const frame of frames) {
      const url = emailUrl();
      // `replace`, so that reloads do not pile up in the browser's history.
      if (frame.contentWindow && frame.getAttribute("src")) {
        frame.contentWindow.location.replace(url);
      } else {
        frame.setAttribute("src", url);
      }
    }
  }

  for (const frame of frames) {
    frame.addEventListener("load", () => fit(frame));
    fit(frame);
  }

  function setCut(id, cut) {
    $(id).textContent = cut ? cut.shown : "";
    $(id + "-cut").textContent = cut ? cut.hidden : "";
  }

  function press(on, off) {
    on.setAttribute("aria-pressed", "true");
    off.setAttribute("aria-pressed", "false");
  }

  function apply(state) {
    version = state.version;
    $("issue-file").textContent = state.issue_file || "no issue yet";
    document.title = "Preview: " + (state.issue_file || "no issue yet");

    const banner = $("banner");
    banner.hidden = state.problems.length === 0;
    banner.classList.toggle("pv-has-errors", state.problems.some((p) => p.level === "error"));
    $("banner-summary").textContent = state.summary;
    $("stale").hidden = !state.stale;
    const list = $("problems");
    list.replaceChildren(
      ...state.problems.map((problem) => {
        const item = document.createElement("li");
        item.className = "pv-" + problem.level;
        item.textContent = problem.text;
        return item;
      }),
    );

    const shown = state.shown;
    if (!shown) {
      return;
    }
    $("reader").textContent = shown.reader;
    $("inbox").hidden = false;
    const inbox = shown.inbox;
    setCut("from-desktop", inbox.from);
    setCut("subject-desktop", inbox.desktop_subject);
    setCut("snippet-desktop", inbox.desktop_snippet);
    setCut("from-phone", inbox.from);
    setCut("subject-phone", inbox.phone_subject);
    setCut("snippet-phone", inbox.phone_snippet);
    $("snippet-source").hidden = inbox.snippet_is_preheader;
    if (state.shown_version !== shownVersion) {
      shownVersion = state.shown_version;
      $("text").textContent = shown.text;
      loadFrames();
    }
  }

  function setStatus(text, offline) {
    const status = $("status");
    status.textContent = text;
    status.classList.toggle("pv-offline", offline);
  }

  async function poll() {
    try {
      const response = await fetch("/state.json?since=" + version, { cache: "no-store" });
      if (response.status === 200) {
        apply(await response.json());
        setStatus("Updated " + new Date().toLocaleTimeString(), false);
      } else if (response.status !== 204) {
        setStatus("The preview answered " + response.status, true);
      }
    } catch (error) {
      setStatus("The preview is not answering (stopped?)", true);
    }
    setTimeout(poll, POLL_MS);
  }

  $("tab-html").addEventListener("click", () => {
    press($("tab-html"), $("tab-text"));
    $("pane-html").hidden = false;
    $("pane-text").hidden = true;
    $("modes").hidden = false;
  });
  $("tab-text").addEventListener("click", () => {
    press($("tab-text"), $("tab-html"));
    $("pane-html").hidden = true;
    $("pane-text").hidden = false;
    $("modes").hidden = true;
  });
  $("mode-light").addEventListener("click", () => {
    press($("mode-light"), $("mode-dark"));
    mode = "light";
    loadFrames();
  });
  $("mode-dark").addEventListener("click", () => {
    press($("mode-dark"), $("mode-light"));
    mode = "dark";
    loadFrames();
  });

  setTimeout(poll, POLL_MS);
})();
