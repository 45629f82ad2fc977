-- Who and why. The service sets these transaction-local settings for every write; the history
-- and audit triggers read them, so that history records the actor and reason of any change, even
-- one made by direct SQL (whose actor is then the database user).
--
-- The reason: `mutualcredit.reason`, or NULL when none was given.
CREATE FUNCTION mc_reason() RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN nullif(current_setting('mutualcredit.reason', true), '');
END $$;
