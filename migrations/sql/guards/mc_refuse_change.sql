-- Guards: append-only tables and immutable columns. The one function behind every
-- append-only trigger: it refuses the statement, naming the table and a constraint
-- `<table>_append_only` (which the service's error mapping and the tests read).
CREATE FUNCTION mc_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: ledger history is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation', TABLE = TG_TABLE_NAME,
              CONSTRAINT = TG_TABLE_NAME || '_append_only';
END $$;
