"""A confidential-symmetric authorization-code flow with PKCE driven by
Authlib's OAuth2Session (client_secret_basic), through fhirgate's real
sign-in and approval pages, then FHIR reads, a refresh and revocation."""
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

import formbrowser

REDIRECT = "https://app.example.org/callback"
SCOPE = "openid fhirUser launch/patient patient/*.rs offline_access"


def test_authlib_confidential_code_flow_with_pkce(server):
    reg = server.add_client("--name", "authlib app", "--auth", "client_secret_basic", "--redirect-uri", REDIRECT,
                            "--grant", "authorization_code", "--grant", "refresh_token", "--scope", SCOPE)
    if server.proc is None:
        server.start()
    config = requests.get(f"{server.fhir_base}/.well-known/smart-configuration").json()
    client = OAuth2Session(reg["client_id"], reg["client_secret"], scope=SCOPE, redirect_uri=REDIRECT,
                           code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic")
    verifier = generate_token(64)
    url, state = client.create_authorization_url(config["authorization_endpoint"], code_verifier=verifier, aud=server.fhir_base)
    answer = formbrowser.run(url, server.public_url, REDIRECT, "pat.jones", "demo")
    token = client.fetch_token(config["token_endpoint"], authorization_response=answer, code_verifier=verifier)
    assert token["token_type"] == "Bearer"
    assert token["patient"], token
    assert "id_token" in token and "refresh_token" in token

    patient = client.get(f"{server.fhir_base}/Patient/{token['patient']}").json()
    assert patient["name"][0]["family"] == "Jones"
    obs = client.get(f"{server.fhir_base}/Observation", params={"patient": token["patient"], "_count": 5}).json()
    assert obs["resourceType"] == "Bundle" and obs["total"] > 0

    refreshed = client.refresh_token(config["token_endpoint"])
    assert refreshed["access_token"] != token["access_token"]
    assert refreshed["refresh_token"] != token["refresh_token"], "refresh tokens rotate"

    revoke = requests.post(config["revocation_endpoint"], data={"token": refreshed["access_token"]},
                           auth=(reg["client_id"], reg["client_secret"]))
    assert revoke.status_code == 200
    after = requests.get(f"{server.fhir_base}/Patient/{token['patient']}",
                         headers={"Authorization": f"Bearer {refreshed['access_token']}"})
    assert after.status_code == 401
