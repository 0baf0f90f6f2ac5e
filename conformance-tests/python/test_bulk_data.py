"""A FHIR Bulk Data Access 2.0 client (hl7.org/fhir/uv/bulkdata), written
from the IG's "Export" flow, against the real fhirgate binary with its
seeded demo population: kick-off (GET and POST with a Parameters body) at
system, patient and group level with `Prefer: respond-async`; polling the
Content-Location with Retry-After honoured (202 + X-Progress, 429 backs
off); the complete-status manifest checked field by field; every output
file downloaded with the bearer token and every NDJSON line parsed as the
declared type; DELETE of the status URL (202, then 404 with an
OperationOutcome). A patient whose Consent denies everything must not
appear in any file. Negative cases: no Prefer, bad `_outputFormat`,
malformed `_since`, unknown `_type`, `patient` on GET, another client's
job and files, downloads without a token.
"""
import json
import os
import subprocess
import time

import pytest
import requests

from conftest import binary, clean_env

SCOPES = "system/*.rs"


def issue(server, client, scope):
    env = clean_env(server.data_dir)
    env["FHIRGATE_PUBLIC_URL"] = server.public_url
    out = subprocess.run([binary(), "token", "issue", "--client", client, "--scope", scope, "--any-client"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


class BulkClient:
    """The IG's client side, nothing fhirgate-specific."""

    def __init__(self, base, token):
        self.base = base
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {token}"

    def kick_off(self, path, params=None, post=None, prefer="respond-async"):
        headers = {"Accept": "application/fhir+json"}
        if prefer:
            headers["Prefer"] = prefer
        url = f"{self.base}/{path}"
        if post is not None:
            body = {"resourceType": "Parameters", "parameter": post}
            headers["Content-Type"] = "application/fhir+json"
            return self.s.post(url, data=json.dumps(body), headers=headers)
        return self.s.get(url, params=params or {}, headers=headers)

    def wait(self, status_url, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = self.s.get(status_url, headers={"Accept": "application/json"})
            if r.status_code == 200:
                return r
            assert r.status_code in (202, 429), (r.status_code, r.text)
            if r.status_code == 202:
                assert r.headers.get("X-Progress"), "202 must carry X-Progress"
            retry = r.headers.get("Retry-After")
            assert retry is not None and retry.isdigit(), "Retry-After in seconds"
            time.sleep(int(retry))
        raise AssertionError("export did not complete")

    def download(self, manifest):
        found = []
        for item in manifest["output"]:
            assert set(item) >= {"type", "url", "count"}, item
            assert item["url"].startswith(self.base + "/"), item["url"]
            r = self.s.get(item["url"], headers={"Accept": "application/fhir+ndjson"})
            assert r.status_code == 200, r.text
            assert r.headers["Content-Type"].startswith("application/fhir+ndjson")
            lines = [line for line in r.text.split("\n") if line.strip()]
            assert len(lines) == item["count"]
            for line in lines:
                res = json.loads(line)
                assert res["resourceType"] == item["type"]
                assert res.get("id")
                found.append(res)
        return found

    def export(self, path, params=None, post=None):
        r = self.kick_off(path, params=params, post=post)
        assert r.status_code == 202, r.text
        status_url = r.headers["Content-Location"]
        assert status_url.startswith("http"), "Content-Location must be absolute"
        done = self.wait(status_url)
        assert "Expires" in done.headers
        m = done.json()
        assert m["transactionTime"]
        assert m["request"].startswith(self.base) and "$export" in m["request"]
        assert m["requiresAccessToken"] is True
        assert isinstance(m["output"], list)
        assert isinstance(m["error"], list)
        for e in m["error"]:
            assert e["type"] == "OperationOutcome"
        return status_url, m, self.download(m)

    def delete(self, status_url):
        r = self.s.delete(status_url)
        assert r.status_code == 202, r.text
        r = self.s.get(status_url)
        assert r.status_code == 404
        assert r.json()["resourceType"] == "OperationOutcome"


def mentions(resource, patient_id):
    return f"Patient/{patient_id}" in json.dumps(resource) or (
        resource["resourceType"] == "Patient" and resource["id"] == patient_id)


@pytest.fixture(scope="module")
def world(server):
    if server.proc is None:
        server.start()
    base = server.fhir_base
    client = BulkClient(base, issue(server, "bulk-py", SCOPES))
    other = BulkClient(base, issue(server, "bulk-py-other", SCOPES))
    admin = requests.Session()
    admin.headers["Authorization"] = "Bearer " + issue(server, "bulk-py-admin", "system/*.cruds")
    admin.headers["Content-Type"] = "application/fhir+json"
    # Three patients of our own (the seeded ones may carry opt-outs).
    ids = ["bulk-py-1", "bulk-py-2", "bulk-py-3"]
    for i in ids:
        resources = [{"resourceType": "Patient", "id": i, "name": [{"family": i}]},
                     {"resourceType": "Observation", "id": f"{i}-obs", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
                      "subject": {"reference": f"Patient/{i}"}, "valueQuantity": {"value": 5}},
                     {"resourceType": "Condition", "id": f"{i}-cond", "subject": {"reference": f"Patient/{i}"},
                      "code": {"text": "asthma"}}]
        for res in resources:
            r = admin.put(f"{base}/{res['resourceType']}/{res['id']}", data=json.dumps(res))
            assert r.status_code in (200, 201), r.text
    group = {"resourceType": "Group", "id": "bulk-py-group", "type": "person", "actual": True,
             "member": [{"entity": {"reference": f"Patient/{i}"}} for i in ids[:2]]}
    r = admin.put(f"{base}/Group/bulk-py-group", data=json.dumps(group))
    assert r.status_code in (200, 201), r.text
    denied = ids[0]
    consent = {"resourceType": "Consent", "id": "bulk-py-deny", "status": "active",
               "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
               "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
               "patient": {"reference": f"Patient/{denied}"},
               "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]},
               "provision": {"type": "deny"}}
    consent_admin = requests.Session()
    consent_admin.headers["Authorization"] = "Bearer " + issue(server, "bulk-py-consent", "system/Consent.cruds")
    consent_admin.headers["Content-Type"] = "application/fhir+json"
    r = consent_admin.put(f"{base}/Consent/bulk-py-deny", data=json.dumps(consent))
    assert r.status_code in (200, 201), r.text
    return {"client": client, "other": other, "ids": ids, "denied": denied}


@pytest.mark.parametrize("level", ["$export", "Patient/$export", "Group/bulk-py-group/$export"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_export_each_level(world, level, method):
    c = world["client"]
    types = "Patient,Observation,Condition"
    if method == "GET":
        status_url, m, found = c.export(level, params={"_type": types, "_outputFormat": "application/fhir+ndjson"})
    else:
        status_url, m, found = c.export(level, post=[{"name": "_type", "valueString": types},
                                                     {"name": "_outputFormat", "valueString": "application/fhir+ndjson"}])
    assert {o["type"] for o in m["output"]} <= set(types.split(","))
    patients = {r["id"] for r in found if r["resourceType"] == "Patient"}
    assert patients, "some patient must be exported"
    if level.startswith("Group"):
        assert patients == set(world["ids"][1:2]), patients
    assert not any(mentions(r, world["denied"]) for r in found), "denied patient leaked"
    c.delete(status_url)


def test_post_patient_parameter_limits_the_export(world):
    c = world["client"]
    want = world["ids"][2]
    _, _, found = c.export("Patient/$export", post=[
        {"name": "patient", "valueReference": {"reference": f"Patient/{want}"}},
        {"name": "_type", "valueString": "Patient,Observation"}])
    assert {r["id"] for r in found if r["resourceType"] == "Patient"} == {want}
    assert all(r["resourceType"] == "Patient" or mentions(r, want) for r in found)


def test_negative_cases(world):
    c, other = world["client"], world["other"]
    assert c.kick_off("$export", prefer=None).status_code == 400
    for params in ({"_outputFormat": "text/csv"}, {"_since": "last week"}, {"_type": "NotAType"},
                   {"_typeFilter": "nonsense"}, {"patient": "Patient/x"}):
        r = c.kick_off("Patient/$export", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
    r = c.kick_off("$export", params={"_type": "Patient"})
    assert r.status_code == 202
    status_url = r.headers["Content-Location"]
    assert other.s.get(status_url).status_code == 404
    m = c.wait(status_url).json()
    url = m["output"][0]["url"]
    assert requests.get(url).status_code == 401
    assert other.s.get(url).status_code in (403, 404)
    c.delete(status_url)
    assert c.s.get(url).status_code == 404


def test_since_lists_deleted_resources(world, server):
    c = world["client"]
    admin = requests.Session()
    admin.headers["Authorization"] = "Bearer " + issue(server, "bulk-py-admin", "system/*.cruds")
    time.sleep(1.1)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(1.1)
    gone = f"{world['ids'][2]}-cond"
    assert admin.delete(f"{server.fhir_base}/Condition/{gone}").status_code in (200, 204)
    _, m, found = c.export("$export", params={"_type": "Condition", "_since": since})
    assert found == []
    assert len(m["deleted"]) == 1, m
    item = m["deleted"][0]
    assert item["type"] == "Bundle"
    lines = [json.loads(x) for x in c.s.get(item["url"]).text.split("\n") if x.strip()]
    assert [b["entry"][0]["request"] for b in lines] == [{"method": "DELETE", "url": f"Condition/{gone}"}]
    assert all(b["type"] == "transaction" for b in lines)
