-- Every change of an account's limits (only when one of them really changes).
CREATE TRIGGER accounts_limit_history AFTER UPDATE OF credit_limit, balance_max ON accounts
    FOR EACH ROW
    WHEN (OLD.credit_limit IS DISTINCT FROM NEW.credit_limit
          OR OLD.balance_max IS DISTINCT FROM NEW.balance_max)
    EXECUTE FUNCTION mc_limit_history();
