// A real OpenID Provider for fhirgate's federated sign-in tests: panva's
// `oidc-provider` (an OpenID Certified implementation), on 127.0.0.1.
//
// Environment:
//   PORT           port to bind (default 0 = any free port); prints `LISTENING <port>`
//   CLIENT_ID      the one registered client (confidential, client_secret_basic)
//   CLIENT_SECRET  its secret
//   REDIRECT_URI   its one redirect URI (exact match)
//   ACCOUNT_PASSWORD  the password of account `dr.lee` (default: a random one,
//                  printed as `PASSWORD <value>`)
//   MODE           how the provider (mis)behaves, for the negative cases:
//     normal        a correct provider.
//     bad-nonce     the authorization endpoint sees the request's `nonce`
//                   replaced before the provider records it, so the id_token
//                   it signs carries a nonce the client never sent.
//     wrong-issuer  the provider signs id_tokens as issuer
//                   `http://127.0.0.1:<port>/other-tenant` while its discovery
//                   document (and so the client's configuration) says
//                   `http://127.0.0.1:<port>`, as a mix-up or a multi-tenant
//                   endpoint would.
//   (An expired id_token needs no mode: the relying party's clock is moved
//   past the normal one-hour `exp`. A short `ttl.IdToken` would not do, since
//   the id_token is minted at the code exchange and verified at once.)
//
// Sign-in is a tiny custom interaction: `GET /interaction/<uid>` shows a
// login form; `POST /interaction/<uid>/login` with `login` + `password` of
// one of the accounts signs in; consent is then granted automatically for
// the requested scopes. PKCE (S256) is required for every client.
//
// Accounts: `dr.lee` (a clinician) and `pat.jones` (a patient), one password.
// Assurance, as an identity-proofing service federated into the provider
// would assert it: the form's optional `acr` field is the level the sign-in
// reaches (an identity verification done, or not; default IAL1) and `amr`
// the methods used (comma-separated; default `pwd`). They go into the
// id_token as `acr` and `amr` (with `auth_time`). The form shows the
// `acr_values`, `prompt` and `max_age` the relying party asked for
// (`<p id="asked">`), so a test sees them arrive.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const env = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (fallback === undefined) {
      console.error(`missing environment variable ${name}`);
      process.exit(2);
    }
    return fallback;
  }
  return v;
};

const MODE = env('MODE', 'normal');
if (!['normal', 'bad-nonce', 'wrong-issuer'].includes(MODE)) {
  console.error(`unknown MODE ${MODE}`);
  process.exit(2);
}
const CLIENT_ID = env('CLIENT_ID');
const CLIENT_SECRET = env('CLIENT_SECRET');
const REDIRECT_URI = env('REDIRECT_URI');
const PASSWORD = env('ACCOUNT_PASSWORD', randomBytes(12).toString('hex'));

// The accounts. `sub` deliberately differs from the user name, so a
// relying party that names users by `preferred_username` is seen doing so.
const ACCOUNTS = [
  {
    sub: 'acct-7f3a9c',
    preferred_username: 'dr.lee',
    email: 'dr.lee@example.org',
    email_verified: true,
    name: 'Dr Alex Lee',
  },
  {
    sub: 'acct-p41d02',
    preferred_username: 'pat.jones',
    email: 'pat.jones@example.org',
    email_verified: true,
    name: 'Pat Jones',
  },
];
const IAL1 = 'http://idmanagement.gov/ns/assurance/ial/1';
const IAL2 = 'http://idmanagement.gov/ns/assurance/ial/2';
const MFA = 'http://schemas.openid.net/pape/policies/2007/06/multi-factor';

const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ format: 'jwk' });

let provider;

const server = createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      console.error('interaction failed', err);
      res.statusCode = 500;
      res.end('interaction failed');
    });
    return;
  }
  provider.callback()(req, res);
});

server.listen(Number(env('PORT', '0')), '127.0.0.1', () => {
  const { port } = server.address();
  const base = `http://127.0.0.1:${port}`;
  const issuer = MODE === 'wrong-issuer' ? `${base}/other-tenant` : base;
  provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [{ ...signingKey, kid: 'test-rs256', use: 'sig', alg: 'RS256' }] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    acrValues: [IAL1, IAL2, MFA],
    claims: {
      // the assurance claims go with `openid`, so every id_token carries them
      openid: ['sub', 'acr', 'amr', 'auth_time'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    // Put the scope-requested claims in the id_token too (as Entra ID does).
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    ttl: {
      IdToken: 3600,
      AccessToken: 600,
      AuthorizationCode: 60,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
    async findAccount(ctx, id) {
      const account = ACCOUNTS.find((a) => a.sub === id);
      if (!account) return undefined;
      return { accountId: id, async claims() { return { ...account }; } };
    },
  });
  if (MODE === 'bad-nonce') {
    provider.use(async (ctx, next) => {
      if (ctx.path === '/auth' && ctx.query.nonce) {
        ctx.query = { ...ctx.query, nonce: `not-${ctx.query.nonce}` };
      }
      await next();
    });
  }
  if (MODE === 'wrong-issuer') {
    provider.use(async (ctx, next) => {
      await next();
      if (ctx.path === '/.well-known/openid-configuration' && ctx.body) {
        ctx.body = { ...ctx.body, issuer: base };
      }
    });
  }
  console.log(`LISTENING ${port}`);
  if (!process.env.ACCOUNT_PASSWORD) console.log(`PASSWORD ${PASSWORD}`);
});

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function readForm(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function loginForm(res, uid, params, error) {
  res.setHeader('content-type', 'text/html; charset=utf-8');
  const asked = `acr_values=${params.acr_values || ''};prompt=${params.prompt || ''};max_age=${params.max_age ?? ''}`;
  res.end(`<!doctype html><title>Test OP sign-in</title>
${error ? `<p class="error">${escape(error)}</p>` : ''}
<p id="asked">${escape(asked)}</p>
<form method="post" action="/interaction/${escape(uid)}/login">
<input name="login"> <input name="password" type="password">
<select name="acr"><option value="${IAL1}">IAL1</option><option value="${IAL2}">IAL2 (identity verified)</option></select>
<input name="amr" value="pwd">
<button>Sign in</button>
</form>`);
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params, session } = details;
  if (prompt.name === 'login') {
    if (req.method === 'GET') return loginForm(res, uid, params);
    const form = await readForm(req);
    const account = ACCOUNTS.find((a) => a.preferred_username === form.get('login'));
    if (!account || form.get('password') !== PASSWORD) {
      res.statusCode = 401;
      return loginForm(res, uid, params, 'wrong user name or password');
    }
    const acr = form.get('acr') || IAL1;
    const amr = (form.get('amr') || 'pwd').split(',').map((m) => m.trim()).filter(Boolean);
    return provider.interactionFinished(req, res,
      { login: { accountId: account.sub, acr, amr, ts: Math.floor(Date.now() / 1000) } },
      { mergeWithLastSubmission: false });
  }
  if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } },
      { mergeWithLastSubmission: true });
  }
  res.statusCode = 400;
  res.end(`unsupported prompt ${escape(prompt.name)}`);
}
