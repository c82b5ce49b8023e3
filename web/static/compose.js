/* The compose form: "Add a thread part" adds one more text box (with its own counter and
 * its own file field, see media.js);
 * choosing "the account's next free slot" sets the time field aside (disabled, so it is
 * neither required nor sent). Without script the form still works for a single post;
 * the server ignores empty parts, and the time field when a slot is chosen.
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

  function followWhen() {
    var slot = document.getElementById("when-slot");
    var due = document.getElementById("due_at");
    if (!slot || !due) { return; }
    function update() { due.disabled = slot.checked; }
    document.querySelectorAll("input[name=when]").forEach(function (choice) {
      choice.addEventListener("change", update);
    });
    update();
  }

  function init() {
    followWhen();
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
