/* medscrm console: ECharts charts (options come from the server), the segment rule builder and forms
   that ask for confirmation (data-confirm). */
(function () {
  "use strict";

  // --- charts: every element with data-chart holds a complete ECharts option -------------------------
  function initCharts(root) {
    if (!window.echarts) return;
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.ready) return;
      el.dataset.ready = "1";
      var chart = echarts.init(el, null, { renderer: "canvas" });
      var opt = JSON.parse(el.dataset.chart);
      opt.animation = false;
      chart.setOption(opt);
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }

  // --- segment builder -----------------------------------------------------------------------------------
  var OPS = {
    string: ["eq", "ne", "in", "not_in", "contains", "starts_with", "exists", "not_exists"],
    number: ["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "exists", "not_exists"],
    bool: ["eq", "ne", "exists", "not_exists"],
    date: ["eq", "ne", "gt", "gte", "lt", "lte", "between", "exists", "not_exists"],
    measure: ["gte", "gt", "eq", "ne", "lt", "lte", "between"]
  };
  var KINDS = ["attr", "tag", "event", "did_not", "segment", "person_type"];

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }
  function select(options, value, onchange, cls) {
    var s = el("select", { "class": cls || "", onchange: function () { onchange(s.value); } });
    options.forEach(function (o) {
      var v = Array.isArray(o) ? o[0] : o, label = Array.isArray(o) ? o[1] : o;
      var opt = el("option", { value: v, text: label });
      if (String(v) === String(value)) opt.selected = true;
      s.appendChild(opt);
    });
    return s;
  }

  function Builder(root) {
    this.root = root;
    this.T = JSON.parse(root.dataset.t);
    this.meta = JSON.parse(document.getElementById("builder-meta").textContent);
    this.tree = this.fromDsl(JSON.parse(document.getElementById("builder-rule").textContent));
    this.timer = null;
    this.byPath = {};
    this.render();
    this.showProblems(JSON.parse(document.getElementById("rule-problems-initial").textContent || "{}"));
    this.preview();
  }

  Builder.prototype.fromDsl = function (r) {
    var self = this;
    if (r && typeof r === "object" && !Array.isArray(r)) {
      if (Array.isArray(r.and) || Array.isArray(r.or)) {
        var op = Array.isArray(r.and) ? "and" : "or";
        return { type: "group", op: op, not: false, children: r[op].map(function (c) { return self.fromDsl(c); }) };
      }
      if ("not" in r) {
        var inner = self.fromDsl(r.not);
        if (inner.type === "group" && !inner.not) { inner.not = true; return inner; }
        return { type: "group", op: "and", not: true, children: [inner] };
      }
      var kind = KINDS.filter(function (k) { return k in r; })[0];
      if (kind) {
        var c = { type: "cond", kind: kind, raw: r };
        if (kind === "attr" || kind === "tag") { c.name = r[kind]; c.op = r.op || "eq"; c.value = r.value; }
        if (kind === "event") { c.name = r.event; c.op = r.op || "gte"; c.value = r.value === undefined ? 1 : r.value; }
        if (kind === "did_not") { c.name = r.did_not; }
        if (kind === "event" || kind === "did_not") { c.days = r.window && r.window.last ? r.window.last : ""; }
        if (kind === "segment") { c.name = r.segment; }
        if (kind === "person_type") { c.name = r.person_type; }
        var known = ["attr", "tag", "event", "did_not", "segment", "person_type", "op", "value", "window", "unit"];
        var simple = Object.keys(r).every(function (k) { return known.indexOf(k) >= 0; }) && !(r.window && !r.window.last);
        if (simple) return c;
      }
      return { type: "cond", kind: "raw", raw: r };
    }
    return { type: "group", op: "and", not: false, children: [] };
  };

  Builder.prototype.valueOf = function (c, type) {
    var v = c.value;
    if (c.op === "exists" || c.op === "not_exists") return undefined;
    var conv = function (x) {
      x = String(x).trim();
      if (type === "number" || type === "measure") { var n = Number(x); return x !== "" && !isNaN(n) ? n : x; }
      if (type === "bool") return x === "true" ? true : x === "false" ? false : x;
      return x;
    };
    if (c.op === "in" || c.op === "not_in" || c.op === "between") {
      var parts = Array.isArray(v) ? v : String(v === undefined ? "" : v).split(/[,，、]/);
      return parts.map(conv).filter(function (x) { return x !== ""; });
    }
    return conv(v === undefined ? "" : v);
  };

  Builder.prototype.typeOf = function (c) {
    if (c.kind === "attr") return this.meta.fields[c.name] || "string";
    if (c.kind === "tag") return this.meta.tags[c.name] || "string";
    return "measure";
  };

  Builder.prototype.toDsl = function (node, path, paths) {
    var self = this;
    var join = function (p, k) { return p ? p + "." + k : k; };
    if (node.type === "group") {
      var base = node.not ? join(path, "not") : path;
      var out = {};
      out[node.op] = node.children.map(function (c, i) { return self.toDsl(c, join(base, node.op + "[" + i + "]"), paths); });
      paths[base] = node; if (node.not) paths[path] = node;
      return node.not ? { not: out } : out;
    }
    paths[path] = node;
    var r;
    switch (node.kind) {
      case "attr": case "tag":
        r = {}; r[node.kind] = node.name || ""; r.op = node.op || "eq";
        var v = self.valueOf(node, self.typeOf(node)); if (v !== undefined) r.value = v; break;
      case "event":
        r = { event: node.name || "", op: node.op || "gte", value: self.valueOf(node, "measure") };
        if (String(node.days || "").trim() !== "") r.window = { last: Number(node.days), unit: "days" };
        break;
      case "did_not":
        r = { did_not: node.name || "" };
        if (String(node.days || "").trim() !== "") r.window = { last: Number(node.days), unit: "days" };
        break;
      case "segment": r = { segment: node.name || "" }; break;
      case "person_type": r = { person_type: node.name || "hcp" }; break;
      default: r = node.raw;
    }
    return r;
  };

  Builder.prototype.rule = function () {
    this.byPath = {};
    return this.toDsl(this.tree, "", this.byPath);
  };

  Builder.prototype.changed = function (structural) {
    if (structural) this.render();
    var json = JSON.stringify(this.rule(), null, 1);
    document.getElementById("rule-json").textContent = json;
    var input = document.getElementById("rule-input"); if (input) input.value = JSON.stringify(this.rule());
    var self = this;
    clearTimeout(this.timer);
    this.timer = setTimeout(function () { self.preview(); }, 250);
  };

  Builder.prototype.preview = function () {
    var rule = JSON.stringify(this.rule());
    document.getElementById("rule-json").textContent = JSON.stringify(JSON.parse(rule), null, 1);
    var input = document.getElementById("rule-input"); if (input) input.value = rule;
    htmx.ajax("POST", "/segments/preview", {
      target: "#preview", swap: "innerHTML", values: { rule: rule },
      headers: { "X-CSRF-Token": document.body.dataset.csrf }
    });
  };

  // --- value suggestions: the distinct values of the field in the data (GET /segments/values) ------
  Builder.prototype.suggest = function (input, node) {
    var id = "values-" + node.name;
    input.setAttribute("list", id);
    input.setAttribute("autocomplete", "off");
    var self = this;
    this.valueLists = this.valueLists || {};
    var fill = function (q) {
      var url = "/segments/values?field=" + encodeURIComponent(node.name) + "&q=" + encodeURIComponent(q || "");
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { values: [] }; })
        .then(function (res) {
          var dl = document.getElementById(id);
          if (!dl) { dl = el("datalist", { id: id }); document.body.appendChild(dl); }
          dl.innerHTML = "";
          (res.values || []).forEach(function (v) {
            dl.appendChild(el("option", { value: v.value, label: v.count !== undefined ? v.value + " (" + v.count + ")" : v.value }));
          });
          self.valueLists[node.name] = res.values || [];
        });
    };
    input.addEventListener("focus", function () { fill(input.value.split(/[,，、]/).pop().trim()); });
    input.addEventListener("input", function () { fill(input.value.split(/[,，、]/).pop().trim()); });
  };

  Builder.prototype.showProblems = function (problems) {
    this.root.querySelectorAll(".node-err").forEach(function (e) { e.textContent = ""; });
    this.root.querySelectorAll(".has-err").forEach(function (e) { e.classList.remove("has-err"); });
    var self = this;
    Object.keys(problems || {}).forEach(function (path) {
      var node = self.byPath[path] || self.tree;
      if (node && node.el) {
        node.el.classList.add("has-err");
        var slot = node.el.querySelector(":scope > .node-err");
        if (slot) slot.textContent = problems[path].join("; ");
      }
    });
  };

  Builder.prototype.render = function () {
    this.root.innerHTML = "";
    this.root.appendChild(this.renderNode(this.tree, null));
    this.rule();
  };

  Builder.prototype.renderNode = function (node, parent) {
    var self = this, T = this.T, L = this.meta.labels;
    if (node.type === "group") {
      var box = el("div", { "class": "group" + (node.not ? " negated" : ""), "data-node": "group" });
      var head = el("div", { "class": "group-head" }, [
        select([["and", T.all_of], ["or", T.any_of]], node.op, function (v) { node.op = v; self.changed(true); }, "group-op"),
        el("label", { "class": "inline" }, [
          (function () { var cb = el("input", { type: "checkbox", "class": "group-not", onchange: function () { node.not = cb.checked; self.changed(true); } }); cb.checked = node.not; return cb; })(),
          document.createTextNode(" " + T.negate)
        ]),
        el("button", { type: "button", "class": "add-cond", text: T.add_condition, onclick: function () {
          node.children.push({ type: "cond", kind: "attr", name: Object.keys(self.meta.fields)[0] || "name", op: "eq", value: "" }); self.changed(true); } }),
        el("button", { type: "button", "class": "add-group", text: T.add_group, onclick: function () {
          node.children.push({ type: "group", op: "and", not: false, children: [] }); self.changed(true); } }),
        parent ? el("button", { type: "button", "class": "remove", text: T.remove, onclick: function () {
          parent.children.splice(parent.children.indexOf(node), 1); self.changed(true); } }) : null
      ]);
      box.appendChild(head);
      box.appendChild(el("div", { "class": "node-err" }));
      node.children.forEach(function (c) { box.appendChild(self.renderNode(c, node)); });
      node.el = box;
      return box;
    }
    var row = el("div", { "class": "cond", "data-node": "cond", "data-kind": node.kind });
    var kinds = KINDS.map(function (k) { return [k, T[k]]; });
    if (node.kind === "raw") kinds.push(["raw", "JSON"]);
    row.appendChild(select(kinds, node.kind, function (v) {
      node.kind = v; node.op = v === "event" ? "gte" : "eq"; node.value = v === "event" ? 1 : "";
      node.name = v === "attr" ? Object.keys(self.meta.fields)[0] : v === "tag" ? Object.keys(self.meta.tags)[0] || "" :
        v === "segment" ? self.meta.segments[0] || "" : v === "person_type" ? "hcp" : "";
      self.changed(true);
    }, "cond-kind"));
    var upd = function (k) { return function (e) { node[k] = e.target.value; self.changed(false); }; };
    if (node.kind === "attr" || node.kind === "tag") {
      var names = Object.keys(node.kind === "attr" ? this.meta.fields : this.meta.tags);
      if (node.name && names.indexOf(node.name) < 0) names.unshift(node.name);
      var nameLabels = node.kind === "attr" ? L.fields : L.tags;
      var named = names.map(function (n) { return [n, nameLabels[n] || n]; });
      named.sort(function (a, b) { return a[1].localeCompare(b[1], document.documentElement.lang); });
      row.appendChild(select(named, node.name, function (v) { node.name = v; self.changed(true); }, "cond-name"));
      var ops = OPS[this.typeOf(node)] || OPS.string;
      row.appendChild(select(ops.map(function (o) { return [o, L.ops[o] || o]; }), node.op, function (v) { node.op = v; self.changed(true); }, "cond-op"));
      if (node.op !== "exists" && node.op !== "not_exists") {
        var val = Array.isArray(node.value) ? node.value.join(", ") : (node.value === undefined ? "" : node.value);
        var input = el("input", { "class": "val cond-value", value: val, placeholder: T.value_placeholder, oninput: upd("value") });
        row.appendChild(input);
        if (node.kind === "attr") this.suggest(input, node);
      }
    } else if (node.kind === "event" || node.kind === "did_not") {
      row.appendChild(el("input", { "class": "cond-name", list: "event-names", value: node.name || "", placeholder: T.event_placeholder, oninput: upd("name") }));
      if (node.kind === "event") {
        row.appendChild(select(OPS.measure.map(function (o) { return [o, L.ops[o] || o]; }), node.op, function (v) { node.op = v; self.changed(false); }, "cond-op"));
        row.appendChild(el("input", { "class": "cond-value", type: "text", size: 4, value: node.value === undefined ? "" : node.value, oninput: upd("value") }));
      }
      row.appendChild(el("input", { "class": "cond-days", type: "number", min: 1, placeholder: T.last_days, value: node.days || "", oninput: upd("days") }));
    } else if (node.kind === "segment") {
      row.appendChild(select(this.meta.segments.map(function (k) { return [k, L.segments[k] || k]; }), node.name, function (v) { node.name = v; self.changed(false); }, "cond-name"));
    } else if (node.kind === "person_type") {
      row.appendChild(select([["hcp", L.ptype.hcp], ["patient", L.ptype.patient]], node.name, function (v) { node.name = v; self.changed(false); }, "cond-name"));
    } else {
      row.appendChild(el("code", { text: JSON.stringify(node.raw) }));
    }
    row.appendChild(el("button", { type: "button", "class": "remove", text: T.remove, onclick: function () {
      parent.children.splice(parent.children.indexOf(node), 1); self.changed(true); } }));
    row.appendChild(el("div", { "class": "node-err" }));
    node.el = row;
    return row;
  };

  function initBuilder() {
    var root = document.getElementById("builder");
    if (!root) return;
    var dl = el("datalist", { id: "event-names" });
    var meta = JSON.parse(document.getElementById("builder-meta").textContent);
    meta.events.forEach(function (n) { dl.appendChild(el("option", { value: n, label: meta.labels.events[n] || n })); });
    document.body.appendChild(dl);
    var b = new Builder(root);
    window.medscrmBuilder = b;
    document.body.addEventListener("htmx:afterSwap", function (evt) {
      var p = evt.detail.target.querySelector && evt.detail.target.querySelector("#rule-problems");
      if (p) { b.rule(); b.showProblems(JSON.parse(p.textContent || "{}")); }
    });
    var form = document.getElementById("save-form");
    if (form) form.addEventListener("submit", function () { document.getElementById("rule-input").value = JSON.stringify(b.rule()); });
  }

  // --- forms that ask first: data-confirm holds the question (in the page's language) -------------------
  document.addEventListener("submit", function (evt) {
    var q = evt.target.dataset && evt.target.dataset.confirm;
    if (q && !window.confirm(q)) evt.preventDefault();
  }, true);

  document.addEventListener("DOMContentLoaded", function () {
    initCharts(document);
    initBuilder();
  });
  document.addEventListener("htmx:afterSettle", function (evt) { initCharts(evt.detail.target); });
})();
