// Backend Services client credentials for the gateway benchmark (bench/run.sh).
// SMART App Launch 2.2 "Backend Services" / RFC 7523: the client signs a JWT
// (RS384) with iss = sub = client_id, aud = the token endpoint, a fresh jti.
// fhirgate refuses a jti it has seen, so the load generator cannot repeat one
// assertion: this script pre-signs N of them, one per line, before the run
// (signing is not part of what is measured).
//
//   node bench/assertions.mjs keygen <dir>
//       -> <dir>/client-key.pem (PKCS#8, mode 0600), <dir>/client-jwks.json
//   node bench/assertions.mjs sign <dir> <client_id> <token_endpoint> <n> <out>
//       -> <out>: n assertions, one per line, exp = now + 290 s
//          (SMART allows at most 300 s), so use them within about 4 minutes.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const KID = 'bench-key-1';
const b64url = (buf) => Buffer.from(buf).toString('base64url');

function keygen(dir) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  fs.writeFileSync(path.join(dir, 'client-key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }), {
    mode: 0o600,
  });
  const jwk = publicKey.export({ format: 'jwk' });
  const jwks = { keys: [{ kty: 'RSA', alg: 'RS384', use: 'sig', kid: KID, n: jwk.n, e: jwk.e }] };
  fs.writeFileSync(path.join(dir, 'client-jwks.json'), JSON.stringify(jwks));
}

function sign(dir, clientId, aud, n, out) {
  const key = crypto.createPrivateKey(fs.readFileSync(path.join(dir, 'client-key.pem')));
  const header = b64url(JSON.stringify({ alg: 'RS384', typ: 'JWT', kid: KID }));
  const now = Math.floor(Date.now() / 1000);
  const run = crypto.randomBytes(6).toString('hex');
  const lines = [];
  for (let i = 0; i < n; i++) {
    const claims = { iss: clientId, sub: clientId, aud, iat: now, exp: now + 290, jti: `${run}-${i}` };
    const input = `${header}.${b64url(JSON.stringify(claims))}`;
    const sig = crypto.sign('sha384', Buffer.from(input), key);
    lines.push(`${input}.${b64url(sig)}`);
  }
  fs.writeFileSync(out, lines.join('\n') + '\n');
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'keygen' && args.length === 1) {
  keygen(args[0]);
} else if (cmd === 'sign' && args.length === 5) {
  sign(args[0], args[1], args[2], Number(args[3]), args[4]);
} else {
  process.stderr.write('usage: assertions.mjs keygen <dir> | sign <dir> <client_id> <aud> <n> <out>\n');
  process.exit(2);
}
