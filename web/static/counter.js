/* The compose form's live weighted-length counter.
 *
 * A port of xtext/__init__.py (twitter-text v3 `parseTweet`), so what the page shows is
 * what the server will say: the text is NFC-normalised; each code point weighs
 * 1 or 2 by the config's ranges (a character outside the BMP weighs 2); every emoji
 * sequence weighs 2; every URL weighs 23. The weighting config and the TLD list
 * come from the server (/text-rules.json, built from xtext/__init__.py and xtext/tlds.py),
 * so the two cannot drift apart. The server checks every post again anyway.
 *
 * Works on every <textarea data-counter> and the <output> named by its
 * data-counter attribute; exposes window.tweetbotText for tests.
 */
(function () {
  "use strict";

  // -- character classes (xtext/__init__.py, twitter-text js/src/regexp) ---------------
  var INVALID_CHARS = "\\ufffe\\ufeff\\uffff";
  var DIRECTIONAL = "\\u202a-\\u202e\\u061c\\u200e\\u200f\\u2066-\\u2069";
  var SPACES = "\\x09-\\x0d\\x20\\x85\\xa0\\u1680\\u180e\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
  var PUNCT = "!'#%&()*+,\\\\./:;<=>?@\\[\\]\\^{|}~$";
  var LATIN_ACCENTS = "\\xc0-\\xd6\\xd8-\\xf6\\xf8-\\xff\\u0100-\\u024f\\u0253\\u0254\\u0256\\u0257\\u0259\\u025b" +
    "\\u0263\\u0268\\u026f\\u0272\\u0289\\u028b\\u02bb\\u0300-\\u036f\\u1e00-\\u1eff";
  var CYRILLIC = "\\u0400-\\u04ff";
  var NOT_IN_SUBDOMAIN = PUNCT + SPACES + INVALID_CHARS + DIRECTIONAL;
  var NOT_IN_DOMAIN_NAME = NOT_IN_SUBDOMAIN + "_";
  var DOMAIN_CHAR = "[^" + NOT_IN_DOMAIN_NAME + "\\-]";
  var SUBDOMAIN = "(?:" + DOMAIN_CHAR + "[^" + NOT_IN_SUBDOMAIN + "]*(?<=" + DOMAIN_CHAR + ")\\.)";
  var DOMAIN_NAME = "(?:" + DOMAIN_CHAR + "[^" + NOT_IN_DOMAIN_NAME + "]*(?<=" + DOMAIN_CHAR + ")\\.)";
  var PATH_CHAR = "[a-z" + CYRILLIC + "0-9!*';:=+,.$/%#\\[\\]\\-\\u2013_~@|&" + LATIN_ACCENTS + "]";
  var PARENS = "\\((?:" + PATH_CHAR + "+|(?:" + PATH_CHAR + "*\\(" + PATH_CHAR + "+\\)" + PATH_CHAR + "*))\\)";
  var PATH_END = "(?:[+\\-a-z" + CYRILLIC + "0-9=_#/" + LATIN_ACCENTS + "]|" + PARENS + ")";
  var PATH = "(?:(?:" + PATH_CHAR + "*(?:" + PARENS + PATH_CHAR + "*)*" + PATH_END + ")|(?:@" + PATH_CHAR + "+/))";
  var QUERY_CHAR = "[a-z0-9!?*'@();:&=+$/%#\\[\\]\\-_.,~|]";
  var QUERY_END = "[a-z0-9\\-_&=#/]";
  var BEFORE = "(?<before>[^A-Za-z0-9@\\uff20$#\\uff03" + INVALID_CHARS + "]|[" + DIRECTIONAL + "]|^)";

  var PICTOGRAPHIC = "\\u203c\\u2049\\u2122\\u2139\\u2194-\\u2199\\u21a9\\u21aa\\u231a\\u231b\\u2328\\u2388\\u23cf" +
    "\\u23e9-\\u23f3\\u23f8-\\u23fa\\u24c2\\u25aa\\u25ab\\u25b6\\u25c0\\u25fb-\\u25fe\\u2600-\\u27bf" +
    "\\u2934\\u2935\\u2b05-\\u2b07\\u2b1b\\u2b1c\\u2b50\\u2b55\\u3030\\u303d\\u3297\\u3299" +
    "\\u{1f000}-\\u{1faff}\\u{1fc00}-\\u{1fffd}";
  var SKIN_TONE = "\\u{1f3fb}-\\u{1f3ff}";
  var EMOJI_ELEMENT = "(?:[\\u{1f1e6}-\\u{1f1ff}]{2}" +
    "|\\u{1f3f4}[\\u{e0020}-\\u{e007e}]+\\u{e007f}" +
    "|[#*0-9]\\ufe0f?\\u20e3" +
    "|[\\xa9\\xae]\\ufe0f" +
    "|[" + PICTOGRAPHIC + "](?:\\ufe0f|[" + SKIN_TONE + "])?)";
  var EMOJI = new RegExp(EMOJI_ELEMENT + "(?:\\u200d" + EMOJI_ELEMENT + ")*", "gu");
  var INVALID = new RegExp("[" + INVALID_CHARS + "]", "u");
  var IP_HOST = /^(?:[0-9.]+|\[.*\])$/;
  var LABEL_SEPARATORS = /[.\u3002\uff0e\uff61]/;
  var NO_PROTOCOL_BAD_BEFORE = "-_./";
  var MAX_URL_LENGTH = 4096;
  var MAX_TCO_SLUG_LENGTH = 40;
  var MAX_LABEL_LENGTH = 63;

  // Until the rules arrive, X's v3 config without URL detection (URLs then count in full).
  var DEFAULT_CONFIG = {
    maxWeightedTweetLength: 280, scale: 100, defaultWeight: 200, transformedURLLength: 23,
    emojiParsingEnabled: true,
    ranges: [{start: 0, end: 4351, weight: 100}, {start: 8192, end: 8205, weight: 100},
             {start: 8208, end: 8223, weight: 100}, {start: 8242, end: 8247, weight: 100}]
  };

  function Rules(config, tlds) {
    this.config = config;
    this.url = null;
    if (!tlds || !tlds.length) { return; }
    var sorted = tlds.slice().sort(function (a, b) { return b.length - a.length; });
    var tld = "(?:(?:" + sorted.join("|") + ")(?![0-9a-zA-Z@+\\-])|xn--[\\-0-9a-z]+)";
    var domain = "(?:" + SUBDOMAIN + "*" + DOMAIN_NAME + tld + ")";
    this.url = new RegExp(BEFORE + "(?<url>(?<protocol>https?://)?(?<domain>" + domain + ")" +
      "(?::[0-9]+)?(?<path>/" + PATH + "*)?(?:\\?" + QUERY_CHAR + "*" + QUERY_END + ")?)", "giu");
    this.asciiDomain = new RegExp("(?:[\\-a-z0-9" + LATIN_ACCENTS + "]+\\.)+" + tld, "giu");
    this.tco = new RegExp("^https?://t\\.co/([a-z0-9]+)(?:\\?" + QUERY_CHAR + "*" + QUERY_END + ")?", "iu");
  }

  // -- punycode (RFC 3492), for the DNS label length check ---------------------------
  function punycode(input) {
    var points = Array.from(input, function (ch) { return ch.codePointAt(0); });
    var base = 36, tMin = 1, tMax = 26, skew = 38, damp = 700;
    var n = 128, delta = 0, bias = 72, output = "";
    var basic = points.filter(function (cp) { return cp < 128; });
    output = String.fromCharCode.apply(null, basic);
    var handled = basic.length;
    if (handled) { output += "-"; }
    function digit(d) { return String.fromCharCode(d + 22 + 75 * (d < 26)); }
    function adapt(d, count, first) {
      var k = 0;
      d = first ? Math.floor(d / damp) : d >> 1;
      d += Math.floor(d / count);
      for (; d > ((base - tMin) * tMax) >> 1; k += base) { d = Math.floor(d / (base - tMin)); }
      return Math.floor(k + (base - tMin + 1) * d / (d + skew));
    }
    while (handled < points.length) {
      var m = Math.min.apply(null, points.filter(function (cp) { return cp >= n; }));
      delta += (m - n) * (handled + 1);
      n = m;
      for (var i = 0; i < points.length; i++) {
        var cp = points[i];
        if (cp < n) { delta++; }
        if (cp === n) {
          var q = delta;
          for (var k = base; ; k += base) {
            var t = k <= bias ? tMin : (k >= bias + tMax ? tMax : k - bias);
            if (q < t) { break; }
            output += digit(t + (q - t) % (base - t));
            q = Math.floor((q - t) / (base - t));
          }
          output += digit(q);
          bias = adapt(delta, handled + 1, handled === basic.length);
          delta = 0;
          handled++;
        }
      }
      delta++;
      n++;
    }
    return output;
  }

  function isAscii(text) { return /^[\x00-\x7f]*$/.test(text); }

  function punycodeLabel(label) {
    return label.split(LABEL_SEPARATORS).map(function (part) {
      return isAscii(part) ? part : "xn--" + punycode(part);
    }).join(".");
  }

  function validIpHost(host) {
    if (host.charAt(0) === "[") { return false; }  // only IPv4 can reach here (xtext/__init__.py `_IP_HOST`)
    var parts = host.split(".");
    return parts.length === 4 && parts.every(function (p) {
      return /^[0-9]{1,3}$/.test(p) && Number(p) <= 255 && !(p.length > 1 && p.charAt(0) === "0");
    });
  }

  function validDomain(rules, domain) {
    rules.asciiDomain.lastIndex = 0;
    if (domain.indexOf("xn--") === 0 && !rules.asciiDomain.test(domain)) { return false; }
    return domain.split(".").every(function (label) {
      var length = punycodeLabel(label).length;
      return length >= 1 && length <= MAX_LABEL_LENGTH;
    });
  }

  function validHost(rules, url, protocol, domain) {
    var sound = IP_HOST.test(domain) ? validIpHost(domain) : validDomain(rules, domain);
    return sound && (protocol || "https://").length + url.length <= MAX_URL_LENGTH;
  }

  /* URL spans (start and end in UTF-16 code units, as JS indexes strings): xtext._find_urls. */
  function findUrls(rules, text) {
    var spans = [];
    if (!rules.url || text.indexOf(".") < 0) { return spans; }
    rules.url.lastIndex = 0;
    var match;
    while ((match = rules.url.exec(text)) !== null) {
      var g = match.groups;
      var start = match.index + g.before.length;
      if (!validHost(rules, g.url, g.protocol, g.domain)) { continue; }
      if (g.protocol) {
        var url = g.url;
        var tco = rules.tco.exec(url);
        if (tco) {
          if (tco[1].length > MAX_TCO_SLUG_LENGTH) { continue; }
          url = tco[0];
        }
        spans.push([start, start + url.length]);
        continue;
      }
      if (NO_PROTOCOL_BAD_BEFORE.indexOf(g.before) >= 0 && g.before !== "") { continue; }
      var found = [], ascii;
      rules.asciiDomain.lastIndex = 0;
      while ((ascii = rules.asciiDomain.exec(g.domain)) !== null) { found.push(ascii); }
      found.forEach(function (a, i) {
        var last = i === found.length - 1;
        var end = last && g.path ? start + g.url.length : start + a.index + a[0].length;
        spans.push([start + a.index, end]);
      });
    }
    return spans;
  }

  function unitWeight(config, unit) {
    for (var i = 0; i < config.ranges.length; i++) {
      var r = config.ranges[i];
      if (r.start <= unit && unit <= r.end) { return r.weight; }
    }
    return config.defaultWeight;
  }

  /* X's weighted length of `text` (xtext.parse_post's weighted_length) and whether it may be posted. */
  function measure(rules, raw) {
    var config = rules.config;
    var text = raw.normalize("NFC");
    var urls = {}, emoji = {};
    findUrls(rules, text).forEach(function (span) { urls[span[0]] = span[1]; });
    if (config.emojiParsingEnabled) {
      EMOJI.lastIndex = 0;
      var m;
      while ((m = EMOJI.exec(text)) !== null) { emoji[m.index] = m.index + m[0].length; }
    }
    var total = 0, i = 0;
    while (i < text.length) {
      if (urls.hasOwnProperty(i)) {
        total += config.transformedURLLength * config.scale;
        i = urls[i];
      } else if (emoji.hasOwnProperty(i)) {
        total += config.defaultWeight;
        i = emoji[i];
      } else {
        var cp = text.codePointAt(i);
        // twitter-text weighs the code unit it stops on: a pair's trailing surrogate.
        total += unitWeight(config, cp > 0xffff ? 0xdc00 + ((cp - 0x10000) & 0x3ff) : cp);
        i += cp > 0xffff ? 2 : 1;
      }
    }
    var length = Math.ceil(total / config.scale);
    var blank = /^[\s\u180e]*$/.test(raw);
    return {weightedLength: length, max: config.maxWeightedTweetLength,
            valid: !blank && !INVALID.test(text) && length <= config.maxWeightedTweetLength};
  }

  var rules = new Rules(DEFAULT_CONFIG, null);

  function update(area) {
    var output = document.getElementById(area.getAttribute("data-counter"));
    if (!output) { return; }
    var result = measure(rules, area.value);
    output.textContent = result.weightedLength + " / " + result.max;
    output.classList.toggle("over", result.weightedLength > result.max);
  }

  function attach(area) {
    area.addEventListener("input", function () { update(area); });
    update(area);
  }

  function attachAll() {
    document.querySelectorAll("textarea[data-counter]").forEach(attach);
  }

  var ready = fetch("/text-rules.json", {credentials: "same-origin"})
    .then(function (answer) { return answer.ok ? answer.json() : Promise.reject(answer.status); })
    .then(function (data) {
      rules = new Rules(data.config, data.tlds);
      document.querySelectorAll("textarea[data-counter]").forEach(update);
      return true;
    })
    .catch(function () { return false; });  // keep counting, URLs at full length

  window.tweetbotText = {
    ready: ready,
    measure: function (text) { return measure(rules, text); },
    attach: attach
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", attachAll);
  } else {
    attachAll();
  }
}());
