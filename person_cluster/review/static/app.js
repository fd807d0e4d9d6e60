"use strict";
// The review page: a people grid and a person's page. Every name and label is put in with textContent, never
// as HTML, so a name like <img src=x onerror=...> shows as text.
const token = document.querySelector('meta[name="review-token"]').content;
const main = document.getElementById("main");
const statusLine = document.getElementById("status");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// One row per video: its length, and a bar wherever the person is on screen.
function timeline(rows) {
  const ns = "http://www.w3.org/2000/svg";
  const box = el("div", {class: "timeline", id: "timeline"});
  for (const row of rows) {
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 1000 14"); svg.setAttribute("preserveAspectRatio", "none");
    const back = document.createElementNS(ns, "rect");
    Object.entries({x: 0, y: 0, width: 1000, height: 14, class: "track"}).forEach(([k, v]) => back.setAttribute(k, v));
    svg.append(back);
    const scale = 1000 / Math.max(row.duration_s, 1e-3);
    for (const [a, b] of row.spans) {
      const bar = document.createElementNS(ns, "rect");
      Object.entries({x: a * scale, y: 0, width: Math.max(1, (b - a) * scale), height: 14, class: "on"})
        .forEach(([k, v]) => bar.setAttribute(k, v));
      svg.append(bar);
    }
    box.append(el("div", {class: "row"}, el("span", {class: "video", text: `${row.source} (${Math.round(row.duration_s)} s)`}), svg));
  }
  return box;
}

function fileUrl(path) { return "/files/" + path.split("/").map(encodeURIComponent).join("/"); }

function say(text, error = false) { statusLine.textContent = text; statusLine.className = error ? "error" : ""; }

async function getJSON(url) {
  const r = await fetch(url);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

async function act(request) {
  const r = await fetch("/api/action", {method: "POST", headers: {"Content-Type": "application/json", "X-Review-Token": token},
                                        body: JSON.stringify(request)});
  const body = await r.json();
  if (!r.ok) { say(body.error || r.statusText, true); throw new Error(body.error); }
  say(request.action === "undo" ? (body.undone ? "undone: " + body.undone : "nothing to undo") : "saved");
  return body;
}

async function showGrid() {
  const data = await getJSON("/api/people");
  const grid = el("div", {class: "grid", id: "people"});
  for (const p of data.people) {
    grid.append(el("div", {class: "card" + (p.hidden ? " hidden-person" : ""), "data-key": p.key,
                           onclick: () => { location.hash = "#/p/" + encodeURIComponent(p.key); }},
      el("img", {src: fileUrl(p.cover), alt: "", loading: "lazy"}),
      el("div", {class: "name", text: p.label}),
      el("div", {class: "meta", text: `${p.faces} faces · ${p.screen_time_s} s`})));
  }
  main.replaceChildren(el("h1", {text: `${data.people.length} people`}), grid);
}

async function showPerson(key) {
  const first = await getJSON(`/api/people/${encodeURIComponent(key)}?offset=0&limit=200`);
  const selected = new Set();
  const faces = el("div", {class: "faces", id: "faces"});
  const addFaces = (items) => {
    for (const f of items) {
      const box = el("div", {class: "face", "data-key": f.key, title: `${f.source} frame ${f.frame ?? ""}`,
                             onclick: () => { box.classList.toggle("selected");
                                              box.classList.contains("selected") ? selected.add(f.key) : selected.delete(f.key); }},
        el("img", {src: fileUrl(f.crop), alt: "", loading: "lazy"}),
        el("div", {class: "when", text: f.time_s === null ? f.source : `${f.time_s} s`}));
      faces.append(box);
    }
  };
  addFaces(first.items);
  let loaded = first.items.length;
  const more = el("button", {type: "button", id: "more", text: "more faces", onclick: async () => {
    more.disabled = true;  // one page at a time: a double click must not load a page twice
    try {
      const page = await getJSON(`/api/people/${encodeURIComponent(key)}?offset=${loaded}&limit=200`);
      addFaces(page.items); loaded += page.items.length;
    } finally { more.disabled = false; }
    if (loaded >= first.faces) more.remove();
  }});
  const nameInput = el("input", {id: "name", value: first.name, placeholder: "name", maxlength: "200"});
  const others = el("select", {id: "target"}, el("option", {value: "", text: "— person —"}),
                    ...first.candidates.map(c => el("option", {value: c.key, text: c.label})));
  const reload = async (body) => {
    if (body && body.person !== undefined && key.startsWith("c")) { location.hash = "#/p/p" + body.person; return; }
    route();
  };
  const need = () => { if (!selected.size) { say("select faces first", true); throw new Error("none"); } return [...selected]; };
  const toolbar = el("div", {class: "toolbar"},
    nameInput,
    el("button", {type: "button", id: "rename", text: "Rename", onclick: async () => reload(await act({action: "rename", person: key, name: nameInput.value}))}),
    others,
    el("button", {type: "button", id: "merge", text: "Merge into this", onclick: async () => {
      if (!others.value) return say("choose a person", true);
      reload(await act({action: "merge", keep: key, other: others.value})); }}),
    el("button", {type: "button", id: "move", text: "Move selected there", onclick: async () => {
      if (!others.value) return say("choose a person", true);
      await act({action: "move", faces: need(), target: others.value}); route(); }}),
    el("button", {type: "button", id: "split", text: "Split selected off", onclick: async () => { await act({action: "move", faces: need(), target: null}); route(); }}),
    el("button", {type: "button", id: "notface", text: "Not a face", onclick: async () => { await act({action: "not_a_face", faces: need()}); route(); }}),
    el("button", {type: "button", id: "cover", text: "Use as cover", onclick: async () => reload(await act({action: "cover", person: key, faces: need().slice(0, 1)}))}),
    el("button", {type: "button", id: "hide", text: first.hidden ? "Show" : "Hide", onclick: async () => reload(await act({action: "hide", person: key, hidden: !first.hidden}))}));
  const parts = [el("h1", {id: "title", text: `${first.label} — ${first.faces} faces · ${first.screen_time_s} s`}), toolbar,
                 timeline(first.timeline), faces];
  if (loaded < first.faces) parts.push(more);
  main.replaceChildren(...parts);
}

async function route() {
  const m = location.hash.match(/^#\/p\/(.+)$/);
  try { if (m) await showPerson(decodeURIComponent(m[1])); else await showGrid(); }
  catch (e) { if (e.message !== "none") say(e.message, true); if (m) location.hash = "#/"; }
}

document.getElementById("undo").addEventListener("click", async () => { await act({action: "undo"}); route(); });
window.addEventListener("hashchange", route);
route();
