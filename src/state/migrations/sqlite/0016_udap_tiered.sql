-- UDAP Tiered OAuth (issue 8): fhirgate as a data holder that sends users
-- to an identity provider (IdP) a client names.
-- udap_idp_clients: the client id each IdP gave fhirgate when it registered
--   there by UDAP dynamic registration (once per IdP base URL).
-- udap_identity_links: which local user an IdP's subject is (the pair
--   iss, sub of its id_tokens); made by an operator (`fhirgate udap
--   link-identity`), read at every Tiered OAuth sign-in.
-- Same on SQLite and PostgreSQL.

CREATE TABLE udap_idp_clients (
    idp TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    registered_at BIGINT NOT NULL
);

CREATE TABLE udap_identity_links (
    idp TEXT NOT NULL,
    subject TEXT NOT NULL,
    username TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (idp, subject)
);
