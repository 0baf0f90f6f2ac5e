-- Prior authorization (issue 7): CRD looks up a member's approved
-- authorizations (`prior_auth::lookup`) by member identifier; without this
-- index that is a scan of every request. Same on SQLite and PostgreSQL.

CREATE INDEX pa_requests_patient ON pa_requests (patient_key, state);
