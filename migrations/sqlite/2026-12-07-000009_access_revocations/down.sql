DROP TABLE access_revocations;
