// Metrics charts for <section data-charts data-series="…" data-stream="…">, drawn with uPlot.
// A range (1 h, 24 h, 7 d) is one fetch of the series endpoint; "Live" fetches the last
// 15 minutes, then appends the stream's per-container samples, summed per collection round.
(function () {
  'use strict';

  const LIVE_WINDOW_S = 15 * 60;
  const HEIGHT = 180;
  const EMPTY_TEXT = 'No samples yet — metrics appear once the service runs.';
  const RANGES = { live: '15m', '1h': '1h', '24h': '24h', '7d': '7d' };

  // ---------- units ----------

  function number(v) {
    return v.toFixed(Math.abs(v) < 10 && v % 1 ? 1 : 0);
  }

  function percent(v) {
    return number(v) + ' %';
  }

  function bytes(v) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return number(v) + ' ' + units[i];
  }

  function rate(v) {
    return bytes(v) + '/s';
  }

  // Tick steps for byte axes, so that they read 64 MiB, 128 MiB rather than 95 MiB, 191 MiB.
  const BINARY_STEPS = [0, 1, 2, 3, 4].flatMap((k) =>
    [1, 2, 4, 8, 16, 32, 64, 128, 256, 512].map((m) => m * 1024 ** k),
  );

  // ---------- samples ----------

  // One point of a chart's time axis: the API's fields, reduced to what is drawn. The CPU
  // limit (in % of one core) is derived from usage as a share of the limit, so it is unknown
  // at zero usage: null, and the dashed line spans the gap.
  function normalize(p) {
    const n = (v) => (typeof v === 'number' ? v : null);
    return {
      t: Date.parse(p.at) / 1000,
      cpu: n(p.cpu_percent),
      cpuLimit:
        p.cpu_percent > 0 && p.cpu_limit_percent > 0
          ? (p.cpu_percent / p.cpu_limit_percent) * 100
          : null,
      memory: n(p.memory_bytes),
      memoryLimit: p.memory_limit_bytes > 0 ? p.memory_limit_bytes : null,
      rx: n(p.net_rx_bytes_per_second),
      tx: n(p.net_tx_bytes_per_second),
      read: n(p.block_read_bytes_per_second),
      write: n(p.block_write_bytes_per_second),
    };
  }

  // Adds another container's sample of the same round into a point.
  function addInto(point, other) {
    for (const key of Object.keys(point)) {
      if (key !== 't' && other[key] !== null) point[key] = (point[key] ?? 0) + other[key];
    }
  }

  const CHARTS = {
    cpu: {
      format: percent,
      series: [
        ['CPU', 'cpu', '--chart-1'],
        ['Limit', 'cpuLimit', '--chart-limit', true],
      ],
    },
    memory: {
      format: bytes,
      steps: BINARY_STEPS,
      series: [
        ['Used', 'memory', '--chart-1'],
        ['Limit', 'memoryLimit', '--chart-limit', true],
      ],
    },
    network: {
      format: rate,
      steps: BINARY_STEPS,
      series: [
        ['Received', 'rx', '--chart-1'],
        ['Sent', 'tx', '--chart-2'],
      ],
    },
    disk: {
      format: rate,
      steps: BINARY_STEPS,
      series: [
        ['Read', 'read', '--chart-1'],
        ['Written', 'write', '--chart-2'],
      ],
    },
  };

  // ---------- one chart ----------

  function createChart(figure, def, css) {
    const plot = document.createElement('div');
    plot.className = 'chart-plot';
    const empty = document.createElement('p');
    empty.className = 'chart-empty';
    empty.textContent = EMPTY_TEXT;
    const summary = document.createElement('p');
    summary.className = 'sr-only';
    figure.append(plot, empty, summary);
    figure.classList.add('is-empty');

    let uplot = null;
    let data = [[], ...def.series.map(() => [])];

    function options() {
      const axis = {
        stroke: css('--chart-axis'),
        grid: { stroke: css('--chart-grid') },
        ticks: { stroke: css('--chart-grid') },
        font: '12px system-ui, sans-serif',
      };
      return {
        width: Math.max(plot.clientWidth, 100),
        height: HEIGHT,
        series: [
          {},
          ...def.series.map(([label, , colour, dashed]) => ({
            label,
            stroke: css(colour),
            width: 1.5,
            dash: dashed ? [6, 4] : undefined,
            spanGaps: true,
            value: (u, v) => (v == null ? '–' : def.format(v)),
          })),
        ],
        axes: [
          axis,
          {
            ...axis,
            values: (u, splits) => splits.map(def.format),
            ...(def.steps && { incrs: def.steps }),
            // Wide enough for the longest label ("1023 MiB/s") at 12 px.
            size: (u, values) => (values ? Math.max(...values.map((v) => v.length)) * 7 + 20 : 40),
          },
        ],
        scales: {
          // One point alone would make uPlot widen the time axis to years: a minute each side.
          x: {
            time: true,
            range: (u, min, max) => (min === max ? [min - 60, max + 60] : [min, max]),
          },
          y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
        },
      };
    }

    function build() {
      uplot?.destroy();
      uplot = new window.uPlot(options(), data, plot);
    }

    function set(points) {
      data = [points.map((p) => p.t), ...def.series.map(([, key]) => points.map((p) => p[key]))];
      const drawn = points.length > 0;
      figure.classList.toggle('is-empty', !drawn);
      if (!uplot) build();
      else uplot.setData(data);
      if (drawn) {
        figure.dataset.drawn = 'true';
        const last = points[points.length - 1];
        summary.textContent =
          'Latest: ' +
          def.series
            .map(
              ([label, key]) => `${label} ${last[key] == null ? 'unknown' : def.format(last[key])}`,
            )
            .join(', ');
      } else {
        summary.textContent = '';
      }
    }

    new ResizeObserver(() =>
      uplot?.setSize({ width: Math.max(plot.clientWidth, 100), height: HEIGHT }),
    ).observe(plot);

    return { set, rebuild: () => uplot && build() };
  }

  // ---------- the section ----------

  function init(section) {
    const styles = getComputedStyle(section);
    const css = (name) => styles.getPropertyValue(name).trim();
    const charts = [...section.querySelectorAll('figure[data-chart]')]
      .filter((figure) => CHARTS[figure.dataset.chart])
      .map((figure) => createChart(figure, CHARTS[figure.dataset.chart], css));
    const buttons = [...section.querySelectorAll('[data-range]')];
    const status = document.createElement('p');
    status.className = 'charts-status';
    status.setAttribute('role', 'status');
    section.append(status);

    let points = [];
    let stream = null;
    let loading = 0; // a newer range choice makes older responses stale
    let early = null; // live samples received while the first 15 minutes still load
    let frameQueued = false;

    function draw() {
      if (frameQueued) return;
      frameQueued = true;
      requestAnimationFrame(() => {
        frameQueued = false;
        charts.forEach((c) => c.set(points));
      });
    }

    function addSample(sample) {
      const p = normalize(sample);
      if (Number.isNaN(p.t)) return;
      let i = points.length - 1;
      while (i >= 0 && points[i].t > p.t) i--;
      if (i >= 0 && points[i].t === p.t) addInto(points[i], p);
      else points.splice(i + 1, 0, p);
      const oldest = points[points.length - 1].t - LIVE_WINDOW_S;
      const keep = points.findIndex((q) => q.t >= oldest);
      if (keep > 0) points = points.slice(keep);
      draw();
    }

    function openStream() {
      if (stream) return;
      const es = new EventSource(section.dataset.stream);
      stream = es;
      es.addEventListener('sample', (e) => {
        let sample;
        try {
          sample = JSON.parse(e.data);
        } catch {
          return;
        }
        if (early) early.push(sample);
        else addSample(sample);
      });
      es.addEventListener('open', () => {
        status.textContent = '';
      });
      es.addEventListener('error', () => {
        status.textContent =
          es.readyState === EventSource.CONNECTING
            ? 'Live updates interrupted; reconnecting…'
            : 'Live updates stopped. Reload the page to try again.';
      });
    }

    function closeStream() {
      stream?.close();
      stream = null;
    }

    async function show(range) {
      const generation = ++loading;
      buttons.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.range === range)));
      status.textContent = '';
      if (range === 'live') {
        early = [];
        openStream();
      } else {
        early = null;
        closeStream();
      }
      let fetched = [];
      try {
        const res = await fetch(`${section.dataset.series}?from=${RANGES[range]}`, {
          headers: { Accept: 'application/json' },
        });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        fetched = (await res.json()).points || [];
      } catch (err) {
        if (generation === loading) status.textContent = `Could not load metrics (${err.message}).`;
      }
      if (generation !== loading) return;
      points = fetched.map(normalize).filter((p) => !Number.isNaN(p.t));
      if (early) {
        // Samples of rounds the series already holds would be counted twice.
        const last = points.length ? points[points.length - 1].t : -Infinity;
        early.filter((s) => Date.parse(s.at) / 1000 > last).forEach(addSample);
        early = null;
      }
      draw();
    }

    buttons.forEach((b) => b.addEventListener('click', () => show(b.dataset.range)));
    // When htmx swaps the section out, its stream goes too (an idle one would otherwise hold
    // one of the browser's few connections to the server).
    section.addEventListener('htmx:beforeCleanupElement', (e) => {
      if (e.target === section) closeStream();
    });
    // Series colours are drawn into the canvas, so a theme switch redraws with the new ones.
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () =>
      charts.forEach((c) => c.rebuild()),
    );

    const pressed = buttons.find((b) => b.getAttribute('aria-pressed') === 'true');
    show(pressed ? pressed.dataset.range : 'live');
  }

  // Sections in the page, and those htmx swaps in later.
  const started = new WeakSet();
  function initAll(root) {
    const found = [...root.querySelectorAll('[data-charts]')];
    if (root.matches?.('[data-charts]')) found.push(root);
    for (const section of found) {
      if (started.has(section)) continue;
      started.add(section);
      init(section);
    }
  }
  initAll(document);
  document.addEventListener('htmx:load', (e) => initAll(e.target));
})();
