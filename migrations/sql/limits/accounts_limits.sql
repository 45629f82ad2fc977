-- Every row written with a balance, a hold or a limit passes mc_accounts_limits; an update
-- of anything else (a name, a status) does not pay for it.
CREATE TRIGGER accounts_limits
    BEFORE INSERT OR UPDATE OF balance, pending_debits, pending_credits, credit_limit, balance_max
    ON accounts FOR EACH ROW EXECUTE FUNCTION mc_accounts_limits();
