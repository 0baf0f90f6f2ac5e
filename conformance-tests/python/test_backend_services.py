"""SMART Backend Services (client_credentials with private_key_jwt) driven by
PyJWT and cryptography with an ES384 key, written from the SMART App Launch
2.2 "Backend Services" section: register the JWKS, sign an assertion, get a
system/ token, read FHIR data with it, and see the replayed jti refused."""
import json
import time
import uuid

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def es384_client(server):
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "py-es384", "alg": "ES384", "use": "sig"})
    path = f"{server.data_dir}/py-jwks.json"
    with open(path, "w") as f:
        json.dump({"keys": [jwk]}, f)
    reg = server.add_client("--name", "python backend", "--auth", "private_key_jwt", "--grant", "client_credentials",
                            "--scope", "system/*.rs", "--jwks-file", path)
    return reg["client_id"], key


def assertion(client_id, key, token_url, jti=None):
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": token_url, "exp": now + 240, "iat": now, "jti": jti or str(uuid.uuid4())}
    return jwt.encode(claims, key, algorithm="ES384", headers={"kid": "py-es384"})


def test_es384_backend_services_flow(server):
    client_id, key = es384_client(server)
    if server.proc is None:
        server.start()
    config = requests.get(f"{server.fhir_base}/.well-known/smart-configuration").json()
    token_url = config["token_endpoint"]
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    jti = str(uuid.uuid4())
    form = {"grant_type": "client_credentials", "scope": "system/Patient.rs system/Observation.rs",
            "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion(client_id, key, token_url, jti)}
    r = requests.post(token_url, data=form)
    assert r.status_code == 200, r.text
    token = r.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0
    assert token["scope"] == "system/Patient.rs system/Observation.rs"
    # A backend client that states no purpose of use gets no jurisdiction exemption
    # (the demo's California and Texas patients need treatment, payment or
    # operations): it states one per request.
    headers = {"Authorization": f"Bearer {token['access_token']}", "Accept": "application/fhir+json",
               "X-Purpose-Of-Use": "TREAT"}
    bundle = requests.get(f"{server.fhir_base}/Patient?_count=2", headers=headers).json()
    assert bundle["resourceType"] == "Bundle" and bundle["total"] == 3, bundle
    assert len(bundle["entry"]) == 2
    silent = dict(headers)
    del silent["X-Purpose-Of-Use"]
    unstated = requests.get(f"{server.fhir_base}/Patient?_count=2", headers=silent).json()
    assert unstated["total"] < 3
    # The same assertion again: its jti is a replay.
    replay = requests.post(token_url, data=form)
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"
    # Write scope was never granted.
    denied = requests.post(f"{server.fhir_base}/Patient", headers={**headers, "Content-Type": "application/fhir+json"},
                           data=json.dumps({"resourceType": "Patient"}))
    assert denied.status_code == 403, denied.text
    assert denied.json()["resourceType"] == "OperationOutcome"
