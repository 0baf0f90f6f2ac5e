-- Da Vinci CRD (issue 7, item 4): the CDS client JWT ids seen, kept until
-- they expire, so a replayed JWT is refused on every replica. The key that
-- makes coverage-assertion ids lives in `meta` (`crd.assertion_secret`).
-- Same shape on SQLite and PostgreSQL.

CREATE TABLE crd_client_jti (
    iss           TEXT NOT NULL,
    jti           TEXT NOT NULL,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (iss, jti)
);
