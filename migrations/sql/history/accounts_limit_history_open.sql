-- An account's limits at its opening.
CREATE TRIGGER accounts_limit_history_open AFTER INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION mc_limit_history();
