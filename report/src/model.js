// The recording as the page sees it: the JSON the CLI embedded, plus the queries the views need. The state query
// mirrors the store's (src/DiffKeeper.Store/Query/StateQuery.cs) so the page shows what `diffkeeper show`/`export`
// would: per path the newest version <= t, minus deletions, minus what a deleted/replaced ancestor hid.

export const TYPE = ['file', 'dir', 'symlink', 'fifo', 'chardev', 'blockdev', 'socket', 'whiteout', 'absent'];
export const T_FILE = 0, T_DIR = 1, T_WHITEOUT = 7, T_ABSENT = 8;
export const isDeleted = (type) => type === T_WHITEOUT || type === T_ABSENT;

// Version tuple fields (see ReportData.cs): [path, offset, type, mode, uid, gid, size, content, flags, extra]
export const V = { P: 0, T: 1, TYPE: 2, MODE: 3, UID: 4, GID: 5, SIZE: 6, C: 7, FLAGS: 8, EXTRA: 9 };
// Event tuple fields: [offset, kind, path|-1, pid|null, comm|null, detail|null]
export const E = { T: 0, KIND: 1, P: 2, PID: 3, COMM: 4, DETAIL: 5 };
const REPLACES_BELOW = 1;

export class Model {
  constructor(d) {
    this.d = d;
    this.paths = d.paths;
    this.versions = d.versions;
    this.events = d.events;
    this.byPath = this.paths.map(() => []);
    for (let i = 0; i < this.versions.length; i++) this.byPath[this.versions[i][V.P]].push(i);
    for (const list of this.byPath) list.sort((a, b) => this.versions[a][V.T] - this.versions[b][V.T]);
    const index = new Map(this.paths.map((p, i) => [p, i]));
    this.pathIndex = index;
    // Ancestors that are recorded paths themselves (only those can hide what is below them).
    this.ancestors = this.paths.map((p) => {
      const out = [];
      for (let i = p.indexOf('/', 1); i > 0; i = p.indexOf('/', i + 1)) {
        const a = index.get(p.slice(0, i));
        if (a !== undefined) out.push(a);
      }
      return out;
    });
    const times = new Set();
    for (const v of this.versions) times.add(v[V.T]);
    for (const e of this.events) times.add(e[E.T]);
    this.moments = [...times].sort((a, b) => a - b);
    if (this.moments.length === 0) this.moments = [0];
    this.endOffset = d.recording.end_offset;
  }

  /** Index (into versions) of the newest version of path p at or before t, or -1. */
  versionAt(p, t) {
    const list = this.byPath[p];
    let lo = 0, hi = list.length - 1, best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.versions[list[mid]][V.T] <= t) { best = list[mid]; lo = mid + 1; } else hi = mid - 1;
    }
    return best;
  }

  /** What a path's own versions up to t remove below it: {w: deleted/non-dir at, r: turned opaque at}. */
  kills(p, t) {
    let w = -Infinity, r = -Infinity;
    for (const i of this.byPath[p]) {
      const v = this.versions[i];
      if (v[V.T] > t) break;
      if (v[V.TYPE] !== T_DIR) w = v[V.T];
      else if (v[V.FLAGS] & REPLACES_BELOW) r = v[V.T];
    }
    return { w, r };
  }

  /** The state at t: Map path index -> version index (visible entries only); the last few are cached. */
  stateAt(t) {
    this.cache ??= new Map();
    let s = this.cache.get(t);
    if (!s) {
      s = this.computeState(t);
      if (this.cache.size > 16) this.cache.delete(this.cache.keys().next().value);
      this.cache.set(t, s);
    }
    return s;
  }

  computeState(t) {
    const killCache = new Map();
    const kill = (a) => {
      let k = killCache.get(a);
      if (!k) { k = this.kills(a, t); killCache.set(a, k); }
      return k;
    };
    const state = new Map();
    for (let p = 0; p < this.paths.length; p++) {
      const vi = this.versionAt(p, t);
      if (vi < 0) continue;
      const v = this.versions[vi];
      if (isDeleted(v[V.TYPE])) continue;
      let hidden = false;
      for (const a of this.ancestors[p]) {
        const k = kill(a);
        if (k.w >= v[V.T] || k.r > v[V.T]) { hidden = true; break; }
      }
      if (!hidden) state.set(p, vi);
    }
    return state;
  }

  /** The moment index for an offset: the newest moment at or before t (the first one when t is before all). */
  momentIndexFor(t) {
    let lo = 0, hi = this.moments.length - 1, best = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.moments[mid] <= t) { best = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return best;
  }

  content(vi) {
    const c = this.versions[vi][V.C];
    return c >= 0 ? this.d.contents[c] : null;
  }
}

/** Offsets as the CLI prints them: seconds with the shortest exact decimals ("1.5s", "0s"). */
export function formatOffset(ns) {
  const neg = ns < 0;
  const a = Math.abs(ns);
  const s = Math.trunc(a / 1e9);
  let f = String(a % 1e9).padStart(9, '0').replace(/0+$/, '');
  return (neg ? '-' : '') + s + (f ? '.' + f : '') + 's';
}

/** Parses an offset the way the CLI does (1.5s, 250ms, 2m3s, 1h) to ns; null when it is not one. */
export function parseOffset(text) {
  if (text === '0') return 0;
  const units = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9, d: 86400e9 };
  const re = /(\d+(?:\.\d*)?|\.\d+)([a-zµ]+)/gy;
  let total = 0, m, used = 0;
  while ((m = re.exec(text)) !== null) {
    const u = units[m[2]];
    if (u === undefined) return null;
    total += Math.round(parseFloat(m[1]) * u);
    used = re.lastIndex;
  }
  return used === text.length && used > 0 ? total : null;
}

/** RFC 3339 UTC with nanoseconds, from the recording's start (a decimal string of ns) and an offset. */
export function rfc3339(startNs, off) {
  const ns = BigInt(startNs) + BigInt(off);
  let s = ns / 1000000000n, f = ns % 1000000000n;
  if (f < 0n) { f += 1000000000n; s -= 1n; }
  return new Date(Number(s) * 1000).toISOString().slice(0, 19) + '.' + f.toString().padStart(9, '0') + 'Z';
}

/** A path glob as the CLI reads it: * and ? within a segment, ** across segments, leading / optional. */
export function globToRegExp(glob) {
  let g = glob.trim();
  if (!g.startsWith('/')) g = '/' + g;
  let re = '';
  for (let i = 0; i < g.length; i++) {
    const c = g[i];
    if (c === '*' && g[i + 1] === '*') {
      i++;
      if (g[i + 1] === '/') { i++; re += '(?:.*/)?'; } else re += '.*';
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp('^' + re + '$');
}

export function humanBytes(n) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n, i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${u[i]}`;
}
