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
    if (row.input !== null) {  // a click plays the video from there
      svg.addEventListener("click", (e) => player.at(row.input, row.source, row.duration_s * e.offsetX / svg.clientWidth));
      svg.classList.add("seekable");
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

// The player: one <video> (or, for a photo, the photo) with the face's box drawn over it. Boxes are in the
// frame's original pixels; the overlay maps them onto the picture as shown (letterboxed inside the element).
const player = (() => {
  const video = el("video", {id: "player", controls: "", preload: "metadata"});
  const photo = el("img", {id: "photo", alt: "", hidden: ""});
  const box = el("div", {id: "overlay", class: "box", hidden: ""});
  const info = el("div", {id: "player-info", class: "meta", text: "Click an appearance to see it in its video."});
  const message = el("div", {id: "player-message", class: "error", hidden: ""});
  const panel = el("aside", {class: "player", id: "player-panel"}, el("div", {class: "stage"}, video, photo, box), info, message);
  let faces = [];  // the faces of the appearance on show, in time order: where the box is when

  function picture() { return photo.hidden ? video : photo; }
  function boxAt(t) {
    if (!faces.length || t === null) return faces[0];
    if (t < faces[0].time_s - 0.5 || t > faces[faces.length - 1].time_s + 0.5) return null;
    let i = 0;
    while (i + 1 < faces.length && faces[i + 1].time_s <= t) i++;
    const a = faces[i], b = faces[i + 1];
    if (!b || t <= a.time_s) return a;
    const w = (t - a.time_s) / (b.time_s - a.time_s);  // between two samples of one track: in between
    return {...a, bbox: a.bbox.map((v, k) => v + w * (b.bbox[k] - v))};
  }
  function draw() {
    const pic = picture();
    const face = photo.hidden ? boxAt(video.currentTime) : faces[0];
    const natW = pic.videoWidth || pic.naturalWidth, natH = pic.videoHeight || pic.naturalHeight;
    if (!face || !natW || !pic.clientWidth) { box.hidden = true; return; }
    const W = face.width || natW, H = face.height || natH;
    const scale = Math.min(pic.clientWidth / natW, pic.clientHeight / natH);  // object-fit: contain
    const x0 = pic.offsetLeft + (pic.clientWidth - natW * scale) / 2, y0 = pic.offsetTop + (pic.clientHeight - natH * scale) / 2;
    const sx = natW * scale / W, sy = natH * scale / H;
    const [l, t, r, b] = face.bbox;
    Object.assign(box.style, {left: `${x0 + l * sx}px`, top: `${y0 + t * sy}px`, width: `${(r - l) * sx}px`, height: `${(b - t) * sy}px`});
    box.hidden = false;
  }
  function follow() { draw(); if (!video.paused) requestAnimationFrame(follow); }
  async function explain(url, name) {
    // The element says only that it failed: ask the server why (moved, unreadable), else it is the format.
    let why = `This browser cannot play ${name}.`;
    try { const r = await fetch(url, {headers: {Range: "bytes=0-0"}}); if (!r.ok) why = (await r.json()).error; } catch (e) { /* offline */ }
    message.textContent = why; message.hidden = false; box.hidden = true;
    // No spinner or broken image left behind, and the next click tries again.
    if (!video.hidden) { video.removeAttribute("src"); video.load(); } else photo.removeAttribute("src");
  }
  let failed = () => {};
  video.addEventListener("error", () => failed());
  photo.addEventListener("error", () => failed());
  for (const e of ["loadedmetadata", "seeked", "timeupdate"]) video.addEventListener(e, draw);
  video.addEventListener("play", follow);
  photo.addEventListener("load", draw);
  new ResizeObserver(draw).observe(video);
  new ResizeObserver(draw).observe(photo);

  // Show ``face`` (one of ``all``, the faces of its appearance) in its input, at its time.
  function show(face, all, label) {
    faces = all.filter(f => f.time_s !== null).sort((a, b) => a.time_s - b.time_s);
    message.hidden = true;
    info.textContent = label;
    if (face.input === null) { explainMissing(); return; }
    const url = `/input/${face.input}`;
    failed = () => explain(url, face.source);
    if (face.time_s === null) {  // a photo: the photo itself, with the box
      video.pause(); video.hidden = true; photo.hidden = false; faces = [face];
      if (photo.getAttribute("src") !== url) photo.src = url; else draw();
      return;
    }
    photo.hidden = true; video.hidden = false;
    if (video.getAttribute("src") !== url) { video.src = url; }
    const seek = () => { video.currentTime = face.time_s; draw(); };
    if (video.readyState >= 1) seek(); else video.addEventListener("loadedmetadata", seek, {once: true});
  }
  // The video ``input`` at ``t`` with no box (a click on the timeline).
  function at(input, source, t) { show({input, source, time_s: t}, [], `${source} · ${clock(t)}`); }
  function explainMissing() { message.textContent = "This face's input is not in the run's list of inputs."; message.hidden = false; }
  return {panel, show, at};
})();

// Seconds as the player's clock shows them: 12.3 s, or 1:02.3 past a minute.
function clock(t) {
  if (t < 60) return `${t.toFixed(1)} s`;
  return `${Math.floor(t / 60)}:${(t % 60).toFixed(1).padStart(4, "0")}`;
}

function span(a) {
  if (a.photo) return "photo";
  return a.start_s === a.end_s ? clock(a.start_s) : `${clock(a.start_s)} – ${clock(a.end_s)}`;
}

const filters = {};  // person -> the input whose appearances are shown ("" all)

async function showPerson(key) {
  const video = filters[key] || "";
  const base = `/api/people/${encodeURIComponent(key)}`;
  const page = (offset) => getJSON(`${base}?offset=${offset}&limit=200${video ? "&video=" + encodeURIComponent(video) : ""}`);
  const first = await page(0);
  const apps = new Set(), facesPicked = new Set();  // what the buttons act on: whole appearances, single faces
  const picked = el("span", {id: "picked", class: "picked"});
  const countPicks = () => {
    const n = apps.size, m = facesPicked.size;
    picked.textContent = n || m ? `${n} appearance${n === 1 ? "" : "s"}, ${m} face${m === 1 ? "" : "s"}:` : "Select (☑) to:";
  };
  countPicks();
  const trackFaces = new Map();  // track -> its faces (fetched once, when first shown or opened)
  const facesOf = (track) => {
    if (!trackFaces.has(track)) {
      trackFaces.set(track, (async () => {
        const all = [];
        for (let total = 1; all.length < total;) {  // 500 at a time: a track may be long
          const page = await getJSON(`${base}/appearances/${track}?offset=${all.length}&limit=500`);
          if (!page.items.length) break;
          all.push(...page.items); total = page.faces;
        }
        return all;
      })());
    }
    return trackFaces.get(track);
  };
  const pick = (set, value, box) => {
    const check = el("input", {type: "checkbox", class: "pick", title: "select",
                               onclick: (e) => { e.stopPropagation(); check.checked ? set.add(value) : set.delete(value);
                                                 box.classList.toggle("selected", check.checked); countPicks(); }});
    return check;
  };
  const list = el("div", {class: "appearances", id: "appearances"});
  const shownFace = new Map();  // track -> the face its card shows
  const addAppearances = (items) => {
    for (const a of items) {
      const card = el("div", {class: "appearance", "data-track": String(a.track)});
      shownFace.set(a.track, a.face.key);
      const label = `${a.source} · ${span(a)} · ${a.faces} face${a.faces === 1 ? "" : "s"}`;
      const play = async (face) => { player.show(face, await facesOf(a.track), label);
                                     list.querySelectorAll(".playing").forEach(n => n.classList.remove("playing"));
                                     card.classList.add("playing"); };
      const faces = el("div", {class: "faces", hidden: ""});
      const expand = async () => {  // the appearance's faces, each to select or to show in the video
        if (!faces.childElementCount) {
          for (const f of await facesOf(a.track)) {
            const tile = el("div", {class: "face", "data-key": f.key, title: f.time_s === null ? f.source : clock(f.time_s)});
            tile.append(pick(facesPicked, f.key, tile),
                        el("img", {src: fileUrl(f.crop), alt: "", loading: "lazy", onclick: () => play(f)}),
                        el("div", {class: "when", text: f.time_s === null ? "" : clock(f.time_s)}));
            faces.append(tile);
          }
        }
        faces.hidden = !faces.hidden;
        card.classList.toggle("open", !faces.hidden);
      };
      const open = a.faces === 1 ? el("div", {class: "meta", text: "1 face"})
        : el("button", {type: "button", class: "expand", text: `${a.faces} faces ▾`, onclick: expand});
      card.append(pick(apps, a.track, card),
                  el("div", {class: "head"},
                     el("img", {class: "thumb", src: fileUrl(a.face.crop), alt: "", loading: "lazy",
                                title: a.photo ? "show the photo" : "show in the video",
                                onclick: () => play({...a.face, time_s: a.photo ? null : a.start_s})}),
                     el("div", {class: "meta source", text: a.source, title: a.source}),
                     el("div", {class: "meta", text: span(a)}), open),
                  faces);
      list.append(card);
    }
  };
  addAppearances(first.items);
  let loaded = first.items.length;
  const more = el("button", {type: "button", id: "more", text: "more appearances", onclick: async () => {
    more.disabled = true;  // one page at a time: a double click must not load a page twice
    try {
      const next = await page(loaded);
      addAppearances(next.items); loaded += next.items.length;
    } finally { more.disabled = false; }
    if (loaded >= first.appearances) more.remove();
  }});
  const nameInput = el("input", {id: "name", value: first.name, placeholder: "name", maxlength: "200"});
  const others = el("select", {id: "target"}, el("option", {value: "", text: "— person —"}),
                    ...first.candidates.map(c => el("option", {value: c.key, text: c.label})));
  const filter = el("select", {id: "video", title: "show the appearances of one video",
                               onchange: () => { filters[key] = filter.value; route(); }},
                    el("option", {value: "", text: "all videos and photos"}),
                    ...first.videos.map(v => el("option", {value: v.value, text: `${v.label} (${v.faces} faces)`})));
  filter.value = video;
  const reload = async (body) => {
    if (body && body.person !== undefined && key.startsWith("c")) { location.hash = "#/p/p" + body.person; return; }
    route();
  };
  const chosen = () => {
    if (!apps.size && !facesPicked.size) { say("select appearances or faces first", true); throw new Error("none"); }
    const r = {person: key};
    if (apps.size) r.appearances = [...apps];
    if (facesPicked.size) r.faces = [...facesPicked];
    return r;
  };
  // The cover: a selected face, or the face a selected appearance's card shows.
  const coverFace = () => facesPicked.size ? [...facesPicked][0] : shownFace.get([...apps][0]);
  const button = (id, text, handler) => el("button", {type: "button", id, text, onclick: async () => {
    try { await handler(); } catch (e) { if (e.message !== "none") say(e.message, true); } }});
  const toolbar = el("div", {class: "toolbar"},
    nameInput,
    button("rename", "Rename", async () => reload(await act({action: "rename", person: key, name: nameInput.value}))),
    button("hide", first.hidden ? "Show" : "Hide", async () => reload(await act({action: "hide", person: key, hidden: !first.hidden}))),
    el("span", {class: "sep"}),
    others,
    button("merge", "Merge into this", async () => {
      if (!others.value) return say("choose a person", true);
      reload(await act({action: "merge", keep: key, other: others.value})); }));
  const actions = el("div", {class: "toolbar"},
    picked,
    button("move", "Move selected there", async () => {
      if (!others.value) return say("choose a person", true);
      await act({action: "move", ...chosen(), target: others.value}); route(); }),
    button("split", "Split selected off", async () => { await act({action: "move", ...chosen(), target: null}); route(); }),
    button("notface", "Not a face", async () => { await act({action: "not_a_face", ...chosen()}); route(); }),
    button("hide-selected", "Hide selected", async () => { await act({action: "hide", ...chosen()}); route(); }),
    button("cover", "Use as cover", async () => { chosen(); reload(await act({action: "cover", person: key, faces: [coverFace()]})); }));
  const title = el("h1", {id: "title", text: `${first.label} — ${first.faces} faces · ${first.screen_time_s} s`});
  const count = el("div", {class: "count"},
    el("span", {id: "count", text: `${first.appearances} appearance${first.appearances === 1 ? "" : "s"}`}),
    el("label", {text: " in "}, filter));
  const column = el("div", {class: "column"}, timeline(first.timeline), count, list);
  if (loaded < first.appearances) column.append(more);
  main.replaceChildren(title, toolbar, actions, el("div", {class: "person"}, column, player.panel));
}

async function route() {
  const m = location.hash.match(/^#\/p\/(.+)$/);
  try { if (m) await showPerson(decodeURIComponent(m[1])); else await showGrid(); }
  catch (e) { if (e.message !== "none") say(e.message, true); if (m) location.hash = "#/"; }
}

document.getElementById("undo").addEventListener("click", async () => { await act({action: "undo"}); route(); });
window.addEventListener("hashchange", route);
route();
