// A relying party built on openid-client (npm), an implementation of OpenID Connect independent
// of Sesame and of the Rust crates, driven by conformance/oidc/rp.rs.
//
//   node rp.mjs ISSUER CLIENT_ID SECRET REDIRECT_URI POST_LOGOUT_URI
//
// It talks over stdin/stdout, one JSON object per line: three times it prints {"authorize": URL} and
// reads the URL the browser came back to; at the end it prints what it saw, with the logout URL. Any check the
// library makes that fails ends it with an error on stderr and a non-zero exit. The service
// client's private key (ES256, for private_key_jwt) comes in RP_SVC_JWK.
import * as client from 'openid-client';
import { createInterface } from 'node:readline';

const [issuer, clientId, secret, redirectUri, postLogoutUri] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = (value) => process.stdout.write(JSON.stringify(value) + '\n');
const fail = (why) => {
  throw new Error(why);
};
// The issuer is on loopback over plain HTTP; every other check stays at the library's default.
const insecure = { execute: [client.allowInsecureRequests] };

const config = await client.discovery(
  new URL(issuer),
  clientId,
  undefined,
  client.ClientSecretBasic(secret),
  insecure,
);
// Verify ID token signatures from the token endpoint too, against the published JWKS.
client.enableNonRepudiationChecks(config);

// Authorization code with PKCE (S256), nonce and state: prints the URL, reads where the browser
// came back to, and redeems the code. The library checks state, the RFC 9207 `iss` parameter,
// the token response and the ID token (issuer, audience, expiry, nonce, signature).
const signIn = async (extra = {}) => {
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const authorize = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
    ...extra,
  });
  say({ authorize: authorize.href });
  const back = (await lines.next()).value;
  // With `max_age` the library also requires `auth_time` and checks it against the age.
  const tokens = await client.authorizationCodeGrant(config, new URL(back), {
    pkceCodeVerifier: verifier,
    expectedNonce: nonce,
    expectedState: state,
    maxAge: extra.max_age === undefined ? undefined : Number(extra.max_age),
    idTokenExpected: true,
  });
  if (tokens.token_type.toLowerCase() !== 'bearer') fail(`token_type ${tokens.token_type}`);
  if (!tokens.refresh_token) fail('no refresh token');
  return tokens;
};
const refusal = async (promise) => {
  try {
    await promise;
  } catch (e) {
    if (e instanceof client.ResponseBodyError) return e.error;
    throw e;
  }
  fail('a request that must fail succeeded');
};

// The first sign-in (the password page), then a second through the SSO session, then a third
// with `prompt=none` from a browser that is not signed in: an error response (with `iss`).
const tokens = await signIn();
const again = await signIn({ max_age: '300' });
let passive;
try {
  await signIn({ prompt: 'none' });
  fail('prompt=none without a session succeeded');
} catch (e) {
  if (!(e instanceof client.AuthorizationResponseError)) throw e;
  passive = e.error;
}
const claims = tokens.claims();
if (again.claims().sub !== claims.sub) fail('the second sign-in is someone else');

// UserInfo, which the library checks is about the ID token's subject.
const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);

// Refresh: a new refresh token; the old one presented again is refused and ends the family, so
// the new one goes too.
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
if (!refreshed.refresh_token || refreshed.refresh_token === tokens.refresh_token) {
  fail('the refresh token was not rotated');
}
const reused = await refusal(client.refreshTokenGrant(config, tokens.refresh_token));
const family = await refusal(client.refreshTokenGrant(config, refreshed.refresh_token));

// Introspection (RFC 7662) and revocation (RFC 7009), on the second sign-in's tokens.
const introspected = await client.tokenIntrospection(config, again.access_token);
const live = await client.tokenIntrospection(config, again.refresh_token);
await client.tokenRevocation(config, again.refresh_token, { token_type_hint: 'refresh_token' });
const dead = await client.tokenIntrospection(config, again.refresh_token);
const revoked = await refusal(client.refreshTokenGrant(config, again.refresh_token));

// A service client authenticating with private_key_jwt: two grants, each with its own assertion.
const jwk = JSON.parse(process.env.RP_SVC_JWK);
const key = await crypto.subtle.importKey(
  'jwk',
  jwk,
  { name: 'ECDSA', namedCurve: 'P-256' },
  false,
  ['sign'],
);
const service = await client.discovery(
  new URL(issuer),
  'rp-svc',
  undefined,
  client.PrivateKeyJwt({ key, kid: jwk.kid }),
  insecure,
);
const grants = [];
for (let i = 0; i < 2; i++) {
  grants.push(await client.clientCredentialsGrant(service, { scope: 'reports:read' }));
}

// RP-initiated logout.
const endSession = client.buildEndSessionUrl(config, {
  id_token_hint: tokens.id_token,
  post_logout_redirect_uri: postLogoutUri,
  state: 'bye',
});

say({
  claims,
  userinfo: info,
  passive,
  reused,
  family,
  introspected,
  refresh_active: [live.active, dead.active],
  revoked,
  service_scopes: grants.map((g) => g.scope),
  service_token_types: grants.map((g) => g.token_type),
  end_session: endSession.href,
});
