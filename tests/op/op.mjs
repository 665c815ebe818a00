// Test OpenID Provider for the gateway's test suite.
//
// panva/oidc-provider v9 (ESM), pinned by package-lock.json. Listens on 127.0.0.1 only.
// Nothing here is production-grade: devInteractions accepts ANY login/password, the
// login name is the subject, and dynamic client registration needs no token, so each
// test registers exactly the client it needs (tests/support/op.py does that).
//
// Environment:
//   OP_PORT          listen port (required)
//   OP_ISSUER        issuer URL                                  (default http://127.0.0.1:$OP_PORT)
//   OP_KEYS_FILE     private JWKS, created with one RS256 key if missing
//                    (default ./keys/jwks.json); a test rotates keys by restarting
//                    the OP with another file
//   OP_CLIENTS_FILE  optional JSON list of static client metadata
//   OP_PROFILE       optional: behave on the wire like one real provider (see PROFILES
//                    below): keycloak | entra | google | okta | auth0 | github. Unset: the
//                    plain oidc-provider every other test uses, unchanged.
//   OP_TENANT        entra: the tenant id put in `tid` (and expected in OP_ISSUER)
//   OP_HD            google: the Workspace domain put in `hd` (users named outsider* get
//                    hd other.example, users named personal* none)
//   OP_GRAPH_URL     entra: the Graph base URL named in overage `_claim_sources`
//   OP_URL_RESOURCES 1: any http://127.0.0.1 URL is also a resource indicator, giving JWT
//                    access tokens with that URL as audience (RFC 9728 clients ask for
//                    the resource the protected-resource metadata names). Unset: unknown.
//   OP_TOKEN_TYPE    optional: the token endpoint answers this token_type instead of its own
//                    (`absent`: none at all), to test how clients treat unknown types.
//   OP_MTLS          1: certificate-bound access tokens (RFC 8705) for clients registered
//                    with tls_client_certificate_bound_access_tokens; the "TLS client
//                    certificate" is the URL-encoded PEM in the x-test-client-cert header
//                    (as a TLS-terminating proxy in front of the OP would pass it).
//   OP_REQUIRE_PAR   1: every authorization request must be pushed first (RFC 9126;
//                    discovery says require_pushed_authorization_requests). Unset: PAR
//                    offered, not required (oidc-provider's default).
//
// An issuer with a path (OP_ISSUER=http://127.0.0.1:P/realms/test) also serves its
// discovery document at <issuer path>/.well-known/openid-configuration.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import Provider from 'oidc-provider';

const here = path.dirname(fileURLToPath(import.meta.url));
const HOST = '127.0.0.1';
const PORT = Number(process.env.OP_PORT);
if (!Number.isInteger(PORT) || PORT <= 0 || PORT > 65535) {
  console.error('OP_PORT must be set to a TCP port');
  process.exit(2);
}
const ISSUER = process.env.OP_ISSUER || `http://${HOST}:${PORT}`;
const KEYS_FILE = process.env.OP_KEYS_FILE || path.join(here, 'keys', 'jwks.json');
const CLIENTS_FILE = process.env.OP_CLIENTS_FILE || '';

function log(...args) {
  console.log(new Date().toISOString(), ...args);
}

// ---------------------------------------------------------------------------
// Signing keys: one RSA key (RS256), made on first use of a keys file.
function loadOrCreateKeys() {
  if (fs.existsSync(KEYS_FILE)) return JSON.parse(fs.readFileSync(KEYS_FILE, 'utf8'));
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const kid = `rs256-${crypto.randomBytes(6).toString('hex')}`;
  const jwks = { keys: [{ ...jwk, kid, use: 'sig', alg: 'RS256' }] };
  fs.mkdirSync(path.dirname(KEYS_FILE), { recursive: true });
  fs.writeFileSync(KEYS_FILE, JSON.stringify(jwks, null, 2), { mode: 0o600 });
  return jwks;
}

const PROFILE = process.env.OP_PROFILE || '';
const ISSUER_PATH = new URL(ISSUER).pathname.replace(/\/$/, '');

function loadClients() {
  if (!CLIENTS_FILE) return [];
  const clients = JSON.parse(fs.readFileSync(CLIENTS_FILE, 'utf8'));
  if (!Array.isArray(clients)) throw new Error(`${CLIENTS_FILE}: expected a JSON list of clients`);
  return clients;
}

// ---------------------------------------------------------------------------
// Accounts: any login is accepted; the login name is the account id (= sub).
// A test changes a user's groups with PUT /test/accounts/<id>/groups (JSON list).
const GROUPS = { alice: ['users', 'admins'] };
async function findAccount(ctx, id) {
  return {
    accountId: id,
    async claims() {
      const standard = {
        sub: id,
        email: `${id}@example.test`,
        email_verified: true,
        name: `Test User ${id}`,
        preferred_username: id,
        groups: GROUPS[id] || ['users'],
      };
      return PROFILES[PROFILE] ? PROFILES[PROFILE].claims(id, standard) : standard;
    },
  };
}

// ---------------------------------------------------------------------------
// Provider profiles: the claim shapes and locations of real providers, from their
// documentation. `claims(id, standard)` gives an account's claims; `scopeClaims` are
// claims added to the `profile` scope so that they reach the id_token.
const isAdmin = (id) => id.includes('admin');
const PROFILES = {
  // Keycloak: roles nested per realm and per client; groups by the group mapper.
  keycloak: {
    scopeClaims: ['realm_access', 'resource_access'],
    claims: (id, c) => ({
      ...c,
      realm_access: { roles: isAdmin(id) ? ['offline_access', 'admin'] : ['offline_access'] },
      resource_access: { gateway: { roles: isAdmin(id) ? ['app-admin'] : ['app-user'] } },
    }),
  },
  // Entra ID v2.0: tid, oid, app roles in `roles`, group ids in `groups` until the
  // overage (users named *overage*: _claim_names/_claim_sources; *hasgroups*: hasgroups),
  // no `email` for users named upn* (preferred_username is the UPN then).
  entra: {
    scopeClaims: ['tid', 'oid', 'roles', 'upn', 'hasgroups', '_claim_names', '_claim_sources'],
    claims: (id, c) => {
      const tenant = process.env.OP_TENANT || '00000000-0000-0000-0000-000000000000';
      const result = {
        ...c, tid: tenant, oid: `oid-${id}`, roles: isAdmin(id) ? ['App.Admin'] : ['App.User'],
        groups: ['11111111-1111-1111-1111-111111111111'],
      };
      if (id.startsWith('upn')) {
        delete result.email;
        result.preferred_username = `${id}@contoso.example`;
        result.upn = `${id}@contoso.example`;
      }
      if (id.includes('overage')) {
        delete result.groups;
        result._claim_names = { groups: 'src1' };
        result._claim_sources = { src1: { endpoint: `${process.env.OP_GRAPH_URL || 'https://graph.windows.net'}/${tenant}/users/oid-${id}/getMemberObjects` } };
      } else if (id.includes('hasgroups')) {
        delete result.groups;
        result.hasgroups = true;
      }
      return result;
    },
  },
  // Google: hd for Workspace accounts only.
  google: {
    scopeClaims: ['hd'],
    claims: (id, c) => {
      if (id.startsWith('personal')) return { ...c, email: `${id}@gmail.example` };
      const hd = id.startsWith('outsider') ? 'other.example' : (process.env.OP_HD || 'corp.example');
      return { ...c, email: `${id}@${hd}`, hd };
    },
  },
  // Okta: groups only with the `groups` scope (the standard claims config already does).
  okta: { scopeClaims: [], claims: (id, c) => c },
  // Auth0: custom claims under a namespace URL.
  auth0: {
    scopeClaims: ['https://example.com/roles'],
    claims: (id, c) => ({ ...c, 'https://example.com/roles': isAdmin(id) ? ['admin'] : ['viewer'] }),
  },
  // GitHub: the OP is only the OAuth 2.0 server; identity comes from the (fake) API.
  github: { scopeClaims: [], claims: (id, c) => c },
};
if (PROFILE && !PROFILES[PROFILE]) {
  console.error(`OP_PROFILE ${PROFILE} is not one of ${Object.keys(PROFILES).join(', ')}`);
  process.exit(2);
}

// ---------------------------------------------------------------------------
// Resource servers (RFC 8707 resource indicators).
const RESOURCE_SERVERS = {
  // JWT access tokens (RFC 9068: typ at+jwt, RS256)
  'urn:test:api': {
    scope: 'api:read api:write',
    audience: 'urn:test:api',
    accessTokenTTL: 3600,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  },
  // opaque access tokens for the same audience (checkable only by introspection)
  'urn:test:api-opaque': {
    scope: 'api:read api:write',
    audience: 'urn:test:api',
    accessTokenTTL: 3600,
    accessTokenFormat: 'opaque',
  },
  // negative-test helpers: another audience, and a JWT that expires after 1 s
  'urn:test:other': {
    scope: 'api:read api:write',
    audience: 'urn:test:other',
    accessTokenTTL: 3600,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  },
  'urn:test:api-short': {
    scope: 'api:read api:write',
    audience: 'urn:test:api',
    accessTokenTTL: 1,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  },
};

function urlResource(indicator) {
  if (process.env.OP_URL_RESOURCES !== '1' || !indicator.startsWith(`http://${HOST}:`)) return undefined;
  return {
    scope: 'api:read api:write',
    audience: indicator,
    accessTokenTTL: 3600,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  };
}

// ---------------------------------------------------------------------------
// Plain HTML pages. The forms keep oidc-provider's markup (ids op.logoutForm,
// op.deviceInputForm, op.deviceConfirmForm); the submit buttons are placed inside
// the forms so that a form parser sees them too. Replacing the defaults also keeps
// the log free of "you SHOULD change this" notices.
function esc(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head>`
    + `<body><h1>${esc(title)}</h1>${body}</body></html>`;
}
function withButtons(form, buttons) {
  return form.replace(/<\/form>\s*$/, `${buttons}</form>`);
}

async function logoutSource(ctx, form) {
  ctx.type = 'html';
  ctx.body = page('Sign out', withButtons(
    form,
    '<button type="submit" name="logout" value="yes" autofocus>Yes, sign me out</button>'
      + '<button type="submit">No, stay signed in</button>',
  ));
}
async function postLogoutSuccessSource(ctx) {
  ctx.type = 'html';
  ctx.body = page('Signed out', '<p id="op.loggedOut">You are signed out.</p>');
}
async function userCodeInputSource(ctx, form, out, err) {
  ctx.type = 'html';
  const msg = err ? `<p class="error">${esc(err.name || 'error')}: ${esc(err.message || '')}</p>` : '';
  ctx.body = page('Device sign-in', msg + withButtons(form, '<button type="submit">Continue</button>'));
}
async function userCodeConfirmSource(ctx, form, client, deviceInfo, userCode) {
  ctx.type = 'html';
  ctx.body = page('Confirm device', `<p>Client <b>${esc(client.clientName || client.clientId)}</b>, `
    + `code <code id="user_code">${esc(userCode)}</code></p>`
    + withButtons(form, '<button type="submit" autofocus>Continue</button>'
      + '<button type="submit" name="abort" value="yes">Abort</button>'));
}
async function successSource(ctx) {
  ctx.type = 'html';
  ctx.body = page('Device signed in', '<p id="op.deviceSuccess">Sign-in successful.</p>');
}
async function renderError(ctx, out) {
  ctx.type = 'html';
  ctx.body = page('Error', `<pre id="op.error">${esc(JSON.stringify(out, null, 2))}</pre>`);
}

// ---------------------------------------------------------------------------
const configuration = {
  clients: loadClients(),
  // a test client may ask for short-lived access tokens (seconds), e.g. to see one expire
  extraClientMetadata: { properties: ['test_access_token_ttl'] },
  jwks: loadOrCreateKeys(),
  findAccount,

  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username', ...(PROFILES[PROFILE]?.scopeClaims || [])],
    groups: ['groups'],
  },
  scopes: ['openid', 'offline_access', 'api:read', 'api:write',
    // GitHub's OAuth scopes, granted like any other when the OP plays GitHub
    ...(PROFILE === 'github' ? ['read:user', 'user:email', 'read:org'] : [])],
  // two authentication levels: a plain login is urn:test:pwd; a login asked for
  // urn:test:mfa (acr_values) "performs MFA" and gets it, unless the user name starts
  // with "nomfa" (a user who cannot do MFA). See the interactionFinished wrapper below.
  // (oidc-provider puts acr in the id_token only when acr_values were requested.)
  acrValues: ['urn:test:pwd', 'urn:test:mfa'],
  // id_tokens carry the claims of the granted scopes (like most real providers),
  // not only sub: the gateway must work without a userinfo call too
  conformIdTokenClaims: false,

  // PKCE S256 (the only method v9 offers) is required for public clients only
  pkce: { required: (ctx, client) => client.clientAuthMethod === 'none' },

  // a client that may use refresh_token always gets one, offline_access or not
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),

  clientBasedCORS: () => false,
  cookies: { keys: ['gateway-test-op-cookie-key-0123456789abcdef'] },

  // oidc-provider v9 refuses outgoing requests to special-use addresses (SSRF
  // protection), which includes the back-channel logout POST to a gateway on
  // 127.0.0.1. Every RP of the test suite is on loopback: lift it for 127.0.0.1 only.
  fetch: (url, options) => {
    if (new URL(url).hostname === HOST) delete options.dispatcher;
    return globalThis.fetch(url, options);
  },

  features: {
    devInteractions: { enabled: true }, // built-in login + consent forms, any login
    registration: { enabled: true, initialAccessToken: false },
    // any confidential client may introspect any token; public clients only their own
    introspection: {
      enabled: true,
      allowedPolicy: async (ctx, client, token) => client.clientAuthMethod !== 'none'
        || token.clientId === client.clientId,
    },
    // a client may revoke only its own tokens
    revocation: {
      enabled: true,
      allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId,
    },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
    clientCredentials: { enabled: true },
    pushedAuthorizationRequests: {
      enabled: true,
      requirePushedAuthorizationRequests: process.env.OP_REQUIRE_PAR === '1',
    },
    deviceFlow: {
      enabled: true, userCodeInputSource, userCodeConfirmSource, successSource,
    },
    resourceIndicators: {
      enabled: true,
      // no resource parameter -> no resource server -> opaque token (userinfo-capable)
      defaultResource: async (ctx, client, oneOf) => oneOf,
      useGrantedResource: async () => false,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        const rs = RESOURCE_SERVERS[resourceIndicator] || urlResource(resourceIndicator);
        if (!rs) throw new Provider.errors.InvalidTarget();
        return rs;
      },
    },
  },

  ttl: {
    AccessToken: (ctx, token, client) => token.resourceServer?.accessTokenTTL
      || client?.test_access_token_ttl || client?.testAccessTokenTtl || 3600,
    AuthorizationCode: 60,
    ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL || 3600,
    DeviceCode: 600,
    IdToken: 3600,
    Grant: 14 * 24 * 3600,
    Interaction: 3600,
    Session: 14 * 24 * 3600,
    RefreshToken: 14 * 24 * 3600,
  },

  renderError,
};
if (process.env.OP_MTLS === '1') {
  configuration.features.mTLS = {
    enabled: true,
    certificateBoundAccessTokens: true,
    getCertificate: (ctx) => {
      const value = ctx.get('x-test-client-cert');
      return value ? decodeURIComponent(value) : undefined;
    },
    certificateAuthorized: () => true,
    certificateSubjectMatches: () => false,
  };
}
// Keycloak puts realm roles in its access tokens too (service accounts: role `service`).
if (PROFILE === 'keycloak') {
  configuration.extraTokenClaims = async (ctx, token) => ({
    realm_access: { roles: token.accountId ? (isAdmin(token.accountId) ? ['admin'] : ['user']) : ['service'] },
  });
}
// GitHub's expiring user tokens come with refresh tokens that rotate on every use.
if (PROFILE === 'github') configuration.rotateRefreshToken = () => true;
// Auth0 serves RP-initiated logout at /oidc/logout.
if (PROFILE === 'auth0') configuration.routes = { end_session: '/oidc/logout' };

const provider = new Provider(ISSUER, configuration);
provider.proxy = false;

// devInteractions finishes every login without an acr: set the level here.
const finishInteraction = provider.interactionFinished.bind(provider);
provider.interactionFinished = async (req, res, result, options) => {
  if (result?.login) {
    const details = await provider.interactionDetails(req, res);
    const asked = String(details.params.acr_values || '').split(' ');
    const mfa = asked.includes('urn:test:mfa') && !String(result.login.accountId).startsWith('nomfa');
    result.login.acr = mfa ? 'urn:test:mfa' : 'urn:test:pwd';
    result.login.amr = mfa ? ['pwd', 'otp'] : ['pwd'];
  }
  return finishInteraction(req, res, result, options);
};

// Request counters by "METHOD /path", so a test can prove how often the gateway called
// (e.g. one introspection for 100 concurrent requests): GET /test/counters -> JSON.
const counters = {};
// Refresh tokens issued per account, newest last, so a test can try one at the OP itself
// (e.g. after a logout that should have revoked it): GET /test/accounts/<id>/refresh-tokens.
const refreshTokens = {};
provider.on('refresh_token.saved', (token) => {
  (refreshTokens[token.accountId] ||= []).push(token.jti);
});
provider.use(async (ctx, next) => {
  const tokens = ctx.method === 'GET' && ctx.path.match(/^\/test\/accounts\/([^/]+)\/refresh-tokens$/);
  if (!tokens) return next();
  ctx.body = refreshTokens[decodeURIComponent(tokens[1])] || [];
});
provider.use(async (ctx, next) => {
  const match = ctx.method === 'PUT' && ctx.path.match(/^\/test\/accounts\/([^/]+)\/groups$/);
  if (!match) return next();
  let raw = '';
  for await (const chunk of ctx.req) raw += chunk;
  const groups = JSON.parse(raw || '[]');
  if (!Array.isArray(groups)) ctx.throw(400, 'expected a JSON list of groups');
  GROUPS[decodeURIComponent(match[1])] = groups.map(String);
  ctx.status = 204;
});
provider.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path === '/test/counters') {
    ctx.body = counters;
    return;
  }
  const key = `${ctx.method} ${ctx.path}`;
  counters[key] = (counters[key] || 0) + 1;
  await next();
});

// W3C trace context received, by "METHOD /path", so a test can see what the gateway
// propagated to the provider: GET /test/traceparents -> {key: [traceparent, ...]}.
const traceparents = {};
provider.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path === '/test/traceparents') {
    ctx.body = traceparents;
    return;
  }
  const seen = ctx.get('traceparent');
  if (seen) (traceparents[`${ctx.method} ${ctx.path}`] ||= []).push(seen);
  await next();
});
// OP_TOKEN_TYPE: rewrite the token response's token_type (tests of RFC 6749 7.1).
if (process.env.OP_TOKEN_TYPE) {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path !== '/token' || !ctx.body || typeof ctx.body !== 'object' || !ctx.body.access_token) return;
    const { token_type: _, ...rest } = ctx.body;
    ctx.body = process.env.OP_TOKEN_TYPE === 'absent' ? rest : { ...rest, token_type: process.env.OP_TOKEN_TYPE };
  });
}

// Discovery under the issuer's path, and the per-profile shape of the document.
const WELL_KNOWN = '/.well-known/openid-configuration';
provider.use(async (ctx, next) => {
  let entraTemplate = false;
  if (ISSUER_PATH && ctx.path === ISSUER_PATH + WELL_KNOWN) {
    ctx.path = WELL_KNOWN;
  } else if (PROFILE === 'entra' && ctx.path === `/organizations/v2.0${WELL_KNOWN}`) {
    ctx.path = WELL_KNOWN; // multi-tenant document: issuer with a literal {tenantid}
    entraTemplate = true;
  }
  await next();
  if (ctx.path !== WELL_KNOWN || !ctx.body || typeof ctx.body !== 'object') return;
  if (entraTemplate) ctx.body = { ...ctx.body, issuer: `${new URL(ISSUER).origin}/{tenantid}/v2.0` };
  if (PROFILE === 'google' || PROFILE === 'github') {
    // Google publishes no end_session_endpoint (and no back-channel logout).
    const { end_session_endpoint: _, ...rest } = ctx.body;
    ctx.body = { ...rest, backchannel_logout_supported: false };
  }
});

provider.on('server_error', (ctx, err) => log('server_error', err));
provider.on('registration_create.success', (ctx, client) => log('registered client', client.clientId));
provider.on('backchannel.success', (ctx, client, accountId, sid) => {
  log('backchannel.success', client.clientId, accountId, sid);
});
provider.on('backchannel.error', (ctx, err, client, accountId, sid) => {
  log('backchannel.error', client.clientId, accountId, sid, err.message, err.cause?.message || '');
});
provider.on('end_session.success', () => log('end_session.success'));

const server = provider.listen(PORT, HOST, () => {
  log(`oidc-provider listening on ${HOST}:${PORT}, issuer ${ISSUER}, keys ${KEYS_FILE}`);
});

function shutdown(signal) {
  log(`${signal}: shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
