// diffkeeper report: one self-contained page over the recording embedded as JSON (#dk-data). Every string that
// comes from the recording (paths, contents, comm, details) reaches the DOM through textContent only, never as
// markup, so a file named <script>… or content holding </script> stays text.
import './report.css';
import { select, pointer } from 'd3-selection';
import { scaleLinear } from 'd3-scale';
import { axisTop } from 'd3-axis';
import { zoom } from 'd3-zoom';
import { diffLines } from 'diff';
import {
  Model, TYPE, T_FILE, V, E, isDeleted, formatOffset, parseOffset, rfc3339, globToRegExp, humanBytes,
} from './model.js';

const t0 = performance.now();
const D = JSON.parse(document.getElementById('dk-data').textContent);
const M = new Model(D);
const R = D.recording;
const ui = { moment: M.moments.length - 1, path: -1, glob: '', lastRenderMs: 0 };
window.__dk = ui; // read by the browser tests (moment, path, timings)

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  if (attrs) for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of kids.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const $ = (id) => document.getElementById(id);
const at = () => M.moments[ui.moment];
const offText = (off) => '+' + formatOffset(off);

// ---------------------------------------------------------------- header
function renderHeader() {
  const name = R.name || R.container_id || R.id;
  const exit = R.exit_status === null ? h('span', { class: 'pill muted' }, 'no exit recorded')
    : h('span', { class: 'pill ' + (R.exit_status === 0 ? 'ok' : 'bad') }, 'exit ' + R.exit_status);
  const gaps = M.events.filter((e) => e[E.KIND] === 'gap');
  const fact = (k, v) => h('div', { class: 'fact' }, h('dt', null, k), h('dd', null, v ?? '—'));
  const minStep = M.moments.slice(1).reduce((m, t, i) => Math.min(m, t - M.moments[i]), Infinity);
  const header = $('header');
  header.replaceChildren(
    h('div', { class: 'title' }, h('span', { class: 'logo' }, 'DiffKeeper'), h('h1', { id: 'rec-name' }, name), exit),
    h('dl', { class: 'facts' },
      fact('recording', R.id), fact('container', R.container_id), fact('namespace', R.namespace),
      fact('image', R.image), fact('host', R.host), fact('kernel', R.kernel),
      fact('start', rfc3339(R.start_ns, 0)), fact('end', rfc3339(R.start_ns, R.end_offset) + '  (' + offText(R.end_offset) + ')'),
      fact('resolution', `${M.moments.length} moment${M.moments.length === 1 ? '' : 's'}` +
        (isFinite(minStep) ? `, closest ${formatOffset(minStep)} apart` : '') + (D.totals.has_events ? ', change events' : ', snapshots only')),
      fact('totals', `${M.paths.length} paths · ${M.versions.length} versions · ${M.events.length} events · ${humanBytes(R.stored_bytes)} stored`)),
  );
  const notes = [];
  if (D.omitted.count > 0) {
    notes.push(h('div', { class: 'note warn', id: 'omitted' },
      `Content of ${D.omitted.count} file version${D.omitted.count === 1 ? '' : 's'} (${humanBytes(D.omitted.bytes)}) left out of this page: ` +
      `${D.omitted.over_file} over the per-file limit of ${humanBytes(D.limits.file_bytes)}, ${D.omitted.over_total} over the total limit of ` +
      `${humanBytes(D.limits.total_bytes)}. Sizes and hashes are kept; use "diffkeeper show" for the bytes.`));
  }
  if (gaps.length) {
    notes.push(h('div', { class: 'note gap', id: 'gaps' }, h('strong', null, `${gaps.length} gap${gaps.length === 1 ? '' : 's'} — detail was lost here:`),
      h('ul', null, gaps.slice(0, 50).map((g) => h('li', null,
        h('a', { href: '#', onclick: (ev) => { ev.preventDefault(); selectMoment(M.momentIndexFor(g[E.T])); } }, offText(g[E.T])),
        ' ', g[E.P] >= 0 ? M.paths[g[E.P]] + ': ' : '', g[E.DETAIL] || 'detail lost'))),
      gaps.length > 50 ? h('div', null, `… and ${gaps.length - 50} more`) : null));
  }
  header.append(...notes);
}

// ---------------------------------------------------------------- timeline
const LANE_H = 22, AXIS_H = 22, LABEL_W = 150;
let tl = null;

function laneModel() {
  const lanes = [{ key: 'lifecycle', label: 'lifecycle' }, { key: 'gap', label: 'gaps' }];
  const procLanes = new Map();
  const marks = []; // {lane, t, kind, title}
  const lifecycle = new Set(['create', 'start', 'exec-added', 'exec-started', 'exit', 'oom']);
  for (const e of M.events) {
    const kind = e[E.KIND];
    let lane;
    if (kind === 'gap') lane = 'gap';
    else if (e[E.P] < 0 && (lifecycle.has(kind) || kind === 'delete')) lane = 'lifecycle';
    else if (e[E.PID] !== null || e[E.COMM] !== null) {
      lane = 'p:' + (e[E.COMM] || '?') + ':' + (e[E.PID] ?? '');
      if (!procLanes.has(lane)) procLanes.set(lane, { key: lane, label: `${e[E.COMM] || '?'}${e[E.PID] !== null ? ' [' + e[E.PID] + ']' : ''}` });
    } else lane = 'changes';
    marks.push({ lane, t: e[E.T], kind, title: `${offText(e[E.T])} ${kind}${e[E.P] >= 0 ? ' ' + M.paths[e[E.P]] : ''}${e[E.DETAIL] ? ' ' + e[E.DETAIL] : ''}` });
  }
  // Versions (captured states) are aggregated per moment: one mark per moment with its count.
  const perMoment = new Map();
  for (const v of M.versions) perMoment.set(v[V.T], (perMoment.get(v[V.T]) || 0) + 1);
  for (const [t, n] of perMoment) marks.push({ lane: 'versions', t, kind: 'version', title: `${offText(t)} ${n} version${n === 1 ? '' : 's'} captured` });
  const procs = [...procLanes.values()].sort((a, b) => a.label.localeCompare(b.label));
  const all = [...lanes, ...procs];
  if (marks.some((m) => m.lane === 'changes')) all.push({ key: 'changes', label: 'changes (no process)' });
  all.push({ key: 'versions', label: 'captured versions' });
  return { lanes: all, marks };
}

function renderTimeline() {
  const { lanes, marks } = laneModel();
  const host = $('timeline');
  host.replaceChildren();
  const width = Math.max(600, host.clientWidth || 900);
  const height = AXIS_H + lanes.length * LANE_H + 6;
  const laneY = new Map(lanes.map((l, i) => [l.key, AXIS_H + i * LANE_H]));
  const span = Math.max(M.endOffset, M.moments[M.moments.length - 1], 1);
  const pad = span * 0.02;
  const x0 = scaleLinear().domain([-pad, span + pad]).range([LABEL_W, width - 10]);
  let x = x0;
  const svg = select(host).append('svg').attr('width', width).attr('height', height).attr('class', 'tl');
  svg.append('defs').append('clipPath').attr('id', 'tl-clip').append('rect')
    .attr('x', LABEL_W).attr('y', 0).attr('width', width - LABEL_W - 10).attr('height', height);
  svg.selectAll('rect.lane').data(lanes).join('rect').attr('class', (d, i) => 'lane' + (i % 2 ? ' odd' : ''))
    .attr('x', 0).attr('y', (d) => laneY.get(d.key)).attr('width', width).attr('height', LANE_H);
  svg.selectAll('text.lane-label').data(lanes).join('text').attr('class', (d) => 'lane-label' + (d.key === 'gap' ? ' gap' : ''))
    .attr('x', 8).attr('y', (d) => laneY.get(d.key) + LANE_H / 2 + 4).text((d) => d.label);
  const axisG = svg.append('g').attr('class', 'axis').attr('transform', `translate(0,${AXIS_H - 1})`);
  const body = svg.append('g').attr('clip-path', 'url(#tl-clip)');
  const markSel = body.selectAll('rect.mark').data(marks).join('rect')
    .attr('class', (d) => 'mark k-' + d.kind.replace(/[^a-z-]/g, ''))
    .attr('y', (d) => laneY.get(d.lane) + 4).attr('height', LANE_H - 8).attr('width', 4);
  markSel.append('title').text((d) => d.title);
  const cursor = body.append('line').attr('class', 'cursor').attr('y1', AXIS_H - 4).attr('y2', height);
  const axis = axisTop().ticks(Math.floor(width / 110)).tickFormat((d) => formatOffset(Math.round(d))).tickSizeOuter(0);
  function draw() {
    axisG.call(axis.scale(x)).call((g) => g.selectAll('.tick line').attr('y2', -4));
    markSel.attr('x', (d) => x(d.t) - 2);
    cursor.attr('x1', x(at())).attr('x2', x(at()));
  }
  const z = zoom().scaleExtent([1, 1e7]).translateExtent([[LABEL_W, 0], [width - 10, height]])
    .extent([[LABEL_W, 0], [width - 10, height]])
    .filter((ev) => (!ev.ctrlKey || ev.type === 'wheel') && !ev.button)
    .on('zoom', (ev) => { x = ev.transform.rescaleX(x0); draw(); });
  svg.call(z).on('dblclick.zoom', null);
  // A click (not a drag) picks the moment nearest to where it landed.
  svg.on('click', (ev) => {
    const [px] = pointer(ev);
    if (px < LABEL_W) return;
    const t = x.invert(px);
    let best = 0;
    for (let i = 1; i < M.moments.length; i++) if (Math.abs(M.moments[i] - t) < Math.abs(M.moments[best] - t)) best = i;
    selectMoment(best);
  });
  tl = { draw };
  draw();
}

// ---------------------------------------------------------------- moment bar, tree, file view
function renderMomentBar() {
  const t = at();
  $('scrub').value = String(ui.moment);
  $('moment-offset').textContent = offText(t);
  $('moment-time').textContent = rfc3339(R.start_ns, t);
  $('moment-index').textContent = `moment ${ui.moment + 1} of ${M.moments.length}`;
  // What happened exactly at this moment, with the processes that did it.
  const evs = M.events.filter((e) => e[E.T] === t);
  const list = $('moment-events');
  list.replaceChildren(...evs.slice(0, 200).map((e) => h('li', { class: e[E.KIND] === 'gap' ? 'gap' : null },
    h('span', { class: 'kind' }, e[E.KIND]),
    e[E.P] >= 0 ? h('span', { class: 'path' }, M.paths[e[E.P]]) : null,
    e[E.PID] !== null || e[E.COMM] !== null ? h('span', { class: 'proc' }, `${e[E.COMM] || '?'}${e[E.PID] !== null ? ' [' + e[E.PID] + ']' : ''}`) : null,
    e[E.DETAIL] ? h('span', { class: 'detail' }, e[E.DETAIL]) : null)));
  if (evs.length > 200) list.append(h('li', null, `… ${evs.length - 200} more`));
}

function changeMarks(t, prev, state) {
  // Paths with a version in (prev, t]: A added, M modified, D deleted (relative to the previous moment's state).
  const marks = new Map();
  if (prev === null) return marks;
  const before = M.stateAt(prev);
  for (const [p] of state) if (!before.has(p)) marks.set(p, 'A');
  for (let i = 0; i < M.versions.length; i++) {
    const v = M.versions[i];
    if (v[V.T] <= prev || v[V.T] > t) continue;
    const p = v[V.P];
    if (marks.has(p)) continue;
    if (state.has(p)) marks.set(p, before.has(p) ? 'M' : 'A');
    else if (before.has(p)) marks.set(p, 'D');
  }
  for (const [p] of before) if (!state.has(p) && !marks.has(p)) marks.set(p, 'D');
  return marks;
}

// Rows are made once, in path order, and then only shown/hidden and re-labelled: rebuilding ~1,000 rows on every
// scrub cost 100–300 ms in the 10,000-version test; updating them in place keeps a redraw well under that.
let rowEls = null;
function ensureRows() {
  if (rowEls) return;
  rowEls = M.paths.map((path, p) => {
    const slash = path.lastIndexOf('/');
    const badge = h('span', { class: 'badge' });
    const meta = h('span', { class: 'meta' });
    const el = h('div', { class: 'row', 'data-p': p, role: 'button', tabindex: -1, title: path },
      badge, h('span', { class: 'name' }, h('span', { class: 'dir' }, path.slice(0, slash + 1)), path.slice(slash + 1)), meta);
    el.hidden = true;
    return { el, badge, meta, cls: '', b: '', m: '' };
  });
  $('tree').replaceChildren(...rowEls.map((r) => r.el));
}

function renderTree() {
  ensureRows();
  const t = at();
  const state = M.stateAt(t);
  const prev = ui.moment > 0 ? M.moments[ui.moment - 1] : null;
  const marks = changeMarks(t, prev, state);
  let re = null;
  if (ui.glob) { try { re = globToRegExp(ui.glob); $('search').classList.remove('bad'); } catch { $('search').classList.add('bad'); } }
  let shown = 0;
  for (let p = 0; p < M.paths.length; p++) {
    const r = rowEls[p];
    const vis = state.get(p);
    const mark = marks.get(p);
    const show = (vis !== undefined || mark === 'D') && (!re || re.test(M.paths[p]));
    if (r.el.hidden !== !show) r.el.hidden = !show;
    if (!show) continue;
    shown++;
    const v = vis !== undefined ? M.versions[vis] : null;
    const cls = 'row' + (mark ? ' ch-' + mark : '') + (p === ui.path ? ' sel' : '') + (v === null ? ' gone' : '');
    const meta = v ? (v[V.TYPE] === T_FILE ? humanBytes(v[V.SIZE]) : TYPE[v[V.TYPE]]) : 'deleted';
    if (r.cls !== cls) { r.el.className = cls; r.cls = cls; }
    if (r.b !== (mark || '')) { r.badge.textContent = mark || ''; r.b = mark || ''; }
    if (r.m !== meta) { r.meta.textContent = meta; r.m = meta; }
  }
  $('tree-count').textContent = `${shown} entr${shown === 1 ? 'y' : 'ies'}${marks.size ? `, ${marks.size} changed since ${prev === null ? 'start' : offText(prev)}` : ''}`;
}

function modeText(m) { return '0' + m.toString(8).padStart(3, '0'); }

function contentBlock(vi, id) {
  const v = M.versions[vi];
  const c = M.content(vi);
  if (v[V.TYPE] !== T_FILE) {
    const extra = v[V.EXTRA];
    return h('div', { class: 'nontext', id }, `${TYPE[v[V.TYPE]]}${extra ? ' ' + extra : ''}`);
  }
  if (c && typeof c[1] === 'string') {
    const text = c[1];
    const n = text.length === 0 ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    const nums = Array.from({ length: Math.max(n, 1) }, (_, i) => i + 1).join('\n');
    return h('div', { class: 'code', id }, h('pre', { class: 'gutter' }, nums), h('pre', { class: 'text' }, text));
  }
  const why = c ? c[2] : 'left out';
  return h('div', { class: 'nontext', id },
    `${why === 'binary' ? 'binary file' : 'content ' + why}: ${humanBytes(v[V.SIZE])} (${v[V.SIZE]} bytes)`,
    c && c[0] ? h('div', { class: 'hash' }, c[0]) : null);
}

function diffBlock(prevVi, vi) {
  const a = prevVi >= 0 ? M.content(prevVi) : null;
  const b = M.content(vi);
  const ta = prevVi < 0 ? '' : (a && typeof a[1] === 'string' ? a[1] : null);
  const tb = b && typeof b[1] === 'string' ? b[1] : (M.versions[vi][V.TYPE] === T_FILE ? null : '');
  if (ta === null || tb === null) return h('div', { class: 'nontext', id: 'diff' }, 'no text diff (binary or left out): compare the hashes in the history');
  const parts = diffLines(ta, tb);
  const lines = [];
  for (const part of parts) {
    const cls = part.added ? 'add' : part.removed ? 'del' : 'ctx';
    const sign = part.added ? '+' : part.removed ? '-' : ' ';
    const ls = part.value.endsWith('\n') ? part.value.slice(0, -1).split('\n') : part.value.split('\n');
    // Long unchanged runs are folded to three lines of context on each side.
    if (cls === 'ctx' && ls.length > 8) {
      for (const l of ls.slice(0, 3)) lines.push(h('div', { class: 'ctx' }, sign + ' ' + l));
      lines.push(h('div', { class: 'fold' }, `⋯ ${ls.length - 6} unchanged lines`));
      for (const l of ls.slice(-3)) lines.push(h('div', { class: 'ctx' }, sign + ' ' + l));
    } else for (const l of ls) lines.push(h('div', { class: cls }, sign + ' ' + l));
  }
  if (!parts.some((p) => p.added || p.removed)) lines.unshift(h('div', { class: 'fold' }, 'same text (metadata changed)'));
  return h('div', { class: 'diff', id: 'diff' }, lines);
}

function renderFile() {
  const pane = $('file');
  if (ui.path < 0) {
    pane.replaceChildren(h('div', { class: 'empty' }, 'Pick a file in the tree (or search by glob) to see it at this moment, its diff and its history.'));
    return;
  }
  const t = at();
  const p = ui.path;
  const state = M.stateAt(t);
  const vi = state.get(p);
  const list = M.byPath[p];
  const newest = M.versionAt(p, t);
  const head = h('div', { class: 'file-head' }, h('h2', { id: 'file-path' }, M.paths[p]));
  const kids = [head];
  if (vi === undefined) {
    const why = newest < 0 ? `not yet recorded at ${offText(t)}` :
      isDeleted(M.versions[newest][V.TYPE]) ? `deleted at ${offText(M.versions[newest][V.T])} (${TYPE[M.versions[newest][V.TYPE]]})` : 'hidden: a parent directory was deleted or replaced';
    kids.push(h('div', { class: 'nontext', id: 'content' }, why));
  } else {
    const v = M.versions[vi];
    head.append(h('div', { class: 'file-meta' },
      `${TYPE[v[V.TYPE]]} · ${v[V.SIZE]} bytes · mode ${modeText(v[V.MODE])} · ${v[V.UID]}:${v[V.GID]} · version of ${offText(v[V.T])}` +
      (v[V.T] === t ? ' (changed at this moment)' : '')));
    const pos = list.indexOf(vi);
    const prevVi = pos > 0 ? list[pos - 1] : -1;
    const prevDeleted = prevVi >= 0 && isDeleted(M.versions[prevVi][V.TYPE]);
    kids.push(h('h3', null, `Content at ${offText(t)}`), contentBlock(vi, 'content'));
    kids.push(h('h3', null, prevVi < 0 ? 'Diff: first version (against nothing)' :
      `Diff against the version of ${offText(M.versions[prevVi][V.T])}${prevDeleted ? ' (deleted then)' : ''}`),
    diffBlock(prevDeleted ? -1 : prevVi, vi));
  }
  const rows = list.map((i) => {
    const v = M.versions[i];
    const c = M.content(i);
    return h('tr', { class: (i === vi || (vi === undefined && i === newest) ? 'cur' : '') + (isDeleted(v[V.TYPE]) ? ' del' : ''),
      onclick: () => selectMoment(M.momentIndexFor(v[V.T])) },
    h('td', null, offText(v[V.T])), h('td', null, TYPE[v[V.TYPE]]),
    h('td', { class: 'num' }, isDeleted(v[V.TYPE]) ? '' : String(v[V.SIZE])), h('td', null, isDeleted(v[V.TYPE]) ? '' : modeText(v[V.MODE])),
    h('td', null, isDeleted(v[V.TYPE]) ? '' : `${v[V.UID]}:${v[V.GID]}`), h('td', { class: 'hash' }, c && c[0] ? c[0].slice(0, 16) : (v[V.EXTRA] || '')));
  });
  kids.push(h('h3', null, `History (${list.length} version${list.length === 1 ? '' : 's'})`),
    h('table', { class: 'history', id: 'history' },
      h('thead', null, h('tr', null, ['at', 'type', 'size', 'mode', 'owner', 'sha-256 / target'].map((s) => h('th', null, s)))), h('tbody', null, rows)));
  pane.replaceChildren(...kids);
}

function updateHash() {
  const parts = [`t=${formatOffset(at())}`];
  if (ui.path >= 0) parts.push('path=' + encodeURIComponent(M.paths[ui.path]).replace(/%2F/g, '/'));
  try { history.replaceState(null, '', '#' + parts.join('&')); } catch { /* some file:// contexts refuse */ }
}

function render() {
  const s = performance.now();
  renderMomentBar();
  renderTree();
  renderFile();
  if (tl) tl.draw();
  updateHash();
  ui.lastRenderMs = performance.now() - s;
}

function selectMoment(i) {
  ui.moment = Math.max(0, Math.min(M.moments.length - 1, i));
  render();
}

function selectPath(p) {
  ui.path = p;
  render();
}

function applyHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const t = params.get('t');
  if (t) {
    let off = parseOffset(t);
    if (off === null && t === 'start') off = 0;
    if (off === null && t === 'end') off = M.endOffset;
    if (off === null && /^\d{4}-\d\d-\d\dT/.test(t)) {
      const ms = Date.parse(t);
      if (!isNaN(ms)) off = Number(BigInt(ms) * 1000000n - BigInt(R.start_ns));
    }
    if (off !== null) ui.moment = M.momentIndexFor(off);
  }
  const p = params.get('path');
  if (p !== null) {
    const want = p.startsWith('/') ? p : '/' + p;
    const idx = M.pathIndex.get(want);
    ui.path = idx === undefined ? -1 : idx;
    if (idx === undefined) $('tree-count').textContent = `no recorded path ${want}`;
  }
}

function layout() {
  document.body.replaceChildren(
    h('header', { id: 'header' }),
    h('section', { class: 'panel' },
      h('div', { class: 'panel-title' }, 'Timeline', h('span', { class: 'hint' }, 'wheel: zoom · drag: pan · click: pick a moment · ←/→: step')),
      h('div', { id: 'timeline' }),
      h('div', { class: 'momentbar' },
        h('button', { id: 'prev', title: 'previous moment (←)', onclick: () => selectMoment(ui.moment - 1) }, '◀'),
        h('input', { id: 'scrub', type: 'range', min: 0, max: M.moments.length - 1, step: 1, value: ui.moment,
          oninput: (ev) => selectMoment(Number(ev.target.value)) }),
        h('button', { id: 'next', title: 'next moment (→)', onclick: () => selectMoment(ui.moment + 1) }, '▶'),
        h('span', { id: 'moment-offset', class: 'offset' }), h('span', { id: 'moment-time', class: 'abs' }), h('span', { id: 'moment-index', class: 'muted' })),
      h('ul', { id: 'moment-events', class: 'events' })),
    h('main', null,
      h('section', { class: 'panel tree-panel' },
        h('div', { class: 'panel-title' }, 'Files at this moment'),
        h('input', { id: 'search', type: 'search', placeholder: 'path glob, e.g. /etc/** or *.conf', spellcheck: 'false',
          oninput: (ev) => { ui.glob = ev.target.value; renderTree(); } }),
        h('div', { id: 'tree-count', class: 'muted' }),
        h('div', { id: 'tree', onclick: (ev) => { const r = ev.target.closest('.row'); if (r) selectPath(Number(r.dataset.p)); } })),
      h('section', { class: 'panel file-panel', id: 'file' })),
    h('footer', null, `generated by diffkeeper report at ${D.generated} · self-contained: no network access`));
  document.addEventListener('keydown', (ev) => {
    if (ev.target instanceof HTMLInputElement && ev.target.type !== 'range') return;
    if (ev.key === 'ArrowLeft') { ev.preventDefault(); selectMoment(ui.moment - 1); }
    if (ev.key === 'ArrowRight') { ev.preventDefault(); selectMoment(ui.moment + 1); }
    if (ev.key === 'Home') { ev.preventDefault(); selectMoment(0); }
    if (ev.key === 'End') { ev.preventDefault(); selectMoment(M.moments.length - 1); }
  });
  window.addEventListener('hashchange', () => { applyHash(); render(); });
}

layout();
renderHeader();
applyHash();
renderTimeline();
render();
ui.firstRenderMs = performance.now() - t0;
// Time from navigation start to the first frame with the report drawn (what "opens to first paint" means here).
requestAnimationFrame(() => setTimeout(() => { ui.firstFrameMs = performance.now(); }, 0));
ui.ready = true;
document.body.dataset.ready = '1';
