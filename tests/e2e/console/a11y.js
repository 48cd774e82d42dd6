// Accessibility check run inside each console page (WebDriver `execute`): returns the
// problems found, in French. Checks what the issue names: every form field has a label,
// headings (one h1, no skipped level, none empty), and the contrast of every visible text
// against its effective background (WCAG AA: 4.5:1, 3:1 for large text); plus the page
// language, named buttons, links and charts.
var problems = [];
if (!document.documentElement.lang) { problems.push("page sans attribut lang"); }
var headings = Array.prototype.slice.call(document.querySelectorAll("h1,h2,h3,h4,h5,h6"));
var h1 = headings.filter(function (h) { return h.tagName === "H1"; });
if (h1.length !== 1) { problems.push(h1.length + " titres h1 (un attendu)"); }
var previous = 0;
headings.forEach(function (h) {
  var level = Number(h.tagName.charAt(1));
  if (previous && level > previous + 1) { problems.push("titre " + h.tagName + " après H" + previous + " : " + h.textContent.trim()); }
  if (!h.textContent.trim()) { problems.push("titre " + h.tagName + " vide"); }
  previous = level;
});
document.querySelectorAll("input,select,textarea").forEach(function (el) {
  if (el.type === "hidden") { return; }
  var labelled = (el.labels && Array.prototype.some.call(el.labels, function (l) { return l.textContent.trim(); }))
    || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
  if (!labelled) { problems.push("champ sans étiquette : " + el.outerHTML.slice(0, 100)); }
});
document.querySelectorAll("button,a[href]").forEach(function (el) {
  if (!el.textContent.trim() && !el.getAttribute("aria-label")) { problems.push("bouton ou lien sans texte : " + el.outerHTML.slice(0, 100)); }
});
document.querySelectorAll("svg").forEach(function (el) {
  if (el.getAttribute("aria-hidden") !== "true" && !el.getAttribute("aria-label") && !el.querySelector("title")) { problems.push("graphique sans nom"); }
});
var rgb = function (text) {
  var m = /rgba?\(([^)]+)\)/.exec(text);
  if (!m) { return null; }
  var p = m[1].split(",").map(Number);
  return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
};
var luminance = function (c) {
  var f = function (v) { v = v / 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
};
var background = function (el) {
  for (var e = el; e; e = e.parentElement) {
    var c = rgb(getComputedStyle(e).backgroundColor);
    if (c && c.a > 0) { return c; }
  }
  return { r: 255, g: 255, b: 255, a: 1 };
};
var walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
var seen = [];
var checked = 0;
while (walker.nextNode()) {
  var node = walker.currentNode;
  var text = node.textContent.trim();
  var el = node.parentElement;
  if (!text || !el || seen.indexOf(el) >= 0) { continue; }
  seen.push(el);
  var style = getComputedStyle(el);
  var box = el.getBoundingClientRect();
  if (style.visibility === "hidden" || style.display === "none" || box.width <= 1 || box.height <= 1) { continue; }
  var fg = rgb(style.color);
  if (!fg) { continue; }
  var l1 = luminance(fg), l2 = luminance(background(el));
  var ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
  var size = parseFloat(style.fontSize);
  var large = size >= 24 || (Number(style.fontWeight) >= 700 && size >= 18.66);
  checked += 1;
  if (ratio < (large ? 3 : 4.5)) { problems.push("contraste " + ratio.toFixed(2) + ":1 pour « " + text.slice(0, 40) + " »"); }
}
if (checked === 0) { problems.push("aucun texte visible vérifié"); }
return problems;
