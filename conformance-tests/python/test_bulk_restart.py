"""Bulk Data export survives a server crash (issue 6 proof): a system-level
export is kicked off on a real fhirgate with small pages, the process is
killed (SIGKILL) while the status says the export is part-way, the server
is started again on the same data directory, and the same job completes
with exactly the counts of a reference export run afterwards.
"""
import os
import subprocess
import tempfile
import time

import requests

from conftest import binary, clean_env, free_port
from test_bulk_data import BulkClient, issue

CONFIG = """
[limits]
max_page_size = 5
default_page_size = 5
[bulk]
min_poll_seconds = 0
retry_after_seconds = 1
lease_seconds = 2
scan_millis = 200
"""


class Crashable:
    def __init__(self, data_dir, port):
        self.data_dir = data_dir
        self.port = port
        self.public_url = f"http://127.0.0.1:{port}"
        self.fhir_base = f"{self.public_url}/fhir"
        self.config = os.path.join(data_dir, "bulk-restart.toml")
        with open(self.config, "w") as f:
            f.write(CONFIG)
        self.proc = None

    def start(self):
        env = clean_env(self.data_dir)
        env["FHIRGATE_LISTEN"] = f"127.0.0.1:{self.port}"
        env["FHIRGATE_PUBLIC_URL"] = self.public_url
        env["FHIRGATE_CONFIG"] = self.config
        log = open(os.path.join(self.data_dir, "server.log"), "a")
        self.proc = subprocess.Popen([binary(), "serve", "--seed-patients", "30"], env=env,
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 180
        while time.time() < deadline:
            assert self.proc.poll() is None, "fhirgate exited early"
            try:
                if requests.get(f"{self.fhir_base}/metadata", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise AssertionError("fhirgate did not start")

    def kill(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()


def counts(manifest):
    out = {}
    for o in manifest["output"]:
        out[o["type"]] = out.get(o["type"], 0) + o["count"]
    return out


def test_export_completes_after_a_crash_with_exact_counts():
    with tempfile.TemporaryDirectory() as d:
        s = Crashable(d, free_port())
        s.start()
        try:
            c = BulkClient(s.fhir_base, issue(s, "bulk-py-crash", "system/*.rs"))
            types = "Patient,Observation,Condition,Encounter"
            r = c.kick_off("$export", params={"_type": types})
            assert r.status_code == 202, r.text
            status_url = r.headers["Content-Location"]
            part_way = None
            deadline = time.time() + 180
            while time.time() < deadline:
                p = c.s.get(status_url)
                assert p.status_code == 202, f"finished before the crash: {p.status_code}"
                progress = p.headers["X-Progress"]
                if progress.split(" ")[0] not in ("queued", "0"):
                    part_way = progress
                    break
                time.sleep(0.05)
            assert part_way, "never saw progress"
            s.kill()
            s.start()
            done = c.wait(status_url)
            got = counts(done.json())
            # A fresh export of the same data after the restart.
            _, reference, _ = c.export("$export", params={"_type": types})
            assert got == counts(reference), (got, counts(reference), part_way)
            assert got.get("Observation", 0) > 0
            for o in done.json()["output"]:
                lines = [x for x in c.s.get(o["url"]).text.split("\n") if x.strip()]
                assert len(lines) == o["count"]
        finally:
            s.kill()
