"""Independent checker for the audit ledger's RFC 9162 proofs.

Drives the fhirgate binary (FHIRGATE_BIN) on its own data dir: appends
synthetic entries (`ledger demo-append`), signs checkpoints, then checks
`ledger proof` and `ledger consistency` with its own RFC 9162 code built on
`hashlib` only (not the project's), the checkpoint JWS with PyJWT against the
server's published JWKS, and that `ledger verify` names the first bad entry
(or checkpoint) after a stored byte is changed (entry, request id, time,
leaf hash, chain hash, checkpoint root) or a row deleted, as an attacker
with the database file would, dropping the append-only triggers first.
"""
import hashlib
import json
import sqlite3
import subprocess
import tempfile

import jwt
import pytest

from conftest import binary, clean_env


# --- RFC 9162 §2.1, written from the RFC -----------------------------------

def sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def mth(leaves: list) -> bytes:
    """Merkle Tree Hash over already-hashed leaves (§2.1.1)."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def verify_inclusion(index: int, size: int, leaf: bytes, path: list, root: bytes) -> bool:
    """§2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_hash: bytes, second_hash: bytes, path: list) -> bool:
    """§2.1.4.2 (first == second: empty path and equal hashes)."""
    if first == second:
        return not path and first_hash == second_hash
    if first == 0 or first > second or not path:
        return False
    if first & (first - 1) == 0:
        path = [first_hash] + path
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


def test_checker_matches_rfc6962_reference_roots():
    data = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
    leaves = [leaf_hash(bytes.fromhex(d)) for d in data]
    assert mth(leaves).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    assert mth(leaves[:3]).hex() == "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"


# --- driving the binary ----------------------------------------------------

class Cli:
    def __init__(self, data_dir: str):
        self.env = clean_env(data_dir)
        self.data_dir = data_dir

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([binary(), *args], env=self.env, capture_output=True, text=True, timeout=120)

    def ok(self, *args: str) -> str:
        out = self.run(*args)
        assert out.returncode == 0, f"fhirgate {' '.join(args)} failed: {out.stderr}"
        return out.stdout

    def json(self, *args: str):
        return json.loads(self.ok(*args))


@pytest.fixture(scope="module")
def ledger():
    with tempfile.TemporaryDirectory() as d:
        cli = Cli(d)
        assert cli.json("ledger", "demo-append", "5") == [0, 1, 2, 3, 4]
        cli.json("ledger", "checkpoint")
        assert cli.json("ledger", "demo-append", "12") == list(range(5, 17))
        cli.json("ledger", "checkpoint")
        assert cli.json("ledger", "demo-append", "3") == [17, 18, 19]
        yield cli


def jcs_simple(value) -> str:
    # RFC 8785 for this data (ASCII strings, integers, null): sorted keys, no spaces.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_inclusion_proofs_verify_independently(ledger):
    leaves = []
    for seq in range(20):
        p = ledger.json("ledger", "proof", str(seq))
        assert p["leaf_index"] == seq
        data = p["leaf_data"].encode()
        record = json.loads(data)
        assert record["seq"] == seq and jcs_simple(record) == p["leaf_data"]
        assert leaf_hash(data).hex() == p["leaf_hash"]
        path = [bytes.fromhex(h) for h in p["audit_path"]]
        root = bytes.fromhex(p["root_hash"])
        assert verify_inclusion(seq, p["tree_size"], leaf_hash(data), path, root), p
        if path:
            bad = [bytes([path[0][0] ^ 1]) + path[0][1:]] + path[1:]
            assert not verify_inclusion(seq, p["tree_size"], leaf_hash(data), bad, root)
        # Against the latest checkpoint (17) when it covers the entry.
        if seq < 17:
            assert p["tree_size"] == 17 and p["checkpoint"]["root_hash"] == p["root_hash"]
        else:
            assert p["tree_size"] == 20 and p["checkpoint"] is None
        leaves.append(leaf_hash(data))
    assert mth(leaves[:17]).hex() == ledger.json("ledger", "proof", "0")["root_hash"]
    assert mth(leaves).hex() == ledger.json("ledger", "proof", "19")["root_hash"]


def test_consistency_proofs_verify_independently(ledger):
    leaves = [bytes.fromhex(ledger.json("ledger", "proof", str(s))["leaf_hash"]) for s in range(20)]
    for first in (1, 2, 3, 4, 5, 7, 8, 16, 17):
        for second in range(first, 21):
            c = ledger.json("ledger", "consistency", str(first), str(second))
            assert (c["first"], c["second"]) == (first, second)
            assert c["first_hash"] == mth(leaves[:first]).hex()
            assert c["second_hash"] == mth(leaves[:second]).hex()
            path = [bytes.fromhex(h) for h in c["consistency_path"]]
            fh, sh = bytes.fromhex(c["first_hash"]), bytes.fromhex(c["second_hash"])
            assert verify_consistency(first, second, fh, sh, path), c
            bad = bytes([fh[0] ^ 1]) + fh[1:]
            assert not verify_consistency(first, second, bad, sh, path)
    assert ledger.run("ledger", "consistency", "0", "5").returncode != 0
    assert ledger.run("ledger", "consistency", "5", "21").returncode != 0


def test_checkpoint_signatures_verify_with_the_published_jwks(ledger):
    jwks = json.loads(ledger.ok("keys", "show"))
    db = sqlite3.connect(f"{ledger.data_dir}/state.db")
    rows = db.execute("SELECT tree_size, root_hash, created_at, signature FROM ledger_checkpoints ORDER BY tree_size").fetchall()
    db.close()
    assert [r[0] for r in rows] == [5, 17]
    for size, root, created_at, sig in rows:
        header = jwt.get_unverified_header(sig)
        assert header["alg"] == "RS256" and header["typ"] == "ledger-checkpoint+jwt"
        key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
        claims = jwt.decode(sig, jwt.PyJWK(key).key, algorithms=["RS256"], options={"verify_exp": False})
        assert (claims["tree_size"], claims["root_hash"], claims["time"]) == (size, root, created_at)


def test_verify_names_the_first_tampered_entry():
    with tempfile.TemporaryDirectory() as d:
        cli = Cli(d)
        cli.json("ledger", "demo-append", "10")
        cli.json("ledger", "checkpoint")
        assert "ledger OK: 10 entries" in cli.ok("ledger", "verify")
        db = sqlite3.connect(f"{d}/state.db")
        db.execute("DROP TRIGGER ledger_entries_no_update")
        db.execute("""UPDATE ledger_entries SET entry = replace(entry, '"outcome":"0"', '"outcome":"4"') WHERE seq = 7""")
        db.commit()
        db.close()
        out = cli.run("ledger", "verify")
        assert out.returncode != 0
        assert "seq 7" in out.stderr, out.stderr


# Each case: (what an attacker changes with sqlite3 after dropping the
# append-only triggers, the text `ledger verify` must name).
TAMPER_CASES = {
    "one byte of an entry's request id": (
        "UPDATE ledger_entries SET request_id = 'demo-X' WHERE seq = 2", "seq 2"),
    "one byte of a stored leaf hash": (
        "UPDATE ledger_entries SET leaf_hash = (CASE substr(leaf_hash, 1, 1) WHEN '0' THEN '1' ELSE '0' END) || substr(leaf_hash, 2) WHERE seq = 3",
        "seq 3"),
    "one byte of a stored chain hash": (
        "UPDATE ledger_entries SET chain_hash = substr(chain_hash, 1, 63) || (CASE substr(chain_hash, 64, 1) WHEN '0' THEN '1' ELSE '0' END) WHERE seq = 5",
        "seq 5"),
    "an entry's time": (
        "UPDATE ledger_entries SET created_at = created_at + 1 WHERE seq = 8", "seq 8"),
    "a deleted entry": ("DELETE FROM ledger_entries WHERE seq = 4", "seq 4"),
    "one byte of a checkpoint's root": (
        "UPDATE ledger_checkpoints SET root_hash = (CASE substr(root_hash, 1, 1) WHEN 'a' THEN 'b' ELSE 'a' END) || substr(root_hash, 2) WHERE tree_size = 10",
        "checkpoint at tree size 10"),
}


@pytest.mark.parametrize("case", sorted(TAMPER_CASES))
def test_verify_catches_every_kind_of_stored_change(case):
    sql, named = TAMPER_CASES[case]
    with tempfile.TemporaryDirectory() as d:
        cli = Cli(d)
        cli.json("ledger", "demo-append", "10")
        cli.json("ledger", "checkpoint")
        assert cli.run("ledger", "verify").returncode == 0
        db = sqlite3.connect(f"{d}/state.db")
        for trigger in ("ledger_entries_no_update", "ledger_entries_no_delete",
                        "ledger_checkpoints_no_update", "ledger_checkpoints_no_delete"):
            db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        changed = db.execute(sql).rowcount
        db.commit()
        db.close()
        assert changed == 1, f"{case}: the change touched {changed} rows"
        out = cli.run("ledger", "verify")
        assert out.returncode != 0, f"{case}: verify passed after the change: {out.stdout}"
        assert named in out.stderr, f"{case}: {out.stderr}"
