/* medscrm console: the journey editor. The definition (a JSON object, as the API takes it) is the one
   state; the palette adds steps and triggers, the side panel edits the selected node, the advanced view
   edits the JSON/YAML text. Every change is posted (debounced) to /journeys/editor/check, which answers
   with the validator's problems (in the reader's language, each naming its node) and the graph to draw.
   Labels come from the server (#editor-meta): this file holds no UI text of its own. */
(function () {
  "use strict";

  var root = document.getElementById("journey-editor");
  if (!root) return;
  var META = JSON.parse(document.getElementById("editor-meta").textContent);
  var STATE = JSON.parse(document.getElementById("editor-state").textContent);
  var TX = META.texts, F = META.fields;
  var originalKey = root.dataset.originalKey || "";
  var csrf = document.body.dataset.csrf;
  var hidden = document.getElementById("editor-definition");
  var def = JSON.parse(hidden.value);
  var selected = { kind: "journey" };
  var problems = STATE.problems || [];
  var timer = null, seq = 0, sourceFormat = "json", lastYaml = STATE.yaml || "";
  var chart = null;
  var graphEl = document.getElementById("editor-graph");
  var source = document.getElementById("editor-source");

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), attrs[k]);
      else if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }
  function steps() { if (!Array.isArray(def.steps)) def.steps = []; return def.steps; }
  function triggers() { if (!Array.isArray(def.triggers)) def.triggers = []; return def.triggers; }
  function stepById(id) { return steps().filter(function (s) { return s && s.id === id; })[0]; }
  function setOrDelete(obj, key, value) {
    if (value === "" || value === undefined || value === null) delete obj[key]; else obj[key] = value;
  }

  // --- ids: a new step gets the type plus the first free number; renaming moves every reference -----
  function freeId(type) {
    var base = type.replace(/[^A-Za-z0-9]/g, ""), n = 1;
    while (stepById(base + n)) n++;
    return base + n;
  }
  function eachRef(fn) {
    steps().forEach(function (s) {
      if (!s || typeof s !== "object") return;
      ["next", "then", "else", "on_blocked"].forEach(function (f) { if (typeof s[f] === "string") fn(s, f); });
      (Array.isArray(s.branches) ? s.branches : []).forEach(function (b) { if (b && typeof b.next === "string") fn(b, "next"); });
    });
    if (typeof def.entry === "string") fn(def, "entry");
  }
  function renameStep(oldId, newId) {
    eachRef(function (o, f) { if (o[f] === oldId) o[f] = newId; });
  }
  function removeStep(id) {
    def.steps = steps().filter(function (s) { return !(s && s.id === id); });
    eachRef(function (o, f) { if (o[f] === id) delete o[f]; });
  }

  // --- the palette -------------------------------------------------------------------------------------
  function addStep(type) {
    var s = { id: freeId(type), type: type };
    var defaults = META.step_defaults[type] || {};
    Object.keys(defaults).forEach(function (k) { s[k] = JSON.parse(JSON.stringify(defaults[k])); });
    // connect it after the selected step when that step has no next yet (else after the last such step)
    var from = selected.kind === "step" ? stepById(selected.id) : null;
    if (!from || !canNext(from) || from.next) {
      var open = steps().filter(function (x) { return x && canNext(x) && !x.next && x.type !== "branch" && x.type !== "split"; });
      from = open.length ? open[open.length - 1] : null;
    }
    // else it goes before a trailing exit/goal step, taking over what led there
    var list = steps(), last = list[list.length - 1];
    var terminal = type === "exit" || type === "goal";
    if (!from && !terminal && last && (last.type === "exit" || last.type === "goal")) {
      list.splice(list.length - 1, 0, s);
      eachRef(function (o, f) { if (o[f] === last.id && o !== s) o[f] = s.id; });
      if (canNext(s)) s.next = last.id;
    } else {
      list.push(s);
      if (from) from.next = s.id;
    }
    selected = { kind: "step", id: s.id };
    changed();
  }
  function canNext(s) { return s.type !== "exit" && s.type !== "goal" && s.type !== "split" && s.type !== "branch"; }
  function addTrigger(type) {
    var t = { type: type };
    if (type === "segment_entry" || type === "segment_exit" || type === "schedule") {
      var seg = Object.keys(META.segments)[0];
      if (seg) t.segment = seg;
    }
    triggers().push(t);
    selected = { kind: "trigger", index: triggers().length - 1 };
    changed();
  }
  document.getElementById("editor-palette").addEventListener("click", function (evt) {
    var b = evt.target.closest("button");
    if (!b) return;
    if (b.dataset.addStep) addStep(b.dataset.addStep);
    if (b.dataset.addTrigger) addTrigger(b.dataset.addTrigger);
  });

  // --- the side panel: a form for the selected node -------------------------------------------------
  function problemsAt(kind, node) {
    return problems.filter(function (p) {
      return p.kind === kind && (kind === "journey" || String(p.node) === String(node));
    });
  }
  // a problem sentence: identifiers (between \u0001 and \u0002, marked by the server) shown as data
  function msgInto(node, text) {
    node.textContent = "";
    String(text).split(/\u0001(.*?)\u0002/).forEach(function (part, i) {
      if (!part) return;
      node.appendChild(i % 2 ? el("span", { "class": "mono", text: part }) : document.createTextNode(part));
    });
    return node;
  }
  // a name written in both languages ("zh · en", as the demo writes them): the reader's half
  var CJK = /[\u4e00-\u9fff]/;
  function oneLanguage(text) {
    if (typeof text !== "string" || text.indexOf(" \u00b7 ") < 0) return text;
    var parts = text.split(" \u00b7 ").map(function (p) { return p.trim(); });
    var zh = parts.filter(function (p) { return CJK.test(p); }), other = parts.filter(function (p) { return !CJK.test(p); });
    if (parts.length !== 2 || zh.length !== 1 || other.length !== 1) return text;
    return META.lang === "zh" ? zh[0] : other[0];
  }
  function errText(list, field) {
    return list.filter(function (p) { return p.field === field; })
      .map(function (p) { return (p.field_label && p.field_label !== F[field] ? p.field_label + ": " : "") + p.message; }).join("; ");
  }
  function fieldErrors(list, field) {
    return msgInto(el("div", { "class": "node-err", "data-field-error": field }), errText(list, field));
  }
  function selectedProblems() {
    if (selected.kind === "step") return problemsAt("step", selected.id);
    if (selected.kind === "trigger") return problemsAt("trigger", selected.index);
    return problemsAt("journey");
  }
  function otherText(list) {
    var s = selected.kind === "step" ? stepById(selected.id) : null;
    if (!s) return "";
    var fields = (META.step_fields[s.type] || []).map(function (f) { return f[0]; }).concat(["id", "name"]);
    return list.filter(function (p) { return !p.field || fields.indexOf(p.field) < 0; })
      .map(function (p) { return (p.field_label ? p.field_label + ": " : "") + p.message; }).join("; ");
  }
  // after a check: the panel's error lines only (rebuilding it would take the focus from a field being typed in)
  function updateErrors() {
    var list = selectedProblems();
    document.querySelectorAll("#editor-panel [data-field-error]").forEach(function (d) {
      var f = d.dataset.fieldError;
      msgInto(d, f === "__other" ? otherText(list) : errText(list, f));
      var lab = d.closest(".jed-field");
      if (lab) lab.classList.toggle("bad", !!d.textContent);
    });
  }
  function label(text, control, field, errs, hint) {
    return el("label", { "class": "jed-field" + (errs && errs.some(function (p) { return p.field === field; }) ? " bad" : ""), "data-field": field }, [
      document.createTextNode(text), control, hint ? el("span", { "class": "muted small", text: hint }) : null,
      errs ? fieldErrors(errs, field) : null
    ]);
  }
  function selectOf(options, value, onchange, allowEmpty, attrs) {
    var s = el("select", attrs || {});
    if (allowEmpty) s.appendChild(el("option", { value: "", text: allowEmpty }));
    options.forEach(function (o) {
      var opt = el("option", { value: o[0], text: o[1] });
      if (String(o[0]) === String(value === undefined ? "" : value)) opt.selected = true;
      s.appendChild(opt);
    });
    if (value !== undefined && value !== "" && !options.some(function (o) { return String(o[0]) === String(value); })) {
      var extra = el("option", { value: value, text: String(value) });
      extra.selected = true;
      s.appendChild(extra);
    }
    s.addEventListener("change", function () { onchange(s.value); });
    return s;
  }
  function pairs(obj) { return Object.keys(obj).map(function (k) { return [k, obj[k]]; }); }
  function textInput(value, onchange, attrs) {
    var i = el("input", Object.assign({ type: "text", value: value === undefined || value === null ? "" : value }, attrs || {}));
    i.addEventListener("input", function () { onchange(i.value); });
    return i;
  }
  function jsonInput(value, onchange, field) {
    var ta = el("textarea", { rows: 4, "class": "mono", spellcheck: "false", "data-json": field });
    ta.value = value === undefined ? "" : JSON.stringify(value, null, 1);
    var err = el("div", { "class": "node-err" });
    ta.addEventListener("input", function () {
      var txt = ta.value.trim();
      if (!txt) { err.textContent = ""; onchange(undefined); return; }
      try { var v = JSON.parse(txt); err.textContent = ""; onchange(v); }
      catch (e) { err.textContent = TX.bad_json; }
    });
    return el("div", {}, [ta, err]);
  }
  // a step as the reader sees it: its place and name (else its type); the id is in the form
  function stepText(s, i) { return (i + 1) + ". " + (s.name ? oneLanguage(s.name) : (META.steps[s.type] || s.type)); }
  function stepOptions(exceptId) {
    var out = [];
    steps().forEach(function (s, i) { if (s && s.id && s.id !== exceptId) out.push([s.id, stepText(s, i)]); });
    return out;
  }
  function datalist(id, obj) {
    if (document.getElementById(id)) return;
    var dl = el("datalist", { id: id });
    Object.keys(obj).forEach(function (k) { dl.appendChild(el("option", { value: k, label: obj[k] })); });
    document.body.appendChild(dl);
  }

  function control(kind, obj, field, onEdit, ownId) {
    var v = obj[field];
    var set = function (x) { setOrDelete(obj, field, x); onEdit(); };
    switch (kind) {
      case "step": return selectOf(stepOptions(ownId), v, set, TX.none, { "data-target": field });
      case "channel": return selectOf(pairs(META.channels), v, set, TX.choose);
      case "purpose": return selectOf(pairs(META.purposes), v, set, null);
      case "window": return selectOf(pairs(META.windows), v, set, null);
      case "segment": return selectOf(pairs(META.segments), v, set, TX.choose);
      case "content":
        return selectOf(META.content.map(function (c) { return [c.key, c.title + " (" + c.status_label + ")"]; }), v, set, TX.choose,
          { "data-content-select": "1" });
      case "tag": datalist("jed-tags", META.tags); return textInput(v, set, { list: "jed-tags" });
      case "attribute": datalist("jed-attrs", META.attributes); return textInput(v, set, { list: "jed-attrs" });
      case "event": datalist("jed-events", META.events); return textInput(v, set, { list: "jed-events" });
      case "json": return jsonInput(v, set, field);
      case "textarea":
        var ta = el("textarea", { rows: 3 }); ta.value = v || "";
        ta.addEventListener("input", function () { set(ta.value); });
        return ta;
      default: return textInput(typeof v === "object" && v !== null ? JSON.stringify(v) : v, set);
    }
  }

  function renderPanel() {
    var panel = document.getElementById("editor-panel");
    panel.innerHTML = "";
    var soft = function () { changed(true); };
    if (selected.kind === "step" && !stepById(selected.id)) selected = { kind: "journey" };
    if (selected.kind === "trigger" && !triggers()[selected.index]) selected = { kind: "journey" };
    if (selected.kind === "journey") {
      var errs = problemsAt("journey");
      panel.appendChild(el("h2", { text: TX.settings }));
      var keyIn = textInput(def.key, function (x) { setOrDelete(def, "key", x.trim()); soft(); }, { name: "journey-key" });
      if (originalKey) keyIn.readOnly = true;
      panel.appendChild(label(F.key, keyIn, "key", errs));
      panel.appendChild(label(F.name, textInput(def.name, function (x) { setOrDelete(def, "name", x); soft(); }, { name: "journey-name" }), "name", errs));
      panel.appendChild(label(F.description, control("textarea", def, "description", soft), "description", errs));
      panel.appendChild(label(F.entry, selectOf(stepOptions(null), def.entry, function (x) { setOrDelete(def, "entry", x); changed(); }, TX.first_step), "entry", errs));
      var re = def.reentry || {};
      panel.appendChild(label(F.reentry, selectOf([["never", TX.reentry_never], ["after", TX.reentry_after], ["always", TX.reentry_always]], re.mode || "never",
        function (x) { def.reentry = Object.assign({}, def.reentry || {}, { mode: x }); if (x !== "after") delete def.reentry.days; changed(); }), "reentry", errs));
      if (re.mode === "after") {
        panel.appendChild(label(F.days, textInput(re.days, function (x) { def.reentry.days = Number(x) || x; soft(); }, { type: "number", min: 1 }), "reentry", null));
      }
      var caps = def.caps || {};
      ["max_enrollments", "per_person"].forEach(function (c) {
        panel.appendChild(label(F[c], textInput(caps[c], function (x) {
          def.caps = def.caps || {}; setOrDelete(def.caps, c, x === "" ? "" : (Number(x) || x));
          if (!Object.keys(def.caps).length) delete def.caps; soft();
        }, { type: "number", min: 1 }), "caps", null));
      });
      panel.appendChild(label(F.goal, jsonInput(def.goal, function (x) { setOrDelete(def, "goal", x); soft(); }, "goal"), "goal", errs, META.hints.condition));
      var tl = el("div", { "class": "jed-trigger-list" });
      triggers().forEach(function (t, i) {
        tl.appendChild(el("button", { type: "button", "class": "chip", "data-select-trigger": i, text: TX.trigger + " " + (i + 1) + " · " + (META.triggers[t && t.type] || "?"),
          onclick: function () { selected = { kind: "trigger", index: i }; renderPanel(); highlight(); } }));
      });
      panel.appendChild(el("h3", { text: TX.triggers }));
      panel.appendChild(tl);
      var sl = el("div", { "class": "jed-trigger-list" });
      steps().forEach(function (x, i) {
        if (!x || !x.id) return;
        sl.appendChild(el("button", { type: "button", "class": "chip", "data-select-step": x.id, text: stepText(x, i),
          onclick: function () { selected = { kind: "step", id: x.id }; renderPanel(); highlight(); } }));
      });
      panel.appendChild(el("h3", { text: TX.steps }));
      panel.appendChild(sl);
      return;
    }
    // from a node's form back to the journey's settings (and its lists of triggers and steps)
    panel.appendChild(el("button", { type: "button", "class": "link", "data-select-journey": "1", text: "\u2190 " + TX.settings,
      onclick: function () { selected = { kind: "journey" }; renderPanel(); highlight(); } }));
    if (selected.kind === "trigger") {
      var i = selected.index, t = triggers()[i], terrs = problemsAt("trigger", i);
      panel.appendChild(el("h2", { text: TX.trigger + " " + (i + 1) }));
      panel.appendChild(label(F.type, selectOf(pairs(META.triggers), t.type, function (x) {
        var nt = { type: x };
        if (t.segment && (META.trigger_fields[x] || []).some(function (f) { return f[0] === "segment"; })) nt.segment = t.segment;
        triggers()[i] = nt; changed();
      }, null, { "data-trigger-type": "1" }), "type", terrs));
      (META.trigger_fields[t.type] || []).forEach(function (f) {
        panel.appendChild(label(F[f[0]], control(f[1], t, f[0], soft), f[0], terrs, META.hints[f[0]]));
      });
      panel.appendChild(el("button", { type: "button", "class": "danger", "data-delete-trigger": i, text: TX.delete_trigger,
        onclick: function () { triggers().splice(i, 1); selected = { kind: "journey" }; changed(); } }));
      return;
    }
    var s = stepById(selected.id), serrs = problemsAt("step", s.id);
    panel.appendChild(el("h2", { text: TX.step + " · " + (META.steps[s.type] || s.type) }));
    var idIn = textInput(s.id, function () {}, { name: "step-id", "class": "mono" });
    var idErr = el("div", { "class": "node-err" });
    idIn.addEventListener("change", function () {
      var nv = idIn.value.trim();
      if (nv === s.id) return;
      if (!/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/.test(nv)) { idErr.textContent = TX.id_bad; return; }
      if (stepById(nv)) { idErr.textContent = TX.id_taken; return; }
      var old = s.id; s.id = nv; renameStep(old, nv); selected = { kind: "step", id: nv }; changed();
    });
    panel.appendChild(el("label", { "class": "jed-field", "data-field": "id" }, [document.createTextNode(TX.step_id), idIn, idErr, fieldErrors(serrs, "id")]));
    panel.appendChild(label(TX.step_name, textInput(s.name, function (x) { setOrDelete(s, "name", x); soft(); }, { name: "step-name" }), "name", serrs));
    var fields = META.step_fields[s.type] || [];
    fields.forEach(function (f) {
      if (f[1] === "branches") { panel.appendChild(branchesEditor(s, serrs)); return; }
      var edit = f[1] === "step" ? changed : soft;
      panel.appendChild(label(F[f[0]], control(f[1], s, f[0], edit, s.id), f[0], serrs, META.hints[f[0]]));
    });
    // problems of the step that no field shows (the graph: unreachable, a cycle)
    panel.appendChild(msgInto(el("div", { "class": "node-err", "data-field-error": "__other", "data-step-error": s.id }), otherText(serrs)));
    panel.appendChild(el("button", { type: "button", "class": "danger", "data-delete-step": s.id, text: TX.delete,
      onclick: function () { removeStep(s.id); selected = { kind: "journey" }; changed(); } }));
  }

  function branchesEditor(s, errs) {
    if (!Array.isArray(s.branches)) s.branches = [];
    var box = el("fieldset", { "class": "jed-branches" }, [el("legend", { text: F.branches })]);
    s.branches.forEach(function (b, i) {
      var row = el("div", { "class": "jed-branch", "data-branch": i }, [
        el("b", { text: (i + 1) + "." }),
        label(F.weight, textInput(b.weight, function (x) { b.weight = x === "" ? x : Number(x); changed(true); }, { type: "number", min: 0, step: "any" }), "weight", null),
        label(F.label, textInput(b.label, function (x) { setOrDelete(b, "label", x); changed(true); }), "label", null),
        label(F.next, selectOf(stepOptions(s.id), b.next, function (x) { setOrDelete(b, "next", x); changed(); }, TX.none), "next", null),
        el("button", { type: "button", text: TX.remove, onclick: function () { s.branches.splice(i, 1); changed(); } })
      ]);
      box.appendChild(row);
    });
    box.appendChild(el("button", { type: "button", "data-add-branch": "1", text: TX.add_branch,
      onclick: function () { s.branches.push({ weight: 50 }); changed(); } }));
    box.appendChild(fieldErrors(errs, "branches"));
    return box;
  }

  // --- problems list, graph --------------------------------------------------------------------------
  function nodeName(p) {
    if (p.kind === "step") return [TX.node_step + " ", el("span", { "class": "mono", text: p.node })];
    if (p.kind === "trigger") return [TX.node_trigger + " " + (Number(p.node) + 1)];
    return [TX.node_journey];
  }
  function renderProblems(syntax) {
    var ul = document.getElementById("editor-problems"), status = document.getElementById("editor-status");
    ul.innerHTML = "";
    status.textContent = problems.length ? TX.problems_n.replace("{n}", problems.length) : TX.valid;
    status.className = problems.length ? "err" : "ok";
    status.dataset.valid = problems.length ? "0" : "1";
    problems.forEach(function (p) {
      var li = el("li", { "data-problem-kind": p.kind, "data-problem-node": p.node, "data-problem-path": p.path, "class": "err" });
      nodeName(p).forEach(function (x) { li.appendChild(typeof x === "string" ? document.createTextNode(x) : x); });
      li.appendChild(document.createTextNode((p.field_label ? " · " + p.field_label : "") + ": "));
      li.appendChild(msgInto(el("span", {}), p.message));
      if (p.kind !== "journey" && !syntax) {
        li.style.cursor = "pointer";
        li.addEventListener("click", function () {
          selected = p.kind === "step" ? { kind: "step", id: p.node } : { kind: "trigger", index: Number(p.node) };
          renderPanel(); highlight();
        });
      }
      ul.appendChild(li);
    });
  }
  var graphOption = STATE.graph;
  function drawGraph(opt) {
    graphOption = opt;
    graphEl.style.width = opt.size.width + "px";
    graphEl.style.height = opt.size.height + "px";
    graphEl.dataset.chart = JSON.stringify(opt);
    if (!window.echarts) return;
    if (!chart) {
      chart = echarts.init(graphEl, null, { renderer: "canvas" });
      chart.on("click", function (params) {
        if (params.dataType !== "node") return;
        var id = params.data.id;
        if (String(id).indexOf(META.anchor) === 0) return;
        selected = id === META.triggers_node ? { kind: "journey" } : { kind: "step", id: id };
        if (id === META.triggers_node && triggers().length) selected = { kind: "trigger", index: 0 };
        renderPanel(); highlight();
      });
    } else {
      chart.resize({ width: opt.size.width, height: opt.size.height });
    }
    highlight();
  }
  function highlight() {
    if (!chart || !graphOption) return;
    var opt = JSON.parse(JSON.stringify(graphOption));
    opt.animation = false;
    var sel = selected.kind === "step" ? selected.id : selected.kind === "trigger" ? META.triggers_node : null;
    opt.series[0].data.forEach(function (n) {
      if (n.id === sel) n.itemStyle = Object.assign({}, n.itemStyle || {}, { shadowBlur: 12, shadowColor: "#1f6feb", borderColor: n.itemStyle && n.itemStyle.borderColor || "#1f6feb", borderWidth: 3 });
    });
    chart.setOption(opt, true);
    graphEl.dataset.selected = sel || "";
  }

  // --- sync: the definition → hidden field, advanced text, server check --------------------------------
  function showSource() {
    if (document.activeElement === source) return;  // never rewrite what the user is typing
    source.value = sourceFormat === "yaml" ? lastYaml : JSON.stringify(def, null, 2);
  }
  function changed(soft) {
    hidden.value = JSON.stringify(def);
    showSource();
    if (!soft) renderPanel();
    schedule({ definition: def });
  }
  function schedule(body) {
    clearTimeout(timer);
    document.getElementById("editor-status").textContent = TX.checking;
    root.dataset.checking = "1";
    timer = setTimeout(function () { post(body); }, 300);
  }
  function post(body) {
    var mine = ++seq;
    body.original_key = originalKey;
    fetch("/journeys/editor/check", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body)
    }).then(function (r) { return r.json(); }).then(function (res) {
      if (mine !== seq) return;  // a newer check is on its way
      problems = res.problems || [];
      if (res.definition !== undefined && "text" in body) {
        def = res.definition && typeof res.definition === "object" ? res.definition : {};
        hidden.value = JSON.stringify(def);
      }
      if (res.yaml !== undefined) lastYaml = res.yaml;
      if (res.graph) drawGraph(res.graph);
      renderProblems(!!res.syntax);
      if ("text" in body && !res.syntax) renderPanel(); else updateErrors();
      if (!res.syntax) showSource();
      root.dataset.checking = "";
      root.dataset.checked = String(mine);
    });
  }

  source.addEventListener("input", function () {
    clearTimeout(timer);
    root.dataset.checking = "1";
    timer = setTimeout(function () { post({ text: source.value }); }, 400);
  });
  source.addEventListener("blur", showSource);
  document.querySelectorAll("input[name=source-format]").forEach(function (r) {
    r.addEventListener("change", function () { sourceFormat = r.value; source.value = sourceFormat === "yaml" ? lastYaml : JSON.stringify(def, null, 2); });
  });
  document.getElementById("editor-save-form").addEventListener("submit", function () { hidden.value = JSON.stringify(def); });

  window.medscrmJourneyEditor = {
    get definition() { return def; },
    select: function (id) { selected = { kind: "step", id: id }; renderPanel(); highlight(); }
  };
  renderProblems(false);
  renderPanel();
  showSource();
  drawGraph(STATE.graph);
  root.dataset.checked = "0";
})();
