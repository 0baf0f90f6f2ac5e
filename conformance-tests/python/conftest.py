"""Starts a real fhirgate binary on a fresh data dir for the Python suites.

The binary comes from FHIRGATE_BIN (the test command sets it) or the
workspace's target/debug/fhirgate; a missing binary is a failure, never a skip.
"""
import json
import os
import pathlib
import socket
import subprocess
import tempfile
import time

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]


def binary() -> str:
    path = os.environ.get("FHIRGATE_BIN") or str(ROOT / "target" / "debug" / "fhirgate")
    if not pathlib.Path(path).exists():
        pytest.fail(f"fhirgate binary not found at {path}: run `cargo build --bin fhirgate`")
    return path


def clean_env(data_dir: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIRGATE_")}
    env["FHIRGATE_DATA_DIR"] = data_dir
    env["FHIRGATE_LOG_LEVEL"] = "warn"
    return env


class Server:
    def __init__(self, data_dir: str, port: int):
        self.data_dir = data_dir
        self.public_url = f"http://127.0.0.1:{port}"
        self.fhir_base = f"{self.public_url}/fhir"
        self.port = port
        self.proc = None

    def cli(self, *args: str) -> str:
        out = subprocess.run([binary(), *args], env=clean_env(self.data_dir), capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise AssertionError(f"fhirgate {' '.join(args)} failed: {out.stderr}")
        return out.stdout

    def add_client(self, *args: str) -> dict:
        return json.loads(self.cli("client", "add", *args))

    def start(self):
        env = clean_env(self.data_dir)
        env["FHIRGATE_LISTEN"] = f"127.0.0.1:{self.port}"
        env["FHIRGATE_PUBLIC_URL"] = self.public_url
        self.log = open(os.path.join(self.data_dir, "server.log"), "w")
        self.proc = subprocess.Popen([binary(), "serve", "--seed-patients", "3"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("fhirgate exited early: " + open(self.log.name).read()[-3000:])
            try:
                if requests.get(f"{self.fhir_base}/metadata", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise AssertionError("fhirgate did not start")

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory() as d:
        s = Server(d, free_port())
        s.data = d
        yield s
        s.stop()
