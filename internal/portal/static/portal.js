// Causeway portal: small enhancements; every page works without them.
(function () {
  "use strict";

  // Copy buttons: <button class="copy" data-copy="element-id">.
  document.addEventListener("click", function (e) {
    var btn = e.target.closest("button[data-copy]");
    if (!btn) return;
    var src = document.getElementById(btn.getAttribute("data-copy"));
    if (!src || !navigator.clipboard) return;
    navigator.clipboard.writeText(src.textContent.trim()).then(function () {
      var label = btn.textContent;
      btn.textContent = "Copied";
      btn.setAttribute("aria-live", "polite");
      setTimeout(function () { btn.textContent = label; }, 2000);
    });
  });

  // Forms that ask before they act: <form class="confirm" data-confirm="…">.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.classList.contains("confirm") && !window.confirm(form.getAttribute("data-confirm"))) {
      e.preventDefault();
    }
  });

  // A page that answers a form moves the focus to what the person must act
  // on: the error summary, or a one-time secret with its heading. The
  // autofocus attribute does it; this covers browsers that ignore it on an
  // element that is not a form field.
  var focus = document.querySelector("[autofocus]");
  if (focus && document.activeElement !== focus) focus.focus();

  // Stacked tables (.table-wrap.stack) are laid out as blocks on phones;
  // explicit roles keep them tables for screen readers whatever the CSS.
  document.querySelectorAll(".table-wrap.stack table").forEach(function (t) {
    t.setAttribute("role", "table");
    t.querySelectorAll("thead, tbody").forEach(function (g) { g.setAttribute("role", "rowgroup"); });
    t.querySelectorAll("tr").forEach(function (r) { r.setAttribute("role", "row"); });
    t.querySelectorAll("thead th").forEach(function (c) { c.setAttribute("role", "columnheader"); });
    t.querySelectorAll("tbody th").forEach(function (c) { c.setAttribute("role", "rowheader"); });
    t.querySelectorAll("td").forEach(function (c) { c.setAttribute("role", "cell"); });
  });

  // A one-time secret is the answer to a POST. Point the address bar at the
  // page's own URL, so a reload is a GET that no longer shows the secret
  // (and does not repeat the action).
  var forget = document.querySelector("[data-forget-url]");
  if (forget && window.history && history.replaceState) {
    history.replaceState(null, "", forget.getAttribute("data-forget-url"));
  }

  // The live delivery log: new attempts stream in over server-sent events.
  var table = document.getElementById("deliveries");
  var url = table && table.getAttribute("data-live");
  if (url && window.EventSource) {
    var tbody = table.querySelector("tbody");
    var status = document.getElementById("live-status");
    var csrf = table.getAttribute("data-csrf");
    var src = new EventSource(url);
    src.onopen = function () { if (status) status.textContent = "● live"; };
    src.onerror = function () { if (status) status.textContent = "reconnecting…"; };
    src.addEventListener("delivery", function (ev) {
      var d = JSON.parse(ev.data);
      if (tbody.querySelector('tr[data-id="' + d.id + '"]')) return;
      var empty = document.getElementById("no-deliveries");
      if (empty) empty.remove();
      var tr = document.createElement("tr");
      tr.setAttribute("data-id", d.id);
      tr.className = "fresh";
      function td(text, cls) {
        var c = document.createElement("td");
        if (cls) c.className = cls;
        if (text !== undefined) c.textContent = text;
        tr.appendChild(c);
        return c;
      }
      td(d.time);
      var ev1 = td();
      var code = document.createElement("code");
      code.textContent = d.event_type;
      var small = document.createElement("small");
      small.className = "muted";
      small.textContent = d.event_id + (d.origin !== "stream" ? " · " + d.origin : "");
      ev1.appendChild(code);
      ev1.appendChild(document.createElement("br"));
      ev1.appendChild(small);
      td(String(d.attempt), "num");
      var oc = td();
      var badge = document.createElement("span");
      badge.className = "badge " + (d.outcome === "succeeded" ? "ok" : "bad");
      badge.textContent = d.outcome;
      oc.appendChild(badge);
      td(d.status_code ? String(d.status_code) : "—", "num");
      td(d.latency, "num");
      td(d.error, "break");
      var act = td();
      if (!d.retry_url) { tbody.insertBefore(tr, tbody.firstChild); return; }
      var form = document.createElement("form");
      form.method = "post";
      form.action = d.retry_url;
      var hidden = document.createElement("input");
      hidden.type = "hidden";
      hidden.name = "csrf";
      hidden.value = csrf;
      var btn = document.createElement("button");
      btn.className = "small secondary";
      btn.textContent = "Retry";
      btn.setAttribute("aria-label", "Retry " + d.event_type + " " + d.event_id);
      form.appendChild(hidden);
      form.appendChild(btn);
      act.appendChild(form);
      tbody.insertBefore(tr, tbody.firstChild);
    });
  }
})();
