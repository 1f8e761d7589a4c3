// Visual builders for the segment language: pick a field, a comparison and a value (and a
// time window), in and/or groups; or, for lead scoring, points per behaviour. They write
// the same expression into the box beside them (data-for), which stays editable.
//
// <div class="builder" data-for="textarea-id" data-mode="segment|formula"
//      data-spec='{…builder_spec…}' data-state='{…to_builder…}|null'></div>
(function () {
  "use strict";

  function make(tag, attrs, kids) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (kids || []).forEach(function (kid) { if (kid) { node.appendChild(kid); } });
    return node;
  }
  function choice(options, current, label) {
    var select = make("select", { "aria-label": label || "" });
    options.forEach(function (o) {
      var opt = make("option", { value: o[0], text: o[1] });
      if (o[0] === current) { opt.selected = true; }
      select.appendChild(opt);
    });
    return select;
  }
  function quote(v) {
    if (v.indexOf('"') < 0) { return '"' + v + '"'; }
    if (v.indexOf("”") < 0) { return "“" + v + "”"; }
    return "'" + v + "'";
  }
  var NUMBER = /^-?\d+(\.\d+)?%?$/, DAY = /^\d{4}-\d{1,2}-\d{1,2}$/, AGO = /^-\d+[dhw]$/;

  function Builder(box) {
    this.box = box;
    this.target = document.getElementById(box.dataset.for);
    this.mode = box.dataset.mode || "segment";
    this.spec = JSON.parse(box.dataset.spec);
    var state = JSON.parse(box.dataset.state || "null");
    this.kept = !state && this.target && this.target.value.trim() !== "";
    this.state = state || (this.mode === "formula" ? [this.blankTerm()] :
      { join: "and", groups: [{ join: "and", rows: [this.blankRow()] }] });
    this.fields = {};
    var self = this;
    this.spec.fields.forEach(function (f) { self.fields[f.name] = f; });
    this.render();
  }
  Builder.prototype.word = function (k) { return this.spec.words[k] || k; };
  Builder.prototype.blankRow = function () {
    return { field: "tag", key: "", op: "=", value: "", window: "", not: false };
  };
  Builder.prototype.blankTerm = function () {
    return { points: "1", field: "messages", key: "", op: "", value: "", window: "30d",
             not: false, half_life: "14d" };
  };

  // --- the expression the rows say -------------------------------------------------------
  Builder.prototype.complete = function (row) {
    var f = this.fields[row.field];
    if (!f) { return false; }
    if (f.keyed && !String(row.key).trim()) { return false; }
    if (this.mode === "formula" && !row.op && f.counter) { return true; }
    return f.kind === "flag" || String(row.value).trim() !== "";
  };
  Builder.prototype.rowText = function (row) {
    var f = this.fields[row.field];
    var name = row.field + (f.keyed ? "." + String(row.key).trim() : "");
    if (f.window && row.window) { name += "[" + row.window + "]"; }
    var text;
    if (f.kind === "flag" || (this.mode === "formula" && !row.op)) {
      text = name;
    } else {
      var v = String(row.value).trim();
      var bare = f.kind === "number" || f.kind === "date" && (DAY.test(v) || AGO.test(v)) ||
        f.kind === "any" && row.op !== "~" && NUMBER.test(v);
      text = name + " " + row.op + " " + (bare ? v : quote(v));
    }
    return row.not ? "not " + text : text;
  };
  Builder.prototype.expression = function () {
    var self = this;
    if (this.mode === "formula") {
      return this.state.filter(function (t) { return self.complete(t); }).map(function (t) {
        var counted = !t.op && self.fields[t.field].counter;
        var factor = counted ? self.rowText(t) : "(" + self.rowText(t) + ")";
        var decay = counted && t.half_life && (t.field === "messages" || t.field === "events")
          ? " @" + t.half_life : "";
        return (String(t.points).trim() || "1") + " * " + factor + decay;
      }).join(" + ");
    }
    var groups = this.state.groups.map(function (g) {
      var parts = g.rows.filter(function (r) { return self.complete(r); })
        .map(function (r) { return self.rowText(r); });
      var text = parts.join(" " + g.join + " ");
      return parts.length > 1 && self.state.groups.length > 1 ? "(" + text + ")" : text;
    }).filter(function (t) { return t; });
    return groups.join(" " + this.state.join + " ");
  };
  Builder.prototype.write = function () {
    this.kept = false;
    if (!this.target) { return; }
    this.target.value = this.expression();
    this.target.dispatchEvent(new Event("input", { bubbles: true }));
    this.target.dispatchEvent(new Event("change", { bubbles: true }));
  };

  // --- drawing ----------------------------------------------------------------------------
  Builder.prototype.rowControls = function (row, onRemove) {
    var self = this, f = this.fields[row.field] || this.fields.tag;
    var line = make("div", { "class": "builder-row" });
    var fieldSel = choice(this.spec.fields.map(function (x) { return [x.name, x.label]; }),
                          row.field, this.word("counts"));
    fieldSel.title = f.help;
    fieldSel.addEventListener("change", function () {
      var nf = self.fields[fieldSel.value];
      row.field = nf.name; row.key = ""; row.value = "";
      row.op = self.mode === "formula" && nf.counter ? "" : (nf.ops[0] || "");
      row.window = "";
      self.render(); self.write();
    });
    if (this.mode === "segment") {
      var not = make("label", { "class": "builder-not" }, [make("input", { type: "checkbox" })]);
      not.firstChild.checked = !!row.not;
      not.appendChild(document.createTextNode(this.word("not")));
      not.firstChild.addEventListener("change", function () { row.not = not.firstChild.checked; self.write(); });
      line.appendChild(not);
    }
    line.appendChild(fieldSel);
    if (f.keyed) {
      var listId = "bk-" + Math.random().toString(36).slice(2);
      var key = make("input", { type: "text", list: listId, value: row.key,
                                placeholder: this.word("key"), "aria-label": this.word("key") });
      var dl = make("datalist", { id: listId });
      f.keys.forEach(function (k) {
        dl.appendChild(make("option", { value: k, text: f.key_labels[k] || k }));
      });
      key.addEventListener("input", function () { row.key = key.value; self.write(); });
      line.appendChild(key); line.appendChild(dl);
    }
    if (f.window) {
      var win = choice(Object.keys(this.spec.windows).map(function (w) { return [w, self.spec.windows[w]]; }),
                       row.window || "", this.word("window"));
      win.addEventListener("change", function () { row.window = win.value; self.write(); });
      line.appendChild(win);
    }
    if (f.kind !== "flag") {
      var names = f.kind === "date" ? this.spec.date_ops : this.spec.ops;
      var ops = f.ops.map(function (o) { return [o, names[o] || o]; });
      if (this.mode === "formula" && f.counter) { ops.unshift(["", this.word("counts")]); }
      var op = choice(ops, row.op, this.word("matches"));
      op.addEventListener("change", function () { row.op = op.value; self.render(); self.write(); });
      line.appendChild(op);
      if (!(this.mode === "formula" && !row.op)) {
        var vid = "bv-" + Math.random().toString(36).slice(2);
        var value = make("input", { type: f.kind === "number" ? "number" : "text", list: vid,
                                    value: row.value, placeholder: this.word("value"),
                                    "aria-label": this.word("value") });
        if (f.kind === "number") { value.step = "any"; }
        if (f.kind === "date") { value.placeholder = "2026-11-01 / -30d"; }
        var vl = make("datalist", { id: vid });
        (f.kind === "date" ? Object.keys(this.spec.relative) : f.values).forEach(function (v) {
          vl.appendChild(make("option", { value: v, text: f.kind === "date" ? self.spec.relative[v] : v }));
        });
        value.addEventListener("input", function () { row.value = value.value; self.write(); });
        line.appendChild(value); line.appendChild(vl);
      }
    }
    if (onRemove) {
      var remove = make("button", { type: "button", "class": "linkbtn", text: "×",
                                    title: this.word("remove"), "aria-label": this.word("remove") });
      remove.addEventListener("click", onRemove);
      line.appendChild(remove);
    }
    return line;
  };
  Builder.prototype.joinChoice = function (holder) {
    var self = this;
    var sel = choice([["and", this.word("all")], ["or", this.word("any")]], holder.join);
    sel.addEventListener("change", function () { holder.join = sel.value; self.write(); });
    return sel;
  };
  Builder.prototype.render = function () {
    var self = this;
    this.box.textContent = "";
    if (this.kept) {
      this.box.appendChild(make("p", { "class": "muted", text: this.word("too_deep") }));
    }
    if (this.mode === "formula") {
      this.state.forEach(function (term, i) {
        var line = self.rowControls(term, function () {
          self.state.splice(i, 1); self.render(); self.write();
        });
        var pts = make("input", { type: "number", step: "any", value: term.points,
                                  "class": "builder-points", "aria-label": self.word("points") });
        pts.addEventListener("input", function () { term.points = pts.value; self.write(); });
        line.insertBefore(make("span", { text: self.word("times") }), line.firstChild);
        line.insertBefore(pts, line.firstChild);
        var f = self.fields[term.field];
        if (!term.op && f.counter && (term.field === "messages" || term.field === "events")) {
          var hl = choice(Object.keys(self.spec.half_lives).map(function (h) { return [h, self.spec.half_lives[h]]; }),
                          term.half_life || "", self.word("half_life"));
          hl.addEventListener("change", function () { term.half_life = hl.value; self.write(); });
          line.insertBefore(hl, line.lastChild);
        }
        self.box.appendChild(line);
      });
      var addTerm = make("button", { type: "button", "class": "small", text: this.word("add_term") });
      addTerm.addEventListener("click", function () { self.state.push(self.blankTerm()); self.render(); });
      this.box.appendChild(addTerm);
      return;
    }
    var top = make("div", { "class": "builder-top" }, [this.joinChoice(this.state)]);
    this.box.appendChild(top);
    this.state.groups.forEach(function (group, gi) {
      var panel = make("fieldset", { "class": "builder-group" });
      panel.appendChild(make("legend", {}, [document.createTextNode(self.word("group") + " " + (gi + 1) + " "),
                                            self.joinChoice(group)]));
      group.rows.forEach(function (row, ri) {
        panel.appendChild(self.rowControls(row, function () {
          group.rows.splice(ri, 1);
          if (!group.rows.length) { self.state.groups.splice(gi, 1); }
          if (!self.state.groups.length) { self.state.groups.push({ join: "and", rows: [self.blankRow()] }); }
          self.render(); self.write();
        }));
      });
      var add = make("button", { type: "button", "class": "small", text: self.word("add_row") });
      add.addEventListener("click", function () { group.rows.push(self.blankRow()); self.render(); });
      panel.appendChild(add);
      self.box.appendChild(panel);
    });
    var addGroup = make("button", { type: "button", "class": "small", text: this.word("add_group") });
    addGroup.addEventListener("click", function () {
      self.state.groups.push({ join: "and", rows: [self.blankRow()] }); self.render();
    });
    this.box.appendChild(addGroup);
  };

  function start(root) {
    (root || document).querySelectorAll(".builder[data-spec]").forEach(function (box) {
      if (!box.dataset.ready) { box.dataset.ready = "1"; box.builder = new Builder(box); }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { start(); });
  } else { start(); }
  document.addEventListener("htmx:afterSwap", function (ev) { start(ev.target); });
})();
