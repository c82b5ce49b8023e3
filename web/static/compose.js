/* The compose form: "Add a thread part" adds one more text box (with its own counter and
 * its own file field, see media.js);
 * choosing "now" or "the account's next free slot" sets the time field aside (disabled, so it is
 * neither required nor sent); the Queue button waits while a part is too long or a file refused.
 * Without script the form still works for a single post; the server ignores empty parts, and
 * the time field when "now" or a slot is chosen.
 */
(function () {
  "use strict";

  function addPart(list) {
    var parts = list.querySelectorAll(".part");
    var number = parts.length + 1;
    var template = parts[parts.length - 1];
    var part = template.cloneNode(true);
    var area = part.querySelector("textarea");
    var output = part.querySelector("output");
    var label = part.querySelector("label");
    area.value = "";
    area.id = "part-" + number;
    area.removeAttribute("autofocus");
    output.id = "count-" + number;
    area.setAttribute("data-counter", output.id);
    label.setAttribute("for", area.id);
    label.textContent = "Part " + number;
    if (number === 2) {
      parts[0].querySelector("label").textContent = "Part 1";
    }
    list.appendChild(part);
    if (window.tweetbotMedia) {
      window.tweetbotMedia.reset(part, number);  // a new part starts with no files, its field named media-N
    }
    if (window.tweetbotText) {
      window.tweetbotText.attach(area);
    }
    area.focus();
  }

  // The Queue button is disabled, with the reason beside it, while a part is over X's limit or a
  // chosen file is refused (media.js sets the field's validity and says "tweetbot:checked").
  function gateQueue(form) {
    var button = document.getElementById("queue-post");
    var reason = document.getElementById("queue-blocked");
    if (!button || !reason) { return; }
    function update() {
      var why = [];
      form.querySelectorAll("#parts .part").forEach(function (part, i) {
        var counter = part.querySelector(".counter");
        if (counter && counter.classList.contains("over")) {
          why.push("part " + (i + 1) + " is over " + counter.textContent.split("/")[1].trim() + " characters");
        }
        var files = part.querySelector(".media-input");
        if (files && files.validationMessage) { why.push(files.validationMessage); }
      });
      button.disabled = why.length > 0;
      reason.hidden = why.length === 0;
      reason.textContent = why.length ? "Not ready to queue: " + why.join("; ") + "." : "";
    }
    form.addEventListener("input", update);
    form.addEventListener("tweetbot:checked", update);
    if (window.tweetbotText) { window.tweetbotText.ready.then(update); }
    update();
  }

  function followWhen() {
    var slot = document.getElementById("when-slot");
    var now = document.getElementById("when-now");
    var due = document.getElementById("due_at");
    if (!due) { return; }
    function update() { due.disabled = Boolean((slot && slot.checked) || (now && now.checked)); }
    document.querySelectorAll("input[name=when]").forEach(function (choice) {
      choice.addEventListener("change", update);
    });
    update();
  }

  // The suggested time (an hour ahead) moves on with the page's clock, which live.js keeps current,
  // for as long as nobody has typed a time of their own; a time typed, or sent back after a refusal, stays.
  function followClock() {
    var due = document.getElementById("due_at");
    if (!due || !due.hasAttribute("data-suggested")) { return; }
    var suggested = due.value;
    due.addEventListener("input", function () { due.removeAttribute("data-suggested"); });
    window.setInterval(function () {
      var clock = document.querySelector("#clock [data-suggested-due]");
      if (!clock || !due.hasAttribute("data-suggested") || due.value !== suggested) { return; }
      suggested = due.value = clock.getAttribute("data-suggested-due");
    }, 1000);
  }

  function init() {
    followWhen();
    followClock();
    var form = document.getElementById("compose-form");
    if (form) { gateQueue(form); }
    var button = document.getElementById("add-part");
    var list = document.getElementById("parts");
    if (!button || !list) { return; }
    button.hidden = false;
    button.addEventListener("click", function () { addPart(list); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
