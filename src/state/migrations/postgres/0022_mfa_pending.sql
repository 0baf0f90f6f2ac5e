-- Factors waiting for confirmation, and phones (issue 11, src/mfa/store.rs).
-- mfa_totp_pending: an authenticator being (re-)enrolled, sealed like
--   mfa_totp's; it replaces the user's mfa_totp row (and recovery codes)
--   only once a code from it is confirmed, so an abandoned replacement
--   leaves the working one in place. mfa_totp now holds confirmed rows only:
--   unconfirmed ones from before move here.
-- mfa_phone: a confirmed phone number per user (E.164, sealed under
--   keys/mfa-secrets.key with "phone:" + user name as associated data).
-- mfa_phone_pending: a code sent by Twilio Verify and not yet checked, per
--   user and purpose ('enroll': a number being added; 'stepup'): the number
--   it went to (sealed) and the channel (sms | call).
-- Same on SQLite and PostgreSQL.

CREATE TABLE mfa_totp_pending (
    username TEXT PRIMARY KEY,
    sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

INSERT INTO mfa_totp_pending (username, sealed, created_at)
    SELECT username, sealed, created_at FROM mfa_totp WHERE confirmed_at IS NULL;

DELETE FROM mfa_totp WHERE confirmed_at IS NULL;

CREATE TABLE mfa_phone (
    username TEXT PRIMARY KEY,
    sealed TEXT NOT NULL,
    confirmed_at BIGINT NOT NULL
);

CREATE TABLE mfa_phone_pending (
    username TEXT NOT NULL,
    purpose TEXT NOT NULL,
    sealed TEXT NOT NULL,
    channel TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (username, purpose)
);
