-- Consent decision inputs (issue 4, item 5): the organization a local user
-- acts for (`Organization/<id>`), carried into the access tokens issued to
-- them and matched by Consent actors. NULL: none recorded (a Practitioner's
-- is then looked up in their PractitionerRoles at token issuance). Same
-- shape as the SQLite migration.

ALTER TABLE users ADD COLUMN organization TEXT;
