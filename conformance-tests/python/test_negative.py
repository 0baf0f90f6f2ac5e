"""The SMART negative suite, black-box against the running binary: each case
asserts the exact HTTP status and OAuth error code (RFC 6749 §4.1.2.1, §5.2;
RFC 6750; SMART App Launch 2.2)."""
import base64
import hashlib
import json
import secrets
import time
import uuid
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

import formbrowser

REDIRECT = "https://neg.example.org/cb"
SCOPE = "openid fhirUser launch/patient patient/*.rs offline_access"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def s256(v):
    return base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def env(server):
    public = server.add_client("--name", "negative public", "--redirect-uri", REDIRECT, "--grant", "authorization_code",
                               "--grant", "refresh_token", "--scope", SCOPE)
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "neg", "alg": "ES384"})
    path = f"{server.data_dir}/neg-jwks.json"
    with open(path, "w") as f:
        json.dump({"keys": [jwk]}, f)
    backend = server.add_client("--name", "negative backend", "--auth", "private_key_jwt", "--grant", "client_credentials",
                                "--scope", "system/*.rs", "--jwks-file", path)
    if server.proc is None:
        server.start()
    cfg = requests.get(f"{server.fhir_base}/.well-known/smart-configuration").json()
    return {"server": server, "public": public["client_id"], "backend": backend["client_id"], "key": key, "cfg": cfg}


def authorize_url(e, **over):
    verifier = secrets.token_urlsafe(48)
    q = {"response_type": "code", "client_id": e["public"], "redirect_uri": REDIRECT, "scope": SCOPE, "state": "s1",
         "aud": e["server"].fhir_base, "code_challenge": s256(verifier), "code_challenge_method": "S256"}
    q.update({k: v for k, v in over.items() if v is not None})
    for k, v in over.items():
        if v is None:
            q.pop(k, None)
    return f"{e['cfg']['authorization_endpoint']}?{urlencode(q)}", verifier


def code(e, user="pat.jones", **over):
    url, verifier = authorize_url(e, **over)
    answer = formbrowser.run(url, e["server"].public_url, REDIRECT, user, "demo")
    return parse_qs(urlparse(answer).query)["code"][0], verifier


def token(e, **form):
    return requests.post(e["cfg"]["token_endpoint"], data=form)


def expect(r, status, error):
    assert r.status_code == status, r.text
    assert r.json()["error"] == error, r.text


def redirected_error(e, **over):
    url, _ = authorize_url(e, **over)
    r = requests.get(url, allow_redirects=False)
    assert r.status_code in (302, 303), r.text
    loc = r.headers["location"]
    assert loc.startswith(REDIRECT), loc
    q = parse_qs(urlparse(loc).query)
    assert "code" not in q
    assert q["state"] == ["s1"]
    return q["error"][0]


def test_authorize_errors(env):
    # Unknown client and redirect_uri mismatch: no redirect at all.
    for over in ({"client_id": "nobody"}, {"redirect_uri": "https://evil.example/cb"}):
        url, _ = authorize_url(env, **over)
        r = requests.get(url, allow_redirects=False)
        assert r.status_code == 400 and "location" not in r.headers, (over, r.status_code)
    assert redirected_error(env, aud="https://other.example/fhir") == "invalid_request"
    assert redirected_error(env, code_challenge_method="plain") == "invalid_request"
    assert redirected_error(env, code_challenge=None, code_challenge_method=None) == "invalid_request"
    assert redirected_error(env, scope="patient/*.cruds") == "invalid_scope"
    assert redirected_error(env, launch="no-such-launch") == "invalid_request"


def test_code_and_pkce_errors(env):
    for verifier in (None, "", "x" * 60, "challenge"):
        c, good = code(env)
        form = {"grant_type": "authorization_code", "code": c, "redirect_uri": REDIRECT, "client_id": env["public"]}
        if verifier == "challenge":
            form["code_verifier"] = s256(good)
        elif verifier is not None:
            form["code_verifier"] = verifier
        expect(token(env, **form), 400, "invalid_grant")
    c, good = code(env)
    ok = token(env, grant_type="authorization_code", code=c, redirect_uri=REDIRECT, client_id=env["public"], code_verifier=good)
    assert ok.status_code == 200, ok.text
    access = ok.json()["access_token"]
    reused = token(env, grant_type="authorization_code", code=c, redirect_uri=REDIRECT, client_id=env["public"], code_verifier=good)
    expect(reused, 400, "invalid_grant")
    r = requests.get(f"{env['server'].fhir_base}/Patient?_count=1", headers={"Authorization": f"Bearer {access}"})
    assert r.status_code == 401, "tokens from a reused code are revoked"
    expect(token(env, grant_type="authorization_code", code="x", client_id="nobody"), 401, "invalid_client")


def test_refresh_errors(env):
    c, v = code(env)
    t = token(env, grant_type="authorization_code", code=c, redirect_uri=REDIRECT, client_id=env["public"], code_verifier=v).json()
    expect(token(env, grant_type="refresh_token", refresh_token="garbage", client_id=env["public"]), 400, "invalid_grant")
    expect(token(env, grant_type="refresh_token", refresh_token=t["refresh_token"], client_id=env["public"], scope="patient/*.cruds"),
           400, "invalid_scope")
    requests.post(env["cfg"]["revocation_endpoint"], data={"token": t["refresh_token"], "client_id": env["public"]})
    expect(token(env, grant_type="refresh_token", refresh_token=t["refresh_token"], client_id=env["public"]), 400, "invalid_grant")
    requests.post(env["cfg"]["revocation_endpoint"], data={"token": t["access_token"], "client_id": env["public"]})
    r = requests.get(f"{env['server'].fhir_base}/Observation", headers={"Authorization": f"Bearer {t['access_token']}"})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")


def assertion(e, **over):
    now = int(time.time())
    claims = {"iss": e["backend"], "sub": e["backend"], "aud": e["cfg"]["token_endpoint"], "exp": now + 240, "iat": now,
              "jti": str(uuid.uuid4())}
    claims.update(over)
    return jwt.encode(claims, e["key"], algorithm="ES384", headers={"kid": "neg"})


def cc(e, a, assertion_type=ASSERTION_TYPE):
    return token(e, grant_type="client_credentials", scope="system/Patient.rs", client_assertion_type=assertion_type, client_assertion=a)


def test_backend_assertion_errors(env):
    expect(cc(env, assertion(env), assertion_type="urn:wrong"), 400, "invalid_request")
    now = int(time.time())
    expect(cc(env, assertion(env, exp=now - 120)), 401, "invalid_client")
    expect(cc(env, assertion(env, exp=now + 3600)), 401, "invalid_client")
    expect(cc(env, assertion(env, iat=now + 600)), 401, "invalid_client")
    expect(cc(env, assertion(env, aud="https://elsewhere/token")), 401, "invalid_client")
    unsigned = jwt.encode({"iss": env["backend"], "sub": env["backend"], "aud": env["cfg"]["token_endpoint"], "exp": now + 200, "jti": "n1"},
                          None, algorithm="none")
    expect(cc(env, unsigned), 401, "invalid_client")
    # HS256 "signed" with the client's public key as the HMAC secret (the classic confusion attack).
    from cryptography.hazmat.primitives import serialization
    import hmac
    pem = env["key"].public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "kid": "neg", "typ": "JWT"}).encode())
    body = b64(json.dumps({"iss": env["backend"], "sub": env["backend"], "aud": env["cfg"]["token_endpoint"], "exp": now + 200,
                           "jti": "hs"}).encode())
    sig = b64(hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest())
    expect(cc(env, f"{head}.{body}.{sig}"), 401, "invalid_client")
    once = assertion(env)
    assert cc(env, once).status_code == 200
    expect(cc(env, once), 401, "invalid_client")


def test_patient_a_cannot_read_patient_b(env):
    c, v = code(env)
    t = token(env, grant_type="authorization_code", code=c, redirect_uri=REDIRECT, client_id=env["public"], code_verifier=v).json()
    mine = t["patient"]
    h = {"Authorization": f"Bearer {t['access_token']}"}
    system = cc(env, assertion(env)).json()["access_token"]
    others = requests.get(f"{env['server'].fhir_base}/Patient?_count=10", headers={"Authorization": f"Bearer {system}"}).json()
    other = next(e["resource"] for e in others["entry"] if e["resource"]["id"] != mine)
    base = env["server"].fhir_base
    assert requests.get(f"{base}/Patient/{other['id']}", headers=h).status_code == 404
    by_search = requests.get(f"{base}/Observation?patient={other['id']}", headers=h).json()
    assert not [e for e in by_search.get("entry", []) if e.get("search", {}).get("mode") == "match"]
    family = other["name"][0]["family"]
    chained = requests.get(f"{base}/Observation?patient.family={family}&_count=50", headers=h)
    assert other["id"] not in chained.text
    included = requests.get(f"{base}/Observation?_include=Observation:subject&_count=50", headers=h)
    assert included.status_code == 200 and f"Patient/{other['id']}" not in included.text
    mine_only = requests.get(f"{base}/Observation?_count=5", headers=h).json()
    assert mine_only["total"] > 0
