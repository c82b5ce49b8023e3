/* Live panels: every element with data-live="<fragment URL>" is refreshed from the server
 * every PERIOD ms (the server renders the HTML; this swaps one element's children), and
 * polling stops while the tab is hidden, resuming at once when it is visible again.
 * Only answers marked X-Fragment: 1 are swapped in (a signed-out session gets the sign-in
 * page instead, which is left alone). Unchanged HTML is not swapped, so focus and
 * selection stay; a changed panel that held the focus gives it back to the same control
 * (same form action and button text) in the new HTML. An open <dialog> is never swapped.
 * window.tweetbotLive counts the polls, for tests and the curious.
 */
(function () {
  "use strict";
  var PERIOD = 1500;
  var state = { polls: 0, swaps: 0, running: false };
  var timer = null;
  var inFlight = false;
  var last = new WeakMap();
  window.tweetbotLive = state;

  function focusKey(region) {
    var active = document.activeElement;
    if (!active || active === document.body || !region.contains(active)) { return null; }
    var form = active.closest("form");
    return { action: form ? form.getAttribute("action") : null, text: active.textContent, href: active.getAttribute("href") };
  }

  function restoreFocus(region, key) {
    if (!key) { return; }
    var candidates = region.querySelectorAll("button, a[href]");
    for (var i = 0; i < candidates.length; i += 1) {
      var el = candidates[i];
      var form = el.closest("form");
      if ((form ? form.getAttribute("action") : null) === key.action && el.textContent === key.text &&
          el.getAttribute("href") === key.href) {
        el.focus();
        return;
      }
    }
  }

  function refresh(region) {
    var url = region.getAttribute("data-live");
    return fetch(url, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "text/html" } })
      .then(function (answer) {
        if (!answer.ok || answer.headers.get("X-Fragment") !== "1") { return null; }
        return answer.text();
      })
      .then(function (html) {
        if (html === null || html === undefined || last.get(region) === html) { return; }
        if (region.querySelector("dialog[open]")) { return; }
        var key = focusKey(region);
        last.set(region, html);
        region.innerHTML = html;
        state.swaps += 1;
        restoreFocus(region, key);
        region.dispatchEvent(new CustomEvent("tweetbot:swapped", { bubbles: true }));
      })
      .catch(function () { /* the server is restarting or the network is down: try again next round */ });
  }

  function round() {
    timer = null;
    if (document.visibilityState === "hidden") { state.running = false; return; }
    state.polls += 1;
    inFlight = true;
    var regions = Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
    function done() { inFlight = false; schedule(); }
    Promise.all(regions.map(refresh)).then(done, done);
  }

  function schedule() {
    if (timer !== null) { return; }
    if (document.visibilityState === "hidden") { state.running = false; return; }
    state.running = true;
    timer = window.setTimeout(round, PERIOD);
  }

  function init() {
    if (!document.querySelector("[data-live]")) { return; }
    document.querySelectorAll("[data-live]").forEach(function (region) { last.set(region, null); });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") {
        if (timer !== null) { window.clearTimeout(timer); timer = null; }
        state.running = false;
      } else if (timer === null && !inFlight) {
        round();
      }
    });
    schedule();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
