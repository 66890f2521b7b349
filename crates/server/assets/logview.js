// Log viewer for <section data-logview data-stream="…" data-filename="…">: reads `line`
// events from the section's event stream, renders ANSI colours, and keeps only the rows in
// view in the DOM (fixed row height, a spacer for the full height) so that a 100,000-line log
// stays fluid. Incoming events are only queued; parsing and drawing happen once per animation
// frame within a time budget, so no single task grows with the stream's speed.
(function () {
  'use strict';

  const OVERSCAN = 30; // rows drawn beyond each edge, so fast scrolling shows no blank band
  const FRAME_BUDGET_MS = 10; // parsing per frame; what is left waits for the next frame
  const MAX_MATCHES = 10000; // a one-letter search must not hold a million positions
  // Megabytes arrive at once when a stored log is replayed; reading the stream and building a
  // download go in slices of this many bytes or lines, with a new task for each.
  const STREAM_SLICE = 256 * 1024;
  const DOWNLOAD_SLICE = 10000;

  // ---------- ANSI ----------

  // xterm's default 16 colours, only to find the nearest one for 256-colour and true-colour
  // codes: the stylesheet has a readable variant of each 16 for both themes, arbitrary RGB
  // would not be.
  const PALETTE = [
    [0, 0, 0],
    [205, 0, 0],
    [0, 205, 0],
    [205, 205, 0],
    [0, 0, 238],
    [205, 0, 205],
    [0, 205, 205],
    [229, 229, 229],
    [127, 127, 127],
    [255, 0, 0],
    [0, 255, 0],
    [255, 255, 0],
    [92, 92, 255],
    [255, 0, 255],
    [0, 255, 255],
    [255, 255, 255],
  ];
  // CSI sequences (SGR ends in "m"), OSC/DCS-style strings, other two-byte escapes, and the C0
  // controls a log cannot show. Tab and newline are kept; carriage returns are handled first.
  const ESCAPES =
    /\x1b\[([0-9:;<=>?]*)[ -/]*([@-~])|\x1b[\]PX^_][\s\S]*?(?:\x07|\x1b\\|$)|\x1b[\s\S]?|[\x00-\x08\x0b-\x1f\x7f]/g;
  const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/;

  function nearest(r, g, b) {
    let best = 0;
    let bestDistance = Infinity;
    PALETTE.forEach(([pr, pg, pb], i) => {
      const d = (r - pr) ** 2 + (g - pg) ** 2 + (b - pb) ** 2;
      if (d < bestDistance) {
        best = i;
        bestDistance = d;
      }
    });
    return best;
  }

  function from256(n) {
    if (n < 16) return n;
    if (n >= 232) {
      const v = 8 + (n - 232) * 10;
      return nearest(v, v, v);
    }
    const level = (x) => (x ? 55 + x * 40 : 0);
    const i = n - 16;
    return nearest(level(Math.floor(i / 36)), level(Math.floor(i / 6) % 6), level(i % 6));
  }

  function newSgr() {
    return { fg: -1, bg: -1, bold: false, dim: false, italic: false, underline: false };
  }

  // Applies one SGR parameter list ("1;31", "38;5;208", "38:2::255:0:0", "" = reset) to state.
  function applySgr(params, st) {
    const codes = params === '' ? ['0'] : params.split(';');
    for (let i = 0; i < codes.length; i++) {
      const sub = codes[i].split(':');
      const n = Number(sub[0]) || 0;
      if (n === 38 || n === 48) {
        let args = sub.slice(1);
        if (sub.length === 1) {
          args = codes.slice(
            i + 1,
            i + 1 + (codes[i + 1] === '5' ? 2 : codes[i + 1] === '2' ? 4 : 1),
          );
          i += args.length;
        }
        let colour = -1;
        if (args[0] === '5') colour = from256(Number(args[1]) || 0);
        else if (args[0] === '2') colour = nearest(...args.slice(-3).map((x) => Number(x) || 0));
        if (colour >= 0) st[n === 38 ? 'fg' : 'bg'] = colour;
      } else if (n === 0) Object.assign(st, newSgr());
      else if (n === 1) st.bold = true;
      else if (n === 2) st.dim = true;
      else if (n === 3) st.italic = true;
      else if (n === 4) st.underline = true;
      else if (n === 22) st.bold = st.dim = false;
      else if (n === 23) st.italic = false;
      else if (n === 24) st.underline = false;
      else if (n >= 30 && n <= 37) st.fg = n - 30;
      else if (n === 39) st.fg = -1;
      else if (n >= 40 && n <= 47) st.bg = n - 40;
      else if (n === 49) st.bg = -1;
      else if (n >= 90 && n <= 97) st.fg = n - 82;
      else if (n >= 100 && n <= 107) st.bg = n - 92;
    }
  }

  function sgrClass(st) {
    let c = '';
    if (st.fg >= 0) c += ' ansi-fg' + st.fg;
    if (st.bg >= 0) c += ' ansi-bg' + st.bg;
    if (st.bold) c += ' ansi-bold';
    if (st.dim) c += ' ansi-dim';
    if (st.italic) c += ' ansi-italic';
    if (st.underline) c += ' ansi-underline';
    return c.slice(1);
  }

  // Strips escapes from one physical line; returns its text and its styled runs as a flat
  // [start, end, className, …] array (null when unstyled). `st` carries over to the next
  // line, as in a terminal.
  function parseAnsi(s, st) {
    let cls = sgrClass(st);
    if (!CONTROL.test(s)) return { text: s, spans: cls ? [0, s.length, cls] : null };
    let text = '';
    let spans = null;
    let runStart = 0;
    let last = 0;
    let m;
    ESCAPES.lastIndex = 0;
    while ((m = ESCAPES.exec(s))) {
      text += s.slice(last, m.index);
      last = ESCAPES.lastIndex;
      if (m[2] !== 'm') continue;
      applySgr(m[1], st);
      const next = sgrClass(st);
      if (next === cls) continue;
      if (cls && text.length > runStart) (spans = spans || []).push(runStart, text.length, cls);
      runStart = text.length;
      cls = next;
    }
    text += s.slice(last);
    if (cls && text.length > runStart) (spans = spans || []).push(runStart, text.length, cls);
    return { text, spans };
  }

  // A terminal shows what was written after a line's last carriage return (progress bars
  // redraw themselves that way); the overwritten part still changes colours, and trailing
  // carriage returns (CRLF endings) erase nothing.
  function parseLine(raw, st) {
    const s = raw.replace(/\r+$/, '');
    const cr = s.lastIndexOf('\r');
    if (cr < 0) return parseAnsi(s, st);
    parseAnsi(s.slice(0, cr), st);
    return parseAnsi(s.slice(cr + 1), st);
  }

  // ---------- helpers ----------

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function clock(at) {
    const d = new Date(at);
    if (Number.isNaN(d.getTime())) return '';
    return [d.getHours(), d.getMinutes(), d.getSeconds()]
      .map((x) => String(x).padStart(2, '0'))
      .join(':');
  }

  function nextTask() {
    return new Promise((resolve) => setTimeout(resolve));
  }

  function escapeRegExp(s) {
    return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }

  // ---------- event stream ----------

  // Reads a text/event-stream with fetch instead of EventSource. Chromium's EventSource
  // dispatches every event of a received network chunk in one task at ~30 µs an event, so a
  // stored 100,000-line log arriving at once blocked the main thread for over 200 ms at a time
  // even with an empty listener (measured); parsing here costs a few µs an event. It keeps
  // EventSource's behaviour: the server's ids come back as Last-Event-ID on reconnection, the
  // server's `retry:` sets the delay, a dropped or ended connection is reopened, and an HTTP
  // error or another content type stops for good. on: {event(type, data), open(), reconnecting(),
  // failed(reason)}. Returns {close(), reopen()}.
  function openStream(url, on) {
    let lastId = '';
    let retryMs = 3000;
    let closed = false;
    let controller = null;

    async function connect() {
      controller = new AbortController();
      const headers = { Accept: 'text/event-stream' };
      if (lastId) headers['Last-Event-ID'] = lastId;
      let res;
      try {
        res = await fetch(url, { headers, cache: 'no-store', signal: controller.signal });
      } catch {
        return reconnect();
      }
      if (
        res.status !== 200 ||
        !(res.headers.get('Content-Type') || '').startsWith('text/event-stream')
      ) {
        controller.abort();
        if (!closed) on.failed(`HTTP ${res.status}`);
        return;
      }
      on.open();
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      const parse = parser();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (let i = 0; i < value.length; i += STREAM_SLICE) {
            if (i) await nextTask();
            parse(decoder.decode(value.subarray(i, i + STREAM_SLICE), { stream: true }));
          }
        }
      } catch {
        // Dropped: reconnect below.
      }
      reconnect();
    }

    function reconnect() {
      if (closed) return;
      on.reconnecting();
      setTimeout(connect, retryMs);
    }

    function parser() {
      let buffer = '';
      let type = '';
      let data = [];
      return (text) => {
        buffer += text;
        if (buffer.includes('\r')) {
          // A chunk may end between the CR and LF of one line break.
          const tail = buffer.endsWith('\r') ? '\r' : '';
          buffer = buffer.slice(0, buffer.length - tail.length).replace(/\r\n?/g, '\n') + tail;
        }
        const lines = buffer.split('\n');
        buffer = lines.pop();
        for (const line of lines) {
          if (closed) return;
          if (line === '') {
            if (data.length) on.event(type || 'message', data.join('\n'));
            type = '';
            data = [];
            continue;
          }
          const colon = line.indexOf(':');
          if (colon === 0) continue; // a comment (keep-alive)
          const field = colon < 0 ? line : line.slice(0, colon);
          const value =
            colon < 0 ? '' : line.slice(line[colon + 1] === ' ' ? colon + 2 : colon + 1);
          if (field === 'data') data.push(value);
          else if (field === 'event') type = value;
          else if (field === 'id' && !value.includes('\0')) lastId = value;
          else if (field === 'retry' && /^\d+$/.test(value)) retryMs = Number(value);
        }
      };
    }

    connect();
    return {
      close() {
        closed = true;
        controller.abort();
      },
      // After a failure: try again from the last event received.
      reopen: connect,
    };
  }

  // ---------- the viewer ----------

  function init(section) {
    const url = section.dataset.stream;
    if (!url) return;
    section.querySelector('.logview-static')?.remove();

    const lines = []; // {text, spans, at, container, stderr}
    let pending = []; // raw event data not yet parsed
    let pendingAt = 0;
    const sgr = new Map(); // ANSI state per source (runtime output interleaves containers)
    let rowHeight = 0;
    let shown = { first: -1, last: -1 };
    let redraw = false; // rows in view must be rebuilt even if the range is the same
    let frameQueued = false;
    let autoScrollTop = 0;
    let downloadUrl = null;
    const search = { re: null, lines: [], cols: [], len: 0, current: -1, capped: false };

    // Toolbar and viewport.
    const toolbar = el('div', 'logview-toolbar');
    const follow = el('input');
    follow.type = 'checkbox';
    follow.checked = true;
    const followLabel = el('label');
    followLabel.append(follow, 'Follow');
    const searchInput = el('input');
    searchInput.type = 'search';
    searchInput.placeholder = 'Search';
    searchInput.setAttribute('aria-label', 'Search the log (Enter: next, Shift+Enter: previous)');
    const matches = el('span', 'logview-matches');
    matches.setAttribute('aria-live', 'polite');
    const downloadButton = el('button', 'btn small', 'Download');
    downloadButton.type = 'button';
    const state = el('span', 'logview-state');
    state.setAttribute('role', 'status');
    const count = el('span', 'logview-count', '0 lines');
    toolbar.append(followLabel, searchInput, matches, downloadButton, state, count);

    const viewport = el('div', 'logview-viewport');
    viewport.tabIndex = 0;
    viewport.setAttribute('role', 'log');
    viewport.setAttribute('aria-live', 'off');
    viewport.setAttribute('aria-label', (section.getAttribute('aria-label') || 'Log') + ': output');
    const spacer = el('div', 'logview-spacer');
    const rows = el('div', 'logview-rows');
    const empty = el('p', 'logview-empty', 'Waiting for output…');
    spacer.append(rows);
    viewport.append(spacer, empty);
    section.append(toolbar, viewport);

    function measureRow() {
      const probe = el('div', 'logview-line', 'x');
      rows.append(probe);
      rowHeight = probe.getBoundingClientRect().height;
      probe.remove();
      if (rowHeight) spacer.style.height = lines.length * rowHeight + 'px';
    }

    function queueFrame() {
      if (frameQueued) return;
      frameQueued = true;
      requestAnimationFrame(frame);
    }

    function frame() {
      frameQueued = false;
      const before = lines.length;
      const start = performance.now();
      while (pendingAt < pending.length && performance.now() - start < FRAME_BUDGET_MS) {
        const end = Math.min(pending.length, pendingAt + 200);
        for (; pendingAt < end; pendingAt++) ingest(pending[pendingAt]);
      }
      if (pendingAt === pending.length) {
        pending = [];
        pendingAt = 0;
      } else {
        queueFrame();
      }
      if (lines.length !== before) appended(before);
      render();
    }

    function ingest(data) {
      let ev = null;
      try {
        ev = JSON.parse(data);
      } catch {
        // Not JSON: shown as it is.
      }
      if (typeof ev !== 'object' || ev === null) ev = { line: data };
      const runtime = typeof ev.container === 'string';
      const key = runtime ? ev.container + ev.stream : '';
      if (!sgr.has(key)) sgr.set(key, newSgr());
      const st = sgr.get(key);
      const physical = String(ev.line ?? '').split('\n');
      if (physical.length > 1 && physical[physical.length - 1] === '') physical.pop();
      for (const raw of physical) {
        const { text, spans } = parseLine(raw, st);
        lines.push({
          text,
          spans,
          at: runtime ? ev.at : undefined,
          container: runtime ? ev.container : undefined,
          stderr: ev.stream === 'stderr',
        });
      }
    }

    function appended(before) {
      const n = lines.length;
      if (!rowHeight) measureRow();
      spacer.style.height = n * rowHeight + 'px';
      count.textContent = n.toLocaleString() + (n === 1 ? ' line' : ' lines');
      count.dataset.count = n;
      empty.hidden = n > 0;
      if (search.re && !search.capped) {
        const had = search.lines.length;
        scan(before);
        if (search.lines.length !== had) showMatchCount();
      }
      if (follow.checked) scrollToBottom();
    }

    function scrollToBottom() {
      viewport.scrollTop = viewport.scrollHeight;
      autoScrollTop = viewport.scrollTop;
    }

    function render() {
      if (!rowHeight) return;
      const top = viewport.scrollTop;
      const first = Math.max(0, Math.floor(top / rowHeight) - OVERSCAN);
      const last = Math.min(
        lines.length,
        Math.ceil((top + viewport.clientHeight) / rowHeight) + OVERSCAN,
      );
      if (first === shown.first && last === shown.last && !redraw) return;
      if (redraw || first >= shown.last || last <= shown.first) {
        rows.replaceChildren(rowsFor(first, last));
      } else {
        // Rows still in range stay: laying out long lines again on every frame while
        // following cost more than everything else.
        for (let i = shown.first; i < first; i++) rows.firstChild.remove();
        for (let i = last; i < shown.last; i++) rows.lastChild.remove();
        rows.prepend(rowsFor(first, shown.first));
        rows.append(rowsFor(shown.last, last));
      }
      shown = { first, last };
      redraw = false;
      rows.style.transform = `translateY(${first * rowHeight}px)`;
    }

    function rowsFor(from, to) {
      const fragment = document.createDocumentFragment();
      let k = firstMatchAtOrAfter(from);
      for (let i = from; i < to; i++) {
        const marks = [];
        for (; k < search.lines.length && search.lines[k] === i; k++) {
          marks.push({
            from: search.cols[k],
            to: search.cols[k] + search.len,
            current: k === search.current,
          });
        }
        fragment.append(row(lines[i], marks));
      }
      return fragment;
    }

    function row(line, marks) {
      const div = el('div', line.stderr ? 'logview-line stderr' : 'logview-line');
      if (line.container !== undefined) {
        div.append(el('span', 'logview-meta', `${clock(line.at)} ${line.container.slice(0, 7)} `));
      }
      const { text, spans } = line;
      if (!spans && !marks.length) {
        div.append(text);
        return div;
      }
      // Cut the text wherever a colour run or a search match starts or ends.
      const cuts = new Set([0, text.length]);
      for (let i = 0; spans && i < spans.length; i += 3) cuts.add(spans[i]).add(spans[i + 1]);
      for (const m of marks) cuts.add(m.from).add(Math.min(m.to, text.length));
      const points = [...cuts].sort((a, b) => a - b);
      for (let p = 0; p + 1 < points.length; p++) {
        const from = points[p];
        const piece = text.slice(from, points[p + 1]);
        let cls = '';
        for (let i = 0; spans && i < spans.length; i += 3) {
          if (spans[i] <= from && from < spans[i + 1]) cls = spans[i + 2];
        }
        const mark = marks.find((m) => m.from <= from && from < m.to);
        if (mark) div.append(el('mark', (cls + (mark.current ? ' current' : '')).trim(), piece));
        else div.append(cls ? el('span', cls, piece) : piece);
      }
      return div;
    }

    // ---------- follow ----------

    viewport.addEventListener(
      'scroll',
      () => {
        const atBottom =
          viewport.scrollTop + viewport.clientHeight >= viewport.scrollHeight - rowHeight / 2;
        // Our own scrolling only ever moves down; moving above where we put it is the user.
        if (follow.checked && !atBottom && viewport.scrollTop < autoScrollTop - 1)
          follow.checked = false;
        else if (!follow.checked && atBottom && lines.length) follow.checked = true;
        render();
      },
      { passive: true },
    );

    follow.addEventListener('change', () => {
      if (follow.checked) scrollToBottom();
    });

    new ResizeObserver(() => {
      if (!rowHeight) measureRow();
      if (follow.checked) scrollToBottom();
      render();
    }).observe(viewport);

    // ---------- search ----------

    function scan(from) {
      const { re } = search;
      for (let i = from; i < lines.length; i++) {
        re.lastIndex = 0;
        let m;
        while ((m = re.exec(lines[i].text))) {
          if (search.lines.length === MAX_MATCHES) {
            search.capped = true;
            return;
          }
          search.lines.push(i);
          search.cols.push(m.index);
        }
      }
    }

    function firstMatchAtOrAfter(line) {
      let lo = 0;
      let hi = search.lines.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (search.lines[mid] < line) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    }

    function showMatchCount() {
      const total = search.lines.length + (search.capped ? '+' : '');
      if (!search.re) matches.textContent = '';
      else if (!search.lines.length) matches.textContent = 'No matches';
      else matches.textContent = `${search.current + 1} of ${total}`;
    }

    function runSearch() {
      const q = searchInput.value;
      Object.assign(search, {
        re: null,
        lines: [],
        cols: [],
        len: q.length,
        current: -1,
        capped: false,
      });
      if (q) {
        search.re = new RegExp(escapeRegExp(q), 'gi');
        scan(0);
        if (search.lines.length) {
          // Like a browser's find: the first match from where the reader is.
          const k = firstMatchAtOrAfter(Math.floor(viewport.scrollTop / (rowHeight || 1)));
          select(k < search.lines.length ? k : 0);
        }
      }
      showMatchCount();
      redraw = true;
      render();
    }

    function select(k) {
      search.current = k;
      follow.checked = false;
      const line = search.lines[k];
      const top = line * rowHeight;
      if (
        top < viewport.scrollTop ||
        top + rowHeight > viewport.scrollTop + viewport.clientHeight
      ) {
        viewport.scrollTop = top - viewport.clientHeight / 2 + rowHeight / 2;
      }
      redraw = true;
      render();
      rows.querySelector('mark.current')?.scrollIntoView({ block: 'nearest', inline: 'nearest' });
      showMatchCount();
    }

    searchInput.addEventListener('input', runSearch);
    searchInput.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter' || !search.lines.length) return;
      e.preventDefault();
      const n = search.lines.length;
      select((search.current + (e.shiftKey ? n - 1 : 1)) % n);
    });

    // ---------- download ----------

    downloadButton.addEventListener('click', async () => {
      downloadButton.disabled = true;
      const blobs = [];
      for (let from = 0, n = lines.length; from < n; from += DOWNLOAD_SLICE) {
        if (from) await nextTask();
        let text = '';
        for (let i = from; i < Math.min(n, from + DOWNLOAD_SLICE); i++) {
          const l = lines[i];
          if (l.container !== undefined)
            text += `${l.at} ${l.container.slice(0, 12)} ${l.stderr ? 'stderr' : 'stdout'} `;
          text += l.text + '\n';
        }
        blobs.push(new Blob([text]));
      }
      // The previous file's URL can go now; revoking right after click() could cancel it.
      if (downloadUrl) URL.revokeObjectURL(downloadUrl);
      downloadUrl = URL.createObjectURL(new Blob(blobs, { type: 'text/plain;charset=utf-8' }));
      const a = el('a');
      a.href = downloadUrl;
      a.download = section.dataset.filename || 'log.txt';
      a.click();
      downloadButton.disabled = false;
    });

    // ---------- stream ----------

    function setState(text, kind) {
      state.replaceChildren(text);
      state.className = 'logview-state' + (kind ? ' ' + kind : '');
    }

    function statusOf(data) {
      try {
        return JSON.parse(data).status;
      } catch {
        return undefined;
      }
    }

    function announce(status) {
      document.body.dispatchEvent(
        new CustomEvent('helvetia:deployment-status', { detail: { status } }),
      );
    }

    const stream = openStream(url, {
      event(type, data) {
        if (type === 'line') {
          pending.push(data);
          queueFrame();
        } else if (type === 'status') {
          announce(statusOf(data));
        } else if (type === 'end') {
          // The server is done; left open, the stream would be reopened for ever.
          stream.close();
          const status = statusOf(data);
          setState(status ? `Finished: ${status.replace(/_/g, ' ')}` : 'Finished');
          announce(status);
        }
      },
      open: () => setState(''),
      reconnecting: () => setState('Reconnecting…'),
      failed(reason) {
        const retry = el('button', 'btn small link', 'Retry');
        retry.type = 'button';
        retry.addEventListener('click', () => {
          setState('Reconnecting…');
          stream.reopen();
        });
        setState(`Disconnected (${reason}). `, 'error');
        state.append(retry);
      },
    });
    // When htmx swaps the section out, its stream goes too (an idle one would otherwise hold
    // one of the browser's few connections to the server).
    section.addEventListener('htmx:beforeCleanupElement', (e) => {
      if (e.target === section) stream.close();
    });
  }

  // Sections in the page, and those htmx swaps in later.
  const started = new WeakSet();
  function initAll(root) {
    const found = [...root.querySelectorAll('[data-logview]')];
    if (root.matches?.('[data-logview]')) found.push(root);
    for (const section of found) {
      if (started.has(section)) continue;
      started.add(section);
      init(section);
    }
  }
  initAll(document);
  document.addEventListener('htmx:load', (e) => initAll(e.target));
})();
