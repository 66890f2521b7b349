// A small HTTP server for tests that run the dashboard's assets without the Rust server:
// /assets/* from crates/server/assets, /fixtures/* from tests/browser/fixtures, plus the
// test's own routes. Every response carries the dashboard's strict CSP.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { REPO_ROOT } from './lib.mjs';

export const CSP = "default-src 'self'; script-src 'self'; style-src 'self'";

const ROOTS = {
  '/assets/': join(REPO_ROOT, 'crates/server/assets'),
  '/fixtures/': join(REPO_ROOT, 'tests/browser/fixtures'),
};
const TYPES = {
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json',
};

// routes: { '/path': (req, res, url) => … }. Resolves to { url, close }.
export function serve(routes = {}) {
  const server = createServer(async (req, res) => {
    res.setHeader('Content-Security-Policy', CSP);
    const url = new URL(req.url, 'http://localhost');
    const route = routes[url.pathname];
    if (route) return route(req, res, url);
    const prefix = Object.keys(ROOTS).find((p) => url.pathname.startsWith(p));
    const rel = prefix && normalize(url.pathname.slice(prefix.length));
    if (!rel || rel.startsWith('..')) return notFound(res);
    try {
      const body = await readFile(join(ROOTS[prefix], rel));
      res.writeHead(200, { 'Content-Type': TYPES[extname(rel)] || 'application/octet-stream' });
      res.end(body);
    } catch {
      notFound(res);
    }
  });
  return new Promise((done) => {
    server.listen(0, '127.0.0.1', () => {
      done({
        url: `http://127.0.0.1:${server.address().port}`,
        close: () => {
          server.closeAllConnections();
          server.close();
        },
      });
    });
  });
}

function notFound(res) {
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found');
}

// Formats one Server-Sent Event.
export function sseEvent(event, data, id) {
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

// Starts an event stream on res; returns write(text), which resolves once the text is handed
// to the operating system: a fast producer waits for the reader, and a test may then drop the
// connection knowing what was sent.
export function eventStream(res) {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
  res.flushHeaders();
  return (text) => new Promise((done) => res.write(text, done));
}
