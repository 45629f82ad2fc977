-- Once per INSERT statement on accounts, on the rows it inserted (new_rows).
CREATE TRIGGER accounts_open_empty AFTER INSERT ON accounts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mc_accounts_open_empty();
