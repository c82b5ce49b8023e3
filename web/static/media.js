/* The compose form's files: a preview of each chosen image, an alt-text field for each file,
 * and X's limits checked before anything is uploaded.
 *
 * Each part's <input type=file name="media-N" multiple> gets, per chosen file (in the order
 * the browser will send them), an item with a preview (images and GIFs), the file's name and
 * size, and a textarea named "alt-N-I" (I counts from 1), which is how the server pairs each
 * alt text with its file (web/form_files.py). The type is read from the file's first bytes, as
 * the server reads it (bot/media_checks.py `sniff`), not from its name. A file over its limit, a
 * mix X refuses, an image cut short, or a too-long alt text is flagged on its item and set as the field's custom
 * validity, so the browser will not send the form until it is put right. The limits come
 * from the form's data-* attributes, which the server writes from bot.media_checks. The server
 * checks everything again; its check is the one that counts.
 *
 * After a refusal the server lists the files it was sent with their alt texts
 * (.chosen-before li[data-name][data-alt]); choosing a file of the same name again brings
 * its alt text back. Exposes window.tweetbotMedia.reset for compose.js's "Add a thread part".
 */
(function () {
  "use strict";

  var MB = 1024 * 1024;
  var WORDS = {image: "an image", gif: "a GIF", video: "a video"};
  var urls = new WeakMap();  // field -> the preview object URLs it made (revoked on the next choice)

  function sniff(bytes) {
    function at(offset, text) {
      for (var i = 0; i < text.length; i += 1) {
        if (bytes[offset + i] !== text.charCodeAt(i)) { return false; }
      }
      return true;
    }
    if (at(0, "\x89PNG\r\n\x1a\n")) { return "image/png"; }
    if (at(0, "\xff\xd8\xff")) { return "image/jpeg"; }
    if (at(0, "RIFF") && at(8, "WEBP")) { return "image/webp"; }
    if (at(0, "GIF87a") || at(0, "GIF89a")) { return "image/gif"; }
    if (at(4, "ftyp")) { return at(8, "qt  ") ? "video/quicktime" : "video/mp4"; }
    if (at(4, "moov") || at(4, "mdat") || at(4, "wide") || at(4, "free")) { return "video/quicktime"; }
    return null;
  }

  function kindOf(mime) {
    if (!mime) { return null; }
    return mime === "image/gif" ? "gif" : mime.split("/")[0];
  }

  function readKind(file) {
    return file.slice(0, 16).arrayBuffer()
      .then(function (buffer) { return sniff(new Uint8Array(buffer)); })
      .catch(function () { return null; })
      .then(function (mime) {
        return whole(file, mime).then(function (ok) { return {kind: kindOf(mime), broken: !ok}; });
      });
  }

  // What a whole file of each still-image type ends with (PNG's IEND chunk, JPEG's end-of-image
  // marker): a file cut short in a download or a copy does not, though a browser still draws the
  // part it has. Then the browser's own decoder must take it. GIFs, videos: the server checks them.
  var ENDINGS = {"image/png": [0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82], "image/jpeg": [0xff, 0xd9]};

  function whole(file, mime) {
    if (!mime || mime.split("/")[0] !== "image" || mime === "image/gif") { return Promise.resolve(true); }
    var tail = Math.min(file.size, 64);
    return file.slice(file.size - tail).arrayBuffer().then(function (buffer) {
      var bytes = Array.from(new Uint8Array(buffer));
      var ending = ENDINGS[mime];
      var found = !ending || bytes.join(",").indexOf(ending.join(",")) !== -1;
      if (!found || typeof createImageBitmap !== "function") { return found; }
      return createImageBitmap(file).then(function (bitmap) { bitmap.close(); return true; },
                                          function () { return false; });
    }).catch(function () { return false; });
  }

  function size(bytes) {
    return bytes >= MB ? (bytes / MB).toFixed(1) + " MB" : Math.max(1, Math.round(bytes / 1024)) + " KB";
  }

  function limits(form) {
    var data = form.dataset;
    return {image: +data.limitImage, gif: +data.limitGif, video: +data.limitVideo,
            images: +data.maxImages, alt: +data.maxAlt};
  }

  function partOf(field) {
    return field.name.replace(/^media-/, "");
  }

  function altBefore(field, name) {
    var box = field.closest(".media-field");
    var found = Array.from(box.querySelectorAll(".chosen-before li[data-name]")).filter(function (li) {
      return li.getAttribute("data-name") === name;
    });
    return found.length ? found[0].getAttribute("data-alt") : "";
  }

  function item(field, file, read, index, rules) {
    var kind = read.kind;
    var li = document.createElement("li");
    li.className = "file";
    li.dataset.kind = kind || "";
    li.dataset.broken = read.broken ? "1" : "";
    li.dataset.size = String(file.size);
    li.dataset.name = file.name;
    if (kind === "image" || kind === "gif") {
      var img = document.createElement("img");
      var url = URL.createObjectURL(file);
      urls.get(field).push(url);
      img.src = url;
      img.alt = "Preview of " + file.name;
      img.className = "preview";
      li.appendChild(img);
    }
    var name = document.createElement("span");
    name.className = "file-name";
    name.textContent = file.name + " (" + size(file.size) + ")";
    li.appendChild(name);
    var id = "alt-" + partOf(field) + "-" + index;
    var label = document.createElement("label");
    label.setAttribute("for", id);
    label.textContent = "Alt text for " + file.name;
    var area = document.createElement("textarea");
    area.id = id;
    area.name = id;
    area.rows = 2;
    area.className = "alt";
    area.value = altBefore(field, file.name);
    var counter = document.createElement("output");
    counter.className = "alt-counter";
    counter.setAttribute("for", id);
    var problem = document.createElement("span");
    problem.className = "file-problem";
    problem.setAttribute("role", "alert");
    area.addEventListener("input", function () { check(field, rules); });
    li.append(label, area, counter, problem);
    return li;
  }

  function fileProblem(li, rules) {
    var kind = li.dataset.kind;
    var name = li.dataset.name;
    var alt = li.querySelector("textarea.alt").value.trim();
    if (!kind) {
      return name + ": not a file X can post (PNG, JPEG, WEBP, GIF, MP4 or MOV, read from its bytes)";
    }
    if (+li.dataset.size > rules[kind]) {
      return name + ": over X's " + rules[kind] / MB + " MB limit for " + WORDS[kind];
    }
    if (li.dataset.broken) {
      return name + ": the image cannot be read (it is cut short or damaged); choose a whole copy";
    }
    if (alt.length > rules.alt) {
      return name + ": the alt text has " + alt.length + " characters; X takes at most " + rules.alt;
    }
    return "";
  }

  function partProblem(items, rules) {
    var kinds = items.map(function (li) { return li.dataset.kind; });
    var moving = kinds.filter(function (kind) { return kind === "gif" || kind === "video"; });
    if (moving.length && items.length > 1) {
      return "A GIF or a video must be a post's only media (X takes 1 to " + rules.images +
        " images, or one GIF, or one video)";
    }
    if (kinds.length > rules.images) {
      return kinds.length + " files: X takes at most " + rules.images + " images per post";
    }
    return "";
  }

  function check(field, rules) {
    var box = field.closest(".media-field");
    var items = Array.from(box.querySelectorAll(".previews li.file"));
    var first = partProblem(items, rules);
    items.forEach(function (li) {
      var area = li.querySelector("textarea.alt");
      var counter = li.querySelector(".alt-counter");
      var length = area.value.trim().length;
      counter.textContent = length + " / " + rules.alt;
      counter.classList.toggle("over", length > rules.alt);
      var problem = fileProblem(li, rules);
      li.querySelector(".file-problem").textContent = problem;
      li.classList.toggle("problem", problem !== "");
      area.setCustomValidity(length > rules.alt ? problem : "");
      first = first || problem;
    });
    var summary = box.querySelector(".part-problem");
    summary.textContent = partProblem(items, rules);
    field.setCustomValidity(first);
    field.dispatchEvent(new CustomEvent("tweetbot:checked", {bubbles: true}));  // compose.js's Queue button
  }

  function show(field, rules) {
    var box = field.closest(".media-field");
    var list = box.querySelector(".previews");
    (urls.get(field) || []).forEach(function (url) { URL.revokeObjectURL(url); });
    urls.set(field, []);
    list.textContent = "";
    var files = Array.from(field.files);
    field.setCustomValidity(files.length ? "Reading the chosen files…" : "");
    field.dispatchEvent(new CustomEvent("tweetbot:checked", {bubbles: true}));
    return Promise.all(files.map(readKind)).then(function (read) {
      files.forEach(function (file, i) { list.appendChild(item(field, file, read[i], i + 1, rules)); });
      check(field, rules);
    });
  }

  function attach(field, rules) {
    var box = field.closest(".media-field");
    if (!box.querySelector(".part-problem")) {
      var summary = document.createElement("p");
      summary.className = "file-problem part-problem";
      summary.setAttribute("role", "alert");
      box.insertBefore(summary, box.querySelector(".previews"));
    }
    field.addEventListener("change", function () { show(field, rules); });
  }

  function reset(part, number, rules) {
    var field = part.querySelector(".media-input");
    if (!field) { return; }
    var box = field.closest(".media-field");
    var label = box.querySelector("label.media-label");
    field.value = "";
    field.id = field.name = "media-" + number;
    field.setCustomValidity("");
    if (label) { label.setAttribute("for", field.id); }
    box.querySelector(".previews").textContent = "";
    box.querySelectorAll(".chosen-before, .part-problem").forEach(function (old) { old.remove(); });
    attach(field, rules);
  }

  function init() {
    var form = document.getElementById("compose-form");
    if (!form) { return; }
    var rules = limits(form);
    form.querySelectorAll(".media-input").forEach(function (field) { attach(field, rules); });
    window.tweetbotMedia = {
      reset: function (part, number) { reset(part, number, rules); },
      sniff: sniff
    };
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
