/* medscrm console: the segment rule builder. Every construct of the rule DSL (docs/segments.md) has a
   row here: attributes, tags, scores, consents, event aggregates with property filters and windows,
   sequences, "did not", segment membership, person type, and AND / OR / NOT groups. The rule JSON
   beside it is editable: each edit is checked by the server (POST /segments/check, the DSL's own
   errors named in the reader's language) and only a rule that passed replaces the builder's. */
(function () {
  "use strict";

  var OPS = {
    string: ["eq", "ne", "in", "not_in", "contains", "starts_with", "exists", "not_exists"],
    number: ["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "exists", "not_exists"],
    bool: ["eq", "ne", "exists", "not_exists"],
    date: ["eq", "ne", "gt", "gte", "lt", "lte", "between", "exists", "not_exists"],
    measure: ["gte", "gt", "eq", "ne", "lt", "lte", "between"],
    time: ["gte", "gt", "lt", "lte", "between"],
    prop: ["eq", "ne", "in", "not_in", "contains", "starts_with", "gt", "gte", "lt", "lte", "between", "exists", "not_exists"]
  };
  var KINDS = ["attr", "tag", "score", "consent", "event", "did", "did_not", "segment", "person_type"];
  var NUMERIC_AGGS = ["sum", "avg", "min", "max", "distinct"];
  var LIST_SPLIT = /[,，、]/;

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] === undefined || attrs[k] === null) return;
      if (k === "text") e.textContent = attrs[k];
      else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }
  /* options: [value, label, raw?]; raw labels (codes that are data) are marked translate="no" */
  function select(options, value, onchange, cls) {
    var s = el("select", { "class": cls || "", onchange: function () { onchange(s.value); } });
    options.forEach(function (o) {
      var v = Array.isArray(o) ? o[0] : o, label = Array.isArray(o) ? o[1] : o;
      var opt = el("option", { value: v, text: label, translate: Array.isArray(o) && o[2] ? "no" : null });
      if (String(v) === String(value)) opt.selected = true;
      s.appendChild(opt);
    });
    return s;
  }
  function text(v) {
    if (v === undefined || v === null) return "";
    return Array.isArray(v) ? v.join(", ") : String(v);
  }
  function conv(x, type) {
    x = String(x).trim();
    if (type === "number" || type === "measure") { var n = Number(x); return x !== "" && !isNaN(n) ? n : x; }
    if (type === "bool") return x === "true" ? true : x === "false" ? false : x;
    if (type === "prop") { var m = Number(x); return x !== "" && !isNaN(m) && /^-?[0-9.]+$/.test(x) ? m : x; }
    return x;
  }
  /* the DSL value of an operator's input text (a list for in / not_in / between) */
  function valueOf(op, raw, type) {
    if (op === "exists" || op === "not_exists") return undefined;
    if (type === "prop" && ["gt", "gte", "lt", "lte", "between"].indexOf(op) >= 0) type = "number";
    if (op === "in" || op === "not_in" || op === "between") {
      var parts = Array.isArray(raw) ? raw : String(raw === undefined ? "" : raw).split(LIST_SPLIT);
      return parts.map(function (x) { return conv(x, type); }).filter(function (x) { return x !== ""; });
    }
    if (typeof raw === "object" && raw !== null) return raw;
    return conv(raw === undefined ? "" : raw, type);
  }

  function Builder(root) {
    this.root = root;
    this.meta = JSON.parse(document.getElementById("builder-meta").textContent);
    this.T = this.meta.labels.ui;
    this.L = this.meta.labels;
    this.tree = this.fromDsl(JSON.parse(document.getElementById("builder-rule").textContent));
    this.timer = null;
    this.byPath = {};
    this.props = {};
    this.render();
    this.showProblems(JSON.parse(document.getElementById("rule-problems-initial").textContent || "{}"));
    this.preview();
  }

  /* groups become tree nodes; a leaf keeps its DSL object as it is (``r``), edited in place */
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
        return { type: "group", op: "and", not: true, single: true, children: [inner] };
      }
      var kind = KINDS.filter(function (k) { return k in r; })[0];
      return { type: "cond", kind: kind || "raw", r: JSON.parse(JSON.stringify(r)) };
    }
    return { type: "group", op: "and", not: false, children: [] };
  };

  Builder.prototype.toDsl = function (node, path, paths) {
    var self = this;
    var join = function (p, k) { return p ? p + "." + k : k; };
    if (node.type === "group") {
      if (node.not && node.single && node.children.length === 1) {  // {"not": leaf} stays so
        paths[path] = node;
        return { not: self.toDsl(node.children[0], join(path, "not"), paths) };
      }
      var base = node.not ? join(path, "not") : path;
      var out = {};
      out[node.op] = node.children.map(function (c, i) { return self.toDsl(c, join(base, node.op + "[" + i + "]"), paths); });
      paths[base] = node; if (node.not) paths[path] = node;
      return node.not ? { not: out } : out;
    }
    paths[path] = node;
    return node.r;
  };

  Builder.prototype.rule = function () {
    this.byPath = {};
    return this.toDsl(this.tree, "", this.byPath);
  };

  /* the builder changed: JSON beside it follows, the preview follows (debounced) */
  Builder.prototype.changed = function (structural) {
    if (structural) this.render();
    this.syncJson();
    var self = this;
    clearTimeout(this.timer);
    this.timer = setTimeout(function () { self.preview(); }, 250);
  };

  Builder.prototype.syncJson = function () {
    var rule = this.rule();
    var ta = document.getElementById("rule-json");
    if (ta) { ta.value = JSON.stringify(rule, null, 1); ta.classList.remove("has-err"); }
    var errs = document.getElementById("json-errors"); if (errs) errs.innerHTML = "";
    var input = document.getElementById("rule-input"); if (input) input.value = JSON.stringify(rule);
  };

  /* a rule that passed the server's check replaces the builder's (the text stays as typed) */
  Builder.prototype.load = function (rule) {
    this.tree = this.fromDsl(rule);
    this.render();
    var input = document.getElementById("rule-input"); if (input) input.value = JSON.stringify(this.rule());
    this.preview();
  };

  Builder.prototype.preview = function () {
    var rule = JSON.stringify(this.rule());
    var input = document.getElementById("rule-input"); if (input) input.value = rule;
    htmx.ajax("POST", "/segments/preview", {
      target: "#preview", swap: "innerHTML", values: { rule: rule },
      headers: { "X-CSRF-Token": document.body.dataset.csrf }
    });
  };

  // --- suggestions from the tenant's data (never for identifying fields) -----------------------------
  /* ``source()`` gives {id, url} when the list is wanted (the event or property may have changed since
     the row was drawn); null: nothing to suggest */
  Builder.prototype.datalist = function (input, source) {
    input.setAttribute("autocomplete", "off");
    var fill = function () {
      var src = source();
      if (!src) return;
      input.setAttribute("list", src.id);
      var q = input.value.split(LIST_SPLIT).pop().trim();
      fetch(src.url + "&q=" + encodeURIComponent(q), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { values: [] }; })
        .then(function (res) {
          var dl = document.getElementById(src.id);
          if (!dl) { dl = el("datalist", { id: src.id }); document.body.appendChild(dl); }
          dl.innerHTML = "";
          (res.values || []).forEach(function (v) {
            dl.appendChild(el("option", { value: v.value, label: v.value + " (" + v.count + ")" }));
          });
        });
    };
    input.addEventListener("focus", fill);
    input.addEventListener("input", fill);
  };
  function slug(s) { return String(s).replace(/[^A-Za-z0-9_-]/g, function (c) { return "_" + c.charCodeAt(0).toString(16); }); }

  /* the property names of an event (GET /segments/event-properties), cached per event */
  Builder.prototype.eventProps = function (event, then) {
    var self = this;
    if (!event) { then([]); return; }
    if (this.props[event]) { then(this.props[event]); return; }
    fetch("/segments/event-properties?event=" + encodeURIComponent(event), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { properties: [] }; })
      .then(function (res) { self.props[event] = res.properties || []; then(self.props[event]); });
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

  Builder.prototype.fresh = function (kind) {
    var m = this.meta;
    switch (kind) {
      case "attr": return { attr: Object.keys(m.fields)[0] || "name", op: "eq", value: "" };
      case "tag": return { tag: Object.keys(m.tags)[0] || "", op: "exists" };
      case "score": return { score: m.scores[0] || "lead_score", op: "gte", value: 60 };
      case "consent": return { consent: "email", purpose: "marketing", status: "granted" };
      case "event": return { event: m.events[0] || "", agg: "count", op: "gte", value: 1, window: { last: 90, unit: "days" } };
      case "did": return { did: m.events[0] || "", then: m.events[1] || m.events[0] || "", within: { days: 7 } };
      case "did_not": return { did_not: m.events[0] || "", window: { last: 30, unit: "days" } };
      case "segment": return { segment: m.segments[0] || "" };
      default: return { person_type: "hcp" };
    }
  };

  Builder.prototype.renderNode = function (node, parent) {
    var self = this, T = this.T;
    if (node.type === "group") {
      var box = el("div", { "class": "group" + (node.not ? " negated" : ""), "data-node": "group" });
      var head = el("div", { "class": "group-head" }, [
        select([["and", T.all_of], ["or", T.any_of]], node.op, function (v) { node.op = v; node.single = false; self.changed(true); }, "group-op"),
        el("label", { "class": "inline" }, [
          (function () { var cb = el("input", { type: "checkbox", "class": "group-not", onchange: function () { node.not = cb.checked; self.changed(true); } }); cb.checked = node.not; return cb; })(),
          document.createTextNode(" " + T.negate)
        ]),
        el("button", { type: "button", "class": "add-cond", text: T.add_condition, onclick: function () {
          node.single = false; node.children.push({ type: "cond", kind: "attr", r: self.fresh("attr") }); self.changed(true); } }),
        el("button", { type: "button", "class": "add-group", text: T.add_group, onclick: function () {
          node.single = false; node.children.push({ type: "group", op: "and", not: false, children: [] }); self.changed(true); } }),
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
    var kinds = KINDS.map(function (k) { return [k, T["kind_" + k]]; });
    if (node.kind === "raw") kinds.push(["raw", "JSON"]);
    row.appendChild(select(kinds, node.kind, function (v) {
      node.kind = v; node.r = self.fresh(v); self.changed(true);
    }, "cond-kind"));
    var body = el("span", { "class": "cond-body" });
    row.appendChild(body);
    var fn = this["row_" + node.kind];
    if (fn) fn.call(this, node, node.r, body);
    else body.appendChild(el("code", { text: JSON.stringify(node.r) }));
    row.appendChild(el("button", { type: "button", "class": "remove", text: T.remove, onclick: function () {
      parent.children.splice(parent.children.indexOf(node), 1); self.changed(true); } }));
    row.appendChild(el("div", { "class": "node-err" }));
    node.el = row;
    return row;
  };

  // --- one row per leaf kind; each edits its DSL object ``r`` ----------------------------------------
  Builder.prototype.opSelect = function (r, ops, type, cls, structural) {
    var self = this, L = this.L;
    if (r.op && ops.indexOf(r.op) < 0) ops = [r.op].concat(ops);
    return select(ops.map(function (o) { return [o, L.ops[o] || o]; }), r.op, function (v) {
      var had = r.value;
      r.op = v;
      if (v === "exists" || v === "not_exists") delete r.value;
      else r.value = valueOf(v, had === undefined ? "" : (Array.isArray(had) ? had : text(had)), type);
      self.changed(structural !== false);
    }, cls || "cond-op");
  };
  Builder.prototype.valueInput = function (r, type, cls, placeholder) {
    var self = this;
    if (r.op === "exists" || r.op === "not_exists") return null;
    return el("input", { "class": "val " + (cls || "cond-value"), value: text(r.value), placeholder: placeholder || this.T.value_placeholder,
      oninput: function (e) { r.value = valueOf(r.op, e.target.value, type); self.changed(false); } });
  };
  Builder.prototype.named = function (names, labels, current) {
    var list = names.slice();
    if (current && list.indexOf(current) < 0) list.unshift(current);
    var out = list.map(function (n) { return labels[n] ? [n, labels[n]] : [n, n, true]; });
    out.sort(function (a, b) { return a[1].localeCompare(b[1], document.documentElement.lang); });
    return out;
  };

  Builder.prototype.row_attr = function (node, r, body) {
    var self = this, type = this.meta.fields[r.attr] || "string";
    body.appendChild(select(this.named(Object.keys(this.meta.fields), this.L.fields, r.attr), r.attr, function (v) {
      r.attr = v; self.changed(true); }, "cond-name"));
    body.appendChild(this.opSelect(r, OPS[type] || OPS.string, type));
    var input = this.valueInput(r, type);
    if (input) {
      body.appendChild(input);
      this.datalist(input, function () { return { id: "values-" + slug(r.attr), url: "/segments/values?field=" + encodeURIComponent(r.attr) }; });
    }
  };
  Builder.prototype.row_tag = function (node, r, body) {
    var self = this, type = this.meta.tags[r.tag] || "string";
    body.appendChild(select(this.named(Object.keys(this.meta.tags), this.L.tags, r.tag), r.tag, function (v) {
      r.tag = v; self.changed(true); }, "cond-name"));
    body.appendChild(this.opSelect(r, OPS[type] || OPS.string, type));
    var input = this.valueInput(r, type);
    if (input) {
      body.appendChild(input);
      this.datalist(input, function () { return { id: "tagvalues-" + slug(r.tag), url: "/segments/tag-values?tag=" + encodeURIComponent(r.tag) }; });
    }
  };
  Builder.prototype.row_score = function (node, r, body) {
    var self = this;
    body.appendChild(select(this.named(this.meta.scores, this.L.scores, r.score), r.score, function (v) {
      r.score = v; self.changed(false); }, "cond-name"));
    body.appendChild(this.opSelect(r, this.meta.score_ops.slice(), "number"));
    var input = this.valueInput(r, "number");
    if (input) { input.setAttribute("size", 6); body.appendChild(input); }
  };
  Builder.prototype.row_consent = function (node, r, body) {
    var self = this, c = this.meta.consent, L = this.L;
    var pick = function (key, values, labels, cls) {
      body.appendChild(select(values.map(function (v) { return [v, labels[v] || v]; }), r[key] || (key === "status" ? "granted" : ""),
        function (v) { r[key] = v; self.changed(false); }, cls));
    };
    pick("consent", c.channels, L.channels, "cond-channel");
    pick("purpose", c.purposes, L.purposes, "cond-purpose");
    pick("status", c.statuses, L.statuses, "cond-status");
  };
  Builder.prototype.eventInput = function (r, key, cls) {
    var self = this;
    return el("input", { "class": cls || "cond-name", list: "event-names", value: r[key] || "", placeholder: this.T.event_placeholder,
      oninput: function (e) { r[key] = e.target.value; self.changed(false); } });
  };
  Builder.prototype.row_event = function (node, r, body) {
    var self = this, T = this.T, L = this.L;
    var agg = r.agg || "count";
    if (agg === "count" && r.op === undefined && r.value === undefined) { r.op = "gte"; r.value = 1; }  // the DSL's default
    body.appendChild(this.eventInput(r, "event"));
    body.appendChild(select(this.meta.aggs.map(function (a) { return [a, L.aggs[a] || a]; }), agg, function (v) {
      r.agg = v;
      if (NUMERIC_AGGS.indexOf(v) >= 0) { if (!r.property) r.property = ""; } else delete r.property;
      if (v === "first" || v === "last") { r.op = "gte"; r.value = { ago: 30, unit: "days" }; }
      else if (typeof r.value === "object") { r.op = "gte"; r.value = 1; }
      self.changed(true);
    }, "cond-agg"));
    if (NUMERIC_AGGS.indexOf(agg) >= 0) {
      var prop = this.propInput(r, r, "property", "cond-property", true);
      body.appendChild(prop);
    }
    if (agg === "first" || agg === "last") {
      body.appendChild(this.opSelect(r, OPS.time, "time", "cond-op"));
      this.timeValue(r, body);
    } else {
      body.appendChild(this.opSelect(r, OPS.measure, "measure", "cond-op", false));
      var v = this.valueInput(r, "measure");
      if (v) { v.setAttribute("size", 6); v.classList.remove("val"); body.appendChild(v); }
    }
    this.windowEditor(r, body);
    // property filters (all must hold), e.g. therapy_area eq a value
    var filters = r.where === undefined ? [] : Array.isArray(r.where) ? r.where : [r.where];
    var box = el("div", { "class": "where" });
    filters.forEach(function (f, i) {
      var line = el("div", { "class": "where-row", "data-where": String(i) });
      line.appendChild(el("span", { "class": "muted small", text: T.where }));
      line.appendChild(self.propInput(r, f, "property", "where-property", false));
      line.appendChild(self.opSelect(f, OPS.prop, "prop", "where-op"));
      var input = self.valueInput(f, "prop", "where-value");
      if (input) {
        line.appendChild(input);
        self.datalist(input, function () {
          if (!r.event || !f.property) return null;
          return { id: "evalues-" + slug(r.event) + "-" + slug(f.property),
            url: "/segments/event-values?event=" + encodeURIComponent(r.event) + "&property=" + encodeURIComponent(f.property) };
        });
      }
      line.appendChild(el("button", { type: "button", "class": "remove-where", text: T.remove, onclick: function () {
        filters.splice(i, 1); r.where = filters.slice(); if (!filters.length) delete r.where; self.changed(true); } }));
      box.appendChild(line);
    });
    box.appendChild(el("button", { type: "button", "class": "add-where", text: T.add_filter, onclick: function () {
      filters.push({ property: "", op: "eq", value: "" }); r.where = filters.slice(); self.changed(true); } }));
    body.appendChild(box);
  };
  /* a property name: typed, with the event's property names (from its data) offered */
  Builder.prototype.propInput = function (r, obj, key, cls, numeric) {
    var self = this;
    var input = el("input", { "class": cls, value: obj[key] || "", placeholder: this.T.property_placeholder, autocomplete: "off",
      oninput: function (e) { obj[key] = e.target.value; self.changed(false); } });
    input.addEventListener("focus", function () {
      var id = "props-" + slug(r.event || "_") + (numeric ? "-n" : "");
      input.setAttribute("list", id);
      self.eventProps(r.event, function (props) {
        var dl = document.getElementById(id);
        if (!dl) { dl = el("datalist", { id: id }); document.body.appendChild(dl); }
        dl.innerHTML = "";
        props.forEach(function (p) {
          if (numeric && p.type !== "number") return;
          dl.appendChild(el("option", { value: p.name, label: p.label !== p.name ? p.label + " · " + p.name : p.name }));
        });
      });
    });
    return input;
  };
  /* first/last: compared with a date or with "N days ago" */
  Builder.prototype.timeValue = function (r, body) {
    var self = this, T = this.T;
    var ago = r.value && typeof r.value === "object" && !Array.isArray(r.value);
    body.appendChild(select([["ago", T.days_ago], ["date", T.on_date]], ago ? "ago" : "date", function (v) {
      r.value = v === "ago" ? { ago: 30, unit: "days" } : new Date().toISOString().slice(0, 10); self.changed(true);
    }, "cond-time-mode"));
    if (ago) {
      body.appendChild(el("input", { "class": "cond-ago", type: "number", min: 0, value: r.value.ago,
        oninput: function (e) { r.value = { ago: Number(e.target.value), unit: "days" }; self.changed(false); } }));
    } else {
      body.appendChild(el("input", { "class": "cond-date", type: "date", value: typeof r.value === "string" ? r.value.slice(0, 10) : "",
        oninput: function (e) { r.value = e.target.value; self.changed(false); } }));
    }
  };
  /* all time, the last N hours/days/weeks, or between two dates */
  Builder.prototype.windowEditor = function (r, body) {
    var self = this, T = this.T, L = this.L;
    var w = r.window, mode = !w ? "all" : "since" in w ? "range" : "last";
    body.appendChild(select([["all", T.all_time], ["last", T.last], ["range", T.between_dates]], mode, function (v) {
      if (v === "all") delete r.window;
      else if (v === "last") r.window = { last: 90, unit: "days" };
      else r.window = { since: new Date(Date.now() - 90 * 864e5).toISOString().slice(0, 10) };
      self.changed(true);
    }, "cond-window"));
    if (mode === "last") {
      body.appendChild(el("input", { "class": "cond-days", type: "number", min: 1, value: w.last,
        oninput: function (e) { w.last = e.target.value === "" ? "" : Number(e.target.value); self.changed(false); } }));
      body.appendChild(select(["days", "weeks", "hours"].map(function (u) { return [u, L.units[u] || u]; }), w.unit || "days",
        function (v) { w.unit = v; self.changed(false); }, "cond-unit"));
    } else if (mode === "range") {
      body.appendChild(el("input", { "class": "cond-since", type: "date", value: String(w.since || "").slice(0, 10),
        oninput: function (e) { w.since = e.target.value; self.changed(false); } }));
      body.appendChild(el("span", { text: "–" }));
      body.appendChild(el("input", { "class": "cond-until", type: "date", value: String(w.until || "").slice(0, 10),
        oninput: function (e) { if (e.target.value) w.until = e.target.value; else delete w.until; self.changed(false); } }));
    }
  };
  Builder.prototype.row_did = function (node, r, body) {
    var self = this, T = this.T, L = this.L;
    body.appendChild(this.eventInput(r, "did", "cond-name"));
    body.appendChild(el("span", { "class": "muted small", text: T.then }));
    body.appendChild(this.eventInput(r, "then", "cond-then"));
    var unit = r.within && "hours" in r.within ? "hours" : "days";
    body.appendChild(el("span", { "class": "muted small", text: T.within }));
    body.appendChild(el("input", { "class": "cond-within", type: "number", min: 1, value: r.within ? r.within[unit] : "",
      oninput: function (e) { r.within = {}; r.within[unit] = Number(e.target.value); self.changed(false); } }));
    body.appendChild(select(["days", "hours"].map(function (u) { return [u, L.units[u] || u]; }), unit, function (v) {
      var n = r.within ? r.within[unit] : 7; r.within = {}; r.within[v] = n; self.changed(true); }, "cond-within-unit"));
    this.windowEditor(r, body);
  };
  Builder.prototype.row_did_not = function (node, r, body) {
    body.appendChild(this.eventInput(r, "did_not", "cond-name"));
    this.windowEditor(r, body);
  };
  Builder.prototype.row_segment = function (node, r, body) {
    var self = this;
    body.appendChild(select(this.named(this.meta.segments, this.L.segments, r.segment), r.segment, function (v) {
      r.segment = v; self.changed(false); }, "cond-name"));
  };
  Builder.prototype.row_person_type = function (node, r, body) {
    var self = this, L = this.L;
    body.appendChild(select([["hcp", L.ptype.hcp], ["patient", L.ptype.patient]], r.person_type, function (v) {
      r.person_type = v; self.changed(false); }, "cond-name"));
  };

  // --- the rule JSON, editable: checked by the server before it replaces the builder's rule --------
  function initJson(b) {
    var ta = document.getElementById("rule-json");
    var errs = document.getElementById("json-errors");
    if (!ta) return;
    var timer = null, seq = 0;
    ta.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var mine = ++seq;
        var body = new URLSearchParams({ rule: ta.value });
        fetch("/segments/check", { method: "POST", credentials: "same-origin", body: body,
          headers: { "X-CSRF-Token": document.body.dataset.csrf, Accept: "application/json" } })
          .then(function (r) { return r.json(); })
          .then(function (res) {
            if (mine !== seq) return;  // a later edit is on its way
            errs.innerHTML = "";
            if (res.ok) {
              ta.classList.remove("has-err");
              b.load(res.rule);
              return;
            }
            ta.classList.add("has-err");
            (res.problems || []).forEach(function (p) {
              var li = el("li", { "data-path": p.path });
              if (p.path) li.appendChild(el("code", { text: p.path }));
              li.appendChild(document.createTextNode((p.where ? " " + p.where : "") + (p.path ? ": " : "") + p.reason));
              errs.appendChild(li);
            });
          });
      }, 300);
    });
  }

  function initBuilder() {
    var root = document.getElementById("builder");
    if (!root) return;
    var dl = el("datalist", { id: "event-names" });
    var meta = JSON.parse(document.getElementById("builder-meta").textContent);
    meta.events.forEach(function (n) { dl.appendChild(el("option", { value: n, label: meta.labels.events[n] || n })); });
    document.body.appendChild(dl);
    var b = new Builder(root);
    window.medscrmBuilder = b;
    b.syncJson();
    initJson(b);
    document.body.addEventListener("htmx:afterSwap", function (evt) {
      var p = evt.detail.target.querySelector && evt.detail.target.querySelector("#rule-problems");
      if (p) { b.rule(); b.showProblems(JSON.parse(p.textContent || "{}")); }
    });
    var form = document.getElementById("save-form");
    if (form) form.addEventListener("submit", function () { document.getElementById("rule-input").value = JSON.stringify(b.rule()); });
  }

  document.addEventListener("DOMContentLoaded", initBuilder);
})();
