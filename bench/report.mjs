// Formats the gateway benchmark's results (bench/run.sh) as Markdown.
//
//   node bench/report.mjs <results.tsv> <meta.json>
//
// results.tsv: one line per cell, tab-separated:
//   op target requests duration_us bytes p50_us p99_us max_us non2xx socket_errors rss_kb
// meta.json: the run's settings and machine context (printed as a header).
// The derived figures compare cells of this one run only: facade req/s over
// nginx req/s (target >= 0.70) and facade p99 minus nginx p99 for a read
// (target < 2 ms), at saturation (8 connections) and paced (read-paced: each
// connection waits between requests, so the rate is lower and about the
// same on both).
import fs from 'node:fs';

const [tsv, metaPath] = process.argv.slice(2);
const meta = JSON.parse(fs.readFileSync(metaPath, 'utf8'));
const cells = fs
  .readFileSync(tsv, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => {
    const [op, target, requests, durationUs, bytes, p50, p99, max, non2xx, sockErr, rssKb] = l.split('\t');
    const n = Number(requests);
    return {
      op,
      target,
      n,
      rps: n / (Number(durationUs) / 1e6),
      kbPerResp: n ? Number(bytes) / n / 1024 : 0,
      p50: Number(p50) / 1000,
      p99: Number(p99) / 1000,
      max: Number(max) / 1000,
      errors: Number(non2xx) + Number(sockErr),
      rssMb: Number(rssKb) / 1024,
    };
  });

const TARGETS = {
  direct: 'upstream direct',
  nginx: 'nginx → upstream',
  facade: 'fhirgate → upstream',
  noledger: 'attribution: fhirgate, ledger off',
  bare: 'attribution: fhirgate, ledger and consent off',
};
const OPS = {
  read: 'read `Patient/{id}`',
  search: 'search `Observation?patient=Patient/{id}&_count=20`',
  token: 'token exchange (`client_credentials`, RS384 assertion)',
  'search-nototal': 'attribution: the same search with `_total=none` (no count ahead of the total)',
  'read-paced': `read \`Patient/{id}\`, paced (each connection waits ${meta.pace_ms} ms between requests)`,
};
const f0 = (x) => Math.round(x).toLocaleString('en-US');
const f2 = (x) => x.toFixed(2);
const cell = (op, target) => cells.find((c) => c.op === op && c.target === target);

const out = [];
out.push(`## fhirgate gateway benchmark, ${meta.date}`);
out.push('');
out.push(
  `wrk ${meta.threads} threads, ${meta.connections} connections, ${meta.duration} s per cell after a ` +
    `${meta.warmup} s warm-up; upstream: ${meta.upstream}, ${meta.patients} seeded patients; ` +
    `fhirgate release build (${meta.git}), consent on (client \`${meta.client}\`, not exempt), ` +
    `audit ledger on (\`X-Ledger-Seq\` ${meta.ledger_seq ? `seen, e.g. ${meta.ledger_seq}` : 'NOT seen'}); ` +
    `data dirs on ${meta.data_fs}; nginx ${meta.nginx_version}, ${meta.nproc} CPUs; load average before ${meta.load_before}, after ${meta.load_after}.`,
);
if (meta.smoke) out.push('', '**Smoke run (1 s cells): the figures are not meaningful.**');
out.push('');
out.push('| operation | target | req/s | p50 ms | p99 ms | max ms | peak RSS MB | KB/resp | errors |');
out.push('|---|---|---|---|---|---|---|---|---|');
for (const c of cells) {
  out.push(
    `| ${OPS[c.op] ?? c.op} | ${c.op === 'token' ? 'fhirgate' : TARGETS[c.target] ?? c.target} | ${f0(c.rps)} | ${f2(c.p50)} | ${f2(c.p99)} | ` +
      `${f2(c.max)} | ${c.rssMb.toFixed(1)} | ${c.kbPerResp.toFixed(1)} | ${c.errors} |`,
  );
}
out.push('');
out.push(
  'Peak RSS is VmHWM of the process that answered (upstream direct: the upstream server; nginx: master + ' +
    'workers; fhirgate: the facade process), sampled after the cell, so it is the peak since start-up ' +
    '(the two attribution rows share one process). Errors are non-2xx answers plus socket errors (a cell ' +
    'with errors does not count). The attribution rows are a second facade on the same upstream with ' +
    'the audit ledger off, called by a client consent applies to and by one in its `exempt_clients`; ' +
    'they are not targets, they show where the time goes.',
);
out.push('');
out.push('| derived (same run) | value | target | verdict |');
out.push('|---|---|---|---|');
const verdict = (ok, ...cs) =>
  cs.some((c) => !c || c.errors > 0 || c.n === 0) ? 'invalid (errors or no answers)' : ok ? 'met' : 'not met';
for (const op of ['read', 'search']) {
  const f = cell(op, 'facade');
  const n = cell(op, 'nginx');
  const d = cell(op, 'direct');
  if (f && n) {
    const r = f.rps / n.rps;
    out.push(`| ${op}: fhirgate req/s ÷ nginx req/s | ${f2(r)} | ≥ 0.70 | ${verdict(r >= 0.7, f, n)} |`);
    const added = f.p99 - n.p99;
    if (op === 'read') {
      out.push(`| read: fhirgate p99 − nginx p99 | ${f2(added)} ms | < 2 ms | ${verdict(added < 2, f, n)} |`);
    } else {
      out.push(`| ${op}: fhirgate p99 − nginx p99 | ${f2(added)} ms | – | – |`);
    }
  }
  if (f && d) out.push(`| ${op}: fhirgate req/s ÷ upstream direct req/s | ${f2(f.rps / d.rps)} | – | – |`);
  if (n && d) out.push(`| ${op}: nginx req/s ÷ upstream direct req/s | ${f2(n.rps / d.rps)} | – | – |`);
  for (const t of ['noledger', 'bare']) {
    const a = cell(op, t);
    if (a && n) {
      out.push(
        `| ${op}: ${TARGETS[t].replace('attribution: ', '')} req/s ÷ nginx req/s; p99 − nginx p99 | ` +
          `${f2(a.rps / n.rps)}; ${f2(a.p99 - n.p99)} ms | – | – |`,
      );
    }
  }
}
{
  const a = cell('search-nototal', 'facade');
  const n = cell('search', 'nginx');
  if (a && n) {
    out.push(
      `| search, \`_total=none\`: fhirgate req/s ÷ nginx req/s; p99 − nginx p99 | ` +
        `${f2(a.rps / n.rps)}; ${f2(a.p99 - n.p99)} ms | – | – |`,
    );
  }
}
{
  const f = cell('read-paced', 'facade');
  const n = cell('read-paced', 'nginx');
  if (f && n) {
    const added = f.p99 - n.p99;
    out.push(
      `| read, paced (fhirgate ${f0(f.rps)} req/s, nginx ${f0(n.rps)}): fhirgate p99 − nginx p99 | ` +
        `${f2(added)} ms | < 2 ms | ${verdict(added < 2, f, n)} |`,
    );
  }
}
if (meta.upstream_rss_kb) {
  out.push('');
  out.push(`Upstream peak RSS over the whole run: ${(meta.upstream_rss_kb / 1024).toFixed(1)} MB.`);
}
process.stdout.write(out.join('\n') + '\n');
